package oauth

import (
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-idp/gatehouse/internal/secrets"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

var testSupportedScopes = []string{"openid", "profile", "email", "offline_access"}

const (
	webRedirect    = "https://client.example/cb"
	nativeRedirect = "http://127.0.0.1/cb"
)

func confidentialClient() storage.Client {
	return storage.Client{
		ID:         "web",
		SecretHash: secrets.Hash("web-secret"),
		Metadata: storage.ClientMetadata{
			RedirectURIs:            []string{webRedirect, "https://client.example/other?tenant=a"},
			GrantTypes:              []string{"authorization_code", "refresh_token"},
			ResponseTypes:           []string{"code"},
			TokenEndpointAuthMethod: AuthSecretBasic,
			ApplicationType:         "web",
		},
	}
}

func publicClient() storage.Client {
	return storage.Client{
		ID: "app",
		Metadata: storage.ClientMetadata{
			RedirectURIs:            []string{nativeRedirect},
			GrantTypes:              []string{"authorization_code"},
			ResponseTypes:           []string{"code"},
			TokenEndpointAuthMethod: AuthNone,
			ApplicationType:         "native",
		},
	}
}

// restrictedClient may only ask for openid, profile and an API scope of its
// own, custom: what a client registers replaces the default scopes.
func restrictedClient() storage.Client {
	c := confidentialClient()
	c.ID = "restricted"
	c.Metadata.Scope = "openid profile custom"
	return c
}

func noCodeClient() storage.Client {
	c := confidentialClient()
	c.ID = "machine"
	c.Metadata.GrantTypes = []string{"client_credentials"}
	c.Metadata.ResponseTypes = nil
	return c
}

func intPtr(n int) *int { return &n }

func TestParseAuthorizeRequest(t *testing.T) {
	const ok = "response_type=code&scope=openid&state=xyz"
	const pkce = "&code_challenge=" + rfc7636Challenge + "&code_challenge_method=S256"
	long := strings.Repeat("a", maxParamLen)
	const maxAge = 1<<31 - 1
	tests := []struct {
		name     string
		client   storage.Client // confidentialClient when zero
		query    string
		want     *AuthorizeRequest // checked on success; ClientID and RedirectURI filled in
		wantCode string
	}{
		{
			name:  "RFC 6749 §4.1.1 minimal code request",
			query: "response_type=code&scope=openid",
			want:  &AuthorizeRequest{Scopes: []string{"openid"}},
		},
		{
			name: "OIDC Core §3.1.2.1 every parameter",
			query: "response_type=code&response_mode=query&scope=openid+profile+email&state=s%26t%3Dx&nonce=n-0S6" + pkce +
				"&prompt=login+consent&max_age=300&login_hint=a%40b.example&ui_locales=fr-CA+en",
			want: &AuthorizeRequest{
				Scopes: []string{"openid", "profile", "email"}, State: "s&t=x", Nonce: "n-0S6",
				CodeChallenge: rfc7636Challenge, CodeChallengeMethod: PKCES256,
				Prompt: []string{PromptLogin, PromptConsent}, MaxAge: intPtr(300),
				LoginHint: "a@b.example", UILocales: "fr-CA en",
			},
		},
		{
			name:  "RFC 6749 §3.1 unknown parameters ignored, even repeated",
			query: ok + "&foo=1&foo=2&utm_source=x&" + "x=" + strings.Repeat("b", 10000),
			want:  &AuthorizeRequest{Scopes: []string{"openid"}, State: "xyz"},
		},
		{
			name:   "RFC 7636 §4.3 public client with S256",
			client: publicClient(),
			query:  ok + pkce,
			want:   &AuthorizeRequest{Scopes: []string{"openid"}, State: "xyz", CodeChallenge: rfc7636Challenge, CodeChallengeMethod: PKCES256},
		},
		{
			name:  "RFC 6749 §3.3 duplicate and extra spaces in scope",
			query: "response_type=code&scope=+openid++profile+openid+",
			want:  &AuthorizeRequest{Scopes: []string{"openid", "profile"}},
		},
		{
			name:   "client scope restriction allows its scopes",
			client: restrictedClient(),
			query:  "response_type=code&scope=profile+openid",
			want:   &AuthorizeRequest{Scopes: []string{"profile", "openid"}},
		},
		{
			name:   "client may ask for an API scope it registered",
			client: restrictedClient(),
			query:  "response_type=code&scope=openid+custom",
			want:   &AuthorizeRequest{Scopes: []string{"openid", "custom"}},
		},
		{
			name:  "OIDC Core §3.1.2.1 prompt=none alone",
			query: ok + "&prompt=none",
			want:  &AuthorizeRequest{Scopes: []string{"openid"}, State: "xyz", Prompt: []string{PromptNone}},
		},
		{
			name:  "prompt unknown value ignored",
			query: ok + "&prompt=select_account",
			want:  &AuthorizeRequest{Scopes: []string{"openid"}, State: "xyz"},
		},
		{
			name:  "prompt unknown value ignored beside known one",
			query: ok + "&prompt=future+login",
			want:  &AuthorizeRequest{Scopes: []string{"openid"}, State: "xyz", Prompt: []string{PromptLogin}},
		},
		{
			name:  "prompt repeated value kept once",
			query: ok + "&prompt=login+login",
			want:  &AuthorizeRequest{Scopes: []string{"openid"}, State: "xyz", Prompt: []string{PromptLogin}},
		},
		{
			name:  "prompt=none repeated is still none alone",
			query: ok + "&prompt=none+none",
			want:  &AuthorizeRequest{Scopes: []string{"openid"}, State: "xyz", Prompt: []string{PromptNone}},
		},
		{
			name:  "OIDC Core §3.1.2.1 max_age=0",
			query: ok + "&max_age=0",
			want:  &AuthorizeRequest{Scopes: []string{"openid"}, State: "xyz", MaxAge: intPtr(0)},
		},
		{
			name:  "max_age at 2^31-1 is kept",
			query: ok + "&max_age=2147483647",
			want:  &AuthorizeRequest{Scopes: []string{"openid"}, State: "xyz", MaxAge: intPtr(maxAge)},
		},
		// Longer than ~68 years means "no limit"; the cap keeps
		// max_age*time.Second from overflowing.
		{
			name:  "max_age above 2^31-1 is capped",
			query: ok + "&max_age=2147483648",
			want:  &AuthorizeRequest{Scopes: []string{"openid"}, State: "xyz", MaxAge: intPtr(maxAge)},
		},
		{
			name:  "max_age at the int64 limit is capped",
			query: ok + "&max_age=9223372036854775807",
			want:  &AuthorizeRequest{Scopes: []string{"openid"}, State: "xyz", MaxAge: intPtr(maxAge)},
		},
		{
			name:  "max_age beyond int64 is capped",
			query: ok + "&max_age=99999999999999999999",
			want:  &AuthorizeRequest{Scopes: []string{"openid"}, State: "xyz", MaxAge: intPtr(maxAge)},
		},
		{
			name:  "max_age with leading zeros",
			query: ok + "&max_age=0300",
			want:  &AuthorizeRequest{Scopes: []string{"openid"}, State: "xyz", MaxAge: intPtr(300)},
		},
		{
			name:  "empty max_age is absent",
			query: ok + "&max_age=",
			want:  &AuthorizeRequest{Scopes: []string{"openid"}, State: "xyz"},
		},
		{
			name:  "state of exactly 4096 bytes",
			query: "response_type=code&scope=openid&state=" + long,
			want:  &AuthorizeRequest{Scopes: []string{"openid"}, State: long},
		},

		// RFC 6749 §3.1: parameters MUST NOT be included more than once.
		{name: "RFC 6749 §3.1 duplicate response_type", query: ok + "&response_type=code", wantCode: "invalid_request"},
		{name: "RFC 6749 §3.1 duplicate scope", query: ok + "&scope=openid", wantCode: "invalid_request"},
		{name: "RFC 6749 §3.1 duplicate state", query: ok + "&state=xyz", wantCode: "invalid_request"},
		{name: "RFC 6749 §3.1 duplicate empty state", query: "response_type=code&scope=openid&state=&state=", wantCode: "invalid_request"},
		{name: "RFC 6749 §3.1 duplicate client_id", query: ok + "&client_id=web&client_id=web", wantCode: "invalid_request"},
		{name: "RFC 6749 §3.1 duplicate redirect_uri", query: ok + "&redirect_uri=a&redirect_uri=b", wantCode: "invalid_request"},
		{name: "RFC 6749 §3.1 duplicate code_challenge", query: ok + pkce + "&code_challenge=" + rfc7636Challenge, wantCode: "invalid_request"},
		{name: "RFC 6749 §3.1 duplicate nonce", query: ok + "&nonce=a&nonce=b", wantCode: "invalid_request"},
		{name: "RFC 6749 §3.1 duplicate prompt", query: ok + "&prompt=login&prompt=none", wantCode: "invalid_request"},
		{name: "RFC 6749 §3.1 duplicate max_age", query: ok + "&max_age=1&max_age=2", wantCode: "invalid_request"},

		// RFC 6749 §4.1.2.1: missing required parameter is invalid_request;
		// an unknown response type is unsupported_response_type.
		{name: "RFC 6749 §4.1.2.1 response_type missing", query: "scope=openid", wantCode: "invalid_request"},
		{name: "RFC 6749 §4.1.2.1 response_type empty", query: "response_type=&scope=openid", wantCode: "invalid_request"},
		{name: "RFC 6749 §4.1.2.1 response_type token (implicit)", query: "response_type=token&scope=openid", wantCode: "unsupported_response_type"},
		{name: "response_type id_token", query: "response_type=id_token&scope=openid", wantCode: "unsupported_response_type"},
		{name: "response_type code id_token (hybrid)", query: "response_type=code+id_token&scope=openid", wantCode: "unsupported_response_type"},
		{name: "response_type upper case", query: "response_type=CODE&scope=openid", wantCode: "unsupported_response_type"},
		{name: "response_type with trailing space", query: "response_type=code+&scope=openid", wantCode: "unsupported_response_type"},
		{name: "RFC 6749 §4.1.2.1 client not registered for code", client: noCodeClient(), query: ok, wantCode: "unauthorized_client"},

		{name: "OAuth 2.0 Multiple Response Types response_mode=fragment", query: ok + "&response_mode=fragment", wantCode: "invalid_request"},
		{name: "OAuth 2.0 Form Post response_mode=form_post", query: ok + "&response_mode=form_post", wantCode: "invalid_request"},
		{name: "OIDC Core §6 request object", query: ok + "&request=eyJhbGciOiJub25lIn0.e30.", wantCode: "request_not_supported"},
		{name: "OIDC Core §6 empty request object", query: ok + "&request=", wantCode: "request_not_supported"},
		{name: "OIDC Core §6 request_uri", query: ok + "&request_uri=https%3A%2F%2Fclient.example%2Freq", wantCode: "request_uri_not_supported"},
		{name: "RFC 9101 request and request_uri", query: ok + "&request=x&request_uri=y", wantCode: "request_not_supported"},

		// RFC 6749 §3.3: invalid_scope.
		{name: "RFC 6749 §3.3 scope missing", query: "response_type=code", wantCode: "invalid_scope"},
		{name: "RFC 6749 §3.3 scope empty", query: "response_type=code&scope=", wantCode: "invalid_scope"},
		{name: "RFC 6749 §3.3 scope only spaces", query: "response_type=code&scope=+++", wantCode: "invalid_scope"},
		{name: "RFC 6749 §3.3 unknown scope", query: "response_type=code&scope=openid+admin", wantCode: "invalid_scope"},
		{name: "RFC 6749 §3.3 scope case matters", query: "response_type=code&scope=OpenID", wantCode: "invalid_scope"},
		{name: "RFC 6749 §3.3 scope not allowed for the client", client: restrictedClient(), query: "response_type=code&scope=openid+email", wantCode: "invalid_scope"},
		{name: "RFC 6749 §3.3 default scope the client did not register", client: restrictedClient(), query: "response_type=code&scope=openid+offline_access", wantCode: "invalid_scope"},
		{name: "RFC 6749 §3.3 another client's API scope", query: "response_type=code&scope=openid+custom", wantCode: "invalid_scope"},
		{name: "RFC 6749 §3.3 scope-token with double quote", query: "response_type=code&scope=openid+%22x%22", wantCode: "invalid_scope"},
		{name: "RFC 6749 §3.3 scope-token with backslash", query: "response_type=code&scope=open%5Cid", wantCode: "invalid_scope"},
		{name: "RFC 6749 §3.3 scope delimited by tab", query: "response_type=code&scope=openid%09profile", wantCode: "invalid_scope"},
		{name: "RFC 6749 §3.3 scope with NUL", query: "response_type=code&scope=openid%00", wantCode: "invalid_scope"},
		{name: "RFC 6749 §3.3 scope non-ASCII", query: "response_type=code&scope=%C3%A9", wantCode: "invalid_scope"},

		// RFC 7636 and RFC 9700 §2.1.1: PKCE with S256, required for public
		// clients.
		{name: "RFC 9700 §2.1.1 public client without code_challenge", client: publicClient(), query: ok, wantCode: "invalid_request"},
		{name: "RFC 9700 §2.1.1 code_challenge_method=plain", query: ok + "&code_challenge=" + strings.Repeat("a", 43) + "&code_challenge_method=plain", wantCode: "invalid_request"},
		{name: "RFC 7636 §4.3 code_challenge without method defaults to plain", query: ok + "&code_challenge=" + rfc7636Challenge, wantCode: "invalid_request"},
		{name: "public client challenge without method", client: publicClient(), query: ok + "&code_challenge=" + rfc7636Challenge, wantCode: "invalid_request"},
		{name: "code_challenge_method without code_challenge", query: ok + "&code_challenge_method=S256", wantCode: "invalid_request"},
		{name: "code_challenge_method with empty code_challenge", query: ok + "&code_challenge=&code_challenge_method=S256", wantCode: "invalid_request"},
		{name: "RFC 7636 §4.3 method is case-sensitive", query: ok + "&code_challenge=" + rfc7636Challenge + "&code_challenge_method=s256", wantCode: "invalid_request"},
		{name: "RFC 7636 §4.2 challenge too short", query: ok + "&code_challenge=" + rfc7636Challenge[:42] + "&code_challenge_method=S256", wantCode: "invalid_request"},
		{name: "RFC 7636 §4.2 challenge padded", query: ok + "&code_challenge=" + rfc7636Challenge + "%3D&code_challenge_method=S256", wantCode: "invalid_request"},
		{name: "RFC 7636 §4.2 challenge in standard base64", query: ok + "&code_challenge=" + strings.ReplaceAll(rfc7636Challenge, "-", "%2B") + "&code_challenge_method=S256", wantCode: "invalid_request"},
		{name: "RFC 7636 §4.2 verifier sent as challenge", query: ok + "&code_challenge=" + strings.Repeat("a", 64) + "&code_challenge_method=S256", wantCode: "invalid_request"},
		{name: "RFC 7636 §4.2 non-canonical challenge", query: ok + "&code_challenge=" + rfc7636Challenge[:42] + "N&code_challenge_method=S256", wantCode: "invalid_request"},

		// OIDC Core §3.1.2.1 prompt and max_age.
		{name: "OIDC Core §3.1.2.1 prompt none with login", query: ok + "&prompt=none+login", wantCode: "invalid_request"},
		{name: "OIDC Core §3.1.2.1 prompt login with none", query: ok + "&prompt=login+none", wantCode: "invalid_request"},
		{name: "OIDC Core §3.1.2.1 prompt none with consent", query: ok + "&prompt=none+consent", wantCode: "invalid_request"},
		{name: "OIDC Core §3.1.2.1 prompt none with select_account", query: ok + "&prompt=none+select_account", wantCode: "invalid_request"},
		{name: "OIDC Core §3.1.2.1 prompt unknown value with none", query: ok + "&prompt=future+none", wantCode: "invalid_request"},
		{name: "OIDC Core §3.1.2.1 prompt none twice with login", query: ok + "&prompt=none+none+login", wantCode: "invalid_request"},
		{name: "OIDC Core §3.1.2.1 max_age negative", query: ok + "&max_age=-1", wantCode: "invalid_request"},
		{name: "OIDC Core §3.1.2.1 max_age non-numeric", query: ok + "&max_age=ten", wantCode: "invalid_request"},
		{name: "max_age fractional", query: ok + "&max_age=1.5", wantCode: "invalid_request"},
		{name: "max_age with spaces", query: ok + "&max_age=+5+", wantCode: "invalid_request"},
		// OIDC Core §3.1.2.1: a non-negative integer, digits only.
		{name: "max_age with plus sign", query: ok + "&max_age=%2B5", wantCode: "invalid_request"},
		{name: "max_age minus zero", query: ok + "&max_age=-0", wantCode: "invalid_request"},
		{name: "max_age hexadecimal", query: ok + "&max_age=0x10", wantCode: "invalid_request"},
		{name: "max_age with underscore", query: ok + "&max_age=1_000", wantCode: "invalid_request"},
		{name: "max_age non-ASCII digit", query: ok + "&max_age=%D9%A3", wantCode: "invalid_request"},

		// Oversized parameters are refused before they reach storage.
		{name: "state of 4097 bytes", query: ok[:len(ok)-len("&state=xyz")] + "&state=" + long + "a", wantCode: "invalid_request"},
		{name: "nonce of 4097 bytes", query: ok + "&nonce=" + long + "a", wantCode: "invalid_request"},
		{name: "login_hint of 4097 bytes", query: ok + "&login_hint=" + long + "a", wantCode: "invalid_request"},
		{name: "ui_locales of 4097 bytes", query: ok + "&ui_locales=" + long + "a", wantCode: "invalid_request"},
		{name: "id_token_hint of 4097 bytes", query: ok + "&id_token_hint=" + long + "a", wantCode: "invalid_request"},
		{name: "scope of 4097 bytes", query: "response_type=code&scope=openid+" + strings.Repeat("+", maxParamLen-6), wantCode: "invalid_request"},
		{name: "code_challenge of 4097 bytes", query: ok + "&code_challenge_method=S256&code_challenge=" + long + "a", wantCode: "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.client
			if c.ID == "" {
				c = confidentialClient()
			}
			redirect := c.Metadata.RedirectURIs[0]
			v, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatalf("bad test query: %v", err)
			}
			got, e := ParseAuthorizeRequest(v, c, redirect, testSupportedScopes)
			if tt.wantCode != "" {
				// Authorization errors are redirected (RFC 6749 §4.1.2.1);
				// the status matters where they are shown instead: all are
				// the client's fault, so 400.
				wantError(t, e, tt.wantCode, http.StatusBadRequest)
				if got != nil {
					t.Errorf("request = %+v returned with an error", got)
				}
				return
			}
			if e != nil {
				t.Fatalf("error = %v, want nil", e)
			}
			want := *tt.want
			want.ClientID, want.RedirectURI = c.ID, redirect
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("request =\n%+v\nwant\n%+v", *got, want)
			}
		})
	}
}

// TestErrorDescriptionCharset checks RFC 6749 §4.1.2.1 and §5.2:
// error_description MUST NOT include characters outside %x20-21 /
// %x23-5B / %x5D-7E (no double quote, no backslash, ASCII only).
func TestErrorDescriptionCharset(t *testing.T) {
	longScope := strings.Repeat("s", 65)
	tests := []struct {
		name    string
		query   string
		notEcho string // a request value the description must not repeat
	}{
		{"duplicate parameter", "response_type=code&response_type=code&scope=openid", ""},
		{"missing response_type", "scope=openid", ""},
		{"unsupported response_type", "response_type=token&scope=openid", ""},
		{"unsupported response_type is not echoed", "response_type=zz-marker&scope=openid", "zz-marker"},
		{"unsupported response_type with quote, backslash and non-ASCII", "response_type=%22%5C%C3%A9&scope=openid", ""},
		{"unsupported response_mode", "response_type=code&scope=openid&response_mode=fragment", "fragment"},
		{"unsupported response_mode with quote", "response_type=code&scope=openid&response_mode=%22zz%22", "zz"},
		{"scope not allowed", "response_type=code&scope=admin", ""},
		// A short scope-token is named (its characters are safe by RFC
		// 6749 §3.3); a long one is not repeated back.
		{"long scope not allowed is not echoed", "response_type=code&scope=" + longScope, longScope},
		{"bad scope characters", "response_type=code&scope=%22", ""},
		{"plain PKCE", "response_type=code&scope=openid&code_challenge=" + strings.Repeat("a", 43) + "&code_challenge_method=plain", ""},
		{"prompt none with login", "response_type=code&scope=openid&prompt=none+login", ""},
		{"prompt none with unknown value", "response_type=code&scope=openid&prompt=none+zz-marker", "zz-marker"},
		{"bad max_age", "response_type=code&scope=openid&max_age=x", ""},
		{"bad max_age is not echoed", "response_type=code&scope=openid&max_age=zz-marker", "zz-marker"},
		{"request object", "response_type=code&scope=openid&request=x", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			_, e := ParseAuthorizeRequest(v, confidentialClient(), webRedirect, testSupportedScopes)
			if e == nil {
				t.Fatal("request accepted, want an error")
			}
			checkDescriptionCharset(t, e)
			if tt.notEcho != "" && strings.Contains(e.Description, tt.notEcho) {
				t.Errorf("description %q repeats the request value %q", e.Description, tt.notEcho)
			}
		})
	}
	// RFC 6749 §5.2 at the token endpoint.
	st := newStore(t)
	createClients(t, st, confidentialClient())
	s := newTestServer(t, Config{}, Deps{Store: st})
	tokenTests := []struct {
		name      string
		grantType string
	}{
		{"grant_type missing", ""},
		{"unsupported grant_type", "password"},
		{"unsupported grant_type with quote and non-ASCII", "\"zz-marker\u00e9"},
	}
	for _, tt := range tokenTests {
		t.Run("token "+tt.name, func(t *testing.T) {
			_, e := s.Token(t.Context(), TokenRequest{Credentials: webCreds, GrantType: tt.grantType})
			if e == nil {
				t.Fatal("request accepted, want an error")
			}
			checkDescriptionCharset(t, e)
			if strings.Contains(e.Description, "zz-marker") {
				t.Errorf("description %q repeats the grant_type", e.Description)
			}
		})
	}
}

func checkDescriptionCharset(t *testing.T, e *Error) {
	t.Helper()
	if i := strings.IndexFunc(e.Description, func(r rune) bool {
		return r < 0x20 || r > 0x7e || r == '"' || r == '\\'
	}); i >= 0 {
		t.Errorf("error_description %q has a forbidden character at byte %d", e.Description, i)
	}
}

func TestAuthorizeRequestHasPrompt(t *testing.T) {
	r := &AuthorizeRequest{Prompt: []string{PromptLogin, PromptConsent}}
	tests := []struct {
		p    string
		want bool
	}{
		{PromptLogin, true}, {PromptConsent, true}, {PromptNone, false}, {"", false}, {"Login", false},
	}
	for _, tt := range tests {
		t.Run("prompt "+tt.p, func(t *testing.T) {
			if got := r.HasPrompt(tt.p); got != tt.want {
				t.Errorf("HasPrompt(%q) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestResolveClient(t *testing.T) {
	clients := newStore(t)
	createClients(t, clients, confidentialClient(), publicClient())
	tests := []struct {
		name         string
		clients      ClientGetter
		query        string
		wantClient   string
		wantRedirect string
		wantCode     string
		wantStatus   int
	}{
		{"RFC 6749 §4.1.1 registered redirect_uri", clients, "client_id=web&redirect_uri=https%3A%2F%2Fclient.example%2Fcb", "web", webRedirect, "", 0},
		{"second registered redirect_uri with query", clients, "client_id=web&redirect_uri=https%3A%2F%2Fclient.example%2Fother%3Ftenant%3Da", "web", "https://client.example/other?tenant=a", "", 0},
		{"RFC 8252 §7.3 native loopback with port", clients, "client_id=app&redirect_uri=http%3A%2F%2F127.0.0.1%3A49152%2Fcb", "app", "http://127.0.0.1:49152/cb", "", 0},

		{"RFC 6749 §4.1.2.1 client_id missing", clients, "redirect_uri=https%3A%2F%2Fclient.example%2Fcb", "", "", "invalid_request", 400},
		{"RFC 6749 §4.1.2.1 client_id empty", clients, "client_id=&redirect_uri=https%3A%2F%2Fclient.example%2Fcb", "", "", "invalid_request", 400},
		{"RFC 6749 §3.1 client_id repeated", clients, "client_id=web&client_id=app&redirect_uri=https%3A%2F%2Fclient.example%2Fcb", "", "", "invalid_request", 400},
		{"RFC 6749 §3.1 redirect_uri repeated", clients, "client_id=web&redirect_uri=https%3A%2F%2Fclient.example%2Fcb&redirect_uri=https%3A%2F%2Fevil.example%2F", "", "", "invalid_request", 400},
		{"RFC 6749 §4.1.2.1 unknown client", clients, "client_id=nobody&redirect_uri=https%3A%2F%2Fclient.example%2Fcb", "", "", "invalid_client", 401},
		{"OIDC Core §3.1.2.1 redirect_uri missing", clients, "client_id=web", "", "", "invalid_request", 400},
		{"RFC 6749 §4.1.2.1 redirect_uri not registered", clients, "client_id=web&redirect_uri=https%3A%2F%2Fevil.example%2Fcb", "", "", "invalid_request", 400},
		{"RFC 9700 §4.1.3 redirect_uri with extra path", clients, "client_id=web&redirect_uri=https%3A%2F%2Fclient.example%2Fcb%2F..%2Fx", "", "", "invalid_request", 400},
		{"another client's redirect_uri", clients, "client_id=web&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb", "", "", "invalid_request", 400},
		{"RFC 8252 §7.3 web client gets no port exception", clients, "client_id=web&redirect_uri=https%3A%2F%2Fclient.example%3A443%2Fcb", "", "", "invalid_request", 400},
		{"oversized client_id", clients, "client_id=" + strings.Repeat("w", maxParamLen+1) + "&redirect_uri=https%3A%2F%2Fclient.example%2Fcb", "", "", "invalid_request", 400},
		{"store down", closedStore(t), "client_id=web&redirect_uri=https%3A%2F%2Fclient.example%2Fcb", "", "", "temporarily_unavailable", 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			c, redirect, e := ResolveClient(t.Context(), tt.clients, v)
			if tt.wantCode != "" {
				wantError(t, e, tt.wantCode, tt.wantStatus)
				if c.ID != "" || redirect != "" {
					t.Errorf("got client %q, redirect %q with an error", c.ID, redirect)
				}
				if tt.wantCode == "temporarily_unavailable" {
					wantUnavailable(t, e)
				}
				return
			}
			if e != nil {
				t.Fatalf("error = %v", e)
			}
			if c.ID != tt.wantClient || redirect != tt.wantRedirect {
				t.Errorf("got (%q, %q), want (%q, %q)", c.ID, redirect, tt.wantClient, tt.wantRedirect)
			}
		})
	}
}

func TestCodeRedirectURL(t *testing.T) {
	const iss = "https://idp.example"
	tests := []struct {
		name, redirect, code, state, issuer string
		wantPrefix                          string
		wantQuery                           url.Values
	}{
		{
			name: "RFC 6749 §4.1.2 code and state, RFC 9207 iss", redirect: "https://client.example/cb",
			code: "c0de", state: "st", issuer: iss,
			wantPrefix: "https://client.example/cb?",
			wantQuery:  url.Values{"code": {"c0de"}, "state": {"st"}, "iss": {iss}},
		},
		{
			name: "RFC 6749 §4.1.2 state omitted when empty", redirect: "https://client.example/cb",
			code: "c0de", issuer: iss,
			wantPrefix: "https://client.example/cb?",
			wantQuery:  url.Values{"code": {"c0de"}, "iss": {iss}},
		},
		{
			name: "RFC 6749 §3.1.2 registered query kept byte-for-byte", redirect: "https://client.example/cb?tenant=a%2Fb&empty=&x=%7e",
			code: "c0de", state: "st", issuer: iss,
			wantPrefix: "https://client.example/cb?tenant=a%2Fb&empty=&x=%7e&",
			wantQuery:  url.Values{"tenant": {"a/b"}, "empty": {""}, "x": {"~"}, "code": {"c0de"}, "state": {"st"}, "iss": {iss}},
		},
		{
			name: "values are URL-encoded", redirect: "http://127.0.0.1:8080/cb",
			code: "a+b/c=", state: "x&code=evil#frag y%", issuer: "https://idp.example/tenant?a=1",
			wantPrefix: "http://127.0.0.1:8080/cb?",
			wantQuery:  url.Values{"code": {"a+b/c="}, "state": {"x&code=evil#frag y%"}, "iss": {"https://idp.example/tenant?a=1"}},
		},
		{
			name: "private-use scheme", redirect: "com.example.app:/cb",
			code: "c0de", state: "st", issuer: iss,
			wantPrefix: "com.example.app:/cb?",
			wantQuery:  url.Values{"code": {"c0de"}, "state": {"st"}, "iss": {iss}},
		},
		{
			name: "RFC 6749 §3.1.2 registered URI ending in ? gets no second separator", redirect: "https://client.example/cb?",
			code: "c0de", state: "st", issuer: iss,
			wantPrefix: "https://client.example/cb?",
			wantQuery:  url.Values{"code": {"c0de"}, "state": {"st"}, "iss": {iss}},
		},
		{
			name: "RFC 6749 §3.1.2 registered query ending in & gets no second separator", redirect: "https://client.example/cb?tenant=a&",
			code: "c0de", state: "st", issuer: iss,
			wantPrefix: "https://client.example/cb?tenant=a&",
			wantQuery:  url.Values{"tenant": {"a"}, "code": {"c0de"}, "state": {"st"}, "iss": {iss}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CodeRedirectURL(tt.redirect, tt.code, tt.state, tt.issuer)
			checkRedirect(t, got, tt.wantPrefix, tt.wantQuery)
		})
	}
}

func TestErrorRedirectURL(t *testing.T) {
	const iss = "https://idp.example"
	tests := []struct {
		name, redirect, state string
		err                   *Error
		wantPrefix            string
		wantQuery             url.Values
	}{
		{
			name: "RFC 6749 §4.1.2.1 error, description, state, RFC 9207 iss", redirect: "https://client.example/cb",
			err: InvalidScope("scope is missing"), state: "st",
			wantPrefix: "https://client.example/cb?",
			wantQuery:  url.Values{"error": {"invalid_scope"}, "error_description": {"scope is missing"}, "state": {"st"}, "iss": {iss}},
		},
		{
			name: "RFC 6749 §4.1.2.1 state omitted when empty", redirect: "https://client.example/cb",
			err:        AccessDenied("the person declined"),
			wantPrefix: "https://client.example/cb?",
			wantQuery:  url.Values{"error": {"access_denied"}, "error_description": {"the person declined"}, "iss": {iss}},
		},
		{
			name: "empty description omitted", redirect: "https://client.example/cb",
			err: &Error{Code: "login_required", Status: 400}, state: "st",
			wantPrefix: "https://client.example/cb?",
			wantQuery:  url.Values{"error": {"login_required"}, "state": {"st"}, "iss": {iss}},
		},
		{
			name: "RFC 6749 §3.1.2 registered query kept, values encoded", redirect: "https://client.example/cb?a=%2F",
			err: LoginRequired("sign in & retry"), state: "s t&u",
			wantPrefix: "https://client.example/cb?a=%2F&",
			wantQuery:  url.Values{"a": {"/"}, "error": {"login_required"}, "error_description": {"sign in & retry"}, "state": {"s t&u"}, "iss": {iss}},
		},
		{
			name: "RFC 6749 §3.1.2 registered URI ending in ? gets no second separator", redirect: "https://client.example/cb?",
			err: AccessDenied("the person declined"), state: "st",
			wantPrefix: "https://client.example/cb?",
			wantQuery:  url.Values{"error": {"access_denied"}, "error_description": {"the person declined"}, "state": {"st"}, "iss": {iss}},
		},
		{
			name: "RFC 6749 §4.1.2.1 description restricted to its character set", redirect: "https://client.example/cb",
			err: InvalidRequest("bad \"value\"\\ é\n"), state: "st",
			wantPrefix: "https://client.example/cb?",
			wantQuery:  url.Values{"error": {"invalid_request"}, "error_description": {"bad ?value?? ???"}, "state": {"st"}, "iss": {iss}},
		},
		{
			name: "server_error cause not sent", redirect: "https://client.example/cb",
			err:        ServerError(errors.New("pq: password authentication failed for user admin")),
			wantPrefix: "https://client.example/cb?",
			wantQuery:  url.Values{"error": {"server_error"}, "error_description": {"internal error"}, "iss": {iss}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ErrorRedirectURL(tt.redirect, tt.err, tt.state, iss)
			checkRedirect(t, got, tt.wantPrefix, tt.wantQuery)
		})
	}
}

// checkRedirect checks that got starts with prefix (so a registered query
// is kept as is) and carries exactly want as its query, with no fragment.
func checkRedirect(t *testing.T, got, prefix string, want url.Values) {
	t.Helper()
	if !strings.HasPrefix(got, prefix) {
		t.Fatalf("redirect %q does not start with %q", got, prefix)
	}
	if strings.Count(got, "?") != 1+strings.Count(prefix[strings.Index(prefix, "?")+1:], "?") {
		t.Errorf("redirect %q has a second '?'", got)
	}
	u, err := url.Parse(got)
	if err != nil {
		t.Fatalf("redirect %q does not parse: %v", got, err)
	}
	if rest := got[len(prefix):]; strings.HasPrefix(rest, "&") || strings.HasPrefix(rest, "?") {
		t.Errorf("redirect %q has an empty query parameter after the registered URI", got)
	}
	if u.Fragment != "" || strings.Contains(got, "#") {
		t.Errorf("redirect %q has a fragment", got)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		t.Fatalf("redirect query %q: %v", u.RawQuery, err)
	}
	if !reflect.DeepEqual(q, want) {
		t.Errorf("redirect %q query = %v, want %v", got, q, want)
	}
}

func FuzzParseAuthorizeRequest(f *testing.F) {
	f.Add("response_type=code&scope=openid&state=xyz", false)
	f.Add("response_type=code&scope=openid+profile&code_challenge="+rfc7636Challenge+"&code_challenge_method=S256&prompt=login&max_age=0&nonce=n", true)
	f.Add("response_type=code&scope=openid&prompt=none+login", false)
	f.Add("response_type=code&scope=openid&state=a&state=b", false)
	f.Add("response_type=code&scope=%22&max_age=-1", false)
	f.Add("response_type=code&scope=openid&request_uri=x", true)
	f.Add("response_type=token&scope=openid;x=1&%zz", false)
	f.Add("response_type=code&scope=openid&prompt=none+select_account&max_age=%2B5", false)
	f.Add("response_type=code&scope=openid&max_age=99999999999999999999&prompt=none+none", false)
	f.Add("response_type=%22%5C%C3%A9&scope=openid", false)
	f.Fuzz(func(t *testing.T, raw string, public bool) {
		v, _ := url.ParseQuery(raw) // keep what parsed, as a lenient handler would
		c := confidentialClient()
		if public {
			c = publicClient()
		}
		redirect := c.Metadata.RedirectURIs[0]
		req, e := ParseAuthorizeRequest(v, c, redirect, testSupportedScopes)
		if e != nil {
			if req != nil {
				t.Fatalf("both a request and error %v", e)
			}
			if e.Code == "" || e.Status < 400 || e.Status > 499 || e.Cause != nil {
				t.Fatalf("malformed error %+v", e)
			}
			// RFC 6749 §4.1.2.1: descriptions are already within the
			// allowed characters; nothing of the request gets in that
			// WireDescription would have to change.
			if WireDescription(e.Description) != e.Description || e.Description == "" {
				t.Fatalf("description %q is not wire-safe", e.Description)
			}
			return
		}
		if req == nil {
			t.Fatal("nil request and nil error")
		}
		for name, val := range map[string]string{
			"state": req.State, "nonce": req.Nonce, "code_challenge": req.CodeChallenge,
			"code_challenge_method": req.CodeChallengeMethod, "login_hint": req.LoginHint,
			"ui_locales": req.UILocales, "client_id": req.ClientID, "redirect_uri": req.RedirectURI,
		} {
			if len(val) > maxParamLen {
				t.Fatalf("%s is %d bytes, limit %d", name, len(val), maxParamLen)
			}
		}
		if req.ClientID != c.ID || req.RedirectURI != redirect {
			t.Fatalf("client %q redirect %q, want %q %q", req.ClientID, req.RedirectURI, c.ID, redirect)
		}
		if len(JoinScope(req.Scopes)) > maxParamLen || len(req.Scopes) == 0 {
			t.Fatalf("scopes %q", req.Scopes)
		}
		seen := map[string]bool{}
		for _, s := range req.Scopes {
			if !HasScope(testSupportedScopes, s) || seen[s] {
				t.Fatalf("scopes %q: %q unsupported or repeated", req.Scopes, s)
			}
			seen[s] = true
		}
		if len(req.Prompt) > 3 || (req.HasPrompt(PromptNone) && len(req.Prompt) != 1) {
			t.Fatalf("prompt %q", req.Prompt)
		}
		for _, p := range req.Prompt {
			if p != PromptNone && p != PromptLogin && p != PromptConsent {
				t.Fatalf("prompt %q has unknown value %q", req.Prompt, p)
			}
		}
		if req.MaxAge != nil && (*req.MaxAge < 0 || *req.MaxAge > 1<<31-1) {
			t.Fatalf("max_age %d", *req.MaxAge)
		}
		// OIDC Core §3.1.2.1: max_age is digits only.
		if ma := v.Get("max_age"); ma != "" && (req.MaxAge == nil || strings.Trim(ma, "0123456789") != "") {
			t.Fatalf("max_age %q accepted as %v", ma, req.MaxAge)
		}
		// OIDC Core §3.1.2.1: none with any other value, known or not,
		// is an error.
		if fields := strings.Fields(v.Get("prompt")); slices.Contains(fields, PromptNone) {
			for _, p := range fields {
				if p != PromptNone {
					t.Fatalf("prompt %q accepted", v.Get("prompt"))
				}
			}
		}
		if public && req.CodeChallenge == "" {
			t.Fatal("public client without PKCE accepted")
		}
		if req.CodeChallenge != "" && (req.CodeChallengeMethod != PKCES256 || !validS256Challenge(req.CodeChallenge)) {
			t.Fatalf("challenge %q method %q accepted", req.CodeChallenge, req.CodeChallengeMethod)
		}
		if req.CodeChallenge == "" && req.CodeChallengeMethod != "" {
			t.Fatalf("method %q without challenge accepted", req.CodeChallengeMethod)
		}
		// RFC 6749 §3.1: a successful request had each parameter at most once.
		for _, n := range authorizeParams {
			if len(v[n]) > 1 {
				t.Fatalf("parameter %s repeated %d times but accepted", n, len(v[n]))
			}
		}
		if v.Get("state") != req.State || v.Get("nonce") != req.Nonce {
			t.Fatalf("state/nonce changed: %q/%q vs %q/%q", req.State, req.Nonce, v.Get("state"), v.Get("nonce"))
		}
	})
}
