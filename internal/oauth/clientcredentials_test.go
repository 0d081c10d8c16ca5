package oauth

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/secrets"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// TestClientCredentials: RFC 6749 §4.4 machine tokens, with RFC 8707
// resource indicators.
func TestClientCredentials(t *testing.T) {
	tests := []struct {
		name      string
		cfg       Config
		client    string // default machine
		scope     string
		resources []string
		wantCode  string
		wantDesc  string // in the error description, for the developer
		wantScope []string
		wantAud   []string // default: the issuer
	}{
		// RFC 6749 §3.3: without a scope parameter, the client's registered
		// scopes, less those that need a person.
		{name: "RFC 6749 §3.3 default scopes", wantScope: []string{"api:read", "api:write"}},
		{name: "one registered scope", scope: "api:read", wantScope: []string{"api:read"}},
		{name: "a scope of only spaces means the default", scope: "   ", wantScope: []string{"api:read", "api:write"}},
		{name: "registered scopes, repeated", scope: "api:write api:read api:write", wantScope: []string{"api:write", "api:read"}},
		{name: "client with only API scopes", client: "machine-2", wantScope: []string{"billing:read"}},
		{name: "opaque machine token", client: "machine-opaque", scope: "api:write", wantScope: []string{"api:write"}},
		{name: "configured default audience", cfg: Config{AccessTokenAudience: "https://userinfo.example"},
			wantScope: []string{"api:read", "api:write"}, wantAud: []string{"https://userinfo.example"}},
		{name: "client without scopes of its own", client: "rs"},

		{name: "RFC 6749 §4.4 public client", client: "pubmachine", wantCode: "unauthorized_client"},
		{name: "RFC 6749 §5.2 client not registered for client_credentials", client: "web", wantCode: "unauthorized_client"},
		// Registered or not, a user scope is refused, and the developer is
		// told why.
		{name: "openid needs a person", scope: "openid", wantCode: "invalid_scope", wantDesc: "openid needs a signed-in person"},
		{name: "profile needs a person", scope: "api:read profile", wantCode: "invalid_scope", wantDesc: "profile needs a signed-in person"},
		{name: "email needs a person", scope: "email", wantCode: "invalid_scope", wantDesc: "email needs a signed-in person"},
		{name: "offline_access needs a person", scope: "offline_access api:read", wantCode: "invalid_scope", wantDesc: "offline_access needs a signed-in person"},
		{name: "user scope of a client that did not register it", client: "machine-2", scope: "openid", wantCode: "invalid_scope", wantDesc: "signed-in person"},
		{name: "RFC 6749 §3.3 unregistered scope", scope: "api:admin", wantCode: "invalid_scope"},
		{name: "another client's scope", scope: "billing:read", wantCode: "invalid_scope"},
		{name: "RFC 6749 §3.3 invalid scope-token", scope: `api"read`, wantCode: "invalid_scope"},

		{name: "RFC 8707 §2 one resource", resources: []string{"https://api.example/"},
			wantScope: []string{"api:read", "api:write"}, wantAud: []string{"https://api.example/"}},
		{name: "RFC 8707 §2 several resources", resources: []string{"https://other.example/v1", "https://api.example/"},
			wantScope: []string{"api:read", "api:write"}, wantAud: []string{"https://other.example/v1", "https://api.example/"}},
		{name: "the same resource twice", resources: []string{"https://api.example/", "https://api.example/"},
			wantScope: []string{"api:read", "api:write"}, wantAud: []string{"https://api.example/"}},
		{name: "opaque token for a resource", client: "machine-opaque", resources: []string{"https://api.example/"},
			wantScope: []string{"api:read", "api:write"}, wantAud: []string{"https://api.example/"}},
		// Both are registered by the client, and still refused.
		{name: "RFC 8707 §2 relative resource", resources: []string{"relative/api"}, wantCode: "invalid_target"},
		{name: "RFC 8707 §2 resource with a fragment", resources: []string{"https://frag.example/#part"}, wantCode: "invalid_target"},
		{name: "RFC 8707 §2 resource not allowed for the client", resources: []string{"https://evil.example/"}, wantCode: "invalid_target"},
		{name: "one of several resources not allowed", resources: []string{"https://api.example/", "https://evil.example/"}, wantCode: "invalid_target"},
		{name: "resource differing by a trailing slash", resources: []string{"https://api.example"}, wantCode: "invalid_target"},
		{name: "client with no allowed resources", client: "machine-2", resources: []string{"https://api.example/"}, wantCode: "invalid_target"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newLifeFixture(t)
			s := f.server(t, tt.cfg)
			client := tt.client
			if client == "" {
				client = "machine"
			}
			before := f.snapshot(t)

			resp, e := s.Token(t.Context(), TokenRequest{Credentials: f.creds(t, client), GrantType: GrantClientCredentials, Scope: tt.scope, Resources: tt.resources})

			if tt.wantCode != "" {
				wantError(t, e, tt.wantCode, 400)
				if !strings.Contains(e.Description, tt.wantDesc) {
					t.Errorf("description %q, want it to say %q", e.Description, tt.wantDesc)
				}
				if resp != nil {
					t.Errorf("response %+v with an error", resp)
				}
				f.wantChanged(t, before)
				return
			}
			if e != nil {
				t.Fatalf("error = %v", e)
			}
			// RFC 6749 §4.4.3: no refresh token.
			if resp.RefreshToken != "" || resp.IDToken != "" || resp.TokenType != "Bearer" || resp.ExpiresIn != 600 || resp.Scope != JoinScope(tt.wantScope) {
				t.Errorf("response = %+v, want scope %q", resp, JoinScope(tt.wantScope))
			}
			wantAud := tt.wantAud
			if wantAud == nil {
				wantAud = []string{testIssuer}
			}
			info, err := s.Inspect(t.Context(), resp.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			opaque := client == "machine-opaque"
			wantInfo := TokenInfo{
				Active: true, Kind: KindAccessJWT, ClientID: client, Subject: client,
				Scopes: tt.wantScope, Audience: wantAud, IssuedAt: testNow, ExpiresAt: testNow.Add(10 * time.Minute),
			}
			if opaque {
				wantInfo.Kind = KindAccessOpaque
			} else {
				wantInfo.JTI = jtiOf(t, s, resp.AccessToken)
				if c, _ := s.verifyAccessJWT(resp.AccessToken, testNow); c.GrantID() != "" {
					t.Errorf("machine token jti %q names a grant", c.ID)
				}
			}
			checkInfo(t, info, wantInfo)
			if !opaque {
				// A JWT machine token is written nowhere.
				f.wantChanged(t, before)
				return
			}
			// An opaque token exists only as its row.
			f.wantChanged(t, before, accessKey(resp.AccessToken))
			at, err := f.db.GetAccessToken(t.Context(), secrets.Hash(resp.AccessToken))
			want := storage.AccessToken{
				TokenHash: secrets.Hash(resp.AccessToken), ClientID: client, Subject: client, Scopes: tt.wantScope,
				Audience: wantAud, CreatedAt: testNow, ExpiresAt: testNow.Add(10 * time.Minute),
			}
			if err != nil || !jsonEqual(at, want) {
				t.Errorf("stored access token\n got %+v, %v\nwant %+v", at, err, want)
			}
		})
	}
}

// TestClientCredentialsWithoutDatabase: a JWT machine token needs no
// database at all (DESIGN.md, "Scale"): with the client found through its
// own handle (the cache, in production) and the store down, it is still
// issued. An opaque one cannot be.
func TestClientCredentialsWithoutDatabase(t *testing.T) {
	tests := []struct {
		client   string
		wantCode string
	}{
		{"machine", ""},
		{"machine-opaque", "temporarily_unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.client, func(t *testing.T) {
			t.Parallel()
			f := newLifeFixture(t)
			s := f.server(t, Config{})
			before := f.snapshot(t)
			if err := f.store.Close(); err != nil {
				t.Fatal(err)
			}
			resp, e := s.Token(t.Context(), TokenRequest{Credentials: f.creds(t, tt.client), GrantType: GrantClientCredentials, Scope: "api:read"})
			if tt.wantCode != "" {
				wantUnavailable(t, e)
				f.wantChanged(t, before)
				return
			}
			if e != nil {
				t.Fatalf("with the store down: %v", e)
			}
			c, ok := s.verifyAccessJWT(resp.AccessToken, testNow)
			if !ok || c.Subject != tt.client || c.ClientID != tt.client || c.Scope != "api:read" || !slices.Equal(c.Audience, []string{testIssuer}) {
				t.Errorf("claims %+v, verified %v", c, ok)
			}
			f.wantChanged(t, before)
		})
	}
}

// checkInfo compares TokenInfo field by field, times by Equal.
func checkInfo(t *testing.T, got, want TokenInfo) {
	t.Helper()
	same := got.Active == want.Active && got.Kind == want.Kind && got.ClientID == want.ClientID &&
		got.Subject == want.Subject && got.UserID == want.UserID && got.GrantID == want.GrantID && got.JTI == want.JTI &&
		slices.Equal(got.Scopes, want.Scopes) && slices.Equal(got.Audience, want.Audience) &&
		got.IssuedAt.Equal(want.IssuedAt) && got.ExpiresAt.Equal(want.ExpiresAt)
	if !same {
		t.Errorf("token info\n got %+v\nwant %+v", got, want)
	}
}
