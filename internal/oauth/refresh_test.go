package oauth

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/secrets"
	"github.com/gatehouse-idp/gatehouse/internal/session"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/internal/storage/pgtest"
)

const day = 24 * time.Hour

func TestSuccessorOf(t *testing.T) {
	st := newStore(t)
	deps := func(key []byte) Deps {
		return Deps{Store: st, Signer: &fakeSigner{}, Verifier: fakeVerifier{}, IDTokens: fakeIDTokens{}, SuccessorKey: key}
	}
	s := newTestServer(t, Config{}, deps(nil))
	other := newTestServer(t, Config{}, deps(bytes.Repeat([]byte{0xa5}, 32)))
	same := newTestServer(t, Config{}, deps(bytes.Clone(testSuccessorKey)))
	const tok = "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5"
	next := s.successorOf(tok)
	tests := []struct {
		name string
		ok   bool
	}{
		// The same spent token always yields the same successor: a retry
		// in the grace window gets the token the first request got.
		{"deterministic", s.successorOf(tok) == next},
		{"the same on every replica with the same key", same.successorOf(tok) == next},
		{"depends on the key", other.successorOf(tok) != next},
		{"different per token", s.successorOf(tok+"x") != next && s.successorOf(tok[:len(tok)-1]) != next},
		{"not the token itself", next != tok},
		{"a chain never repeats", s.successorOf(next) != next && s.successorOf(next) != tok},
		{"256 bits, base64url like every token", len(next) == 43 && !strings.ContainsAny(next, "+/=.")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.ok {
				t.Errorf("successorOf(%q) = %q", tok, next)
			}
		})
	}
	if raw, err := base64.RawURLEncoding.DecodeString(next); err != nil || len(raw) != 32 {
		t.Errorf("successor %q decodes to %d bytes, %v", next, len(raw), err)
	}
}

// TestSuccessorForPreviousKeys: during a key-encryption-key change, an
// instance already on the new key must recognise a successor that an
// instance still on the old key derived (a grace-window retry that lands
// elsewhere), or it would take the retry for reuse and revoke the grant.
func TestSuccessorForPreviousKeys(t *testing.T) {
	st := newStore(t)
	oldKey, newKey := bytes.Repeat([]byte{0x11}, 32), bytes.Repeat([]byte{0x22}, 32)
	deps := Deps{Store: st, Signer: &fakeSigner{}, Verifier: fakeVerifier{}, IDTokens: fakeIDTokens{}}
	onOld := deps
	onOld.SuccessorKey = oldKey
	onNew := deps
	onNew.SuccessorKey, onNew.PreviousSuccessorKeys = newKey, [][]byte{oldKey}
	newOnly := deps
	newOnly.SuccessorKey = newKey
	const tok = "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5"
	spentFor := newTestServer(t, Config{}, onOld).successorOf(tok)
	hash := secrets.Hash(spentFor)

	got, ok := newTestServer(t, Config{}, onNew).successorFor(tok, hash)
	if !ok || got != spentFor {
		t.Errorf("instance with the previous key: successorFor = %q, %v; want %q", got, ok, spentFor)
	}
	if _, ok := newTestServer(t, Config{}, newOnly).successorFor(tok, hash); ok {
		t.Error("instance without the previous key recognised its successor")
	}
	if _, ok := newTestServer(t, Config{}, onNew).successorFor(tok+"x", hash); ok {
		t.Error("another token's successor matched")
	}
}

// TestCodeExchangeRefreshToken: the code exchange starts a refresh token
// family only for clients registered for the refresh_token grant, with
// the client's or the server's lifetimes, and marks the grant offline when
// the person granted offline_access.
func TestCodeExchangeRefreshToken(t *testing.T) {
	tests := []struct {
		name        string
		cfg         Config
		client      string
		scopes      []string
		wantRefresh bool
		wantOffline bool
		wantIdle    time.Duration // from the sign-in
		wantAbs     time.Duration
		wantOpaque  bool // an opaque access token row is stored with the grant
	}{
		{name: "RFC 6749 §1.5 client registered for refresh_token", client: "web", scopes: []string{"openid", "profile"},
			wantRefresh: true, wantIdle: 14 * day, wantAbs: 90 * day},
		{name: "OIDC Core §11 offline_access makes the grant offline", client: "web", scopes: []string{"openid", "offline_access"},
			wantRefresh: true, wantOffline: true, wantIdle: 14 * day, wantAbs: 90 * day},
		{name: "client not registered for refresh_token gets none", client: "app", scopes: []string{"openid"}},
		// offline_access is about refresh tokens: without them the grant stays
		// bound to its session, so its access tokens die at logout.
		{name: "client not registered for refresh_token, offline_access asked", client: "app", scopes: []string{"openid", "offline_access"}, wantOffline: false},
		{name: "public client registered for refresh_token", client: "spa", scopes: []string{"openid"},
			wantRefresh: true, wantIdle: 14 * day, wantAbs: 90 * day},
		{name: "per-client lifetimes", client: "short", scopes: []string{"openid"},
			wantRefresh: true, wantIdle: time.Hour, wantAbs: 2 * time.Hour},
		{name: "per-client lifetimes beat the server's", cfg: Config{RefreshIdleTTL: 5 * time.Hour, RefreshAbsoluteTTL: 9 * time.Hour},
			client: "short", scopes: []string{"openid"}, wantRefresh: true, wantIdle: time.Hour, wantAbs: 2 * time.Hour},
		{name: "server lifetimes", cfg: Config{RefreshIdleTTL: 48 * time.Hour, RefreshAbsoluteTTL: 72 * time.Hour},
			client: "web", scopes: []string{"openid"}, wantRefresh: true, wantIdle: 48 * time.Hour, wantAbs: 72 * time.Hour},
		{name: "idle expiry never beyond the absolute one", cfg: Config{RefreshIdleTTL: 10 * day, RefreshAbsoluteTTL: 2 * day},
			client: "web", scopes: []string{"openid"}, wantRefresh: true, wantIdle: 2 * day, wantAbs: 2 * day},
		{name: "opaque access token stored with the grant", client: "opaque", scopes: []string{"openid"},
			wantRefresh: true, wantIdle: 14 * day, wantAbs: 90 * day, wantOpaque: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newLifeFixture(t)
			s := f.server(t, tt.cfg)
			before := f.snapshot(t)
			in := f.login(t, s, tt.client, tt.scopes...)

			g := f.grant(t, in.grantID)
			if g.Offline != tt.wantOffline || g.SessionID != "sess-1" || g.UserID != "user-1" || g.ClientID != tt.client ||
				!slices.Equal(g.Scopes, tt.scopes) || g.RevokedAt != nil {
				t.Errorf("grant = %+v, want offline %v", g, tt.wantOffline)
			}
			want := []string{grantKey(in.grantID)}
			if (in.RefreshToken != "") != tt.wantRefresh {
				t.Fatalf("refresh_token = %q, want present %v", in.RefreshToken, tt.wantRefresh)
			}
			if tt.wantRefresh {
				want = append(want, refreshKey(in.RefreshToken))
				rt := f.refreshRow(t, in.RefreshToken)
				wantRT := storage.RefreshToken{
					TokenHash: secrets.Hash(in.RefreshToken), GrantID: in.grantID, ClientID: tt.client, UserID: "user-1",
					Scopes: tt.scopes, CreatedAt: testNow, ExpiresAt: testNow.Add(tt.wantIdle), AbsoluteExpiresAt: testNow.Add(tt.wantAbs),
				}
				if !jsonEqual(rt, wantRT) {
					t.Errorf("stored refresh token\n got %+v\nwant %+v", rt, wantRT)
				}
			}
			if looksLikeJWT(in.AccessToken) == tt.wantOpaque {
				t.Errorf("access token %q: want opaque %v", in.AccessToken, tt.wantOpaque)
			}
			if tt.wantOpaque {
				want = append(want, accessKey(in.AccessToken))
				at, err := f.db.GetAccessToken(t.Context(), secrets.Hash(in.AccessToken))
				if err != nil || at.GrantID != in.grantID || at.Subject != "user-1" || !at.ExpiresAt.Equal(testNow.Add(10*time.Minute)) {
					t.Errorf("stored access token %+v, %v", at, err)
				}
			}
			// The code is spent too; codes are not in the snapshot. No
			// session is touched by the exchange.
			f.wantChanged(t, before, want...)
		})
	}
}

// TestRefreshRotation: RFC 6749 §6 and RFC 9700 §4.14.2. A refresh spends
// the token and issues its successor, which keeps the grant's scopes and
// the family's absolute expiry, with a fresh idle expiry; the access token
// may be narrowed.
func TestRefreshRotation(t *testing.T) {
	tests := []struct {
		name      string
		cfg       Config
		client    string
		scopes    []string      // granted at sign-in
		after     time.Duration // from sign-in to refresh
		reqScope  string
		wantScope []string      // of the new access token
		wantIdle  time.Duration // the successor's, from the refresh
		wantAbs   time.Duration // the family's, from the sign-in
	}{
		{name: "RFC 6749 §6 JWT client", client: "web", scopes: []string{"openid", "profile"}, after: time.Hour,
			wantScope: []string{"openid", "profile"}, wantIdle: 14 * day, wantAbs: 90 * day},
		{name: "opaque client", client: "opaque", scopes: []string{"openid", "profile"}, after: time.Hour,
			wantScope: []string{"openid", "profile"}, wantIdle: 14 * day, wantAbs: 90 * day},
		{name: "RFC 6749 §6 narrower scope for the access token only", client: "web", scopes: []string{"openid", "profile", "email"}, after: time.Hour,
			reqScope: "profile", wantScope: []string{"profile"}, wantIdle: 14 * day, wantAbs: 90 * day},
		{name: "the same scope, reordered and repeated", client: "web", scopes: []string{"openid", "profile"}, after: time.Hour,
			reqScope: "profile openid profile", wantScope: []string{"profile", "openid"}, wantIdle: 14 * day, wantAbs: 90 * day},
		{name: "public client, days later", client: "spa", scopes: []string{"openid"}, after: 6 * day,
			wantScope: []string{"openid"}, wantIdle: 14 * day, wantAbs: 90 * day},
		{name: "just before the idle expiry", cfg: Config{RefreshIdleTTL: 2 * time.Hour, RefreshAbsoluteTTL: 10 * time.Hour},
			client: "web", scopes: []string{"openid"}, after: 2*time.Hour - time.Second,
			wantScope: []string{"openid"}, wantIdle: 2 * time.Hour, wantAbs: 10 * time.Hour},
		{name: "per-client lifetimes", client: "short", scopes: []string{"openid"}, after: 30 * time.Minute,
			wantScope: []string{"openid"}, wantIdle: time.Hour, wantAbs: 2 * time.Hour},
		{name: "per-client lifetimes beat the server's", cfg: Config{RefreshIdleTTL: 5 * time.Hour, RefreshAbsoluteTTL: 9 * time.Hour},
			client: "short", scopes: []string{"openid"}, after: 30 * time.Minute,
			wantScope: []string{"openid"}, wantIdle: time.Hour, wantAbs: 2 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newLifeFixture(t)
			s := f.server(t, tt.cfg)
			in := f.login(t, s, tt.client, tt.scopes...)
			// The person kept browsing until an hour before the refresh,
			// so the login session is alive however long the test waits.
			if tt.after > 12*time.Hour {
				execSQL(t, f.db, fmt.Sprintf(`UPDATE sessions SET last_seen_at = %d WHERE id = 'sess-1'`, micro(testNow.Add(tt.after-time.Hour))))
			}
			first := f.refreshRow(t, in.RefreshToken)
			f.clock.Advance(tt.after)
			now := f.clock.Now()
			before := f.snapshot(t)

			resp, e := f.refresh(t, s, tt.client, in.RefreshToken, tt.reqScope)
			if e != nil {
				t.Fatalf("refresh: %v", e)
			}

			if resp.RefreshToken == in.RefreshToken || resp.RefreshToken != s.successorOf(in.RefreshToken) {
				t.Errorf("refresh_token = %q, want the successor of the spent one", resp.RefreshToken)
			}
			if resp.TokenType != "Bearer" || resp.ExpiresIn != 600 || resp.Scope != JoinScope(tt.wantScope) || resp.IDToken != "" || resp.AccessToken == in.AccessToken {
				t.Errorf("response = %+v, want scope %q", resp, JoinScope(tt.wantScope))
			}
			spent := first
			spent.UsedAt, spent.SuccessorHash = &now, secrets.Hash(resp.RefreshToken)
			if got := f.refreshRow(t, in.RefreshToken); !jsonEqual(got, spent) {
				t.Errorf("spent token\n got %+v\nwant %+v", got, spent)
			}
			// RFC 6749 §6: the new refresh token has the scope of the old
			// one, whatever the access token was narrowed to.
			wantNext := storage.RefreshToken{
				TokenHash: secrets.Hash(resp.RefreshToken), GrantID: in.grantID, ClientID: tt.client, UserID: "user-1",
				Scopes: tt.scopes, CreatedAt: now, ExpiresAt: now.Add(tt.wantIdle), AbsoluteExpiresAt: testNow.Add(tt.wantAbs),
			}
			if got := f.refreshRow(t, resp.RefreshToken); !jsonEqual(got, wantNext) {
				t.Errorf("successor\n got %+v\nwant %+v", got, wantNext)
			}
			info, err := s.Inspect(t.Context(), resp.AccessToken)
			wantKind := KindAccessJWT
			if tt.client == "opaque" {
				wantKind = KindAccessOpaque
			}
			if err != nil || !info.Active || info.Kind != wantKind || info.GrantID != in.grantID || info.UserID != "user-1" ||
				!slices.Equal(info.Scopes, tt.wantScope) || !info.ExpiresAt.Equal(now.Add(10*time.Minute)) {
				t.Errorf("new access token: %+v, %v", info, err)
			}
			// An app refreshing is activity on the person's session.
			want := []string{refreshKey(in.RefreshToken), refreshKey(resp.RefreshToken), sessionKey("sess-1")}
			if wantKind == KindAccessOpaque {
				want = append(want, accessKey(resp.AccessToken))
			}
			f.wantChanged(t, before, want...)
			if sess, err := f.db.GetSession(t.Context(), "sess-1"); err != nil || !sess.LastSeenAt.Equal(now) {
				t.Errorf("session last seen %v (%v), want %v", sess.LastSeenAt, err, now)
			}

			// The successor is good for the next refresh.
			f.clock.Advance(time.Minute)
			if next := f.mustRefresh(t, s, tt.client, resp.RefreshToken); next.RefreshToken != s.successorOf(resp.RefreshToken) {
				t.Errorf("second refresh gave %q", next.RefreshToken)
			}
		})
	}
}

// TestRefreshFamilyEnd: the absolute expiry is the sign-in's plus the
// absolute lifetime, copied to every successor; the successors' idle
// expiry never goes beyond it, and at it the family ends however active.
func TestRefreshFamilyEnd(t *testing.T) {
	f := newLifeFixture(t)
	s := f.server(t, Config{}) // client short: idle 1 h, absolute 2 h
	in := f.login(t, s, "short", "openid")
	steps := []struct {
		at       time.Duration // from the sign-in
		wantIdle time.Duration // the successor's idle expiry, from the sign-in
	}{
		{50 * time.Minute, 110 * time.Minute},
		{100 * time.Minute, 120 * time.Minute}, // capped: 160 min would be past the family's end
		{120*time.Minute - time.Second, 120 * time.Minute},
	}
	tok := in.RefreshToken
	for _, st := range steps {
		f.clock.Set(testNow.Add(st.at))
		resp := f.mustRefresh(t, s, "short", tok)
		rt := f.refreshRow(t, resp.RefreshToken)
		if !rt.ExpiresAt.Equal(testNow.Add(st.wantIdle)) || !rt.AbsoluteExpiresAt.Equal(testNow.Add(2*time.Hour)) {
			t.Errorf("refresh at +%v: successor expires %v / %v, want +%v / +2h", st.at, rt.ExpiresAt.Sub(testNow), rt.AbsoluteExpiresAt.Sub(testNow), st.wantIdle)
		}
		tok = resp.RefreshToken
	}
	f.clock.Set(testNow.Add(2 * time.Hour))
	before := f.snapshot(t)
	if resp, e := f.refresh(t, s, "short", tok, ""); e == nil || e.Code != "invalid_grant" {
		t.Fatalf("refresh at the family's end: %+v, %v; want invalid_grant", resp, e)
	}
	f.wantChanged(t, before)
}

// TestRefreshRefused: refreshes that fail, and what they leave behind:
// nothing. Reuse of a spent token is TestRefreshReuse.
func TestRefreshRefused(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		client string // presenting the token; default web
		scope  string
		// setup runs after the sign-in; it returns the token to present.
		// Without it, the refresh token the sign-in gave is presented.
		setup    func(t *testing.T, f *lifeFixture, s *Server, in issued) string
		wantCode string
	}{
		{name: "RFC 6749 §6 refresh_token missing", wantCode: "invalid_request", setup: func(t *testing.T, f *lifeFixture, s *Server, in issued) string {
			return ""
		}},
		{name: "unknown refresh token", wantCode: "invalid_grant", setup: func(t *testing.T, f *lifeFixture, s *Server, in issued) string {
			tok, _ := secrets.New(rand.Reader)
			return tok
		}},
		{name: "truncated refresh token", wantCode: "invalid_grant", setup: func(t *testing.T, f *lifeFixture, s *Server, in issued) string {
			return in.RefreshToken[:len(in.RefreshToken)-1]
		}},
		{name: "an access token is no refresh token", wantCode: "invalid_grant", setup: func(t *testing.T, f *lifeFixture, s *Server, in issued) string {
			return f.login(t, s, "opaque").AccessToken
		}, client: "opaque"},
		{name: "RFC 6749 §6 token of another client", client: "other", wantCode: "invalid_grant"},
		{name: "a spent token of another client is no reuse", client: "other", wantCode: "invalid_grant",
			setup: func(t *testing.T, f *lifeFixture, s *Server, in issued) string {
				f.mustRefresh(t, s, "web", in.RefreshToken)
				return in.RefreshToken
			}},
		{name: "RFC 6749 §5.2 client not registered for refresh_token", client: "app", wantCode: "unauthorized_client"},
		{name: "RFC 6749 §6 wider scope", scope: "openid profile email", wantCode: "invalid_scope"},
		{name: "RFC 6749 §6 scope never granted", scope: "api:read", wantCode: "invalid_scope"},
		{name: "idle expiry reached", cfg: Config{RefreshIdleTTL: time.Hour}, wantCode: "invalid_grant",
			setup: func(t *testing.T, f *lifeFixture, s *Server, in issued) string {
				f.clock.Advance(time.Hour)
				return in.RefreshToken
			}},
		{name: "absolute expiry reached before the idle one", wantCode: "invalid_grant",
			setup: func(t *testing.T, f *lifeFixture, s *Server, in issued) string {
				// Rotation never writes such a row (the idle expiry is
				// capped); the check must hold regardless.
				createGrant(t, f.db, storage.Grant{ID: "g-odd", UserID: "user-1", ClientID: "web", SessionID: "sess-1", Scopes: []string{"openid"}},
					storage.IssuedTokens{RefreshToken: &storage.RefreshToken{
						TokenHash: secrets.Hash("odd-token"), GrantID: "g-odd", ClientID: "web", UserID: "user-1", Scopes: []string{"openid"},
						CreatedAt: testNow.Add(-time.Hour), ExpiresAt: testNow.Add(time.Hour), AbsoluteExpiresAt: testNow,
					}})
				return "odd-token"
			}},
		{name: "grant revoked", wantCode: "invalid_grant", setup: func(t *testing.T, f *lifeFixture, s *Server, in issued) string {
			if err := f.db.RevokeGrant(t.Context(), in.grantID, testNow); err != nil {
				t.Fatal(err)
			}
			return in.RefreshToken
		}},
		{name: "user disabled", wantCode: "invalid_grant", setup: func(t *testing.T, f *lifeFixture, s *Server, in issued) string {
			if err := f.db.SetUserDisabled(t.Context(), "user-1", true, testNow); err != nil {
				t.Fatal(err)
			}
			return in.RefreshToken
		}},
		{name: "OIDC Core §11 bound login session ended (logout)", wantCode: "invalid_grant", setup: func(t *testing.T, f *lifeFixture, s *Server, in issued) string {
			if err := f.db.EndSession(t.Context(), "sess-1", testNow); err != nil {
				t.Fatal(err)
			}
			return in.RefreshToken
		}},
		{name: "OIDC Core §11 bound login session timed out", wantCode: "invalid_grant", setup: func(t *testing.T, f *lifeFixture, s *Server, in issued) string {
			f.clock.Advance(day) // the session's idle timeout; the refresh token has 14 days
			return in.RefreshToken
		}},
		{name: "bound login session ended, grant not (yet) revoked", wantCode: "invalid_grant", setup: func(t *testing.T, f *lifeFixture, s *Server, in issued) string {
			execSQL(t, f.db, `UPDATE sessions SET ended_at = last_seen_at WHERE id = 'sess-1'`)
			return in.RefreshToken
		}},
		{name: "database down", wantCode: "temporarily_unavailable", setup: func(t *testing.T, f *lifeFixture, s *Server, in issued) string {
			if err := f.store.Close(); err != nil {
				t.Fatal(err)
			}
			return in.RefreshToken
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newLifeFixture(t)
			s := f.server(t, tt.cfg)
			in := f.login(t, s, "web")
			tok := in.RefreshToken
			if tt.setup != nil {
				tok = tt.setup(t, f, s, in)
			}
			client := tt.client
			if client == "" {
				client = "web"
			}
			f.clock.Advance(time.Minute) // time enough for a touch of the session
			before := f.snapshot(t)

			resp, e := f.refresh(t, s, client, tok, tt.scope)

			if tt.wantCode == "temporarily_unavailable" {
				wantUnavailable(t, e)
			} else {
				wantError(t, e, tt.wantCode, 400)
			}
			if resp != nil {
				t.Errorf("response %+v with an error", resp)
			}
			// Nothing is spent, issued, revoked or touched.
			f.wantChanged(t, before)
		})
	}
}

// TestRefreshReuse: RFC 9700 §4.14.2. A spent refresh token presented
// again within the grace window, while its successor is unspent, is the
// same refresh arriving twice: it gets the same successor and a fresh
// access token. Anything else is reuse, and the whole grant is revoked.
func TestRefreshReuse(t *testing.T) {
	tests := []struct {
		name        string
		cfg         Config
		client      string // default web
		retryClient string // default client
		// between runs after the first refresh, before the retry.
		between     func(t *testing.T, f *lifeFixture, s *Server, in issued, second *TokenResponse)
		wait        time.Duration // from the first refresh to the retry
		scope       string
		wantCode    string // "": the retry gets the same successor
		wantRevoked bool   // the retry revokes the grant
	}{
		{name: "retry at once gets the same successor"},
		{name: "retry at the end of the grace window", wait: 5 * time.Second},
		{name: "RFC 9700 §4.14.2 reuse just after the window revokes the grant", wait: 5*time.Second + time.Millisecond,
			wantCode: "invalid_grant", wantRevoked: true},
		{name: "configured grace window", cfg: Config{RefreshGrace: 30 * time.Second}, wait: 30 * time.Second},
		{name: "configured grace window, just after", cfg: Config{RefreshGrace: 30 * time.Second}, wait: 31 * time.Second,
			wantCode: "invalid_grant", wantRevoked: true},
		{name: "strict rotation: any reuse revokes", cfg: Config{RefreshGrace: -1},
			wantCode: "invalid_grant", wantRevoked: true},
		{name: "RFC 9700 §4.14.2 reuse after the successor was spent revokes", wait: time.Second,
			between: func(t *testing.T, f *lifeFixture, s *Server, in issued, second *TokenResponse) {
				f.mustRefresh(t, s, "web", second.RefreshToken)
			}, wantCode: "invalid_grant", wantRevoked: true},
		{name: "opaque client retry gets a fresh stored access token", client: "opaque", wait: time.Second},
		{name: "retry with a narrower scope", scope: "profile"},
		{name: "retry with a wider scope", scope: "openid profile email", wantCode: "invalid_scope"},
		{name: "retry after the grant was revoked", wantCode: "invalid_grant",
			between: func(t *testing.T, f *lifeFixture, s *Server, in issued, second *TokenResponse) {
				if err := f.db.RevokeGrant(t.Context(), in.grantID, f.clock.Now()); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "retry after the user was disabled", wantCode: "invalid_grant",
			between: func(t *testing.T, f *lifeFixture, s *Server, in issued, second *TokenResponse) {
				if err := f.db.SetUserDisabled(t.Context(), "user-1", true, f.clock.Now()); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "another client presenting the spent token revokes nothing", retryClient: "other", wantCode: "invalid_grant"},
		{name: "another client presenting it after the window revokes nothing", retryClient: "other", wait: time.Minute, wantCode: "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newLifeFixture(t)
			s := f.server(t, tt.cfg)
			client := tt.client
			if client == "" {
				client = "web"
			}
			retryClient := tt.retryClient
			if retryClient == "" {
				retryClient = client
			}
			in := f.login(t, s, client, "openid", "profile")
			f.clock.Advance(time.Minute)
			second := f.mustRefresh(t, s, client, in.RefreshToken)
			if tt.between != nil {
				tt.between(t, f, s, in, second)
			}
			f.clock.Advance(tt.wait)
			before := f.snapshot(t)

			retry, e := f.refresh(t, s, retryClient, in.RefreshToken, tt.scope)

			if tt.wantCode != "" {
				wantError(t, e, tt.wantCode, 400)
				if retry != nil {
					t.Errorf("response %+v with an error", retry)
				}
				if !tt.wantRevoked {
					f.wantChanged(t, before)
					return
				}
				// Every token of the family dies: the successor, and the
				// access tokens issued with it.
				f.wantChanged(t, before, grantKey(in.grantID))
				if g := f.grant(t, in.grantID); g.RevokedAt == nil || !g.RevokedAt.Equal(f.clock.Now()) {
					t.Errorf("grant revoked at %v, want %v", g.RevokedAt, f.clock.Now())
				}
				if !strings.Contains(f.logs.String(), "refresh token reused; grant revoked") {
					t.Errorf("log %q does not report the reuse", f.logs.String())
				}
				if _, e := f.refresh(t, s, client, second.RefreshToken, ""); e == nil || e.Code != "invalid_grant" {
					t.Errorf("the successor after the reuse: %v, want invalid_grant", e)
				}
				if info, err := s.Inspect(t.Context(), second.AccessToken); err != nil || info.Active {
					t.Errorf("the successor's access token after the reuse: %+v, %v", info, err)
				}
				return
			}
			if e != nil {
				t.Fatalf("retry: %v", e)
			}
			if retry.RefreshToken != second.RefreshToken {
				t.Errorf("retry got refresh token %q, want the same successor %q", retry.RefreshToken, second.RefreshToken)
			}
			wantScope := "openid profile"
			if tt.scope != "" {
				wantScope = tt.scope
			}
			if retry.AccessToken == second.AccessToken || retry.Scope != wantScope {
				t.Errorf("retry = %+v, want a fresh access token with scope %q", retry, wantScope)
			}
			if info, err := s.Inspect(t.Context(), retry.AccessToken); err != nil || !info.Active || info.GrantID != in.grantID || JoinScope(info.Scopes) != wantScope {
				t.Errorf("the retry's access token: %+v, %v", info, err)
			}
			// Only a fresh opaque access token is written: no new
			// refresh token, nothing spent or revoked.
			var want []string
			if client == "opaque" {
				want = append(want, accessKey(retry.AccessToken))
			}
			f.wantChanged(t, before, want...)
			// The successor is still unspent and good.
			f.mustRefresh(t, s, client, second.RefreshToken)
		})
	}
}

// hookSessions runs during once, the first time a session is checked
// after it is armed, then answers from the real session.Manager.
type hookSessions struct {
	Sessions
	armed  atomic.Bool
	during func(ctx context.Context)
}

func (h *hookSessions) Alive(ctx context.Context, id string, touch bool) (bool, error) {
	if h.armed.CompareAndSwap(true, false) {
		h.during(ctx)
	}
	return h.Sessions.Alive(ctx, id, touch)
}

// TestRefreshLostRotation: a refresh that read the token unspent and
// then lost the rotation to another refresh of the same token
// (storage.ErrConflict) is judged as a token presented twice: within the
// grace window it gets the winner's successor, in strict mode it is reuse.
func TestRefreshLostRotation(t *testing.T) {
	tests := []struct {
		name        string
		cfg         Config
		client      string
		wantRevoked bool
	}{
		{name: "grace window: the same successor", client: "web"},
		{name: "grace window, opaque client", client: "opaque"},
		{name: "strict rotation: reuse", cfg: Config{RefreshGrace: -1}, client: "web", wantRevoked: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newLifeFixture(t)
			hook := &hookSessions{}
			var s *Server
			s = f.server(t, tt.cfg, func(d *Deps) {
				hook.Sessions = session.NewManager(f.store, session.Config{}, session.Options{Now: f.clock.Now})
				d.Sessions = hook
			})
			in := f.login(t, s, tt.client)
			f.clock.Advance(time.Minute)
			before := f.snapshot(t)
			// The other request gets in while this one checks the grant:
			// after it read the token, before it rotates it.
			var winner *TokenResponse
			var winnerErr *Error
			hook.during = func(ctx context.Context) {
				winner, winnerErr = s.Token(ctx, TokenRequest{Credentials: f.creds(t, tt.client), GrantType: GrantRefreshToken, RefreshToken: in.RefreshToken})
			}
			hook.armed.Store(true)

			resp, e := f.refresh(t, s, tt.client, in.RefreshToken, "")

			if hook.armed.Load() {
				t.Fatal("the other request never ran")
			}
			if winnerErr != nil {
				t.Fatalf("the request that got in first: %v", winnerErr)
			}
			want := []string{refreshKey(in.RefreshToken), refreshKey(winner.RefreshToken), sessionKey("sess-1")}
			if tt.client == "opaque" {
				want = append(want, accessKey(winner.AccessToken))
			}
			if tt.wantRevoked {
				wantError(t, e, "invalid_grant", 400)
				f.wantChanged(t, before, append(want, grantKey(in.grantID))...)
				return
			}
			if e != nil {
				t.Fatalf("the request that lost the rotation: %v", e)
			}
			if resp.RefreshToken != winner.RefreshToken || resp.AccessToken == winner.AccessToken {
				t.Errorf("loser got %q / %q, winner %q / %q: want the same refresh token, another access token",
					resp.RefreshToken, resp.AccessToken, winner.RefreshToken, winner.AccessToken)
			}
			if tt.client == "opaque" {
				want = append(want, accessKey(resp.AccessToken))
			}
			// One successor; the grant lives.
			f.wantChanged(t, before, want...)
			for _, at := range []string{resp.AccessToken, winner.AccessToken} {
				if info, err := s.Inspect(t.Context(), at); err != nil || !info.Active {
					t.Errorf("access token %q: %+v, %v", at, info, err)
				}
			}
		})
	}
}

// TestRefreshConcurrent: many refreshes of one token at once, on both
// backends, within the grace window: all succeed with one successor, and
// the grant lives.
func TestRefreshConcurrent(t *testing.T) {
	backends := []struct {
		name string
		open func(t *testing.T) storage.Store
	}{
		{"postgres", func(t *testing.T) storage.Store { return pgtest.NewStore(t) }},
		{"sqlite", func(t *testing.T) storage.Store { return newStore(t) }},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			st := b.open(t)
			createClients(t, st, lifeClient("web", false, []string{GrantAuthorizationCode, GrantRefreshToken}, nil))
			createUsers(t, st, storage.User{ID: "user-1"})
			createSession(t, st, "sess-1", "user-1", testNow)
			m := newKeys(t, st)
			clk := newClock(testNow)
			s := newTestServer(t, Config{}, Deps{Store: st, Signer: m, Verifier: m, IDTokens: &keyIDTokens{keys: m}, Rand: rand.Reader, Now: clk.Now})
			creds := ClientCredentials{ID: "web", Secret: "web-secret", Method: AuthSecretBasic}
			code, err := s.IssueCode(t.Context(), &AuthorizeRequest{ClientID: "web", RedirectURI: webRedirect, Scopes: []string{"openid"}},
				Subject{UserID: "user-1", SessionID: "sess-1", AuthTime: testNow})
			if err != nil {
				t.Fatal(err)
			}
			first, e := s.Token(t.Context(), TokenRequest{Credentials: creds, GrantType: GrantAuthorizationCode, Code: code, RedirectURI: webRedirect})
			if e != nil {
				t.Fatal(e)
			}
			clk.Advance(time.Minute)

			const n = 12
			resps := make([]*TokenResponse, n)
			errs := make([]*Error, n)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					<-start
					resps[i], errs[i] = s.Token(t.Context(), TokenRequest{Credentials: creds, GrantType: GrantRefreshToken, RefreshToken: first.RefreshToken})
				})
			}
			close(start)
			wg.Wait()

			want := s.successorOf(first.RefreshToken)
			ats := map[string]bool{}
			for i := range n {
				if errs[i] != nil || resps[i].RefreshToken != want {
					t.Errorf("request %d: %+v, %v; want the one successor", i, resps[i], errs[i])
					continue
				}
				ats[resps[i].AccessToken] = true
			}
			if len(ats) != n && !t.Failed() {
				t.Errorf("%d distinct access tokens for %d requests", len(ats), n)
			}
			rt, err := st.GetRefreshToken(t.Context(), secrets.Hash(want))
			if err != nil || rt.UsedAt != nil {
				t.Errorf("successor %+v, %v: want it stored and unspent", rt, err)
			}
			old, err := st.GetRefreshToken(t.Context(), secrets.Hash(first.RefreshToken))
			if err != nil || old.UsedAt == nil || !bytes.Equal(old.SuccessorHash, secrets.Hash(want)) {
				t.Errorf("spent token %+v, %v", old, err)
			}
			if info, err := s.Inspect(t.Context(), want); err != nil || !info.Active {
				t.Errorf("successor after the race: %+v, %v; want active (grant not revoked)", info, err)
			}
		})
	}
}

// TestRefreshOfflineGrant: OIDC Core §11. A grant with offline_access
// outlives its login session; any other grant ends with it. Both end with
// their user.
func TestRefreshOfflineGrant(t *testing.T) {
	logout := func(t *testing.T, f *lifeFixture) {
		if err := f.db.EndSession(t.Context(), "sess-1", f.clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	timeout := func(t *testing.T, f *lifeFixture) { f.clock.Advance(day + time.Hour) }
	disable := func(t *testing.T, f *lifeFixture) {
		if err := f.db.SetUserDisabled(t.Context(), "user-1", true, f.clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		offline bool
		end     func(t *testing.T, f *lifeFixture)
		wantOK  bool
	}{
		{"offline grant survives logout", true, logout, true},
		{"offline grant survives the session's timeout", true, timeout, true},
		{"offline grant ends with its user", true, disable, false},
		{"bound grant ends with logout", false, logout, false},
		{"bound grant ends with the session's timeout", false, timeout, false},
		{"bound grant ends with its user", false, disable, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newLifeFixture(t)
			s := f.server(t, Config{})
			scopes := []string{"openid"}
			if tt.offline {
				scopes = append(scopes, "offline_access")
			}
			in := f.login(t, s, "web", scopes...)
			tt.end(t, f)
			f.clock.Advance(time.Minute)

			resp, e := f.refresh(t, s, "web", in.RefreshToken, "")

			if !tt.wantOK {
				wantError(t, e, "invalid_grant", 400)
				for _, tok := range []string{in.AccessToken, in.RefreshToken} {
					if info, err := s.Inspect(t.Context(), tok); err != nil || info.Active {
						t.Errorf("token after the end: %+v, %v; want inactive", info, err)
					}
				}
				return
			}
			if e != nil {
				t.Fatalf("refresh: %v", e)
			}
			if info, err := s.Inspect(t.Context(), resp.AccessToken); err != nil || !info.Active || info.UserID != "user-1" {
				t.Errorf("new access token: %+v, %v", info, err)
			}
			if info, err := s.Inspect(t.Context(), resp.RefreshToken); err != nil || !info.Active {
				t.Errorf("new refresh token: %+v, %v", info, err)
			}
		})
	}
}

// TestRefreshRacingRevocation: a refresh that found its grant live, and
// whose grant is revoked (or whose client is deleted) before it rotates,
// fails: rotation locks the grant row and writes nothing for a revoked
// grant, so no token outlives the revocation.
func TestRefreshRacingRevocation(t *testing.T) {
	tests := []struct {
		name   string
		client string
		during func(t *testing.T, f *lifeFixture, in issued)
	}{
		{"grant revoked, JWT client", "web", func(t *testing.T, f *lifeFixture, in issued) {
			if err := f.db.RevokeGrant(t.Context(), in.grantID, f.clock.Now()); err != nil {
				t.Error(err)
			}
		}},
		{"grant revoked, opaque client", "opaque", func(t *testing.T, f *lifeFixture, in issued) {
			if err := f.db.RevokeGrant(t.Context(), in.grantID, f.clock.Now()); err != nil {
				t.Error(err)
			}
		}},
		{"client deleted", "opaque", func(t *testing.T, f *lifeFixture, in issued) {
			if err := f.db.DeleteClient(t.Context(), "opaque"); err != nil {
				t.Error(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newLifeFixture(t)
			hook := &hookSessions{}
			s := f.server(t, Config{}, func(d *Deps) {
				hook.Sessions = session.NewManager(f.store, session.Config{}, session.Options{Now: f.clock.Now})
				d.Sessions = hook
			})
			in := f.login(t, s, tt.client)
			f.clock.Advance(time.Minute)
			// The revocation lands while the refresh checks the login
			// session: after it read the grant, before it rotates.
			hook.during = func(context.Context) { tt.during(t, f, in) }
			hook.armed.Store(true)
			before := f.snapshot(t)

			resp, e := f.refresh(t, s, tt.client, in.RefreshToken, "")

			if hook.armed.Load() {
				t.Fatal("the revocation never ran")
			}
			wantError(t, e, "invalid_grant", 400)
			if resp != nil {
				t.Errorf("response %+v with an error", resp)
			}
			after := f.snapshot(t)
			// No successor, no access token: only the revocation (and the
			// session activity recorded on the way) changed anything.
			for _, k := range changed(before, after) {
				_, was := before[k]
				if v, is := after[k]; is && (!was || k == refreshKey(in.RefreshToken)) {
					t.Errorf("the failed refresh wrote %s: %q", k, v)
				}
			}
		})
	}
}

// TestResourceIndicatorsForUsers: RFC 8707 §2.2 at the token endpoint for
// a person's tokens: the code exchange and every refresh may pick the
// access token's audience among the client's allowed resources. The
// refresh token and the grant are not narrowed by it.
func TestResourceIndicatorsForUsers(t *testing.T) {
	tests := []struct {
		name      string
		client    string // default api-web
		resources []string
		wantCode  string
		wantAud   []string
	}{
		{name: "no resource: the default audience", wantAud: []string{testIssuer}},
		{name: "RFC 8707 §2.2 allowed resource", resources: []string{"https://api.example/"}, wantAud: []string{"https://api.example/"}},
		{name: "two allowed resources", resources: []string{"https://api.example/", "https://other.example/v1"},
			wantAud: []string{"https://api.example/", "https://other.example/v1"}},
		{name: "resource not allowed", resources: []string{"https://evil.example/"}, wantCode: "invalid_target"},
		{name: "registered but relative", resources: []string{"relative/api"}, wantCode: "invalid_target"},
		{name: "client with no allowed resources", client: "web", resources: []string{"https://api.example/"}, wantCode: "invalid_target"},
	}
	for _, tt := range tests {
		for _, step := range []string{"code", "refresh"} {
			t.Run(tt.name+"/"+step, func(t *testing.T) {
				t.Parallel()
				f := newLifeFixture(t)
				client := tt.client
				if client == "" {
					client = "api-web"
					createClients(t, f.db, lifeClient("api-web", false, []string{GrantAuthorizationCode, GrantRefreshToken},
						func(m *storage.ClientMetadata) { m.AllowedResources = machineResources }))
				}
				s := f.server(t, Config{})
				code, err := s.IssueCode(t.Context(), &AuthorizeRequest{ClientID: client, RedirectURI: webRedirect, Scopes: []string{"openid"}},
					Subject{UserID: "user-1", SessionID: "sess-1", AuthTime: testNow})
				if err != nil {
					t.Fatal(err)
				}
				req := TokenRequest{Credentials: f.creds(t, client), GrantType: GrantAuthorizationCode, Code: code, RedirectURI: webRedirect}
				if step == "code" {
					req.Resources = tt.resources
				} else {
					resp, e := s.Token(t.Context(), req)
					if e != nil {
						t.Fatal(e)
					}
					f.clock.Advance(time.Minute)
					req = TokenRequest{Credentials: f.creds(t, client), GrantType: GrantRefreshToken, RefreshToken: resp.RefreshToken, Resources: tt.resources}
				}
				before := f.snapshot(t)

				resp, e := s.Token(t.Context(), req)

				if tt.wantCode != "" {
					wantError(t, e, tt.wantCode, 400)
					f.wantChanged(t, before)
					return
				}
				if e != nil {
					t.Fatalf("error = %v", e)
				}
				info, err := s.Inspect(t.Context(), resp.AccessToken)
				if err != nil || !info.Active || info.UserID != "user-1" || !slices.Equal(info.Audience, tt.wantAud) {
					t.Errorf("access token %+v, %v; want audience %q", info, err, tt.wantAud)
				}
				// The refresh token is the grant's, whatever the audience.
				if rt := f.refreshRow(t, resp.RefreshToken); !slices.Equal(rt.Scopes, []string{"openid"}) || rt.UsedAt != nil {
					t.Errorf("refresh token %+v", rt)
				}
			})
		}
	}
}

// TestRefreshGraceEndsWithTheFamily: the grace window does not stretch a
// family past its absolute expiry.
func TestRefreshGraceEndsWithTheFamily(t *testing.T) {
	f := newLifeFixture(t)
	s := f.server(t, Config{})
	in := f.login(t, s, "short", "openid") // idle 1 h, absolute 2 h
	f.clock.Advance(55 * time.Minute)
	first := f.mustRefresh(t, s, "short", in.RefreshToken)
	f.clock.Advance(55 * time.Minute)
	second := f.mustRefresh(t, s, "short", first.RefreshToken)
	f.clock.Advance(10*time.Minute - 2*time.Second) // 2 s before the family ends
	f.mustRefresh(t, s, "short", second.RefreshToken)
	f.clock.Advance(3 * time.Second) // within the window, past the end
	_, e := f.refresh(t, s, "short", second.RefreshToken, "")
	wantError(t, e, "invalid_grant", 400)
}
