package storagetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

func testRefreshTokens(t *testing.T, open OpenFunc) {
	// family creates grant g1 (user u1, client c1) with its first refresh
	// token, and another grant g2 with its own, which every case checks is
	// left alone.
	family := func(t *testing.T, s storage.Store) (storage.Grant, storage.RefreshToken, storage.RefreshToken) {
		t.Helper()
		seed(t, s)
		g := fullGrant("g1", "c1", "u1", "sid-1")
		rt := fullRefreshToken("rt-1", g)
		createGrant(t, s, g, storage.IssuedTokens{RefreshToken: &rt})
		other := fullGrant("g2", "c1", "u1", "sid-2")
		otherRT := fullRefreshToken("rt-other", other)
		createGrant(t, s, other, storage.IssuedTokens{RefreshToken: &otherRT})
		return g, rt, otherRT
	}
	rotateAt := t0().Add(time.Hour + 41)

	runCases(t, open, []testCase{
		{"round-trips every field", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			g := fullGrant("g1", "c1", "u1", "sid-1")
			full := fullRefreshToken("rt-1", g)
			createGrant(t, s, g, storage.IssuedTokens{RefreshToken: &full})
			bareGrant := storage.Grant{ID: "g2", UserID: "u1", ClientID: "c1"}
			bare := storage.RefreshToken{TokenHash: hash("rt-2"), GrantID: "g2", ClientID: "c1", UserID: "u1"}
			createGrant(t, s, bareGrant, storage.IssuedTokens{RefreshToken: &bare})
			assertRefreshToken(t, s, "full token", full)
			assertRefreshToken(t, s, "bare token", bare)

			// UsedAt and SuccessorHash are written by rotation.
			next := successor(full, "rt-1b", rotateAt)
			must(t, s.RotateRefreshToken(ctx, full.TokenHash, rotateAt, next, nil), "RotateRefreshToken")
			spent := full
			spent.UsedAt = &rotateAt
			spent.SuccessorHash = next.TokenHash
			assertRefreshToken(t, s, "spent token", spent)
			assertRefreshToken(t, s, "successor", next)
		}},
		{"unknown token is ErrNotFound and rotating it writes nothing", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			g, rt, otherRT := family(t, s)
			assertNoRefreshToken(t, s, "rt-unknown", hash("rt-unknown"))
			next := successor(rt, "rt-next", rotateAt)
			at := fullAccessToken("at-next", g)
			err := s.RotateRefreshToken(ctx, hash("rt-unknown"), rotateAt, next, &at)
			wantErr(t, err, storage.ErrNotFound, "RotateRefreshToken(unknown)")
			assertNoRefreshToken(t, s, "successor of an unknown token", next.TokenHash)
			assertNoAccessToken(t, s, "access token of a refused rotation", at.TokenHash)
			assertRefreshToken(t, s, "token", rt)
			assertRefreshToken(t, s, "other family's token", otherRT)
		}},
		{"RotateRefreshToken spends the token and adds its successor and access token", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			g, rt, otherRT := family(t, s)
			next := successor(rt, "rt-2", rotateAt)
			at := fullAccessToken("at-2", g)
			at.CreatedAt = rotateAt
			must(t, s.RotateRefreshToken(ctx, rt.TokenHash, rotateAt, next, &at), "RotateRefreshToken")
			spent := rt
			spent.UsedAt = &rotateAt
			spent.SuccessorHash = next.TokenHash
			assertRefreshToken(t, s, "spent token", spent)
			assertRefreshToken(t, s, "successor", next)
			assertAccessToken(t, s, "access token", at)
			assertRefreshToken(t, s, "other family's token", otherRT)
			assertGrant(t, s, g)

			// The successor rotates in turn; without an access token this
			// time (a JWT client).
			later := rotateAt.Add(time.Hour + 3)
			third := successor(next, "rt-3", later)
			must(t, s.RotateRefreshToken(ctx, next.TokenHash, later, third, nil), "RotateRefreshToken(successor)")
			next.UsedAt = &later
			next.SuccessorHash = third.TokenHash
			assertRefreshToken(t, s, "spent successor", next)
			assertRefreshToken(t, s, "third token", third)
		}},
		{"RotateRefreshToken of a spent token is ErrConflict and writes nothing", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			g, rt, _ := family(t, s)
			// A family of four: every member but the newest is spent, and
			// presenting any of them again is refused.
			members := []storage.RefreshToken{rt}
			for i := 1; i < 4; i++ {
				now := rotateAt.Add(time.Duration(i) * time.Minute)
				prev := &members[len(members)-1]
				next := successor(*prev, fmt.Sprintf("rt-%d", i+1), now)
				must(t, s.RotateRefreshToken(ctx, prev.TokenHash, now, next, nil), "RotateRefreshToken")
				prev.UsedAt = &now
				prev.SuccessorHash = next.TokenHash
				members = append(members, next)
			}
			replayAt := rotateAt.Add(time.Hour)
			for i, m := range members[:len(members)-1] {
				replay := successor(m, fmt.Sprintf("rt-replay-%d", i), replayAt)
				at := fullAccessToken(fmt.Sprintf("at-replay-%d", i), g)
				err := s.RotateRefreshToken(ctx, m.TokenHash, replayAt, replay, &at)
				wantErr(t, err, storage.ErrConflict, fmt.Sprintf("RotateRefreshToken(member %d) again", i))
				assertNoRefreshToken(t, s, "replay's successor", replay.TokenHash)
				assertNoAccessToken(t, s, "replay's access token", at.TokenHash)
			}
			for i, m := range members {
				assertRefreshToken(t, s, fmt.Sprintf("member %d after the replays", i), m)
			}
			// Reuse detection is the caller's: storage revokes nothing.
			assertGrant(t, s, g)
			newest := members[len(members)-1]
			must(t, s.RotateRefreshToken(ctx, newest.TokenHash, replayAt, successor(newest, "rt-5", replayAt), nil),
				"RotateRefreshToken(newest member)")
		}},
		{"RotateRefreshToken under a revoked grant is ErrRevoked and writes nothing", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			g, rt, otherRT := family(t, s)
			// One spent member and one live one, then the grant is revoked.
			live := successor(rt, "rt-2", rotateAt)
			must(t, s.RotateRefreshToken(ctx, rt.TokenHash, rotateAt, live, nil), "RotateRefreshToken")
			rt.UsedAt = &rotateAt
			rt.SuccessorHash = live.TokenHash
			revokedAt := rotateAt.Add(time.Minute)
			must(t, s.RevokeGrant(ctx, g.ID, revokedAt), "RevokeGrant")
			g.RevokedAt = &revokedAt

			later := revokedAt.Add(time.Minute)
			for _, tc := range []struct {
				name  string
				token storage.RefreshToken
			}{
				{"live token", live},
				// The grant is locked and checked first: a spent token of a
				// revoked family is ErrRevoked, not ErrConflict.
				{"spent token", rt},
			} {
				next := successor(tc.token, "rt-after-revoke", later)
				at := fullAccessToken("at-after-revoke", g)
				err := s.RotateRefreshToken(ctx, tc.token.TokenHash, later, next, &at)
				wantErr(t, err, storage.ErrRevoked, "RotateRefreshToken("+tc.name+")")
				assertNoRefreshToken(t, s, "successor after revocation", next.TokenHash)
				assertNoAccessToken(t, s, "access token after revocation", at.TokenHash)
			}
			assertRefreshToken(t, s, "spent token", rt)
			assertRefreshToken(t, s, "live token", live)
			assertGrant(t, s, g)
			// Another grant's family is not affected.
			must(t, s.RotateRefreshToken(ctx, otherRT.TokenHash, later, successor(otherRT, "rt-other-2", later), nil),
				"RotateRefreshToken(other family)")
		}},
		{"RotateRefreshToken does not check expiry", func(t *testing.T, s storage.Store) {
			// Expiry is the caller's check, as for codes.
			ctx := t.Context()
			_, rt, _ := family(t, s)
			late := rt.AbsoluteExpiresAt.Add(time.Hour)
			must(t, s.RotateRefreshToken(ctx, rt.TokenHash, late, successor(rt, "rt-2", late), nil),
				"RotateRefreshToken after expiry")
		}},
		{"RotateRefreshToken writes nothing when a new token cannot be stored", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			g, rt, otherRT := family(t, s)
			existingAT := fullAccessToken("at-existing", g)
			must(t, s.CreateAccessToken(ctx, existingAT), "CreateAccessToken")

			// The successor's hash is taken (by another family's token).
			clash := successor(rt, "rt-other", rotateAt)
			at := fullAccessToken("at-new", g)
			err := s.RotateRefreshToken(ctx, rt.TokenHash, rotateAt, clash, &at)
			wantErr(t, err, storage.ErrAlreadyExists, "RotateRefreshToken with a taken successor hash")
			assertNoAccessToken(t, s, "access token of the failed rotation", at.TokenHash)

			// The access token's hash is taken.
			next := successor(rt, "rt-2", rotateAt)
			atClash := fullAccessToken("at-existing", g)
			atClash.Scopes = []string{"other"}
			err = s.RotateRefreshToken(ctx, rt.TokenHash, rotateAt, next, &atClash)
			wantErr(t, err, storage.ErrAlreadyExists, "RotateRefreshToken with a taken access token hash")
			assertNoRefreshToken(t, s, "successor of the failed rotation", next.TokenHash)

			// Neither failure spent the token.
			assertRefreshToken(t, s, "token", rt)
			assertRefreshToken(t, s, "other family's token", otherRT)
			assertAccessToken(t, s, "existing access token", existingAT)
			must(t, s.RotateRefreshToken(ctx, rt.TokenHash, rotateAt, next, &at), "RotateRefreshToken after the failures")
		}},
		{"RotateRefreshToken refuses new tokens of another grant", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			g, rt, otherRT := family(t, s)
			other, err := s.GetGrant(ctx, "g2")
			must(t, err, "GetGrant(g2)")
			for _, tc := range []struct {
				name string
				next storage.RefreshToken
				at   storage.AccessToken
			}{
				{"successor of another grant", successor(otherRT, "rt-2", rotateAt), fullAccessToken("at-2", g)},
				{"access token of another grant", successor(rt, "rt-2", rotateAt), fullAccessToken("at-2", other)},
			} {
				if err := s.RotateRefreshToken(ctx, rt.TokenHash, rotateAt, tc.next, &tc.at); err == nil {
					t.Fatalf("RotateRefreshToken with a %s: got nil error", tc.name)
				}
				assertNoRefreshToken(t, s, "refused successor", tc.next.TokenHash)
				assertNoAccessToken(t, s, "refused access token", tc.at.TokenHash)
				assertRefreshToken(t, s, "token after refused rotation", rt)
			}
		}},
		{"RotateRefreshToken from 50 goroutines succeeds exactly once", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			g, rt, _ := family(t, s)
			// Each caller rotates at its own instant to its own successor,
			// so the stored token tells whose rotation was written.
			at := func(i int) time.Time { return rotateAt.Add(time.Duration(i+1) * time.Millisecond) }
			nexts := make([]storage.RefreshToken, 50)
			ats := make([]storage.AccessToken, 50)
			for i := range nexts {
				nexts[i] = successor(rt, fmt.Sprintf("rt-next-%d", i), at(i))
				ats[i] = fullAccessToken(fmt.Sprintf("at-next-%d", i), g)
			}
			errs := hammer(t, 50, func(ctx context.Context, i int) error {
				return s.RotateRefreshToken(ctx, rt.TokenHash, at(i), nexts[i], &ats[i])
			})
			winner := checkOneWinner(t, errs, storage.ErrConflict)
			spent := rt
			spent.UsedAt = ptr(at(winner))
			spent.SuccessorHash = nexts[winner].TokenHash
			assertRefreshToken(t, s, "spent token", spent)
			for i := range nexts {
				if i == winner {
					assertRefreshToken(t, s, "winner's successor", nexts[i])
					assertAccessToken(t, s, "winner's access token", ats[i])
					continue
				}
				assertNoRefreshToken(t, s, fmt.Sprintf("loser %d's successor", i), nexts[i].TokenHash)
				assertNoAccessToken(t, s, fmt.Sprintf("loser %d's access token", i), ats[i].TokenHash)
			}
			_, err := s.GetGrant(ctx, g.ID)
			must(t, err, "GetGrant")
		}},
		{"RotateRefreshToken racing RevokeGrant leaves no live token", func(t *testing.T, s storage.Store) {
			// Whichever commits first, the family ends revoked: either the
			// rotation was refused, or its successor belongs to a revoked
			// grant and is refused in turn.
			ctx := t.Context()
			seed(t, s)
			const rounds = 50
			var rotated, refused int
			for r := range rounds {
				g := fullGrant(fmt.Sprintf("g%d", r), "c1", "u1", "sid")
				rt := fullRefreshToken(fmt.Sprintf("rt%d", r), g)
				createGrant(t, s, g, storage.IssuedTokens{RefreshToken: &rt})
				next := successor(rt, fmt.Sprintf("rt%d-next", r), rotateAt)
				revokedAt := rotateAt.Add(time.Second)
				errs := hammer(t, 2, func(ctx context.Context, i int) error {
					if i == 0 {
						return s.RotateRefreshToken(ctx, rt.TokenHash, rotateAt, next, nil)
					}
					return s.RevokeGrant(ctx, g.ID, revokedAt)
				})
				must(t, errs[1], fmt.Sprintf("round %d: RevokeGrant", r))
				g.RevokedAt = &revokedAt
				assertGrant(t, s, g)
				var live storage.RefreshToken
				switch {
				case errs[0] == nil:
					rotated++
					spent := rt
					spent.UsedAt = &rotateAt
					spent.SuccessorHash = next.TokenHash
					assertRefreshToken(t, s, "spent token", spent)
					assertRefreshToken(t, s, "successor", next)
					live = next
				case errors.Is(errs[0], storage.ErrRevoked):
					refused++
					assertRefreshToken(t, s, "unspent token", rt)
					assertNoRefreshToken(t, s, "successor of a refused rotation", next.TokenHash)
					live = rt
				default:
					t.Fatalf("round %d: RotateRefreshToken: got error %v, want nil or %v", r, errs[0], storage.ErrRevoked)
				}
				after := successor(live, fmt.Sprintf("rt%d-after", r), revokedAt.Add(time.Second))
				err := s.RotateRefreshToken(ctx, live.TokenHash, revokedAt.Add(time.Second), after, nil)
				wantErr(t, err, storage.ErrRevoked, fmt.Sprintf("round %d: rotating the family's newest token after revocation", r))
			}
			t.Logf("%d rounds: the rotation committed first in %d, the revocation in %d", rounds, rotated, refused)
		}},
	})
}
