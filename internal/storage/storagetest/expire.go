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
		{"removes tokens past expiry, keeping spent refresh tokens until their family ends", testDeleteExpiredTokens},
	})
}

func testDeleteExpiredTokens(t *testing.T, s storage.Store) {
	ctx := t.Context()
	seed(t, s)
	// Before the codes createGrant makes expire, so that only tokens are
	// counted.
	now := t0().Add(30 * time.Second)
	before, at, after := now.Add(-time.Microsecond), now, now.Add(time.Microsecond)

	// Refresh tokens, each the first of its own family; the spent ones are
	// rotated to a successor that keeps the family's absolute expiry and
	// has an idle expiry after now.
	type rtCase struct {
		idle, absolute time.Time
		spent          bool
		removed        bool
	}
	rts := map[string]rtCase{
		"unspent-idle-before":       {before, after, false, true},
		"unspent-idle-at":           {at, after, false, false},
		"unspent-idle-after":        {after, after, false, false},
		"unspent-absolute-before":   {after, before, false, true},
		"unspent-absolute-at":       {after, at, false, false},
		"spent-idle-before":         {before, after, true, false}, // kept to recognize reuse
		"spent-idle-before-abs-at":  {before, at, true, false},
		"spent-absolute-before":     {after, before, true, true},
		"spent-idle-and-abs-before": {before, before, true, true},
	}
	successors := map[string]bool{} // successor name -> removed
	wantRemoved := int64(0)
	for name, tc := range rts {
		g := fullGrant("g-"+name, "c1", "u1", "sid")
		rt := fullRefreshToken(name, g)
		rt.ExpiresAt, rt.AbsoluteExpiresAt = tc.idle, tc.absolute
		createGrant(t, s, g, storage.IssuedTokens{RefreshToken: &rt})
		if tc.spent {
			next := successor(rt, name+"-next", t0())
			next.ExpiresAt = after
			must(t, s.RotateRefreshToken(ctx, rt.TokenHash, t0(), next, nil), "RotateRefreshToken "+name)
			successors[name+"-next"] = tc.absolute.Before(now)
			if tc.absolute.Before(now) {
				wantRemoved++
			}
		}
		if tc.removed {
			wantRemoved++
		}
	}

	g := fullGrant("g-at", "c1", "u1", "sid")
	createGrant(t, s, g, storage.IssuedTokens{})
	ats := map[string]time.Time{"at-before": before, "at-at": at, "at-after": after, "at-revoked-after": after}
	for name, exp := range ats {
		token := fullAccessToken(name, g)
		token.ExpiresAt = exp
		must(t, s.CreateAccessToken(ctx, token), "CreateAccessToken "+name)
	}
	// Revoking does not make a token expired.
	must(t, s.RevokeAccessToken(ctx, hash("at-revoked-after"), t0()), "RevokeAccessToken")
	machine := storage.AccessToken{TokenHash: hash("machine-before"), ClientID: "c1", Subject: "c1", CreatedAt: t0(), ExpiresAt: before}
	must(t, s.CreateAccessToken(ctx, machine), "CreateAccessToken machine")
	ats["machine-before"] = before
	wantRemoved += 2

	jtis := map[string]time.Time{"jti-before": before, "jti-at": at, "jti-after": after}
	for jti, exp := range jtis {
		must(t, s.RevokeJWT(ctx, jti, exp), "RevokeJWT "+jti)
	}
	// Revoking again never shortens the entry's life, in either order.
	must(t, s.RevokeJWT(ctx, "jti-extended", before), "RevokeJWT")
	must(t, s.RevokeJWT(ctx, "jti-extended", after), "RevokeJWT again, later expiry")
	must(t, s.RevokeJWT(ctx, "jti-not-shortened", after), "RevokeJWT")
	must(t, s.RevokeJWT(ctx, "jti-not-shortened", before), "RevokeJWT again, earlier expiry")
	jtis["jti-extended"], jtis["jti-not-shortened"] = after, after
	wantRemoved++

	n, err := s.DeleteExpired(ctx, now)
	must(t, err, "DeleteExpired")
	if n != wantRemoved {
		t.Errorf("DeleteExpired removed %d rows, want %d", n, wantRemoved)
	}

	check := func(what string, removed bool, err error) {
		t.Helper()
		if removed {
			wantErr(t, err, storage.ErrNotFound, what+" after DeleteExpired")
		} else {
			must(t, err, what+" after DeleteExpired")
		}
	}
	for name, tc := range rts {
		_, err := s.GetRefreshToken(ctx, hash(name))
		check("refresh token "+name, tc.removed, err)
		// Grants are not DeleteExpired's to remove.
		_, err = s.GetGrant(ctx, "g-"+name)
		must(t, err, "GetGrant(g-"+name+")")
	}
	for name, removed := range successors {
		_, err := s.GetRefreshToken(ctx, hash(name))
		check("refresh token "+name, removed, err)
	}
	for name, exp := range ats {
		_, err := s.GetAccessToken(ctx, hash(name))
		check("access token "+name, exp.Before(now), err)
	}
	for jti, exp := range jtis {
		revoked, err := s.IsJWTRevoked(ctx, jti)
		must(t, err, "IsJWTRevoked("+jti+")")
		if revoked == exp.Before(now) {
			t.Errorf("IsJWTRevoked(%s) after DeleteExpired = %v, want %v", jti, revoked, !exp.Before(now))
		}
	}

	n, err = s.DeleteExpired(ctx, now)
	must(t, err, "DeleteExpired again")
	if n != 0 {
		t.Errorf("DeleteExpired again removed %d rows, want 0", n)
	}
}
