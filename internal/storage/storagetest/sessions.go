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
