package storagetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

func testAuthCodes(t *testing.T, open OpenFunc) {
	runCases(t, open, []testCase{
		{"round-trips every field", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			fresh := fullAuthCode("code-1", "c1", "u1", "g1")
			used := fullAuthCode("code-2", "c1", "u1", "g2")
			used.UsedAt = ptr(t0().Add(time.Second + 3))
			bare := storage.AuthCode{CodeHash: hash("code-3"), ClientID: "c1", UserID: "u1", GrantID: "g3"}
			for _, c := range []storage.AuthCode{fresh, used, bare} {
				must(t, s.CreateAuthCode(ctx, c), "CreateAuthCode")
			}
			for _, c := range []storage.AuthCode{fresh, used, bare} {
				got, err := s.GetAuthCode(ctx, c.CodeHash)
				must(t, err, "GetAuthCode")
				assertEqual(t, "GetAuthCode", got, c)
			}
		}},
		{"unknown code is ErrNotFound", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			must(t, s.CreateAuthCode(ctx, fullAuthCode("code-1", "c1", "u1", "g1")), "CreateAuthCode")
			_, err := s.GetAuthCode(ctx, hash("code-2"))
			wantErr(t, err, storage.ErrNotFound, "GetAuthCode(code-2)")
			_, err = s.RedeemAuthCode(ctx, hash("code-2"), t0(), grantFor(fullAuthCode("code-2", "c1", "u1", "g2")), storage.IssuedTokens{})
			wantErr(t, err, storage.ErrNotFound, "RedeemAuthCode(code-2)")
			_, err = s.GetGrant(ctx, "g2")
			wantErr(t, err, storage.ErrNotFound, "GetGrant after redeeming an unknown code")
		}},
		{"duplicate CodeHash is ErrAlreadyExists", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			first := fullAuthCode("code-1", "c1", "u1", "g1")
			must(t, s.CreateAuthCode(ctx, first), "CreateAuthCode")
			wantErr(t, s.CreateAuthCode(ctx, fullAuthCode("code-1", "c1", "u1", "g9")),
				storage.ErrAlreadyExists, "CreateAuthCode(same hash)")
			got, err := s.GetAuthCode(ctx, first.CodeHash)
			must(t, err, "GetAuthCode")
			assertEqual(t, "code after failed insert", got, first)
		}},
		{"GetAuthCode returns expired codes", func(t *testing.T, s storage.Store) {
			// Expiry is the caller's check; the code must still be readable
			// so that a late replay can be recognized as one.
			ctx := t.Context()
			seed(t, s)
			c := fullAuthCode("code-1", "c1", "u1", "g1")
			c.ExpiresAt = t0().Add(-time.Hour)
			must(t, s.CreateAuthCode(ctx, c), "CreateAuthCode")
			got, err := s.GetAuthCode(ctx, c.CodeHash)
			must(t, err, "GetAuthCode")
			assertEqual(t, "expired code", got, c)
		}},
		{"RedeemAuthCode marks the code used and creates the grant", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			c := fullAuthCode("code-1", "c1", "u1", "g1")
			other := fullAuthCode("code-2", "c1", "u1", "g2")
			must(t, s.CreateAuthCode(ctx, c), "CreateAuthCode")
			must(t, s.CreateAuthCode(ctx, other), "CreateAuthCode")
			now := t0().Add(10*time.Second + 42)
			g := grantFor(c)
			got, err := s.RedeemAuthCode(ctx, c.CodeHash, now, g, storage.IssuedTokens{})
			must(t, err, "RedeemAuthCode")
			c.UsedAt = &now
			assertEqual(t, "returned code", got, c)
			got, err = s.GetAuthCode(ctx, c.CodeHash)
			must(t, err, "GetAuthCode")
			assertEqual(t, "stored code", got, c)
			gotGrant, err := s.GetGrant(ctx, g.ID)
			must(t, err, "GetGrant")
			assertEqual(t, "grant", gotGrant, g)
			got, err = s.GetAuthCode(ctx, other.CodeHash)
			must(t, err, "GetAuthCode(other)")
			assertEqual(t, "other code", got, other)
		}},
		{"RedeemAuthCode of a used code is ErrConflict and writes nothing", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			c := fullAuthCode("code-1", "c1", "u1", "g1")
			must(t, s.CreateAuthCode(ctx, c), "CreateAuthCode")
			first := t0().Add(time.Second)
			g := grantFor(c)
			_, err := s.RedeemAuthCode(ctx, c.CodeHash, first, g, storage.IssuedTokens{})
			must(t, err, "RedeemAuthCode")
			replay := g
			replay.Scopes = []string{"everything"}
			_, err = s.RedeemAuthCode(ctx, c.CodeHash, first.Add(time.Second), replay, storage.IssuedTokens{})
			wantErr(t, err, storage.ErrConflict, "RedeemAuthCode twice")
			got, err := s.GetAuthCode(ctx, c.CodeHash)
			must(t, err, "GetAuthCode")
			c.UsedAt = &first
			assertEqual(t, "code after replay", got, c)
			gotGrant, err := s.GetGrant(ctx, g.ID)
			must(t, err, "GetGrant")
			assertEqual(t, "grant after replay", gotGrant, g)
		}},
		{"RedeemAuthCode does not check expiry", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			c := fullAuthCode("code-1", "c1", "u1", "g1")
			must(t, s.CreateAuthCode(ctx, c), "CreateAuthCode")
			_, err := s.RedeemAuthCode(ctx, c.CodeHash, c.ExpiresAt.Add(time.Hour), grantFor(c), storage.IssuedTokens{})
			must(t, err, "RedeemAuthCode after expiry")
		}},
		{"RedeemAuthCode leaves the code unused when the grant cannot be created", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			// Two codes naming one grant: the second redemption cannot
			// insert the grant, and must not burn its code either.
			c1 := fullAuthCode("code-1", "c1", "u1", "g1")
			c2 := fullAuthCode("code-2", "c1", "u1", "g1")
			must(t, s.CreateAuthCode(ctx, c1), "CreateAuthCode")
			must(t, s.CreateAuthCode(ctx, c2), "CreateAuthCode")
			g := grantFor(c1)
			_, err := s.RedeemAuthCode(ctx, c1.CodeHash, t0(), g, storage.IssuedTokens{})
			must(t, err, "RedeemAuthCode(code-1)")
			dup := grantFor(c2)
			dup.Scopes = []string{"other"}
			_, err = s.RedeemAuthCode(ctx, c2.CodeHash, t0(), dup, storage.IssuedTokens{})
			wantErr(t, err, storage.ErrAlreadyExists, "RedeemAuthCode(code-2) with an existing grant ID")
			got, err := s.GetAuthCode(ctx, c2.CodeHash)
			must(t, err, "GetAuthCode")
			assertEqual(t, "code after failed redemption", got, c2)
			gotGrant, err := s.GetGrant(ctx, g.ID)
			must(t, err, "GetGrant")
			assertEqual(t, "existing grant", gotGrant, g)
		}},
		{"RedeemAuthCode refuses a grant with another ID", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			c := fullAuthCode("code-1", "c1", "u1", "g1")
			must(t, s.CreateAuthCode(ctx, c), "CreateAuthCode")
			g := grantFor(c)
			g.ID = "g-other"
			if _, err := s.RedeemAuthCode(ctx, c.CodeHash, t0(), g, storage.IssuedTokens{}); err == nil {
				t.Fatal("RedeemAuthCode with a grant ID that is not the code's: got nil error")
			}
			got, err := s.GetAuthCode(ctx, c.CodeHash)
			must(t, err, "GetAuthCode")
			assertEqual(t, "code after refused redemption", got, c)
			for _, id := range []string{"g1", "g-other"} {
				_, err = s.GetGrant(ctx, id)
				wantErr(t, err, storage.ErrNotFound, "GetGrant("+id+")")
			}
		}},
		{"RedeemAuthCode stores the issued tokens with the grant", func(t *testing.T, s storage.Store) {
			seed(t, s)
			for _, tc := range []struct {
				name            string
				refresh, access bool
			}{
				{"none (JWT access token, no refresh token)", false, false},
				{"refresh token only", true, false},
				{"opaque access token only", false, true},
				{"both", true, true},
			} {
				id := fmt.Sprintf("%t-%t", tc.refresh, tc.access)
				c := fullAuthCode("code-"+id, "c1", "u1", "g-"+id)
				must(t, s.CreateAuthCode(t.Context(), c), "CreateAuthCode")
				g := grantFor(c)
				rt, at := fullRefreshToken("rt-"+id, g), fullAccessToken("at-"+id, g)
				var issued storage.IssuedTokens
				if tc.refresh {
					issued.RefreshToken = &rt
				}
				if tc.access {
					issued.AccessToken = &at
				}
				_, err := s.RedeemAuthCode(t.Context(), c.CodeHash, t0(), g, issued)
				must(t, err, "RedeemAuthCode, "+tc.name)
				assertGrant(t, s, g)
				if tc.refresh {
					assertRefreshToken(t, s, tc.name, rt)
				} else {
					assertNoRefreshToken(t, s, tc.name, rt.TokenHash)
				}
				if tc.access {
					assertAccessToken(t, s, tc.name, at)
				} else {
					assertNoAccessToken(t, s, tc.name, at.TokenHash)
				}
			}
		}},
		{"RedeemAuthCode of a used code stores none of the issued tokens", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			c := fullAuthCode("code-1", "c1", "u1", "g1")
			must(t, s.CreateAuthCode(ctx, c), "CreateAuthCode")
			g := grantFor(c)
			rt, at := fullRefreshToken("rt-1", g), fullAccessToken("at-1", g)
			_, err := s.RedeemAuthCode(ctx, c.CodeHash, t0(), g, storage.IssuedTokens{RefreshToken: &rt, AccessToken: &at})
			must(t, err, "RedeemAuthCode")
			rt2, at2 := fullRefreshToken("rt-2", g), fullAccessToken("at-2", g)
			_, err = s.RedeemAuthCode(ctx, c.CodeHash, t0().Add(time.Second), g, storage.IssuedTokens{RefreshToken: &rt2, AccessToken: &at2})
			wantErr(t, err, storage.ErrConflict, "RedeemAuthCode twice")
			assertNoRefreshToken(t, s, "replay's refresh token", rt2.TokenHash)
			assertNoAccessToken(t, s, "replay's access token", at2.TokenHash)
			assertRefreshToken(t, s, "first refresh token", rt)
			assertAccessToken(t, s, "first access token", at)
		}},
		{"RedeemAuthCode writes nothing when an issued token cannot be stored", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			// Tokens of an earlier redemption take the hashes.
			first := fullAuthCode("code-1", "c1", "u1", "g1")
			must(t, s.CreateAuthCode(ctx, first), "CreateAuthCode")
			g1 := grantFor(first)
			takenRT, takenAT := fullRefreshToken("rt-taken", g1), fullAccessToken("at-taken", g1)
			_, err := s.RedeemAuthCode(ctx, first.CodeHash, t0(), g1, storage.IssuedTokens{RefreshToken: &takenRT, AccessToken: &takenAT})
			must(t, err, "RedeemAuthCode(code-1)")

			c := fullAuthCode("code-2", "c1", "u1", "g2")
			must(t, s.CreateAuthCode(ctx, c), "CreateAuthCode")
			g := grantFor(c)
			for _, tc := range []struct {
				name string
				rt   storage.RefreshToken
				at   storage.AccessToken
			}{
				{"refresh token hash taken", fullRefreshToken("rt-taken", g), fullAccessToken("at-new", g)},
				{"access token hash taken", fullRefreshToken("rt-new", g), fullAccessToken("at-taken", g)},
			} {
				_, err := s.RedeemAuthCode(ctx, c.CodeHash, t0(), g, storage.IssuedTokens{RefreshToken: &tc.rt, AccessToken: &tc.at})
				wantErr(t, err, storage.ErrAlreadyExists, "RedeemAuthCode, "+tc.name)
				got, err := s.GetAuthCode(ctx, c.CodeHash)
				must(t, err, "GetAuthCode")
				assertEqual(t, "code after failed redemption, "+tc.name, got, c)
				_, err = s.GetGrant(ctx, g.ID)
				wantErr(t, err, storage.ErrNotFound, "GetGrant after failed redemption, "+tc.name)
			}
			assertNoRefreshToken(t, s, "new refresh token", hash("rt-new"))
			assertNoAccessToken(t, s, "new access token", hash("at-new"))
			assertRefreshToken(t, s, "taken refresh token", takenRT)
			assertAccessToken(t, s, "taken access token", takenAT)
		}},
		{"RedeemAuthCode refuses issued tokens of another grant", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			other := fullAuthCode("code-0", "c1", "u1", "g-other")
			must(t, s.CreateAuthCode(ctx, other), "CreateAuthCode")
			_, err := s.RedeemAuthCode(ctx, other.CodeHash, t0(), grantFor(other), storage.IssuedTokens{})
			must(t, err, "RedeemAuthCode(code-0)")

			c := fullAuthCode("code-1", "c1", "u1", "g1")
			must(t, s.CreateAuthCode(ctx, c), "CreateAuthCode")
			g := grantFor(c)
			for _, tc := range []struct {
				name string
				rt   storage.RefreshToken
				at   storage.AccessToken
			}{
				{"refresh token of another grant", fullRefreshToken("rt-1", grantFor(other)), fullAccessToken("at-1", g)},
				{"access token of another grant", fullRefreshToken("rt-1", g), fullAccessToken("at-1", grantFor(other))},
			} {
				if _, err := s.RedeemAuthCode(ctx, c.CodeHash, t0(), g, storage.IssuedTokens{RefreshToken: &tc.rt, AccessToken: &tc.at}); err == nil {
					t.Fatalf("RedeemAuthCode with a %s: got nil error", tc.name)
				}
				got, err := s.GetAuthCode(ctx, c.CodeHash)
				must(t, err, "GetAuthCode")
				assertEqual(t, "code after refused redemption", got, c)
				_, err = s.GetGrant(ctx, g.ID)
				wantErr(t, err, storage.ErrNotFound, "GetGrant after refused redemption")
				assertNoRefreshToken(t, s, "refused refresh token", tc.rt.TokenHash)
				assertNoAccessToken(t, s, "refused access token", tc.at.TokenHash)
			}
		}},
		{"RedeemAuthCode from 50 goroutines succeeds exactly once", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			c := fullAuthCode("code-1", "c1", "u1", "g1")
			must(t, s.CreateAuthCode(ctx, c), "CreateAuthCode")
			g := grantFor(c)
			// Each caller redeems at its own instant, so the stored UsedAt
			// tells whose redemption was written.
			at := func(i int) time.Time { return t0().Add(time.Duration(i+1) * time.Millisecond) }
			got := make([]storage.AuthCode, 50)
			// And each issues its own tokens: only the winner's may exist.
			rts := make([]storage.RefreshToken, 50)
			ats := make([]storage.AccessToken, 50)
			for i := range rts {
				rts[i] = fullRefreshToken(fmt.Sprintf("rt-%d", i), g)
				ats[i] = fullAccessToken(fmt.Sprintf("at-%d", i), g)
			}
			errs := hammer(t, 50, func(ctx context.Context, i int) error {
				var err error
				got[i], err = s.RedeemAuthCode(ctx, c.CodeHash, at(i), g,
					storage.IssuedTokens{RefreshToken: &rts[i], AccessToken: &ats[i]})
				return err
			})
			winner := checkOneWinner(t, errs, storage.ErrConflict)
			for i := range rts {
				if i == winner {
					assertRefreshToken(t, s, "winner's refresh token", rts[i])
					assertAccessToken(t, s, "winner's access token", ats[i])
					continue
				}
				assertNoRefreshToken(t, s, fmt.Sprintf("loser %d's refresh token", i), rts[i].TokenHash)
				assertNoAccessToken(t, s, fmt.Sprintf("loser %d's access token", i), ats[i].TokenHash)
			}
			want := c
			want.UsedAt = ptr(at(winner))
			assertEqual(t, "winner's code", got[winner], want)
			stored, err := s.GetAuthCode(ctx, c.CodeHash)
			must(t, err, "GetAuthCode")
			assertEqual(t, "stored code", stored, want)
			gotGrant, err := s.GetGrant(ctx, g.ID)
			must(t, err, "GetGrant")
			assertEqual(t, "grant", gotGrant, g)
		}},
	})
}

func testGrants(t *testing.T, open OpenFunc) {
	// redeemed creates a code and redeems it, returning its grant.
	redeemed := func(t *testing.T, s storage.Store, code, grantID string) storage.Grant {
		t.Helper()
		c := fullAuthCode(code, "c1", "u1", grantID)
		must(t, s.CreateAuthCode(t.Context(), c), "CreateAuthCode")
		g := grantFor(c)
		_, err := s.RedeemAuthCode(t.Context(), c.CodeHash, t0(), g, storage.IssuedTokens{})
		must(t, err, "RedeemAuthCode")
		return g
	}
	runCases(t, open, []testCase{
		{"round-trips a grant without session or scopes", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			c := fullAuthCode("code-1", "c1", "u1", "g1")
			must(t, s.CreateAuthCode(ctx, c), "CreateAuthCode")
			g := storage.Grant{ID: "g1", UserID: "u1", ClientID: "c1", CreatedAt: t0()}
			_, err := s.RedeemAuthCode(ctx, c.CodeHash, t0(), g, storage.IssuedTokens{})
			must(t, err, "RedeemAuthCode")
			got, err := s.GetGrant(ctx, "g1")
			must(t, err, "GetGrant")
			assertEqual(t, "GetGrant", got, g)
		}},
		{"unknown grant is ErrNotFound", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			redeemed(t, s, "code-1", "g1")
			_, err := s.GetGrant(ctx, "g2")
			wantErr(t, err, storage.ErrNotFound, "GetGrant(g2)")
			wantErr(t, s.RevokeGrant(ctx, "g2", t0()), storage.ErrNotFound, "RevokeGrant(g2)")
		}},
		{"RevokeGrant sets RevokedAt once", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			g := redeemed(t, s, "code-1", "g1")
			other := redeemed(t, s, "code-2", "g2")
			at := t0().Add(time.Hour + 555)
			must(t, s.RevokeGrant(ctx, g.ID, at), "RevokeGrant")
			must(t, s.RevokeGrant(ctx, g.ID, at.Add(time.Hour)), "RevokeGrant again")
			got, err := s.GetGrant(ctx, g.ID)
			must(t, err, "GetGrant")
			g.RevokedAt = &at
			assertEqual(t, "revoked grant", got, g)
			got, err = s.GetGrant(ctx, other.ID)
			must(t, err, "GetGrant(other)")
			assertEqual(t, "other grant", got, other)
		}},
		{"round-trips Offline", func(t *testing.T, s storage.Store) {
			seed(t, s)
			online := fullGrant("g-online", "c1", "u1", "sid-1")
			offline := fullGrant("g-offline", "c1", "u1", "sid-1")
			offline.Offline = true
			for _, g := range []storage.Grant{online, offline} {
				createGrant(t, s, g, storage.IssuedTokens{})
			}
			for _, g := range []storage.Grant{online, offline} {
				assertGrant(t, s, g)
			}
		}},
		{"RevokeUserGrants revokes the user's unrevoked grants, offline or not", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			must(t, s.CreateUser(ctx, fullUser("u2", "u2@example.com")), "CreateUser")
			live := fullGrant("g-live", "c1", "u1", "sid-1")
			offline := fullGrant("g-offline", "c1", "u1", "sid-1")
			offline.Offline = true
			earlier := fullGrant("g-earlier", "c1", "u1", "sid-1")
			earlier.RevokedAt = ptr(t0().Add(time.Minute + 13))
			theirs := fullGrant("g-theirs", "c1", "u2", "sid-2")
			offlineRT := fullRefreshToken("rt-offline", offline)
			createGrant(t, s, offline, storage.IssuedTokens{RefreshToken: &offlineRT})
			for _, g := range []storage.Grant{live, earlier, theirs} {
				createGrant(t, s, g, storage.IssuedTokens{})
			}

			now := t0().Add(4*time.Hour + 17)
			n, err := s.RevokeUserGrants(ctx, "u1", now)
			must(t, err, "RevokeUserGrants")
			if n != 2 {
				t.Errorf("RevokeUserGrants revoked %d grants, want 2", n)
			}
			live.RevokedAt, offline.RevokedAt = &now, &now
			for _, g := range []storage.Grant{live, offline, earlier, theirs} {
				assertGrant(t, s, g)
			}
			// Offline grants too: their refresh tokens are dead.
			later := now.Add(time.Minute)
			err = s.RotateRefreshToken(ctx, offlineRT.TokenHash, later, successor(offlineRT, "rt-offline-2", later), nil)
			wantErr(t, err, storage.ErrRevoked, "RotateRefreshToken of the offline grant")

			n, err = s.RevokeUserGrants(ctx, "u1", now.Add(time.Hour))
			must(t, err, "RevokeUserGrants again")
			if n != 0 {
				t.Errorf("RevokeUserGrants again revoked %d grants, want 0", n)
			}
			for _, g := range []storage.Grant{live, offline, earlier, theirs} {
				assertGrant(t, s, g)
			}
			n, err = s.RevokeUserGrants(ctx, "nobody", now)
			must(t, err, "RevokeUserGrants(unknown user)")
			if n != 0 {
				t.Errorf("RevokeUserGrants(unknown user) revoked %d grants, want 0", n)
			}
		}},
	})
}
