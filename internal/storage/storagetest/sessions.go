package storagetest

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

func testSessions(t *testing.T, open OpenFunc) {
	runCases(t, open, []testCase{
		{"round-trips every field", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			live := fullSession("s1", "cookie-1", "u1")
			ended := fullSession("s2", "cookie-2", "u1")
			ended.EndedAt = ptr(t0().Add(time.Hour + 17))
			bare := storage.Session{ID: "s3", SecretHash: hash("cookie-3"), UserID: "u1"}
			for _, sess := range []storage.Session{live, ended, bare} {
				must(t, s.CreateSession(ctx, sess), "CreateSession")
			}
			for _, sess := range []storage.Session{live, ended, bare} {
				got, err := s.GetSession(ctx, sess.ID)
				must(t, err, "GetSession")
				assertEqual(t, "GetSession", got, sess)

				got, err = s.GetSessionBySecret(ctx, sess.SecretHash)
				must(t, err, "GetSessionBySecret")
				assertEqual(t, "GetSessionBySecret", got, sess)
			}
		}},
		{"unknown session is ErrNotFound", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			must(t, s.CreateSession(ctx, fullSession("s1", "cookie-1", "u1")), "CreateSession")
			_, err := s.GetSession(ctx, "s2")
			wantErr(t, err, storage.ErrNotFound, "GetSession(s2)")
			_, err = s.GetSessionBySecret(ctx, hash("cookie-2"))
			wantErr(t, err, storage.ErrNotFound, "GetSessionBySecret(cookie-2)")
		}},
		{"duplicate ID is ErrAlreadyExists", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			first := fullSession("s1", "cookie-1", "u1")
			must(t, s.CreateSession(ctx, first), "CreateSession")
			err := s.CreateSession(ctx, fullSession("s1", "cookie-2", "u1"))
			wantErr(t, err, storage.ErrAlreadyExists, "CreateSession(same ID)")
			_, err = s.GetSessionBySecret(ctx, hash("cookie-2"))
			wantErr(t, err, storage.ErrNotFound, "GetSessionBySecret(cookie-2)")
		}},
		{"duplicate secret hash is ErrAlreadyExists", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			first := fullSession("s1", "cookie-1", "u1")
			must(t, s.CreateSession(ctx, first), "CreateSession")
			err := s.CreateSession(ctx, fullSession("s2", "cookie-1", "u1"))
			wantErr(t, err, storage.ErrAlreadyExists, "CreateSession(same secret)")
			_, err = s.GetSession(ctx, "s2")
			wantErr(t, err, storage.ErrNotFound, "GetSession(s2)")
			got, err := s.GetSessionBySecret(ctx, hash("cookie-1"))
			must(t, err, "GetSessionBySecret")
			assertEqual(t, "session after failed insert", got, first)
		}},
		{"TouchSession moves LastSeenAt and nothing else", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			sess := fullSession("s1", "cookie-1", "u1")
			other := fullSession("s2", "cookie-2", "u1")
			must(t, s.CreateSession(ctx, sess), "CreateSession")
			must(t, s.CreateSession(ctx, other), "CreateSession")
			now := t0().Add(3*time.Hour + 777)
			must(t, s.TouchSession(ctx, "s1", now), "TouchSession")
			got, err := s.GetSession(ctx, "s1")
			must(t, err, "GetSession")
			sess.LastSeenAt = now
			assertEqual(t, "touched session", got, sess)
			got, err = s.GetSession(ctx, "s2")
			must(t, err, "GetSession")
			assertEqual(t, "untouched session", got, other)
		}},
		{"TouchSession of unknown session is ErrNotFound", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			must(t, s.CreateSession(ctx, fullSession("s1", "cookie-1", "u1")), "CreateSession")
			wantErr(t, s.TouchSession(ctx, "s2", t0()), storage.ErrNotFound, "TouchSession(s2)")
		}},
		{"TouchSession of ended session is ErrConflict", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			sess := fullSession("s1", "cookie-1", "u1")
			must(t, s.CreateSession(ctx, sess), "CreateSession")
			end := t0().Add(time.Hour)
			must(t, s.EndSession(ctx, "s1", end), "EndSession")
			wantErr(t, s.TouchSession(ctx, "s1", t0().Add(2*time.Hour)), storage.ErrConflict, "TouchSession(ended)")
			got, err := s.GetSession(ctx, "s1")
			must(t, err, "GetSession")
			sess.EndedAt = &end
			assertEqual(t, "ended session after refused touch", got, sess)
		}},
		{"EndSession sets EndedAt once", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			sess := fullSession("s1", "cookie-1", "u1")
			other := fullSession("s2", "cookie-2", "u1")
			must(t, s.CreateSession(ctx, sess), "CreateSession")
			must(t, s.CreateSession(ctx, other), "CreateSession")
			end := t0().Add(time.Hour + 321)
			must(t, s.EndSession(ctx, "s1", end), "EndSession")
			// Ending again is not an error and keeps the first end time.
			must(t, s.EndSession(ctx, "s1", end.Add(time.Hour)), "EndSession again")
			sess.EndedAt = &end
			// An ended session is still found by its cookie: the caller
			// decides what ended means.
			got, err := s.GetSessionBySecret(ctx, sess.SecretHash)
			must(t, err, "GetSessionBySecret")
			assertEqual(t, "ended session", got, sess)
			got, err = s.GetSession(ctx, "s2")
			must(t, err, "GetSession")
			assertEqual(t, "other session", got, other)
		}},
		{"EndSession of unknown session is ErrNotFound", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			must(t, s.CreateSession(ctx, fullSession("s1", "cookie-1", "u1")), "CreateSession")
			wantErr(t, s.EndSession(ctx, "s2", t0()), storage.ErrNotFound, "EndSession(s2)")
		}},
		{"EndSession revokes the grants bound to the session", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			must(t, s.CreateSession(ctx, fullSession("s1", "cookie-1", "u1")), "CreateSession")
			must(t, s.CreateSession(ctx, fullSession("s2", "cookie-2", "u1")), "CreateSession")
			bound := fullGrant("g-bound", "c1", "u1", "s1")
			offline := fullGrant("g-offline", "c1", "u1", "s1")
			offline.Offline = true
			earlier := fullGrant("g-earlier", "c1", "u1", "s1")
			earlier.RevokedAt = ptr(t0().Add(time.Minute + 1))
			otherSession := fullGrant("g-s2", "c1", "u1", "s2")
			sessionless := fullGrant("g-none", "c1", "u1", "")
			boundRT, offlineRT := fullRefreshToken("rt-bound", bound), fullRefreshToken("rt-offline", offline)
			createGrant(t, s, bound, storage.IssuedTokens{RefreshToken: &boundRT})
			createGrant(t, s, offline, storage.IssuedTokens{RefreshToken: &offlineRT})
			for _, g := range []storage.Grant{earlier, otherSession, sessionless} {
				createGrant(t, s, g, storage.IssuedTokens{})
			}

			end := t0().Add(time.Hour + 3)
			must(t, s.EndSession(ctx, "s1", end), "EndSession")
			bound.RevokedAt = &end
			for _, g := range []storage.Grant{bound, offline, earlier, otherSession, sessionless} {
				assertGrant(t, s, g)
			}
			// What that is for: the bound grant's refresh tokens are dead,
			// the offline grant's live on.
			later := end.Add(time.Minute)
			err := s.RotateRefreshToken(ctx, boundRT.TokenHash, later, successor(boundRT, "rt-bound-2", later), nil)
			wantErr(t, err, storage.ErrRevoked, "RotateRefreshToken of the bound grant")
			must(t, s.RotateRefreshToken(ctx, offlineRT.TokenHash, later, successor(offlineRT, "rt-offline-2", later), nil),
				"RotateRefreshToken of the offline grant")
		}},
		{"EndSession of an ended session revokes grants bound to it since", func(t *testing.T, s storage.Store) {
			// A code issued before logout can be redeemed after it; ending
			// the session again must still reach the grant.
			ctx := t.Context()
			seed(t, s)
			sess := fullSession("s1", "cookie-1", "u1")
			must(t, s.CreateSession(ctx, sess), "CreateSession")
			end := t0().Add(time.Hour)
			must(t, s.EndSession(ctx, "s1", end), "EndSession")
			late := fullGrant("g-late", "c1", "u1", "s1")
			createGrant(t, s, late, storage.IssuedTokens{})
			again := end.Add(time.Hour + 5)
			must(t, s.EndSession(ctx, "s1", again), "EndSession again")
			late.RevokedAt = &again
			assertGrant(t, s, late)
			sess.EndedAt = &end
			got, err := s.GetSession(ctx, "s1")
			must(t, err, "GetSession")
			assertEqual(t, "session ended twice", got, sess)
		}},
		{"EndUserSessions ends the user's live sessions and revokes their grants", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			must(t, s.CreateUser(ctx, fullUser("u2", "u2@example.com")), "CreateUser")
			a, b := fullSession("a", "cookie-a", "u1"), fullSession("b", "cookie-b", "u1")
			ended := fullSession("c", "cookie-c", "u1")
			ended.EndedAt = ptr(t0().Add(time.Minute + 7))
			theirs := fullSession("d", "cookie-d", "u2")
			for _, sess := range []storage.Session{a, b, ended, theirs} {
				must(t, s.CreateSession(ctx, sess), "CreateSession")
			}
			ga, gb := fullGrant("g-a", "c1", "u1", "a"), fullGrant("g-b", "c1", "u1", "b")
			gbOffline := fullGrant("g-b-offline", "c1", "u1", "b")
			gbOffline.Offline = true
			gd := fullGrant("g-d", "c1", "u2", "d")
			for _, g := range []storage.Grant{ga, gb, gbOffline, gd} {
				createGrant(t, s, g, storage.IssuedTokens{})
			}

			now := t0().Add(2*time.Hour + 11)
			n, err := s.EndUserSessions(ctx, "u1", now)
			must(t, err, "EndUserSessions")
			if n != 2 {
				t.Errorf("EndUserSessions ended %d sessions, want 2", n)
			}
			a.EndedAt, b.EndedAt = &now, &now
			ga.RevokedAt, gb.RevokedAt = &now, &now
			check := func() {
				t.Helper()
				for _, want := range []storage.Session{a, b, ended, theirs} {
					got, err := s.GetSession(ctx, want.ID)
					must(t, err, "GetSession")
					assertEqual(t, "session "+want.ID, got, want)
				}
				for _, g := range []storage.Grant{ga, gb, gbOffline, gd} {
					assertGrant(t, s, g)
				}
			}
			check()

			// Again: nothing left to end, and nothing moves.
			n, err = s.EndUserSessions(ctx, "u1", now.Add(time.Hour))
			must(t, err, "EndUserSessions again")
			if n != 0 {
				t.Errorf("EndUserSessions again ended %d sessions, want 0", n)
			}
			check()
			n, err = s.EndUserSessions(ctx, "nobody", now)
			must(t, err, "EndUserSessions(unknown user)")
			if n != 0 {
				t.Errorf("EndUserSessions(unknown user) ended %d sessions, want 0", n)
			}
		}},
	})
}

func testAuthRequests(t *testing.T, open OpenFunc) {
	runCases(t, open, []testCase{
		{"round-trips every field", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			full := fullAuthRequest("r1", "c1")
			// max_age=0 is a real request (authenticate again now), not
			// an absent one: it must not come back as nil.
			zeroMaxAge := fullAuthRequest("r2", "c1")
			zeroMaxAge.MaxAge = ptr(0)
			bare := storage.AuthRequest{
				IDHash:      hash("r3"),
				ClientID:    "c1",
				RedirectURI: "https://c1.example/cb",
				CreatedAt:   t0(),
				ExpiresAt:   t0().Add(time.Minute),
			}
			for _, r := range []storage.AuthRequest{full, zeroMaxAge, bare} {
				must(t, s.CreateAuthRequest(ctx, r), "CreateAuthRequest")
			}
			for _, r := range []storage.AuthRequest{full, zeroMaxAge, bare} {
				got, err := s.GetAuthRequest(ctx, r.IDHash, t0())
				must(t, err, "GetAuthRequest")
				assertEqual(t, "GetAuthRequest", got, r)
			}
		}},
		{"unknown request is ErrNotFound", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			must(t, s.CreateAuthRequest(ctx, fullAuthRequest("r1", "c1")), "CreateAuthRequest")
			_, err := s.GetAuthRequest(ctx, hash("r2"), t0())
			wantErr(t, err, storage.ErrNotFound, "GetAuthRequest(r2)")
		}},
		{"duplicate IDHash is ErrAlreadyExists", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			first := fullAuthRequest("r1", "c1")
			must(t, s.CreateAuthRequest(ctx, first), "CreateAuthRequest")
			second := fullAuthRequest("r1", "c1")
			second.State = "other"
			wantErr(t, s.CreateAuthRequest(ctx, second), storage.ErrAlreadyExists, "CreateAuthRequest(same ID)")
			got, err := s.GetAuthRequest(ctx, first.IDHash, t0())
			must(t, err, "GetAuthRequest")
			assertEqual(t, "request after failed insert", got, first)
		}},
		{"GetAuthRequest honours expiry at now", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			r := fullAuthRequest("r1", "c1")
			must(t, s.CreateAuthRequest(ctx, r), "CreateAuthRequest")
			for _, tc := range []struct {
				name  string
				now   time.Time
				found bool
			}{
				{"a microsecond before expiry", r.ExpiresAt.Add(-time.Microsecond), true},
				{"at expiry", r.ExpiresAt, false},
				{"after expiry", r.ExpiresAt.Add(time.Hour), false},
			} {
				_, err := s.GetAuthRequest(ctx, r.IDHash, tc.now)
				if tc.found {
					must(t, err, "GetAuthRequest "+tc.name)
				} else {
					wantErr(t, err, storage.ErrNotFound, "GetAuthRequest "+tc.name)
				}
			}
		}},
		{"SetAuthRequestLogin records the sign-in", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			r := fullAuthRequest("r1", "c1")
			r.SessionID, r.LoginAt = "", nil
			other := fullAuthRequest("r2", "c1")
			must(t, s.CreateAuthRequest(ctx, r), "CreateAuthRequest")
			must(t, s.CreateAuthRequest(ctx, other), "CreateAuthRequest")
			loginAt := t0().Add(time.Minute + 99)
			must(t, s.SetAuthRequestLogin(ctx, r.IDHash, "sid-7", loginAt), "SetAuthRequestLogin")
			got, err := s.GetAuthRequest(ctx, r.IDHash, t0())
			must(t, err, "GetAuthRequest")
			r.SessionID, r.LoginAt = "sid-7", &loginAt
			assertEqual(t, "request after login", got, r)
			got, err = s.GetAuthRequest(ctx, other.IDHash, t0())
			must(t, err, "GetAuthRequest")
			assertEqual(t, "other request", got, other)
		}},
		{"SetAuthRequestLogin after expiry is ErrNotFound", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			r := fullAuthRequest("r1", "c1")
			r.SessionID, r.LoginAt = "", nil
			must(t, s.CreateAuthRequest(ctx, r), "CreateAuthRequest")
			err := s.SetAuthRequestLogin(ctx, r.IDHash, "sid-7", r.ExpiresAt)
			wantErr(t, err, storage.ErrNotFound, "SetAuthRequestLogin at expiry")
			got, err := s.GetAuthRequest(ctx, r.IDHash, t0())
			must(t, err, "GetAuthRequest")
			assertEqual(t, "request after refused login", got, r)
		}},
		{"SetAuthRequestLogin of unknown request is ErrNotFound", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			must(t, s.CreateAuthRequest(ctx, fullAuthRequest("r1", "c1")), "CreateAuthRequest")
			err := s.SetAuthRequestLogin(ctx, hash("r2"), "sid-7", t0())
			wantErr(t, err, storage.ErrNotFound, "SetAuthRequestLogin(r2)")
		}},
		{"ConsumeAuthRequest returns the request once", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			r := fullAuthRequest("r1", "c1")
			other := fullAuthRequest("r2", "c1")
			must(t, s.CreateAuthRequest(ctx, r), "CreateAuthRequest")
			must(t, s.CreateAuthRequest(ctx, other), "CreateAuthRequest")
			got, err := s.ConsumeAuthRequest(ctx, r.IDHash, t0())
			must(t, err, "ConsumeAuthRequest")
			assertEqual(t, "consumed request", got, r)
			_, err = s.ConsumeAuthRequest(ctx, r.IDHash, t0())
			wantErr(t, err, storage.ErrNotFound, "ConsumeAuthRequest twice")
			_, err = s.GetAuthRequest(ctx, r.IDHash, t0())
			wantErr(t, err, storage.ErrNotFound, "GetAuthRequest after consume")
			_, err = s.GetAuthRequest(ctx, other.IDHash, t0())
			must(t, err, "GetAuthRequest(other) after consume")
		}},
		{"ConsumeAuthRequest of expired request is ErrNotFound", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			r := fullAuthRequest("r1", "c1")
			must(t, s.CreateAuthRequest(ctx, r), "CreateAuthRequest")
			_, err := s.ConsumeAuthRequest(ctx, r.IDHash, r.ExpiresAt)
			wantErr(t, err, storage.ErrNotFound, "ConsumeAuthRequest at expiry")
			_, err = s.ConsumeAuthRequest(ctx, hash("r2"), t0())
			wantErr(t, err, storage.ErrNotFound, "ConsumeAuthRequest(r2)")
		}},
		{"ConsumeAuthRequest from 50 goroutines succeeds exactly once", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			r := fullAuthRequest("r1", "c1")
			must(t, s.CreateAuthRequest(ctx, r), "CreateAuthRequest")
			got := make([]storage.AuthRequest, 50)
			errs := hammer(t, 50, func(ctx context.Context, i int) error {
				var err error
				got[i], err = s.ConsumeAuthRequest(ctx, r.IDHash, t0())
				return err
			})
			winner := checkOneWinner(t, errs, storage.ErrNotFound)
			assertEqual(t, "winner's request", got[winner], r)
		}},
	})
}
