package oauth

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/gatehouse-idp/gatehouse/internal/secrets"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// basic builds an Authorization header the way RFC 6749 §2.3.1 says and
// golang.org/x/oauth2 does: form-urlencode id and secret, then base64.
func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// rawBasic base64-encodes s as is.
func rawBasic(s string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(s))
}

// wantError fails unless e has the given code and status.
func wantError(t *testing.T, e *Error, code string, status int) {
	t.Helper()
	if e == nil {
		t.Fatalf("error = nil, want %s (%d)", code, status)
	}
	if e.Code != code || e.Status != status {
		t.Fatalf("error = %s (%d) %q, want %s (%d)", e.Code, e.Status, e.Description, code, status)
	}
	if e.Description == "" {
		t.Errorf("%s has no description", e.Code)
	}
}

func TestParseBasic(t *testing.T) {
	tests := []struct {
		name       string
		header     string
		wantID     string
		wantSecret string
		wantOK     bool
	}{
		{"plain", rawBasic("client:secret"), "client", "secret", true},
		{"RFC 6749 §2.3.1 form-urlencoded colon in secret", rawBasic("client:a%3Ab"), "client", "a:b", true},
		{"RFC 6749 §2.3.1 lower-case percent-encoding", rawBasic("client:a%3ab"), "client", "a:b", true},
		{"RFC 6749 §2.3.1 plus is a space", rawBasic("client:a+b"), "client", "a b", true},
		{"RFC 6749 §2.3.1 encoded plus", rawBasic("client:a%2Bb"), "client", "a+b", true},
		{"RFC 6749 §2.3.1 encoded id", rawBasic("my%20client%3A1:s"), "my client:1", "s", true},
		{"RFC 6749 §2.3.1 encoded percent", rawBasic("client:100%25"), "client", "100%", true},
		{"RFC 6749 §2.3.1 UTF-8", rawBasic("client:%C3%A9t%C3%A9"), "client", "été", true},
		{"x/oauth2 encoding of awkward values", basic("id:with/odd&chars=", "s3cr+t: %x/"), "id:with/odd&chars=", "s3cr+t: %x/", true},
		{"raw colon in secret splits at the first colon", rawBasic("client:a:b"), "client", "a:b", true},
		{"empty secret", rawBasic("client:"), "client", "", true},
		{"RFC 7235 §2.1 scheme is case-insensitive: lower", "basic " + base64.StdEncoding.EncodeToString([]byte("client:s")), "client", "s", true},
		{"RFC 7235 §2.1 scheme is case-insensitive: upper", "BASIC " + base64.StdEncoding.EncodeToString([]byte("client:s")), "client", "s", true},
		{"extra spaces before credentials", "Basic   " + base64.StdEncoding.EncodeToString([]byte("client:s")), "client", "s", true},

		{"missing colon", rawBasic("clientsecret"), "", "", false},
		{"empty id", rawBasic(":secret"), "", "", false},
		{"id encodes to empty", rawBasic(":"), "", "", false},
		{"malformed base64", "Basic ***", "", "", false},
		{"base64 missing padding", "Basic " + strings.TrimRight(base64.StdEncoding.EncodeToString([]byte("client:s")), "="), "", "", false},
		{"base64url alphabet", "Basic " + base64.URLEncoding.EncodeToString([]byte("client:\xfb\xff")), "", "", false},
		{"bad percent-encoding in id", rawBasic("cl%zzient:s"), "", "", false},
		{"bad percent-encoding in secret", rawBasic("client:s%"), "", "", false},
		{"no credentials", "Basic ", "", "", false},
		{"scheme only", "Basic", "", "", false},
		{"no space after scheme", "Basic" + base64.StdEncoding.EncodeToString([]byte("client:s")), "", "", false},
		{"bearer scheme", "Bearer " + base64.StdEncoding.EncodeToString([]byte("client:s")), "", "", false},
		{"digest scheme", "Digest username=client", "", "", false},
		{"empty header", "", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, secret, ok := parseBasic(tt.header)
			if ok != tt.wantOK || id != tt.wantID || secret != tt.wantSecret {
				t.Errorf("parseBasic(%q) = (%q, %q, %v), want (%q, %q, %v)",
					tt.header, id, secret, ok, tt.wantID, tt.wantSecret, tt.wantOK)
			}
		})
	}
}

// TestParseBasicXOAuth2 checks interoperability with a real client: what
// golang.org/x/oauth2 sends with AuthStyleInHeader decodes to the client's
// own id and secret.
func TestParseBasicXOAuth2(t *testing.T) {
	tests := []struct {
		name, id, secret string
	}{
		{"plain", "client", "secret"},
		{"RFC 6749 §2.3.1 reserved characters", "my:client id", "p+a:s%s/w&o=r d"},
		{"RFC 6749 §2.3.1 non-ASCII", "clïent", "sécret€"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got ClientCredentials
			var perr *Error
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				req, e := ParseTokenRequest(w, r)
				got, perr = req.Credentials, e
				WriteJSON(w, http.StatusOK, TokenResponse{AccessToken: "at", TokenType: "Bearer", ExpiresIn: 60})
			}))
			defer srv.Close()
			cfg := oauth2.Config{
				ClientID:     tt.id,
				ClientSecret: tt.secret,
				Endpoint:     oauth2.Endpoint{TokenURL: srv.URL, AuthStyle: oauth2.AuthStyleInHeader},
			}
			if _, err := cfg.Exchange(t.Context(), "some-code"); err != nil {
				t.Fatalf("exchange: %v", err)
			}
			if perr != nil {
				t.Fatalf("ParseTokenRequest: %v", perr)
			}
			want := ClientCredentials{ID: tt.id, Secret: tt.secret, Method: AuthSecretBasic}
			if got != want {
				t.Errorf("credentials = %+v, want %+v", got, want)
			}
		})
	}
}

func TestParseClientCredentials(t *testing.T) {
	tests := []struct {
		name     string
		header   string
		form     url.Values
		want     ClientCredentials
		wantCode string // "" for success
	}{
		{
			name:   "RFC 6749 §2.3.1 client_secret_basic",
			header: basic("client", "secret"),
			form:   url.Values{"grant_type": {"authorization_code"}},
			want:   ClientCredentials{ID: "client", Secret: "secret", Method: AuthSecretBasic},
		},
		{
			name:   "RFC 6749 §2.3.1 basic secret with %3A and +",
			header: rawBasic("client:a%3Ab+c"),
			form:   url.Values{},
			want:   ClientCredentials{ID: "client", Secret: "a:b c", Method: AuthSecretBasic},
		},
		{
			name:   "lower-case basic scheme",
			header: "basic " + base64.StdEncoding.EncodeToString([]byte("client:secret")),
			form:   url.Values{},
			want:   ClientCredentials{ID: "client", Secret: "secret", Method: AuthSecretBasic},
		},
		{
			name:   "basic with matching body client_id",
			header: basic("client", "secret"),
			form:   url.Values{"client_id": {"client"}},
			want:   ClientCredentials{ID: "client", Secret: "secret", Method: AuthSecretBasic},
		},
		{
			name:   "basic with empty body client_id",
			header: basic("client", "secret"),
			form:   url.Values{"client_id": {""}},
			want:   ClientCredentials{ID: "client", Secret: "secret", Method: AuthSecretBasic},
		},
		{
			name: "RFC 6749 §2.3.1 client_secret_post body only",
			form: url.Values{"client_id": {"client"}, "client_secret": {"secret"}},
			want: ClientCredentials{ID: "client", Secret: "secret", Method: AuthSecretPost},
		},
		{
			name: "client_secret_post with empty secret",
			form: url.Values{"client_id": {"client"}, "client_secret": {""}},
			want: ClientCredentials{ID: "client", Secret: "", Method: AuthSecretPost},
		},
		{
			name: "RFC 6749 §2.3 public client: none",
			form: url.Values{"client_id": {"client"}},
			want: ClientCredentials{ID: "client", Method: AuthNone},
		},

		{
			name:     "RFC 6749 §2.3 header and body secret: more than one method",
			header:   basic("client", "secret"),
			form:     url.Values{"client_id": {"client"}, "client_secret": {"secret"}},
			wantCode: "invalid_request",
		},
		{
			name:     "RFC 6749 §2.3 header and empty body secret",
			header:   basic("client", "secret"),
			form:     url.Values{"client_secret": {""}},
			wantCode: "invalid_request",
		},
		{
			name:     "header client_id differs from body client_id",
			header:   basic("client", "secret"),
			form:     url.Values{"client_id": {"other"}},
			wantCode: "invalid_request",
		},
		{
			name:     "header client_id differs from body client_id by case",
			header:   basic("client", "secret"),
			form:     url.Values{"client_id": {"Client"}},
			wantCode: "invalid_request",
		},
		{
			name:     "RFC 6749 §5.2 malformed base64 is invalid_client",
			header:   "Basic %%%",
			form:     url.Values{"client_id": {"client"}},
			wantCode: "invalid_client",
		},
		{
			name:     "basic without colon",
			header:   rawBasic("client"),
			form:     url.Values{},
			wantCode: "invalid_client",
		},
		{
			name:     "basic with empty id",
			header:   rawBasic(":secret"),
			form:     url.Values{"client_id": {"client"}},
			wantCode: "invalid_client",
		},
		{
			name:     "bearer header",
			header:   "Bearer abc",
			form:     url.Values{"client_id": {"client"}},
			wantCode: "invalid_client",
		},
		{
			name:     "RFC 6749 §5.2 no authentication at all",
			form:     url.Values{"grant_type": {"authorization_code"}},
			wantCode: "invalid_client",
		},
		{
			name:     "secret without client_id",
			form:     url.Values{"client_secret": {"secret"}},
			wantCode: "invalid_client",
		},
		{
			name:     "empty client_id",
			form:     url.Values{"client_id": {""}, "client_secret": {"secret"}},
			wantCode: "invalid_client",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, e := ParseClientCredentials(tt.header, tt.form)
			if tt.wantCode != "" {
				status := http.StatusBadRequest
				if tt.wantCode == "invalid_client" {
					status = http.StatusUnauthorized // RFC 6749 §5.2
				}
				wantError(t, e, tt.wantCode, status)
				if got != (ClientCredentials{}) {
					t.Errorf("credentials = %+v on error, want zero", got)
				}
				return
			}
			if e != nil {
				t.Fatalf("error = %v, want nil", e)
			}
			if got != tt.want {
				t.Errorf("credentials = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestClientCredentialsRedacted(t *testing.T) {
	const secret = "hunter2-very-secret"
	c := ClientCredentials{ID: "client", Secret: secret, Method: AuthSecretPost}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("auth", slog.Any("creds", c),
		slog.Any("req", TokenRequest{Credentials: c, Code: "the-code", CodeVerifier: "the-verifier", GrantType: "authorization_code"}))
	outputs := map[string]string{
		"String": c.String(),
		"%v":     fmt.Sprintf("%v", c),
		"%s":     fmt.Sprintf("%s", c),
		"slog":   buf.String(),
	}
	for name, out := range outputs {
		t.Run(name, func(t *testing.T) {
			for _, s := range []string{secret, "the-code", "the-verifier"} {
				if strings.Contains(out, s) {
					t.Errorf("output %q contains %q", out, s)
				}
			}
			if !strings.Contains(out, "client") {
				t.Errorf("output %q does not name the client", out)
			}
		})
	}
}

func TestAuthenticateClient(t *testing.T) {
	clients := newStore(t)
	createClients(t, clients,
		storage.Client{ID: "basic", SecretHash: secrets.Hash("s1"), Metadata: storage.ClientMetadata{TokenEndpointAuthMethod: AuthSecretBasic}},
		storage.Client{ID: "default", SecretHash: secrets.Hash("s2")},
		storage.Client{ID: "post", SecretHash: secrets.Hash("s3"), Metadata: storage.ClientMetadata{TokenEndpointAuthMethod: AuthSecretPost}},
		storage.Client{ID: "public", Metadata: storage.ClientMetadata{TokenEndpointAuthMethod: AuthNone}},
		// Registration never produces this; a hand-edited row could.
		storage.Client{ID: "broken", SecretHash: secrets.Hash("s4"), Metadata: storage.ClientMetadata{TokenEndpointAuthMethod: AuthNone}},
	)
	tests := []struct {
		name     string
		clients  ClientGetter
		creds    ClientCredentials
		wantCode string
	}{
		{"client_secret_basic", clients, ClientCredentials{ID: "basic", Secret: "s1", Method: AuthSecretBasic}, ""},
		{"unset method defaults to client_secret_basic (RFC 7591 §2)", clients, ClientCredentials{ID: "default", Secret: "s2", Method: AuthSecretBasic}, ""},
		{"client_secret_post", clients, ClientCredentials{ID: "post", Secret: "s3", Method: AuthSecretPost}, ""},
		{"none for public client", clients, ClientCredentials{ID: "public", Method: AuthNone}, ""},

		{"wrong secret", clients, ClientCredentials{ID: "basic", Secret: "s2", Method: AuthSecretBasic}, "invalid_client"},
		{"empty secret", clients, ClientCredentials{ID: "basic", Secret: "", Method: AuthSecretBasic}, "invalid_client"},
		{"unknown client", clients, ClientCredentials{ID: "nobody", Secret: "s1", Method: AuthSecretBasic}, "invalid_client"},
		{"registered basic, used post", clients, ClientCredentials{ID: "basic", Secret: "s1", Method: AuthSecretPost}, "invalid_client"},
		{"unset method, used post", clients, ClientCredentials{ID: "default", Secret: "s2", Method: AuthSecretPost}, "invalid_client"},
		{"registered post, used basic", clients, ClientCredentials{ID: "post", Secret: "s3", Method: AuthSecretBasic}, "invalid_client"},
		{"confidential client sends no secret", clients, ClientCredentials{ID: "basic", Method: AuthNone}, "invalid_client"},
		{"public client sends a secret", clients, ClientCredentials{ID: "public", Secret: "x", Method: AuthSecretPost}, "invalid_client"},
		{"public method with a stored secret fails closed", clients, ClientCredentials{ID: "broken", Method: AuthNone}, "invalid_client"},
		{"store down", closedStore(t), ClientCredentials{ID: "basic", Secret: "s1", Method: AuthSecretBasic}, "temporarily_unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, e := AuthenticateClient(t.Context(), tt.clients, tt.creds)
			switch tt.wantCode {
			case "":
				if e != nil {
					t.Fatalf("error = %v, want nil", e)
				}
				if c.ID != tt.creds.ID {
					t.Errorf("client = %q, want %q", c.ID, tt.creds.ID)
				}
			case "invalid_client":
				wantError(t, e, "invalid_client", http.StatusUnauthorized)
				if c.ID != "" {
					t.Errorf("client %q returned with an error", c.ID)
				}
			case "temporarily_unavailable":
				wantUnavailable(t, e)
				if c.ID != "" {
					t.Errorf("client %q returned with an error", c.ID)
				}
			}
		})
	}
}

func TestIsPublic(t *testing.T) {
	tests := []struct {
		method string
		want   bool
	}{
		{AuthNone, true}, {AuthSecretBasic, false}, {AuthSecretPost, false}, {"", false},
	}
	for _, tt := range tests {
		t.Run("method "+tt.method, func(t *testing.T) {
			c := storage.Client{Metadata: storage.ClientMetadata{TokenEndpointAuthMethod: tt.method}}
			if got := IsPublic(c); got != tt.want {
				t.Errorf("IsPublic(%q) = %v, want %v", tt.method, got, tt.want)
			}
		})
	}
}

func FuzzParseBasic(f *testing.F) {
	f.Add(rawBasic("client:secret"), "client", "secret")
	f.Add(rawBasic("client:a%3Ab+c"), "my:client", "p+a:s%s/w&o=r d")
	f.Add("basic "+base64.StdEncoding.EncodeToString([]byte("c:s")), "clïent", "sécret€")
	f.Add("Basic ***", "", "")
	f.Add(rawBasic(":"), "\x00", "\xff")
	f.Add("Basic", "a", "")
	f.Fuzz(func(t *testing.T, header, id, secret string) {
		// Whatever the header, no panic; a success has a non-empty id.
		if gotID, _, ok := parseBasic(header); ok && gotID == "" {
			t.Fatalf("parseBasic(%q) succeeded with an empty id", header)
		}
		// RFC 6749 §2.3.1 as golang.org/x/oauth2 implements it
		// (internal/token.go: SetBasicAuth(url.QueryEscape(id),
		// url.QueryEscape(secret))) round-trips exactly.
		h := basic(id, secret)
		gotID, gotSecret, ok := parseBasic(h)
		if id == "" {
			if ok {
				t.Fatalf("parseBasic(%q) accepted an empty id", h)
			}
			return
		}
		if !ok || gotID != id || gotSecret != secret {
			t.Fatalf("parseBasic(basic(%q, %q)) = (%q, %q, %v)", id, secret, gotID, gotSecret, ok)
		}
	})
}
