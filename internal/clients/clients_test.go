package clients_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/clients"
	"github.com/gatehouse-idp/gatehouse/internal/secrets"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var epoch = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

type fixture struct {
	store storage.Store
	dump  func(testing.TB) []byte // everything the database holds about clients
	svc   *clients.Service
	logs  *bytes.Buffer
}

func newFixture(t *testing.T, open opener) fixture {
	t.Helper()
	f := fixture{logs: new(bytes.Buffer)}
	f.store, f.dump = open(t)
	f.svc = clients.New(f.store, clients.Options{
		Now:    func() time.Time { return epoch },
		Rand:   rand.NewChaCha8([32]byte{42}),
		Logger: slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	return f
}

func parse(t *testing.T, doc string) storage.ClientMetadata {
	t.Helper()
	md, err := clients.ParseMetadata(strings.NewReader(doc))
	if err != nil {
		t.Fatalf("ParseMetadata(%s): %v", doc, err)
	}
	return md
}

func TestRegisterRejects(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		const (
			irr = clients.CodeInvalidRedirectURI
			icm = clients.CodeInvalidClientMetadata
		)
		tests := []struct {
			name     string
			doc      string
			code     string
			wantDesc []string // substrings: the field and the value
		}{
			// redirect_uris (RFC 6749 §3.1.2, RFC 8252)
			{"no redirect_uris", `{}`, irr, []string{"redirect_uris is required"}},
			{"empty redirect_uris", `{"redirect_uris": []}`, irr, []string{"redirect_uris is required"}},
			{"empty redirect URI", `{"redirect_uris": [""]}`, irr, []string{"redirect_uris[0]", "empty"}},
			{"fragment", `{"redirect_uris": ["https://a.example/cb#x"]}`, irr, []string{"redirect_uris[0]", "https://a.example/cb#x", "fragment"}},
			{"javascript", `{"redirect_uris": ["javascript:alert(1)"]}`, irr, []string{"redirect_uris[0]", "javascript:alert(1)"}},
			{"data", `{"redirect_uris": ["data:text/html,x"]}`, irr, []string{"redirect_uris[0]", "data:text/html,x"}},
			{"http non-loopback", `{"redirect_uris": ["http://example.com/cb"]}`, irr, []string{"redirect_uris[0]", "http://example.com/cb", "loopback"}},
			{"http localhost subdomain", `{"redirect_uris": ["http://localhost.evil.test/cb"]}`, irr, []string{"http://localhost.evil.test/cb", "loopback"}},
			{"userinfo", `{"redirect_uris": ["https://user@evil.example/cb"]}`, irr, []string{"https://user@evil.example/cb", "user information"}},
			{"custom scheme for a web client", `{"redirect_uris": ["com.example.app:/cb"]}`, irr, []string{"com.example.app:/cb", "native"}},
			{"custom scheme without period", `{"application_type": "native", "redirect_uris": ["myapp:/cb"]}`, irr, []string{"myapp:/cb", "period"}},
			{"second URI bad", `{"redirect_uris": ["https://a.example/cb", "http://example.com/cb"]}`, irr, []string{"redirect_uris[1]", "http://example.com/cb"}},
			{"too many redirect URIs", `{"redirect_uris": [` + strings.Repeat(`"https://a.example/cb",`, 100) + `"https://a.example/cb"]}`, irr, []string{"redirect_uris", "101"}},
			{"post-logout fragment", `{"redirect_uris": ["https://a.example/cb"], "post_logout_redirect_uris": ["https://a.example/bye#x"]}`, icm, []string{"post_logout_redirect_uris[0]", "https://a.example/bye#x"}},
			{"post-logout javascript", `{"redirect_uris": ["https://a.example/cb"], "post_logout_redirect_uris": ["javascript:alert(1)"]}`, icm, []string{"post_logout_redirect_uris[0]", "javascript:alert(1)"}},
			{"post-logout http", `{"redirect_uris": ["https://a.example/cb"], "post_logout_redirect_uris": ["http://example.com/"]}`, icm, []string{"post_logout_redirect_uris[0]", "http://example.com/"}},

			// grant_types and response_types (RFC 7591 §2, §2.1)
			{"unknown grant type", `{"grant_types": ["password"], "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"grant_types[0]", `"password"`}},
			{"implicit grant", `{"grant_types": ["implicit"], "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"grant_types[0]", `"implicit"`}},
			{"empty grant type", `{"grant_types": [""], "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"grant_types[0]"}},
			{"refresh_token alone", `{"grant_types": ["refresh_token"], "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"refresh_token", "authorization_code"}},
			{"refresh_token with client_credentials", `{"grant_types": ["client_credentials", "refresh_token"]}`, icm, []string{"refresh_token", "requires"}},
			{"response type token", `{"response_types": ["token"], "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"response_types[0]", `"token"`}},
			{"response type id_token", `{"response_types": ["code", "id_token"], "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"response_types[1]", `"id_token"`}},
			{"response type code without authorization_code", `{"grant_types": ["client_credentials"], "response_types": ["code"]}`, icm, []string{"inconsistent", "client_credentials"}},

			// token_endpoint_auth_method
			{"unknown auth method", `{"token_endpoint_auth_method": "private_key_jwt", "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"token_endpoint_auth_method", "private_key_jwt"}},
			{"none with client_credentials", `{"token_endpoint_auth_method": "none", "grant_types": ["client_credentials"]}`, icm, []string{"client_credentials", "none"}},
			{"none with code and client_credentials", `{"token_endpoint_auth_method": "none", "grant_types": ["authorization_code", "client_credentials"], "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"client_credentials", "none"}},

			// application_type
			{"unknown application type", `{"application_type": "browser", "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"application_type", "browser"}},

			// scope (RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ))
			{"scope with tab", `{"scope": "openid\temail", "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"scope", "openid\\temail", "RFC 6749 §3.3"}},
			{"scope with newline", `{"scope": "openid\nemail", "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"scope", "openid\\nemail"}},
			{"scope with double quote", `{"scope": "api:\"read\"", "grant_types": ["client_credentials"]}`, icm, []string{"scope", `'"'`}},
			{"scope with backslash", `{"scope": "api\\read", "grant_types": ["client_credentials"]}`, icm, []string{"scope", `'\\'`}},
			{"scope with DEL", `{"scope": "api\u007fread", "grant_types": ["client_credentials"]}`, icm, []string{"scope", `'\x7f'`}},
			{"scope with NUL", `{"scope": "api\u0000read", "grant_types": ["client_credentials"]}`, icm, []string{"scope", `'\x00'`}},
			{"scope non-ASCII", `{"scope": "rechnungen:lesen ä", "grant_types": ["client_credentials"]}`, icm, []string{"scope", `"ä"`, `'ä'`}},
			{"scope token 129 bytes", `{"scope": "openid ` + strings.Repeat("s", 129) + `", "grant_types": ["client_credentials"]}`, icm, []string{"scope", "128 bytes"}},
			{"51 scope tokens", `{"scope": "` + scopeTokens(51) + `", "grant_types": ["client_credentials"]}`, icm, []string{"scope", "51", "at most 50"}},
			{"51 scope tokens, some repeated", `{"scope": "` + scopeTokens(50) + ` s0", "grant_types": ["client_credentials"]}`, icm, []string{"scope", "51", "at most 50"}},

			// access_token_format (Gatehouse)
			{"access_token_format unknown", `{"access_token_format": "reference", "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"access_token_format", `"reference"`, `"jwt"`, `"opaque"`}},
			{"id_token_signed_response_alg none", `{"id_token_signed_response_alg": "none", "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"id_token_signed_response_alg", `"none"`, `"RS256"`}},
			{"id_token_signed_response_alg HS256", `{"id_token_signed_response_alg": "HS256", "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"id_token_signed_response_alg", `"HS256"`, `"EdDSA"`}},
			{"access_token_format upper case", `{"access_token_format": "JWT", "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"access_token_format", `"JWT"`}},
			{"access_token_format space", `{"access_token_format": " jwt", "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"access_token_format", `" jwt"`}},

			// refresh token lifetimes (Gatehouse)
			{"idle lifetime negative", `{"refresh_token_idle_lifetime": -1, "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"refresh_token_idle_lifetime", "-1"}},
			{"absolute lifetime negative", `{"refresh_token_absolute_lifetime": -86400, "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"refresh_token_absolute_lifetime", "-86400"}},
			{"idle lifetime over 10 years", `{"refresh_token_idle_lifetime": 315360001, "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"refresh_token_idle_lifetime", "315360001", "10 years"}},
			{"absolute lifetime over 10 years", `{"refresh_token_absolute_lifetime": 9223372036854775807, "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"refresh_token_absolute_lifetime", "9223372036854775807", "10 years"}},
			{"idle longer than absolute", `{"refresh_token_idle_lifetime": 86401, "refresh_token_absolute_lifetime": 86400, "grant_types": ["authorization_code", "refresh_token"], "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"refresh_token_idle_lifetime (86401)", "refresh_token_absolute_lifetime (86400)"}},

			// concurrent-session policy (Gatehouse)
			{"max_sessions_per_user negative", `{"max_sessions_per_user": -1, "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"max_sessions_per_user", "-1"}},
			{"max_sessions_per_user too large", `{"max_sessions_per_user": 1001, "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"max_sessions_per_user", "1001", "1000"}},
			{"session_limit_action unknown", `{"session_limit_action": "kick", "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"session_limit_action", `"kick"`, `"evict_oldest"`, `"refuse"`}},
			{"session_limit_action upper case", `{"session_limit_action": "REFUSE", "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"session_limit_action", `"REFUSE"`}},

			// allowed_resources (RFC 8707 §2)
			{"resource empty", `{"allowed_resources": [""], "grant_types": ["client_credentials"]}`, icm, []string{"allowed_resources[0]", "empty"}},
			{"resource relative", `{"allowed_resources": ["/api"], "grant_types": ["client_credentials"]}`, icm, []string{"allowed_resources[0]", `"/api"`}},
			{"resource without scheme", `{"allowed_resources": ["api.example/v1"], "grant_types": ["client_credentials"]}`, icm, []string{"allowed_resources[0]", "api.example/v1"}},
			{"resource fragment", `{"allowed_resources": ["https://api.example/#v1"], "grant_types": ["client_credentials"]}`, icm, []string{"allowed_resources[0]", "https://api.example/#v1", "fragment"}},
			{"resource empty fragment", `{"allowed_resources": ["https://api.example/#"], "grant_types": ["client_credentials"]}`, icm, []string{"allowed_resources[0]", "fragment"}},
			{"resource plain http", `{"allowed_resources": ["http://api.example/"], "grant_types": ["client_credentials"]}`, icm, []string{"allowed_resources[0]", "http://api.example/", "loopback"}},
			{"resource http localhost subdomain", `{"allowed_resources": ["http://localhost.evil.test/"], "grant_types": ["client_credentials"]}`, icm, []string{"allowed_resources[0]", "loopback"}},
			{"resource urn", `{"allowed_resources": ["urn:example:api"], "grant_types": ["client_credentials"]}`, icm, []string{"allowed_resources[0]", "urn:example:api", "https"}},
			{"resource without host", `{"allowed_resources": ["https:///api"], "grant_types": ["client_credentials"]}`, icm, []string{"allowed_resources[0]", "host"}},
			{"resource userinfo", `{"allowed_resources": ["https://user@api.example/"], "grant_types": ["client_credentials"]}`, icm, []string{"allowed_resources[0]", "user information"}},
			{"resource upper-case scheme", `{"allowed_resources": ["HTTPS://api.example/"], "grant_types": ["client_credentials"]}`, icm, []string{"allowed_resources[0]", "lower case"}},
			{"resource with space", `{"allowed_resources": ["https://api.example/a b"], "grant_types": ["client_credentials"]}`, icm, []string{"allowed_resources[0]", "not allowed in a URI"}},
			{"resource too long", `{"allowed_resources": ["https://api.example/` + strings.Repeat("x", 2000) + `"], "grant_types": ["client_credentials"]}`, icm, []string{"allowed_resources[0]", "2000"}},
			{"second resource bad", `{"allowed_resources": ["https://api.example/", "ftp://api.example/"], "grant_types": ["client_credentials"]}`, icm, []string{"allowed_resources[1]", "ftp://api.example/"}},
			{"21 resources", `{"allowed_resources": [` + strings.Repeat(`"https://api.example/",`, 20) + `"https://api.example/"], "grant_types": ["client_credentials"]}`, icm, []string{"allowed_resources", "21", "at most 20"}},

			// backchannel_logout_uri (OIDC Back-Channel Logout 1.0 §2.2)
			{"backchannel relative", `{"backchannel_logout_uri": "/logout", "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"backchannel_logout_uri", `"/logout"`}},
			{"backchannel fragment", `{"backchannel_logout_uri": "https://a.example/bc#x", "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"backchannel_logout_uri", "fragment"}},
			{"backchannel empty fragment", `{"backchannel_logout_uri": "https://a.example/bc#", "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"backchannel_logout_uri", "fragment"}},
			{"backchannel plain http", `{"backchannel_logout_uri": "http://a.example/bc", "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"backchannel_logout_uri", "loopback"}},
			{"backchannel http localhost subdomain", `{"backchannel_logout_uri": "http://localhost.evil.test/bc", "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"backchannel_logout_uri", "loopback"}},
			{"backchannel javascript", `{"backchannel_logout_uri": "javascript:alert(1)", "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"backchannel_logout_uri", "https"}},
			{"backchannel userinfo", `{"backchannel_logout_uri": "https://user@a.example/bc", "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"backchannel_logout_uri", "user information"}},
			{"backchannel upper-case scheme", `{"backchannel_logout_uri": "HTTPS://a.example/bc", "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"backchannel_logout_uri", "lower case"}},
			{"backchannel without host", `{"backchannel_logout_uri": "https:///bc", "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"backchannel_logout_uri", "host"}},
			{"backchannel session required without URI", `{"backchannel_logout_session_required": true, "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"backchannel_logout_session_required", "backchannel_logout_uri"}},

			// client_name, informational URLs, contacts
			{"client_name too long", `{"client_name": "` + strings.Repeat("n", 201) + `", "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"client_name", "200"}},
			{"client_name with newline", `{"client_name": "a\nb", "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"client_name", "control"}},
			{"client_uri http", `{"client_uri": "http://app.example/", "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"client_uri", "http://app.example/"}},
			{"logo_uri javascript", `{"logo_uri": "javascript:alert(1)", "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"logo_uri", "javascript:alert(1)"}},
			{"logo_uri data", `{"logo_uri": "data:image/png;base64,AAAA", "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"logo_uri", "data:image/png"}},
			{"policy_uri relative", `{"policy_uri": "/privacy", "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"policy_uri", "/privacy"}},
			{"tos_uri userinfo", `{"tos_uri": "https://user@app.example/tos", "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"tos_uri", "https://user@app.example/tos"}},
			{"client_uri localhost subdomain", `{"client_uri": "http://localhost.evil.test/", "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"client_uri", "localhost.evil.test"}},
			{"11 contacts", `{"contacts": [` + strings.Repeat(`"a@b.example",`, 10) + `"a@b.example"], "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"contacts", "11"}},
			{"empty contact", `{"contacts": [" "], "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"contacts[0]", "empty"}},
			{"contact with newline", `{"contacts": ["a@b.example\nBcc: x@y"], "redirect_uris": ["https://a.example/cb"]}`, icm, []string{"contacts[0]", "control"}},
		}
		// One database for all cases: none of them may store anything.
		f := newFixture(t, open)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				reg, err := f.svc.Register(t.Context(), parse(t, tt.doc))
				var re *clients.RegistrationError
				if !errors.As(err, &re) {
					t.Fatalf("Register error = %v (%T), want *RegistrationError", err, err)
				}
				if re.Code != tt.code {
					t.Errorf("Code = %q, want %q (description %q)", re.Code, tt.code, re.Description)
				}
				for _, s := range tt.wantDesc {
					if !strings.Contains(re.Description, s) {
						t.Errorf("Description %q does not contain %q", re.Description, s)
					}
				}
				if reg.Client.ID != "" || reg.Secret != "" {
					t.Errorf("Register returned %v along with an error", reg)
				}
				if cs, err := f.svc.List(t.Context()); err != nil || len(cs) != 0 {
					t.Errorf("after a rejected registration List = %d clients, %v; want none stored", len(cs), err)
				}
			})
		}
	})
}

func TestRegisterAppliesDefaults(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		tests := []struct {
			name string
			doc  string
			want storage.ClientMetadata
		}{
			{"minimal web client", `{"redirect_uris": ["https://a.example/cb"]}`, storage.ClientMetadata{
				RedirectURIs:            []string{"https://a.example/cb"},
				GrantTypes:              []string{"authorization_code"},
				ResponseTypes:           []string{"code"},
				TokenEndpointAuthMethod: "client_secret_basic",
				Scope:                   "openid profile email offline_access",
				ApplicationType:         "web",
				AccessTokenFormat:       "jwt",
			}},
			{"public native client", `{
				"application_type": "native",
				"token_endpoint_auth_method": "none",
				"redirect_uris": ["com.example.app:/cb", "http://127.0.0.1/cb", "http://[::1]/cb"],
				"grant_types": ["authorization_code", "refresh_token"],
				"scope": "openid offline_access"
			}`, storage.ClientMetadata{
				RedirectURIs:            []string{"com.example.app:/cb", "http://127.0.0.1/cb", "http://[::1]/cb"},
				GrantTypes:              []string{"authorization_code", "refresh_token"},
				ResponseTypes:           []string{"code"},
				TokenEndpointAuthMethod: "none",
				Scope:                   "openid offline_access",
				ApplicationType:         "native",
				AccessTokenFormat:       "jwt",
			}},
			// RFC 8252 §8.5: a native app cannot keep a secret, so it is
			// public unless it asks otherwise.
			{"native client defaults to public", `{"application_type": "native", "redirect_uris": ["http://127.0.0.1/cb"]}`, storage.ClientMetadata{
				RedirectURIs:            []string{"http://127.0.0.1/cb"},
				GrantTypes:              []string{"authorization_code"},
				ResponseTypes:           []string{"code"},
				TokenEndpointAuthMethod: "none",
				Scope:                   "openid profile email offline_access",
				ApplicationType:         "native",
				AccessTokenFormat:       "jwt",
			}},
			{"back-channel logout, http on loopback for development", `{
				"redirect_uris": ["https://a.example/cb"],
				"backchannel_logout_uri": "http://127.0.0.1:8080/bc?tenant=1",
				"backchannel_logout_session_required": true
			}`, storage.ClientMetadata{
				RedirectURIs:                     []string{"https://a.example/cb"},
				GrantTypes:                       []string{"authorization_code"},
				ResponseTypes:                    []string{"code"},
				TokenEndpointAuthMethod:          "client_secret_basic",
				Scope:                            "openid profile email offline_access",
				ApplicationType:                  "web",
				AccessTokenFormat:                "jwt",
				BackchannelLogoutURI:             "http://127.0.0.1:8080/bc?tenant=1",
				BackchannelLogoutSessionRequired: true,
			}},
			// RFC 7591 §2.1: no authorization_code, so no default "code";
			// and no person, so no default scope.
			{"machine client", `{"grant_types": ["client_credentials"]}`, storage.ClientMetadata{
				GrantTypes:              []string{"client_credentials"},
				TokenEndpointAuthMethod: "client_secret_basic",
				ApplicationType:         "web",
				AccessTokenFormat:       "jwt",
			}},
			{"machine client, only spaces in scope", `{"grant_types": ["client_credentials"], "scope": "   "}`, storage.ClientMetadata{
				GrantTypes:              []string{"client_credentials"},
				TokenEndpointAuthMethod: "client_secret_basic",
				ApplicationType:         "web",
				AccessTokenFormat:       "jwt",
			}},
			{"machine client with API scopes, opaque tokens and resources", `{
				"grant_types": ["client_credentials"],
				"scope": "invoices:read invoices:write  invoices:read https://api.example/ledger.read",
				"access_token_format": "opaque",
				"allowed_resources": ["https://api.example/", "https://api.example/", "http://127.0.0.1:8080/api?v=1", "https://ledger.example/"]
			}`, storage.ClientMetadata{
				GrantTypes:              []string{"client_credentials"},
				TokenEndpointAuthMethod: "client_secret_basic",
				Scope:                   "invoices:read invoices:write https://api.example/ledger.read",
				ApplicationType:         "web",
				AccessTokenFormat:       "opaque",
				AllowedResources:        []string{"https://api.example/", "http://127.0.0.1:8080/api?v=1", "https://ledger.example/"},
			}},
			// Every character RFC 6749 §3.3 allows, in a token of the
			// longest length, and the most tokens.
			{"scope edge cases", `{"grant_types": ["client_credentials"], "scope": "` + scopeTokens(48) + ` ` + jsonScopeChars + ` ` + strings.Repeat("x", 128) + `"}`, storage.ClientMetadata{
				GrantTypes:              []string{"client_credentials"},
				TokenEndpointAuthMethod: "client_secret_basic",
				Scope:                   scopeTokens(48) + " " + scopeChars + " " + strings.Repeat("x", 128),
				ApplicationType:         "web",
				AccessTokenFormat:       "jwt",
			}},
			{"ES256 ID tokens", `{"redirect_uris": ["https://a.example/cb"], "id_token_signed_response_alg": "ES256"}`, storage.ClientMetadata{
				RedirectURIs:             []string{"https://a.example/cb"},
				GrantTypes:               []string{"authorization_code"},
				ResponseTypes:            []string{"code"},
				TokenEndpointAuthMethod:  "client_secret_basic",
				Scope:                    "openid profile email offline_access",
				ApplicationType:          "web",
				AccessTokenFormat:        "jwt",
				IDTokenSignedResponseAlg: "ES256",
			}},
			// Scope tokens are case-sensitive strings: OpenID is not
			// openid, but it is a well-formed custom scope.
			{"custom scopes with the code grant", `{"redirect_uris": ["https://a.example/cb"], "scope": "openid OpenID invoices:read"}`, storage.ClientMetadata{
				RedirectURIs:            []string{"https://a.example/cb"},
				GrantTypes:              []string{"authorization_code"},
				ResponseTypes:           []string{"code"},
				TokenEndpointAuthMethod: "client_secret_basic",
				Scope:                   "openid OpenID invoices:read",
				ApplicationType:         "web",
				AccessTokenFormat:       "jwt",
			}},
			{"refresh lifetimes equal, at the limit", `{
				"redirect_uris": ["https://a.example/cb"],
				"grant_types": ["authorization_code", "refresh_token"],
				"refresh_token_idle_lifetime": 315360000,
				"refresh_token_absolute_lifetime": 315360000
			}`, storage.ClientMetadata{
				RedirectURIs:                 []string{"https://a.example/cb"},
				GrantTypes:                   []string{"authorization_code", "refresh_token"},
				ResponseTypes:                []string{"code"},
				TokenEndpointAuthMethod:      "client_secret_basic",
				Scope:                        "openid profile email offline_access",
				ApplicationType:              "web",
				AccessTokenFormat:            "jwt",
				RefreshTokenIdleLifetime:     315360000,
				RefreshTokenAbsoluteLifetime: 315360000,
			}},
			// 0 is the server default, whatever the other one says; and the
			// lifetimes are allowed without the refresh_token grant.
			{"idle lifetime longer than a default absolute one", `{"redirect_uris": ["https://a.example/cb"], "refresh_token_idle_lifetime": 315360000, "refresh_token_absolute_lifetime": 0}`, storage.ClientMetadata{
				RedirectURIs:             []string{"https://a.example/cb"},
				GrantTypes:               []string{"authorization_code"},
				ResponseTypes:            []string{"code"},
				TokenEndpointAuthMethod:  "client_secret_basic",
				Scope:                    "openid profile email offline_access",
				ApplicationType:          "web",
				AccessTokenFormat:        "jwt",
				RefreshTokenIdleLifetime: 315360000,
			}},
			{"20 resources", `{"grant_types": ["client_credentials"], "allowed_resources": [` + resourceList(20) + `]}`, storage.ClientMetadata{
				GrantTypes:              []string{"client_credentials"},
				TokenEndpointAuthMethod: "client_secret_basic",
				ApplicationType:         "web",
				AccessTokenFormat:       "jwt",
				AllowedResources:        resources(20),
			}},
			{"duplicates removed, scope tidied", `{
				"redirect_uris": ["https://a.example/cb", "https://a.example/cb", "https://a.example/cb2"],
				"grant_types": ["authorization_code", "authorization_code"],
				"response_types": ["code", "code"],
				"scope": "  openid  email openid ",
				"contacts": ["ops@a.example", " ops@a.example "]
			}`, storage.ClientMetadata{
				RedirectURIs:            []string{"https://a.example/cb", "https://a.example/cb2"},
				GrantTypes:              []string{"authorization_code"},
				ResponseTypes:           []string{"code"},
				TokenEndpointAuthMethod: "client_secret_basic",
				Scope:                   "openid email",
				ApplicationType:         "web",
				AccessTokenFormat:       "jwt",
				Contacts:                []string{"ops@a.example"},
			}},
			{"everything given", `{
				"client_name": "Example App",
				"redirect_uris": ["https://app.example/cb"],
				"post_logout_redirect_uris": ["https://app.example/bye", "http://localhost:3000/bye"],
				"grant_types": ["authorization_code", "refresh_token", "client_credentials"],
				"response_types": ["code"],
				"token_endpoint_auth_method": "client_secret_post",
				"scope": "openid",
				"application_type": "web",
				"client_uri": "https://app.example/",
				"logo_uri": "https://app.example/logo.png",
				"policy_uri": "https://app.example/privacy",
				"tos_uri": "http://127.0.0.1:8080/tos",
				"contacts": ["ops@app.example", "+1 555 0100"],
				"skip_consent": true,
				"access_token_format": "opaque",
				"refresh_token_idle_lifetime": 86400,
				"refresh_token_absolute_lifetime": 2592000,
				"allowed_resources": ["https://api.app.example/"],
				"max_sessions_per_user": 0,
				"session_limit_action": "refuse"
			}`, storage.ClientMetadata{
				ClientName:                   "Example App",
				RedirectURIs:                 []string{"https://app.example/cb"},
				PostLogoutRedirectURIs:       []string{"https://app.example/bye", "http://localhost:3000/bye"},
				GrantTypes:                   []string{"authorization_code", "refresh_token", "client_credentials"},
				ResponseTypes:                []string{"code"},
				TokenEndpointAuthMethod:      "client_secret_post",
				Scope:                        "openid",
				ApplicationType:              "web",
				ClientURI:                    "https://app.example/",
				LogoURI:                      "https://app.example/logo.png",
				PolicyURI:                    "https://app.example/privacy",
				TosURI:                       "http://127.0.0.1:8080/tos",
				Contacts:                     []string{"ops@app.example", "+1 555 0100"},
				SkipConsent:                  true,
				AccessTokenFormat:            "opaque",
				RefreshTokenIdleLifetime:     86400,
				RefreshTokenAbsoluteLifetime: 2592000,
				AllowedResources:             []string{"https://api.app.example/"},
				MaxSessionsPerUser:           new(int), // explicitly unlimited, not the server's limit
				SessionLimitAction:           "refuse",
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				f := newFixture(t, open)
				reg, err := f.svc.Register(t.Context(), parse(t, tt.doc))
				if err != nil {
					t.Fatalf("Register: %v", err)
				}
				if !reflect.DeepEqual(reg.Client.Metadata, tt.want) {
					t.Errorf("metadata =\n%+v\nwant\n%+v", reg.Client.Metadata, tt.want)
				}
				got, err := f.svc.Get(t.Context(), reg.Client.ID)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got.Metadata, tt.want) {
					t.Errorf("stored metadata =\n%+v\nwant\n%+v", got.Metadata, tt.want)
				}
				if !got.CreatedAt.Equal(epoch.Truncate(time.Microsecond)) || !got.UpdatedAt.Equal(got.CreatedAt) {
					t.Errorf("stored times = %v, %v; want %v", got.CreatedAt, got.UpdatedAt, epoch)
				}
				// Validating what Validate returned changes nothing.
				again, err := clients.Validate(reg.Client.Metadata)
				if err != nil || !reflect.DeepEqual(again, reg.Client.Metadata) {
					t.Errorf("Validate is not idempotent: %+v, %v", again, err)
				}
			})
		}
	})
}

func TestRegisterSecret(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		f := newFixture(t, open)
		ctx := t.Context()
		reg, err := f.svc.Register(ctx, parse(t, `{"client_name": "Confidential", "redirect_uris": ["https://a.example/cb"]}`))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := base64.RawURLEncoding.DecodeString(reg.Secret)
		if err != nil {
			t.Fatalf("secret %q is not base64url: %v", reg.Secret, err)
		}
		if len(raw)*8 < 256 {
			t.Errorf("secret has %d bits, want at least 256", len(raw)*8)
		}
		if len(reg.Client.ID) != 32 {
			t.Errorf("client_id %q, want 32 hex digits", reg.Client.ID)
		}

		stored, err := f.svc.Get(ctx, reg.Client.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !secrets.Matches(reg.Secret, stored.SecretHash) {
			t.Errorf("stored SecretHash %x is not the SHA-256 of the secret", stored.SecretHash)
		}
		// The row, in any form, does not hold the secret.
		for _, form := range []string{fmt.Sprintf("%#v", stored), fmt.Sprintf("%+v", stored), mustJSON(t, stored)} {
			if strings.Contains(form, reg.Secret) {
				t.Errorf("stored client contains the secret: %s", form)
			}
		}
		// Nor does any byte the database holds.
		dump := f.dump(t)
		if bytes.Contains(dump, []byte(reg.Secret)) || bytes.Contains(dump, raw) {
			t.Errorf("the database contains the client secret")
		}
		// Otherwise the search above proves nothing.
		if !bytes.Contains(dump, stored.SecretHash) && !bytes.Contains(dump, []byte(hex.EncodeToString(stored.SecretHash))) {
			t.Errorf("the secret hash is not in the dump either: it is not the database's content")
		}

		// Neither the log nor the non-JSON forms of the registration show it.
		for what, s := range map[string]string{
			"log": f.logs.String(), "%v": fmt.Sprintf("%v", reg), "%+v": fmt.Sprintf("%+v", reg),
			"%#v": fmt.Sprintf("%#v", reg), "%s": fmt.Sprintf("%s", reg),
		} {
			if strings.Contains(s, reg.Secret) {
				t.Errorf("%s contains the secret: %s", what, s)
			}
		}
		if !strings.Contains(f.logs.String(), reg.Client.ID) {
			t.Errorf("log does not record the registration of %s:\n%s", reg.Client.ID, f.logs.String())
		}

		// Secrets differ between clients.
		f2 := newFixture(t, open)
		f2.svc = clients.New(f2.store, clients.Options{}) // crypto/rand
		a, err := f2.svc.Register(ctx, parse(t, `{"redirect_uris": ["https://a.example/cb"]}`))
		if err != nil {
			t.Fatal(err)
		}
		b, err := f2.svc.Register(ctx, parse(t, `{"redirect_uris": ["https://a.example/cb"]}`))
		if err != nil {
			t.Fatal(err)
		}
		if a.Secret == b.Secret || a.Client.ID == b.Client.ID {
			t.Error("two registrations got the same secret or id")
		}
	})
}

func TestRegisterPublicClientHasNoSecret(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		f := newFixture(t, open)
		reg, err := f.svc.Register(t.Context(), parse(t, `{"token_endpoint_auth_method": "none", "redirect_uris": ["https://a.example/cb"]}`))
		if err != nil {
			t.Fatal(err)
		}
		if reg.Secret != "" || reg.Client.SecretHash != nil {
			t.Errorf("public client got secret %q, hash %x", reg.Secret, reg.Client.SecretHash)
		}
		stored, err := f.svc.Get(t.Context(), reg.Client.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(stored.SecretHash) != 0 {
			t.Errorf("stored public client has SecretHash %x", stored.SecretHash)
		}
	})
}

// TestRegistrationJSON pins the RFC 7591 §3.2.1 response: which members
// appear for confidential and public clients, compared against golden
// files (go test -update rewrites them).
func TestRegistrationJSON(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		tests := []struct {
			name     string
			doc      string
			wantKeys []string
		}{
			{"confidential", `{"client_name": "Web App", "redirect_uris": ["https://app.example/cb"], "grant_types": ["authorization_code", "refresh_token"]}`, []string{
				"client_id", "client_secret", "client_id_issued_at", "client_secret_expires_at",
				"client_name", "redirect_uris", "grant_types", "response_types",
				"token_endpoint_auth_method", "scope", "application_type", "access_token_format",
			}},
			{"refresh-lifetimes", `{"client_name": "Kiosk", "redirect_uris": ["https://kiosk.example/cb"], "grant_types": ["authorization_code", "refresh_token"], "refresh_token_idle_lifetime": 3600, "refresh_token_absolute_lifetime": 43200}`, []string{
				"client_id", "client_secret", "client_id_issued_at", "client_secret_expires_at",
				"client_name", "redirect_uris", "grant_types", "response_types",
				"token_endpoint_auth_method", "scope", "application_type", "access_token_format",
				"refresh_token_idle_lifetime", "refresh_token_absolute_lifetime",
			}},
			{"public", `{"application_type": "native", "token_endpoint_auth_method": "none", "redirect_uris": ["http://127.0.0.1/cb"]}`, []string{
				"client_id", "client_id_issued_at",
				"redirect_uris", "grant_types", "response_types",
				"token_endpoint_auth_method", "scope", "application_type", "access_token_format",
			}},
			{"first-party", `{"client_name": "Portal", "redirect_uris": ["https://portal.example/cb"], "post_logout_redirect_uris": ["https://portal.example/"], "skip_consent": true, "contacts": ["it@portal.example"]}`, []string{
				"client_id", "client_secret", "client_id_issued_at", "client_secret_expires_at",
				"client_name", "redirect_uris", "post_logout_redirect_uris", "grant_types", "response_types",
				"token_endpoint_auth_method", "scope", "application_type", "contacts", "skip_consent", "access_token_format",
			}},
			{"backchannel", `{"client_name": "Wiki", "redirect_uris": ["https://wiki.example/cb"], "post_logout_redirect_uris": ["https://wiki.example/bye"], "backchannel_logout_uri": "https://wiki.example/oidc/backchannel", "backchannel_logout_session_required": true}`, []string{
				"client_id", "client_secret", "client_id_issued_at", "client_secret_expires_at",
				"client_name", "redirect_uris", "post_logout_redirect_uris", "grant_types", "response_types",
				"token_endpoint_auth_method", "scope", "application_type", "access_token_format",
				"backchannel_logout_uri", "backchannel_logout_session_required",
			}},
			{"machine", `{"client_name": "Batch job", "grant_types": ["client_credentials"], "scope": "invoices:read invoices:write", "access_token_format": "opaque", "allowed_resources": ["https://api.example/invoices"]}`, []string{
				"client_id", "client_secret", "client_id_issued_at", "client_secret_expires_at",
				"client_name", "grant_types", "token_endpoint_auth_method", "scope", "application_type",
				"access_token_format", "allowed_resources",
			}},
			// No scope member at all: a machine client has no default scope.
			{"machine-no-scope", `{"client_name": "Pinger", "grant_types": ["client_credentials"]}`, []string{
				"client_id", "client_secret", "client_id_issued_at", "client_secret_expires_at",
				"client_name", "grant_types", "token_endpoint_auth_method", "application_type", "access_token_format",
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				f := newFixture(t, open)
				reg, err := f.svc.Register(t.Context(), parse(t, tt.doc))
				if err != nil {
					t.Fatal(err)
				}
				out, err := json.MarshalIndent(reg, "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				var m map[string]any
				if err := json.Unmarshal(out, &m); err != nil {
					t.Fatal(err)
				}
				var keys []string
				for k := range m {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				want := slices.Sorted(slices.Values(tt.wantKeys))
				if !slices.Equal(keys, want) {
					t.Errorf("members = %q\nwant      %q", keys, want)
				}
				if m["client_id"] != reg.Client.ID {
					t.Errorf("client_id = %v, want %q", m["client_id"], reg.Client.ID)
				}
				if m["client_id_issued_at"] != float64(epoch.Unix()) {
					t.Errorf("client_id_issued_at = %v, want %d", m["client_id_issued_at"], epoch.Unix())
				}
				if reg.Secret != "" {
					if m["client_secret"] != reg.Secret {
						t.Errorf("client_secret = %v, want the secret", m["client_secret"])
					}
					// RFC 7591 §3.2.1: 0 means the secret does not expire.
					if m["client_secret_expires_at"] != float64(0) {
						t.Errorf("client_secret_expires_at = %v, want 0", m["client_secret_expires_at"])
					}
				}
				if m["skip_consent"] != nil && m["skip_consent"] != true {
					t.Errorf("skip_consent = %v, want true or absent", m["skip_consent"])
				}

				golden := filepath.Join("testdata", "registration_"+tt.name+".json")
				out = append(out, '\n')
				if *update {
					if err := os.WriteFile(golden, out, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want2, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test -update to create it)", err)
				}
				if !bytes.Equal(out, want2) {
					t.Errorf("registration response differs from %s:\ngot:\n%s\nwant:\n%s", golden, out, want2)
				}
			})
		}
	})
}

func TestGetListDelete(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		f := newFixture(t, open)
		ctx := t.Context()
		a, err := f.svc.Register(ctx, parse(t, `{"client_name": "A", "redirect_uris": ["https://a.example/cb"]}`))
		if err != nil {
			t.Fatal(err)
		}
		b, err := f.svc.Register(ctx, parse(t, `{"client_name": "B", "redirect_uris": ["https://b.example/cb"]}`))
		if err != nil {
			t.Fatal(err)
		}
		list, err := f.svc.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, c := range list {
			ids = append(ids, c.ID)
		}
		slices.Sort(ids)
		want := []string{a.Client.ID, b.Client.ID}
		slices.Sort(want)
		if !slices.Equal(ids, want) {
			t.Errorf("List ids = %q, want %q", ids, want)
		}

		if err := f.svc.Delete(ctx, a.Client.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Get(ctx, a.Client.ID); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Get after Delete error = %v, want ErrNotFound", err)
		}
		if err := f.svc.Delete(ctx, a.Client.ID); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("second Delete error = %v, want ErrNotFound", err)
		}
		if err := f.svc.Delete(ctx, "nope"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
			t.Errorf("Delete(unknown) error = %v, want ErrNotFound naming the id", err)
		}
		if _, err := f.svc.Get(ctx, b.Client.ID); err != nil {
			t.Errorf("Get(other client) after Delete: %v", err)
		}
	})
}

func TestRegisterStorageFailure(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		f := newFixture(t, open)
		f.store.Close()
		_, err := f.svc.Register(t.Context(), parse(t, `{"redirect_uris": ["https://a.example/cb"]}`))
		var re *clients.RegistrationError
		if err == nil || errors.As(err, &re) {
			t.Errorf("Register on a closed store error = %v, want a storage error, not a RegistrationError", err)
		}
	})
}

// scopeChars is every character RFC 6749 §3.3 allows in a scope-token
// (%x21 / %x23-5B / %x5D-7E), and jsonScopeChars the same as the inside of
// a JSON string.
var (
	scopeChars     = asciiRange(0x21, 0x21) + asciiRange(0x23, 0x5b) + asciiRange(0x5d, 0x7e)
	jsonScopeChars = strings.Trim(mustJSONString(scopeChars), `"`)
)

func asciiRange(from, to byte) string {
	var b strings.Builder
	for c := from; c <= to; c++ {
		b.WriteByte(c)
	}
	return b.String()
}

func mustJSONString(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// resources returns n distinct https resource indicators, and
// resourceList the same as the inside of a JSON array.
func resources(n int) []string {
	var rs []string
	for i := range n {
		rs = append(rs, fmt.Sprintf("https://api%d.example/", i))
	}
	return rs
}

func resourceList(n int) string {
	var qs []string
	for _, r := range resources(n) {
		qs = append(qs, mustJSONString(r))
	}
	return strings.Join(qs, ", ")
}

// scopeTokens returns n distinct scope-tokens separated by spaces.
func scopeTokens(n int) string {
	var ts []string
	for i := range n {
		ts = append(ts, fmt.Sprintf("s%d", i))
	}
	return strings.Join(ts, " ")
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
