package oauth

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/keys"
	"github.com/gatehouse-idp/gatehouse/internal/secrets"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/internal/storage/sqlite"
)

// lifeFixture is one fresh SQLite database with the clients, users and
// login sessions the refresh, client credentials, inspection, revocation
// and introspection tests use, a settable clock, and handles on it.
//
// Clients (the secret of a confidential client is "<id>-secret"):
//
//	web       confidential, code + refresh, JWT access tokens
//	opaque    confidential, code + refresh, opaque access tokens
//	other     confidential, code + refresh, JWT
//	short     confidential, code + refresh, refresh lifetimes 1 h idle / 2 h absolute
//	spa       public, code + refresh
//	app       public, code only
//	machine   confidential, client_credentials, JWT, API scopes and resources
//	machine-opaque  the same, opaque
//	machine-2 confidential, client_credentials, JWT, its own API scope
//	pubmachine public, registered for client_credentials
//	rs        confidential resource server, client_credentials (introspects)
//
// Users user-1 and user-2 have the live login sessions sess-1 and sess-2,
// last seen at testNow.
type lifeFixture struct {
	// store is the server's handle on the database; a test may close it
	// (the database is down).
	store *sqlite.DB
	// clients is the handle the server finds clients through, standing
	// in for the in-process client cache of production; a test may close
	// it too.
	clients *sqlite.DB
	// db is a third handle, always open: the test sets up and reads back
	// through it.
	db    *sqlite.DB
	raw   *sql.DB
	clock *clock
	keys  *keys.Manager
	logs  *syncBuffer
}

// machineScope is what the machine clients registered: user scopes, which
// a machine token cannot carry, and API scopes.
const machineScope = "openid profile email offline_access api:read api:write"

// Resources the machine clients may ask for. The last two are registered
// but not valid RFC 8707 resource indicators.
var machineResources = []string{"https://api.example/", "https://other.example/v1", "relative/api", "https://frag.example/#part"}

func lifeClient(id string, public bool, grants []string, mod func(*storage.ClientMetadata)) storage.Client {
	c := storage.Client{
		ID: id,
		Metadata: storage.ClientMetadata{
			RedirectURIs:            []string{webRedirect},
			GrantTypes:              grants,
			ResponseTypes:           []string{"code"},
			TokenEndpointAuthMethod: AuthSecretBasic,
			ApplicationType:         "web",
		},
	}
	if public {
		c.Metadata.TokenEndpointAuthMethod = AuthNone
	} else {
		c.SecretHash = secrets.Hash(id + "-secret")
	}
	if mod != nil {
		mod(&c.Metadata)
	}
	return c
}

func newLifeFixture(t *testing.T) *lifeFixture {
	t.Helper()
	st := newStore(t)
	f := &lifeFixture{store: st, clients: reopen(t, st), db: reopen(t, st), raw: rawSQL(t, st), clock: newClock(testNow), logs: &syncBuffer{}}
	code := []string{GrantAuthorizationCode, GrantRefreshToken}
	cc := []string{GrantClientCredentials}
	machine := func(m *storage.ClientMetadata) {
		m.Scope = machineScope
		m.AllowedResources = machineResources
		m.ResponseTypes = nil
	}
	createClients(t, f.db,
		lifeClient("web", false, code, nil),
		lifeClient("opaque", false, code, func(m *storage.ClientMetadata) { m.AccessTokenFormat = FormatOpaque }),
		lifeClient("other", false, code, nil),
		lifeClient("short", false, code, func(m *storage.ClientMetadata) {
			m.RefreshTokenIdleLifetime = 3600
			m.RefreshTokenAbsoluteLifetime = 7200
		}),
		lifeClient("spa", true, code, nil),
		lifeClient("app", true, []string{GrantAuthorizationCode}, nil),
		lifeClient("machine", false, cc, machine),
		lifeClient("machine-opaque", false, cc, func(m *storage.ClientMetadata) {
			machine(m)
			m.AccessTokenFormat = FormatOpaque
		}),
		lifeClient("machine-2", false, cc, func(m *storage.ClientMetadata) { m.Scope = "billing:read" }),
		lifeClient("pubmachine", true, cc, machine),
		lifeClient("rs", false, cc, nil),
	)
	createUsers(t, f.db, storage.User{ID: "user-1"}, storage.User{ID: "user-2"})
	createSession(t, f.db, "sess-1", "user-1", testNow)
	createSession(t, f.db, "sess-2", "user-2", testNow)
	f.keys = newKeys(t, f.db)
	return f
}

// server returns a server over the fixture's database: its clock, real
// keys, a real session.Manager (made by newTestServer over the same store
// and clock), and crypto/rand, so that every token is different.
// mods change the dependencies before the server is made.
func (f *lifeFixture) server(t *testing.T, cfg Config, mods ...func(*Deps)) *Server {
	t.Helper()
	d := Deps{
		Store: f.store, Clients: f.clients, Signer: f.keys, Verifier: f.keys, IDTokens: &keyIDTokens{keys: f.keys},
		Now: f.clock.Now, Rand: rand.Reader, Logger: slog.New(slog.NewTextHandler(f.logs, nil)),
	}
	for _, m := range mods {
		m(&d)
	}
	return newTestServer(t, cfg, d)
}

// creds are the credentials client id authenticates with.
func (f *lifeFixture) creds(t *testing.T, id string) ClientCredentials {
	t.Helper()
	c, err := f.db.GetClient(t.Context(), id)
	if err != nil {
		t.Fatalf("client %s: %v", id, err)
	}
	if IsPublic(c) {
		return ClientCredentials{ID: id, Method: AuthNone}
	}
	return ClientCredentials{ID: id, Secret: id + "-secret", Method: AuthSecretBasic}
}

// issued is what a sign-in gave a client.
type issued struct {
	*TokenResponse
	grantID string
}

// login signs user-1 in (session sess-1) to client with scopes, through
// an authorization code, as the authorize and token endpoints do.
func (f *lifeFixture) login(t *testing.T, s *Server, client string, scopes ...string) issued {
	t.Helper()
	return f.loginAs(t, s, client, "user-1", "sess-1", scopes...)
}

func (f *lifeFixture) loginAs(t *testing.T, s *Server, client, user, sess string, scopes ...string) issued {
	t.Helper()
	if len(scopes) == 0 {
		scopes = []string{"openid", "profile"}
	}
	code, err := s.IssueCode(t.Context(), &AuthorizeRequest{ClientID: client, RedirectURI: webRedirect, Scopes: scopes},
		Subject{UserID: user, SessionID: sess, AuthTime: f.clock.Now(), AMR: []string{"pwd"}})
	if err != nil {
		t.Fatalf("issue code: %v", err)
	}
	stored, err := f.db.GetAuthCode(t.Context(), secrets.Hash(code))
	if err != nil {
		t.Fatal(err)
	}
	resp, e := s.Token(t.Context(), TokenRequest{Credentials: f.creds(t, client), GrantType: GrantAuthorizationCode, Code: code, RedirectURI: webRedirect})
	if e != nil {
		t.Fatalf("redeem code as %s: %v", client, e)
	}
	return issued{resp, stored.GrantID}
}

// refresh runs the refresh_token grant as client.
func (f *lifeFixture) refresh(t *testing.T, s *Server, client, token, scope string) (*TokenResponse, *Error) {
	t.Helper()
	return s.Token(t.Context(), TokenRequest{Credentials: f.creds(t, client), GrantType: GrantRefreshToken, RefreshToken: token, Scope: scope})
}

// mustRefresh is refresh that must succeed.
func (f *lifeFixture) mustRefresh(t *testing.T, s *Server, client, token string) *TokenResponse {
	t.Helper()
	resp, e := f.refresh(t, s, client, token, "")
	if e != nil {
		t.Fatalf("refresh as %s: %v", client, e)
	}
	return resp
}

// machineToken runs client_credentials as client; it must succeed.
func (f *lifeFixture) machineToken(t *testing.T, s *Server, client string, resources ...string) string {
	t.Helper()
	resp, e := s.Token(t.Context(), TokenRequest{Credentials: f.creds(t, client), GrantType: GrantClientCredentials, Resources: resources})
	if e != nil {
		t.Fatalf("client_credentials as %s: %v", client, e)
	}
	return resp.AccessToken
}

// refreshRow reads the stored refresh token.
func (f *lifeFixture) refreshRow(t *testing.T, token string) storage.RefreshToken {
	t.Helper()
	rt, err := f.db.GetRefreshToken(t.Context(), secrets.Hash(token))
	if err != nil {
		t.Fatalf("read refresh token: %v", err)
	}
	return rt
}

// grant reads a grant back.
func (f *lifeFixture) grant(t *testing.T, id string) storage.Grant {
	t.Helper()
	g, err := f.db.GetGrant(t.Context(), id)
	if err != nil {
		t.Fatalf("read grant %s: %v", id, err)
	}
	return g
}

// jtiOf returns a JWT access token's jti; the token must verify at
// testNow.
func jtiOf(t *testing.T, s *Server, token string) string {
	t.Helper()
	c, ok := s.verifyAccessJWT(token, testNow)
	if !ok {
		t.Fatalf("%q is not a valid access token at testNow", token)
	}
	return c.ID
}

// Keys of snapshot rows.
func grantKey(id string) string    { return "grant " + id }
func refreshKey(tok string) string { return "refresh " + hashHex(tok) }
func accessKey(tok string) string  { return "access " + hashHex(tok) }
func jwtKey(jti string) string     { return "revoked_jwt " + jti }
func sessionKey(id string) string  { return "session " + id }
func hashHex(tok string) string    { return strings.ToUpper(hex.EncodeToString(secrets.Hash(tok))) }
func micro(t time.Time) int64      { return t.UnixMicro() }
func microStr(t time.Time) string  { return fmt.Sprint(micro(t)) }

// snapshot reads every row a token operation can change, by key, so a
// test can say exactly what changed and that nothing else did.
func (f *lifeFixture) snapshot(t *testing.T) map[string]string {
	t.Helper()
	m := map[string]string{}
	queries := []struct{ prefix, query string }{
		{"grant ", `SELECT id, 'revoked_at=' || COALESCE(revoked_at, 'nil') || ' offline=' || offline FROM grants`},
		{"refresh ", `SELECT hex(token_hash), 'grant=' || grant_id || ' used_at=' || COALESCE(used_at, 'nil') ||
			' successor=' || COALESCE(hex(successor_hash), 'nil') || ' expires_at=' || expires_at ||
			' absolute_expires_at=' || absolute_expires_at || ' scopes=' || scopes FROM refresh_tokens`},
		{"access ", `SELECT hex(token_hash), 'grant=' || COALESCE(grant_id, 'nil') || ' client=' || client_id ||
			' revoked_at=' || COALESCE(revoked_at, 'nil') FROM access_tokens`},
		{"revoked_jwt ", `SELECT jti, 'expires_at=' || expires_at FROM revoked_jwts`},
		{"session ", `SELECT id, 'last_seen_at=' || last_seen_at || ' ended_at=' || COALESCE(ended_at, 'nil') FROM sessions`},
		{"user ", `SELECT id, 'disabled=' || disabled FROM users`},
		{"client ", `SELECT id, 'exists' FROM clients`},
	}
	for _, q := range queries {
		rows, err := f.raw.QueryContext(t.Context(), q.query)
		if err != nil {
			t.Fatalf("%s: %v", q.query, err)
		}
		for rows.Next() {
			var k, v string
			if err := rows.Scan(&k, &v); err != nil {
				t.Fatal(err)
			}
			m[q.prefix+k] = v
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// changed lists the keys whose rows differ between two snapshots: added,
// removed or modified.
func changed(before, after map[string]string) []string {
	var keys []string
	for k, v := range after {
		if w, ok := before[k]; !ok || w != v {
			keys = append(keys, k)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// wantChanged fails unless exactly the rows with the keys in want changed
// between before and now.
func (f *lifeFixture) wantChanged(t *testing.T, before map[string]string, want ...string) {
	t.Helper()
	after := f.snapshot(t)
	got := changed(before, after)
	want = slices.Sorted(slices.Values(want))
	want = slices.Compact(want)
	if !slices.Equal(got, want) {
		var b strings.Builder
		for _, k := range got {
			fmt.Fprintf(&b, "\n  %s: %q -> %q", k, before[k], after[k])
		}
		t.Errorf("changed rows %q, want %q:%s", got, want, b.String())
	}
}
