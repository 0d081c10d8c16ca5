package storagetest

import (
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

func testDeleteExpired(t *testing.T, open OpenFunc) {
	runCases(t, open, []testCase{
		{"removes what is past its expiry and nothing else", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			now := t0().Add(time.Hour)
			// Expiry strictly before now is removed; at now or later stays.
			before, at, after := now.Add(-time.Microsecond), now, now.Add(time.Microsecond)

			reqs := map[string]time.Time{"req-before": before, "req-at": at, "req-after": after}
			for id, exp := range reqs {
				r := fullAuthRequest(id, "c1")
				r.ExpiresAt = exp
				must(t, s.CreateAuthRequest(ctx, r), "CreateAuthRequest")
			}
			codes := map[string]time.Time{"code-before": before, "code-used-before": before, "code-at": at, "code-after": after}
			for id, exp := range codes {
				c := fullAuthCode(id, "c1", "u1", "grant-"+id)
				c.ExpiresAt = exp
				must(t, s.CreateAuthCode(ctx, c), "CreateAuthCode")
			}
			// A used code is removed at expiry like any other.
			_, err := s.RedeemAuthCode(ctx, hash("code-used-before"), t0(),
				grantFor(fullAuthCode("code-used-before", "c1", "u1", "grant-code-used-before")), storage.IssuedTokens{})
			must(t, err, "RedeemAuthCode")
			sessions := map[string]time.Time{"s-before": before, "s-at": at, "s-after": after, "s-ended": after}
			for id, exp := range sessions {
				sess := fullSession(id, "cookie-"+id, "u1")
				sess.ExpiresAt = exp
				must(t, s.CreateSession(ctx, sess), "CreateSession")
			}
			// Ending a session does not make it expired.
			must(t, s.EndSession(ctx, "s-ended", t0()), "EndSession")

			n, err := s.DeleteExpired(ctx, now)
			must(t, err, "DeleteExpired")
			if n != 4 {
				t.Errorf("DeleteExpired removed %d rows, want 4", n)
			}

			// GetAuthRequest's own expiry check would hide a row that is
			// still there, so look at the requests as of long ago.
			longAgo := t0().Add(-24 * time.Hour)
			check := func(id string, exp time.Time, err error) {
				t.Helper()
				if exp.Before(now) {
					wantErr(t, err, storage.ErrNotFound, id+" after DeleteExpired")
				} else {
					must(t, err, id+" after DeleteExpired")
				}
			}
			for id, exp := range reqs {
				_, err := s.GetAuthRequest(ctx, hash(id), longAgo)
				check(id, exp, err)
			}
			for id, exp := range codes {
				_, err := s.GetAuthCode(ctx, hash(id))
				check(id, exp, err)
			}
			for id, exp := range sessions {
				_, err := s.GetSession(ctx, id)
				check(id, exp, err)
			}
			// Grants outlive the code they came from.
			_, err = s.GetGrant(ctx, "grant-code-used-before")
			must(t, err, "GetGrant after its code was removed")

			n, err = s.DeleteExpired(ctx, now)
			must(t, err, "DeleteExpired again")
			if n != 0 {
				t.Errorf("DeleteExpired again removed %d rows, want 0", n)
			}
		}},
	})
}
