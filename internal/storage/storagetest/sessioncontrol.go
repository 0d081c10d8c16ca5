package storagetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// testSessionControl covers what the account page, the sessions CLI and
// the concurrent-session limit need: listing live sessions, grants and
// consents, ending sessions under a limit, revoking a client's access.
func testSessionControl(t *testing.T, open OpenFunc) {
	now := t0().Add(time.Hour)
	// liveAt is a session of user last seen at lastSeen, expiring far
	// after now.
	liveAt := func(id, user string, lastSeen time.Time) storage.Session {
		sess := fullSession(id, "cookie-"+id, user)
		sess.LastSeenAt = lastSeen
		return sess
	}
	sessionIDs := func(list []storage.Session) []string {
		ids := []string{}
		for _, s := range list {
			ids = append(ids, s.ID)
		}
		return ids
	}
	ended := func(t *testing.T, s storage.Store, id string) bool {
		t.Helper()
		got, err := s.GetSession(t.Context(), id)
		must(t, err, "GetSession("+id+")")
		return got.EndedAt != nil
	}
	runCases(t, open, []testCase{
		{"ListUserSessions returns live sessions, most recently active first", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			must(t, s.CreateUser(ctx, fullUser("u2", "u2@example.com")), "CreateUser")
			older := liveAt("a-older", "u1", t0().Add(time.Minute))
			newer := liveAt("b-newer", "u1", t0().Add(2*time.Minute))
			endedSess := liveAt("c-ended", "u1", t0().Add(3*time.Minute))
			endedSess.EndedAt = ptr(t0().Add(4 * time.Minute))
			expired := liveAt("d-expired", "u1", t0().Add(3*time.Minute))
			expired.ExpiresAt = now // expires_at must be after now
			theirs := liveAt("e-theirs", "u2", t0().Add(5*time.Minute))
			for _, sess := range []storage.Session{older, newer, endedSess, expired, theirs} {
				must(t, s.CreateSession(ctx, sess), "CreateSession")
			}
			got, err := s.ListUserSessions(ctx, "u1", now)
			must(t, err, "ListUserSessions")
			assertEqual(t, "ListUserSessions(u1)", got, []storage.Session{newer, older})
			got, err = s.ListUserSessions(ctx, "nobody", now)
			must(t, err, "ListUserSessions(nobody)")
			assertEqual(t, "ListUserSessions(nobody)", sessionIDs(got), []string{})

			all, err := s.ListLiveSessions(ctx, now)
			must(t, err, "ListLiveSessions")
			assertEqual(t, "ListLiveSessions", sessionIDs(all), []string{"b-newer", "a-older", "e-theirs"})
		}},
		{"CreateSessionWithLimit without a limit just creates", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			for i := range 5 {
				sess := liveAt(fmt.Sprintf("s%d", i), "u1", t0())
				evicted, err := s.CreateSessionWithLimit(ctx, sess, storage.SessionLimit{}, now)
				must(t, err, "CreateSessionWithLimit")
				if len(evicted) != 0 {
					t.Errorf("unlimited sign-in evicted %v", evicted)
				}
				got, err := s.GetSession(ctx, sess.ID)
				must(t, err, "GetSession")
				assertEqual(t, "created session", got, sess)
			}
		}},
		{"CreateSessionWithLimit refuses at the limit and writes nothing", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			a, b := liveAt("a", "u1", t0()), liveAt("b", "u1", t0().Add(time.Second))
			prev := liveAt("prev", "u1", t0().Add(2*time.Second)) // this browser's session
			for _, sess := range []storage.Session{a, b, prev} {
				must(t, s.CreateSession(ctx, sess), "CreateSession")
			}
			bound := fullGrant("g-prev", "c1", "u1", "prev")
			createGrant(t, s, bound, storage.IssuedTokens{})
			// Three live, limit 2, replacing prev: a and b still fill it.
			_, err := s.CreateSessionWithLimit(ctx, liveAt("new", "u1", now),
				storage.SessionLimit{Max: 2, Action: storage.SessionLimitRefuse, Replaces: "prev"}, now)
			wantErr(t, err, storage.ErrSessionLimit, "CreateSessionWithLimit over the limit")
			_, err = s.GetSession(ctx, "new")
			wantErr(t, err, storage.ErrNotFound, "GetSession(refused)")
			for _, id := range []string{"a", "b", "prev"} {
				if ended(t, s, id) {
					t.Errorf("session %s ended by a refused sign-in", id)
				}
			}
			assertGrant(t, s, bound)
		}},
		{"CreateSessionWithLimit does not count the session it replaces", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			must(t, s.CreateSession(ctx, liveAt("prev", "u1", t0())), "CreateSession")
			bound := fullGrant("g-prev", "c1", "u1", "prev")
			createGrant(t, s, bound, storage.IssuedTokens{})
			evicted, err := s.CreateSessionWithLimit(ctx, liveAt("new", "u1", now),
				storage.SessionLimit{Max: 1, Action: storage.SessionLimitRefuse, Replaces: "prev"}, now)
			must(t, err, "CreateSessionWithLimit replacing the only session")
			if len(evicted) != 0 {
				t.Errorf("evicted %v, want none (the replaced session is not an eviction)", evicted)
			}
			if !ended(t, s, "prev") {
				t.Error("replaced session not ended")
			}
			bound.RevokedAt = &now
			assertGrant(t, s, bound)
			// A replaced id that does not exist is no obstacle.
			_, err = s.CreateSessionWithLimit(ctx, liveAt("new2", "u1", now),
				storage.SessionLimit{Max: 2, Action: storage.SessionLimitRefuse, Replaces: "gone"}, now)
			must(t, err, "CreateSessionWithLimit replacing an unknown session")
		}},
		{"CreateSessionWithLimit evicts the least recently active", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			must(t, s.CreateUser(ctx, fullUser("u2", "u2@example.com")), "CreateUser")
			oldest := liveAt("z-oldest", "u1", t0().Add(time.Second))
			middle := liveAt("y-middle", "u1", t0().Add(2*time.Second))
			recent := liveAt("x-recent", "u1", t0().Add(3*time.Second))
			idle := liveAt("w-idle", "u1", t0().Add(-time.Hour)) // before the idle cutoff
			theirs := liveAt("v-theirs", "u2", t0())
			for _, sess := range []storage.Session{oldest, middle, recent, idle, theirs} {
				must(t, s.CreateSession(ctx, sess), "CreateSession")
			}
			gOldest := fullGrant("g-oldest", "c1", "u1", "z-oldest")
			offline := fullGrant("g-offline", "c1", "u1", "z-oldest")
			offline.Offline = true
			gRecent := fullGrant("g-recent", "c1", "u1", "x-recent")
			rt := fullRefreshToken("rt-oldest", gOldest)
			createGrant(t, s, gOldest, storage.IssuedTokens{RefreshToken: &rt})
			createGrant(t, s, offline, storage.IssuedTokens{})
			createGrant(t, s, gRecent, storage.IssuedTokens{})

			sess := liveAt("new", "u1", now)
			evicted, err := s.CreateSessionWithLimit(ctx, sess, storage.SessionLimit{
				Max: 2, Action: storage.SessionLimitEvictOldest, IdleCutoff: t0(),
			}, now)
			must(t, err, "CreateSessionWithLimit")
			assertEqual(t, "evicted", evicted, []string{"z-oldest", "y-middle"})
			live, err := s.ListUserSessions(ctx, "u1", now)
			must(t, err, "ListUserSessions")
			// The idle session is not ended (it did not count), but it is
			// past its idle timeout: the caller treats it as gone.
			assertEqual(t, "live after eviction", sessionIDs(live), []string{"new", "x-recent", "w-idle"})
			if ended(t, s, "v-theirs") {
				t.Error("another user's session was evicted")
			}
			// Evicted as EndSession ends: bound grants revoked, offline kept.
			gOldest.RevokedAt = &now
			for _, g := range []storage.Grant{gOldest, offline, gRecent} {
				assertGrant(t, s, g)
			}
			later := now.Add(time.Minute)
			err = s.RotateRefreshToken(ctx, rt.TokenHash, later, successor(rt, "rt-oldest-2", later), nil)
			wantErr(t, err, storage.ErrRevoked, "RotateRefreshToken of an evicted session's grant")
		}},
		{"CreateSessionWithLimit for an unknown user is ErrNotFound", func(t *testing.T, s storage.Store) {
			seed(t, s)
			_, err := s.CreateSessionWithLimit(t.Context(), liveAt("s1", "nobody", now),
				storage.SessionLimit{Max: 1, Action: storage.SessionLimitEvictOldest}, now)
			wantErr(t, err, storage.ErrNotFound, "CreateSessionWithLimit(unknown user)")
		}},
		{"CreateSessionWithLimit with a taken ID is ErrAlreadyExists and evicts nothing", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			must(t, s.CreateSession(ctx, liveAt("s1", "u1", t0())), "CreateSession")
			dup := liveAt("s1", "u1", now)
			dup.SecretHash = hash("other cookie")
			_, err := s.CreateSessionWithLimit(ctx, dup, storage.SessionLimit{Max: 1, Action: storage.SessionLimitEvictOldest}, now)
			wantErr(t, err, storage.ErrAlreadyExists, "CreateSessionWithLimit(taken ID)")
			if ended(t, s, "s1") {
				t.Error("a failed sign-in evicted a session")
			}
		}},
		{"10 concurrent sign-ins under limit 3 (evict_oldest) leave exactly 3 live", func(t *testing.T, s storage.Store) {
			seed(t, s)
			evictions := make([][]string, 10)
			errs := hammer(t, 10, func(ctx context.Context, i int) error {
				var err error
				evictions[i], err = s.CreateSessionWithLimit(ctx, liveAt(fmt.Sprintf("s%02d", i), "u1", now),
					storage.SessionLimit{Max: 3, Action: storage.SessionLimitEvictOldest}, now)
				return err
			})
			for i, err := range errs {
				must(t, err, fmt.Sprintf("sign-in %d", i))
			}
			live, err := s.ListUserSessions(t.Context(), "u1", now)
			must(t, err, "ListUserSessions")
			if len(live) != 3 {
				t.Fatalf("%d live sessions after 10 concurrent sign-ins, want 3: %v", len(live), sessionIDs(live))
			}
			var total int
			for _, e := range evictions {
				total += len(e)
			}
			if total != 7 {
				t.Errorf("%d evictions reported, want 7", total)
			}
		}},
		{"10 concurrent sign-ins under limit 3 (refuse) admit exactly 3", func(t *testing.T, s storage.Store) {
			seed(t, s)
			errs := hammer(t, 10, func(ctx context.Context, i int) error {
				_, err := s.CreateSessionWithLimit(ctx, liveAt(fmt.Sprintf("s%02d", i), "u1", now),
					storage.SessionLimit{Max: 3, Action: storage.SessionLimitRefuse}, now)
				return err
			})
			var ok int
			for i, err := range errs {
				switch {
				case err == nil:
					ok++
				case !errors.Is(err, storage.ErrSessionLimit):
					t.Errorf("sign-in %d: %v, want nil or ErrSessionLimit", i, err)
				}
			}
			live, err := s.ListUserSessions(t.Context(), "u1", now)
			must(t, err, "ListUserSessions")
			if ok != 3 || len(live) != 3 {
				t.Errorf("%d sign-ins admitted, %d live sessions; want 3 and 3", ok, len(live))
			}
		}},
		{"SessionActivity counts recently active sessions, overall and per client", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			must(t, s.CreateUser(ctx, fullUser("u2", "u2@example.com")), "CreateUser")
			must(t, s.CreateClient(ctx, fullClient("c2")), "CreateClient")
			since := now.Add(-15 * time.Minute)
			a := liveAt("a", "u1", since)                       // active (at the boundary)
			b := liveAt("b", "u1", now.Add(-time.Minute))       // active
			c := liveAt("c", "u2", now.Add(-2*time.Minute))     // active
			stale := liveAt("d", "u2", since.Add(-time.Second)) // not active
			gone := liveAt("e", "u2", now)
			gone.EndedAt = ptr(now)
			for _, sess := range []storage.Session{a, b, c, stale, gone} {
				must(t, s.CreateSession(ctx, sess), "CreateSession")
			}
			// c1 was used in a and b (both u1) and c (u2); c2 in a and, twice, in b.
			for _, g := range []storage.Grant{
				fullGrant("g1", "c1", "u1", "a"), fullGrant("g2", "c1", "u1", "b"), fullGrant("g3", "c1", "u2", "c"),
				fullGrant("g4", "c2", "u1", "a"), fullGrant("g5", "c2", "u1", "b"), fullGrant("g6", "c2", "u1", "b"),
				fullGrant("g7", "c2", "u2", "d"), fullGrant("g8", "c2", "u2", "e"),
			} {
				createGrant(t, s, g, storage.IssuedTokens{})
			}
			got, err := s.SessionActivity(ctx, since, now)
			must(t, err, "SessionActivity")
			want := storage.SessionActivity{Sessions: 3, Users: 2, PerClient: []storage.ClientActivity{
				{ClientID: "c1", Sessions: 3, Users: 2},
				{ClientID: "c2", Sessions: 2, Users: 1},
			}}
			assertEqual(t, "SessionActivity", got, want)
			none, err := s.SessionActivity(ctx, now.Add(time.Minute), now)
			must(t, err, "SessionActivity(nothing since)")
			assertEqual(t, "SessionActivity(nothing since)", none, storage.SessionActivity{})
		}},
		{"ListUserGrants and RevokeUserClientGrants", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			must(t, s.CreateUser(ctx, fullUser("u2", "u2@example.com")), "CreateUser")
			must(t, s.CreateClient(ctx, fullClient("c2")), "CreateClient")
			g1 := fullGrant("g1", "c1", "u1", "s1")
			g2 := fullGrant("g2", "c1", "u1", "")
			g2.Offline = true
			g2.CreatedAt = g1.CreatedAt.Add(time.Second)
			revoked := fullGrant("g3", "c1", "u1", "s1")
			revoked.RevokedAt = ptr(t0())
			other := fullGrant("g4", "c2", "u1", "s1")
			theirs := fullGrant("g5", "c1", "u2", "s9")
			rt := fullRefreshToken("rt-g2", g2)
			createGrant(t, s, g2, storage.IssuedTokens{RefreshToken: &rt})
			for _, g := range []storage.Grant{g1, revoked, other, theirs} {
				createGrant(t, s, g, storage.IssuedTokens{})
			}
			got, err := s.ListUserGrants(ctx, "u1")
			must(t, err, "ListUserGrants")
			assertEqual(t, "ListUserGrants", got, []storage.Grant{g1, g2, other})

			n, err := s.RevokeUserClientGrants(ctx, "u1", "c1", now)
			must(t, err, "RevokeUserClientGrants")
			if n != 2 {
				t.Errorf("RevokeUserClientGrants revoked %d, want 2", n)
			}
			g1.RevokedAt, g2.RevokedAt = &now, &now
			for _, g := range []storage.Grant{g1, g2, revoked, other, theirs} {
				assertGrant(t, s, g)
			}
			later := now.Add(time.Minute)
			err = s.RotateRefreshToken(ctx, rt.TokenHash, later, successor(rt, "rt-g2-2", later), nil)
			wantErr(t, err, storage.ErrRevoked, "RotateRefreshToken after RevokeUserClientGrants")
			n, err = s.RevokeUserClientGrants(ctx, "u1", "c1", later)
			must(t, err, "RevokeUserClientGrants again")
			if n != 0 {
				t.Errorf("RevokeUserClientGrants again revoked %d, want 0", n)
			}
			got, err = s.ListUserGrants(ctx, "u1")
			must(t, err, "ListUserGrants after revocation")
			assertEqual(t, "ListUserGrants after revocation", got, []storage.Grant{other})
		}},
		{"ListUserConsents and DeleteConsent", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			must(t, s.CreateUser(ctx, fullUser("u2", "u2@example.com")), "CreateUser")
			must(t, s.CreateClient(ctx, fullClient("c2")), "CreateClient")
			c1 := storage.Consent{UserID: "u1", ClientID: "c1", Scopes: []string{"openid"}, CreatedAt: t0(), UpdatedAt: t0().Add(time.Second)}
			c2 := storage.Consent{UserID: "u1", ClientID: "c2", Scopes: []string{"openid", "email"}, CreatedAt: t0(), UpdatedAt: t0()}
			theirs := storage.Consent{UserID: "u2", ClientID: "c1", Scopes: []string{"openid"}, CreatedAt: t0(), UpdatedAt: t0()}
			for _, c := range []storage.Consent{c2, c1, theirs} {
				must(t, s.PutConsent(ctx, c), "PutConsent")
			}
			got, err := s.ListUserConsents(ctx, "u1")
			must(t, err, "ListUserConsents")
			assertEqual(t, "ListUserConsents", got, []storage.Consent{c1, c2})

			must(t, s.DeleteConsent(ctx, "u1", "c1"), "DeleteConsent")
			_, err = s.GetConsent(ctx, "u1", "c1")
			wantErr(t, err, storage.ErrNotFound, "GetConsent after DeleteConsent")
			wantErr(t, s.DeleteConsent(ctx, "u1", "c1"), storage.ErrNotFound, "DeleteConsent twice")
			_, err = s.GetConsent(ctx, "u2", "c1")
			must(t, err, "GetConsent(other user)")
			got, err = s.ListUserConsents(ctx, "u1")
			must(t, err, "ListUserConsents after delete")
			assertEqual(t, "ListUserConsents after delete", got, []storage.Consent{c2})
		}},
	})
}
