package storagetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// bcClient is a client that registered a back-channel logout URI (as
// fullClient does) or, with uri false, one that did not.
func bcClient(t *testing.T, s storage.Store, id string, uri bool) {
	t.Helper()
	c := fullClient(id)
	if !uri {
		c.Metadata.BackchannelLogoutURI = ""
		c.Metadata.BackchannelLogoutSessionRequired = false
	}
	must(t, s.CreateClient(t.Context(), c), "CreateClient("+id+")")
}

// outbox returns the stored back-channel logouts.
func outbox(t *testing.T, s storage.Store) []storage.BackchannelLogout {
	t.Helper()
	rows, err := s.ListBackchannelLogouts(t.Context())
	must(t, err, "ListBackchannelLogouts")
	return rows
}

// queued is the row EndSession adds at now, with the ID the store gave it.
func queued(id int64, sessionID, userID, clientID string, now time.Time) storage.BackchannelLogout {
	return storage.BackchannelLogout{
		ID: id, SessionID: sessionID, UserID: userID, ClientID: clientID,
		CreatedAt: now, NextAttemptAt: now,
	}
}

// assertOutbox compares the rows, ignoring their order and taking IDs from
// got (the store assigns them).
func assertOutbox(t *testing.T, s storage.Store, want []storage.BackchannelLogout) []storage.BackchannelLogout {
	t.Helper()
	got := outbox(t, s)
	key := func(b storage.BackchannelLogout) string { return b.SessionID + "/" + b.ClientID }
	slices.SortFunc(got, func(a, b storage.BackchannelLogout) int { return cmpString(key(a), key(b)) })
	want = slices.Clone(want)
	slices.SortFunc(want, func(a, b storage.BackchannelLogout) int { return cmpString(key(a), key(b)) })
	if len(got) != len(want) {
		t.Fatalf("outbox has %d rows, want %d:\n got %+v\nwant %+v", len(got), len(want), got, want)
	}
	for i := range want {
		want[i].ID = got[i].ID
		assertEqual(t, "outbox row "+key(want[i]), got[i], want[i])
	}
	return got
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// endedSessions creates n sessions of u1, each with a grant of client c1,
// and ends them all at now: n outbox rows.
func endedSessions(t *testing.T, s storage.Store, n int, now time.Time) []storage.BackchannelLogout {
	t.Helper()
	ctx := t.Context()
	for i := range n {
		sid := fmt.Sprintf("s%03d", i)
		must(t, s.CreateSession(ctx, fullSession(sid, "cookie-"+sid, "u1")), "CreateSession")
		createGrant(t, s, fullGrant("g-"+sid, "c1", "u1", sid), storage.IssuedTokens{})
	}
	ended, err := s.EndUserSessions(ctx, "u1", now)
	must(t, err, "EndUserSessions")
	if ended != int64(n) {
		t.Fatalf("EndUserSessions ended %d sessions, want %d", ended, n)
	}
	rows := outbox(t, s)
	if len(rows) != n {
		t.Fatalf("outbox has %d rows, want %d", len(rows), n)
	}
	return rows
}

func testBackchannelLogouts(t *testing.T, open OpenFunc) {
	runCases(t, open, []testCase{
		{"EndSession queues exactly the participating clients with a URI", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s) // c1 has a back-channel URI
			for _, c := range []struct {
				id  string
				uri bool
			}{{"c-offline", true}, {"c-revoked", true}, {"c-nouri", false}, {"c-other", true}, {"c-idle", true}} {
				bcClient(t, s, c.id, c.uri)
			}
			must(t, s.CreateSession(ctx, fullSession("s1", "cookie-1", "u1")), "CreateSession")
			must(t, s.CreateSession(ctx, fullSession("s2", "cookie-2", "u1")), "CreateSession")
			offline := fullGrant("g-offline", "c-offline", "u1", "s1")
			offline.Offline = true
			revoked := fullGrant("g-revoked", "c-revoked", "u1", "s1")
			revoked.RevokedAt = ptr(t0().Add(time.Minute))
			for _, g := range []storage.Grant{
				fullGrant("g-c1-a", "c1", "u1", "s1"),
				fullGrant("g-c1-b", "c1", "u1", "s1"), // twice: one row
				offline,
				revoked,
				fullGrant("g-nouri", "c-nouri", "u1", "s1"),
				fullGrant("g-other", "c-other", "u1", "s2"),
				fullGrant("g-sessionless", "c-idle", "u1", ""),
			} {
				createGrant(t, s, g, storage.IssuedTokens{})
			}
			if got := outbox(t, s); len(got) != 0 {
				t.Fatalf("outbox before any session ended: %+v", got)
			}

			end := t0().Add(time.Hour + 7)
			must(t, s.EndSession(ctx, "s1", end), "EndSession")
			want := []storage.BackchannelLogout{
				queued(0, "s1", "u1", "c1", end),
				queued(0, "s1", "u1", "c-offline", end),
				queued(0, "s1", "u1", "c-revoked", end),
			}
			assertOutbox(t, s, want)

			// Ending it again adds nobody who was told already, but does
			// reach a client that joined the session since.
			createGrant(t, s, fullGrant("g-late", "c-idle", "u1", "s1"), storage.IssuedTokens{})
			again := end.Add(time.Hour)
			must(t, s.EndSession(ctx, "s1", again), "EndSession again")
			want = append(want, queued(0, "s1", "u1", "c-idle", again))
			assertOutbox(t, s, want)
		}},
		{"EndSession of unknown session queues nothing", func(t *testing.T, s storage.Store) {
			seed(t, s)
			createGrant(t, s, fullGrant("g1", "c1", "u1", "ghost"), storage.IssuedTokens{})
			wantErr(t, s.EndSession(t.Context(), "ghost", t0()), storage.ErrNotFound, "EndSession(ghost)")
			assertOutbox(t, s, nil)
		}},
		{"EndUserSessions queues for the sessions it ends", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			must(t, s.CreateUser(ctx, fullUser("u2", "u2@example.com")), "CreateUser")
			bcClient(t, s, "c2", true)
			a, b := fullSession("a", "cookie-a", "u1"), fullSession("b", "cookie-b", "u1")
			old := fullSession("old", "cookie-old", "u1")
			old.EndedAt = ptr(t0())
			theirs := fullSession("d", "cookie-d", "u2")
			for _, sess := range []storage.Session{a, b, old, theirs} {
				must(t, s.CreateSession(ctx, sess), "CreateSession")
			}
			for _, g := range []storage.Grant{
				fullGrant("g-a1", "c1", "u1", "a"),
				fullGrant("g-a2", "c2", "u1", "a"),
				fullGrant("g-b", "c2", "u1", "b"),
				fullGrant("g-old", "c1", "u1", "old"),
				fullGrant("g-d", "c1", "u2", "d"),
			} {
				createGrant(t, s, g, storage.IssuedTokens{})
			}
			now := t0().Add(2 * time.Hour)
			n, err := s.EndUserSessions(ctx, "u1", now)
			must(t, err, "EndUserSessions")
			if n != 2 {
				t.Errorf("EndUserSessions ended %d sessions, want 2", n)
			}
			want := []storage.BackchannelLogout{
				queued(0, "a", "u1", "c1", now),
				queued(0, "a", "u1", "c2", now),
				queued(0, "b", "u1", "c2", now),
			}
			assertOutbox(t, s, want)
			// Nothing left to end: nothing more queued.
			_, err = s.EndUserSessions(ctx, "u1", now.Add(time.Hour))
			must(t, err, "EndUserSessions again")
			assertOutbox(t, s, want)
		}},
		{"sessions ended by the session limit queue like any other end", func(t *testing.T, s storage.Store) {
			// Eviction and the replacement of the browser's previous
			// session end sessions inside CreateSessionWithLimit; the
			// apps in them must be told as after a logout.
			ctx := t.Context()
			seed(t, s)
			bcClient(t, s, "c2", true)
			evictee, replaced := fullSession("evictee", "cookie-e", "u1"), fullSession("replaced", "cookie-r", "u1")
			evictee.LastSeenAt = t0().Add(-time.Hour) // the least recently active
			for _, sess := range []storage.Session{evictee, replaced} {
				must(t, s.CreateSession(ctx, sess), "CreateSession")
			}
			createGrant(t, s, fullGrant("g-e", "c1", "u1", "evictee"), storage.IssuedTokens{})
			createGrant(t, s, fullGrant("g-r", "c2", "u1", "replaced"), storage.IssuedTokens{})
			now := t0().Add(time.Minute)
			// Max 1: the replaced session does not count, the evictee does
			// and must go to make room.
			evicted, err := s.CreateSessionWithLimit(ctx, fullSession("new", "cookie-n", "u1"),
				storage.SessionLimit{Max: 1, Action: storage.SessionLimitEvictOldest, Replaces: "replaced"}, now)
			must(t, err, "CreateSessionWithLimit")
			if !slices.Equal(evicted, []string{"evictee"}) {
				t.Errorf("evicted %v, want [evictee]", evicted)
			}
			assertOutbox(t, s, []storage.BackchannelLogout{
				queued(0, "evictee", "u1", "c1", now),
				queued(0, "replaced", "u1", "c2", now),
			})
		}},
		{"claim takes due rows earliest first, with a lease", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			end := t0().Add(time.Hour)
			endedSessions(t, s, 3, end)

			// Not yet due.
			got, err := s.ClaimBackchannelLogouts(ctx, end.Add(-time.Microsecond), end.Add(time.Minute), 10)
			must(t, err, "Claim before due")
			if len(got) != 0 {
				t.Fatalf("claimed %d rows before they were due", len(got))
			}
			// Due; the limit holds.
			lease := end.Add(time.Minute)
			got, err = s.ClaimBackchannelLogouts(ctx, end, lease, 2)
			must(t, err, "Claim")
			if len(got) != 2 {
				t.Fatalf("claimed %d rows, want 2 (the limit)", len(got))
			}
			for _, b := range got {
				if b.Attempts != 1 || !b.NextAttemptAt.Equal(lease.Truncate(time.Microsecond)) {
					t.Errorf("claimed row %d: attempts %d, next %s; want 1, %s", b.ID, b.Attempts, b.NextAttemptAt, lease)
				}
			}
			// Within the lease only the third row is claimable.
			third, err := s.ClaimBackchannelLogouts(ctx, end.Add(time.Second), lease, 10)
			must(t, err, "Claim within lease")
			if len(third) != 1 || slices.ContainsFunc(got, func(b storage.BackchannelLogout) bool { return b.ID == third[0].ID }) {
				t.Fatalf("claim within the lease got %+v, want the one unclaimed row", third)
			}
			// The lease ran out (the claimant died): claimable again.
			again, err := s.ClaimBackchannelLogouts(ctx, lease, lease.Add(time.Minute), 10)
			must(t, err, "Claim after lease")
			if len(again) != 3 {
				t.Fatalf("claim after the lease got %d rows, want 3", len(again))
			}
			for _, b := range again {
				if b.Attempts != 2 {
					t.Errorf("row %d: attempts %d, want 2", b.ID, b.Attempts)
				}
			}
		}},
		{"concurrent claims never share a row", func(t *testing.T, s storage.Store) {
			seed(t, s)
			end := t0().Add(time.Hour)
			const n = 40
			endedSessions(t, s, n, end)
			var (
				mu      sync.Mutex
				claimed = map[int64]int{}
			)
			errs := hammer(t, 8, func(ctx context.Context, _ int) error {
				for {
					got, err := s.ClaimBackchannelLogouts(ctx, end, end.Add(time.Hour), 3)
					if err != nil {
						return err
					}
					if len(got) == 0 {
						return nil
					}
					mu.Lock()
					for _, b := range got {
						claimed[b.ID]++
					}
					mu.Unlock()
				}
			})
			for i, err := range errs {
				must(t, err, fmt.Sprintf("claimant %d", i))
			}
			if len(claimed) != n {
				t.Errorf("%d distinct rows claimed, want %d", len(claimed), n)
			}
			for id, times := range claimed {
				if times != 1 {
					t.Errorf("row %d claimed %d times", id, times)
				}
			}
		}},
		{"outcomes: delivered, retried with backoff, failed", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			end := t0().Add(time.Hour)
			endedSessions(t, s, 3, end)
			claimed, err := s.ClaimBackchannelLogouts(ctx, end, end.Add(time.Minute), 10)
			must(t, err, "Claim")
			if len(claimed) != 3 {
				t.Fatalf("claimed %d, want 3", len(claimed))
			}
			ok, retry, fail := claimed[0], claimed[1], claimed[2]
			at := end.Add(time.Second + 3)
			must(t, s.BackchannelLogoutDelivered(ctx, ok.ID, ok.Attempts, at), "Delivered")
			next := end.Add(10 * time.Second)
			must(t, s.RetryBackchannelLogout(ctx, retry.ID, retry.Attempts, next, "HTTP 500"), "Retry")
			must(t, s.BackchannelLogoutFailed(ctx, fail.ID, fail.Attempts, at, "gave up: timeout"), "Failed")

			ok.DeliveredAt = &at
			retry.NextAttemptAt, retry.LastError = next, "HTTP 500"
			fail.FailedAt, fail.LastError = &at, "gave up: timeout"
			got := outbox(t, s)
			assertEqual(t, "outbox after outcomes", got, []storage.BackchannelLogout{ok, retry, fail})

			// The retried row comes back exactly at its next attempt, and
			// the finished rows never do.
			early, err := s.ClaimBackchannelLogouts(ctx, next.Add(-time.Microsecond), next.Add(time.Minute), 10)
			must(t, err, "Claim before backoff")
			if len(early) != 0 {
				t.Fatalf("claimed %+v before the backoff elapsed", early)
			}
			due, err := s.ClaimBackchannelLogouts(ctx, next.Add(24*time.Hour), next.Add(25*time.Hour), 10)
			must(t, err, "Claim after backoff")
			if len(due) != 1 || due[0].ID != retry.ID || due[0].Attempts != 2 || due[0].LastError != "HTTP 500" {
				t.Fatalf("claim after backoff got %+v, want row %d on attempt 2", due, retry.ID)
			}

			// Only the current claim may record an outcome.
			wantErr(t, s.BackchannelLogoutDelivered(ctx, retry.ID, 1, at), storage.ErrConflict, "Delivered by a stale claim")
			wantErr(t, s.RetryBackchannelLogout(ctx, ok.ID, ok.Attempts, next, "x"), storage.ErrConflict, "Retry of a delivered row")
			wantErr(t, s.BackchannelLogoutFailed(ctx, fail.ID, fail.Attempts, at, "x"), storage.ErrConflict, "Failed twice")
			wantErr(t, s.BackchannelLogoutDelivered(ctx, 987654, 1, at), storage.ErrNotFound, "Delivered(unknown)")
			wantErr(t, s.RetryBackchannelLogout(ctx, 987654, 1, at, "x"), storage.ErrNotFound, "Retry(unknown)")
			wantErr(t, s.BackchannelLogoutFailed(ctx, 987654, 1, at, "x"), storage.ErrNotFound, "Failed(unknown)")
			must(t, s.BackchannelLogoutDelivered(ctx, retry.ID, 2, at), "Delivered by the current claim")
		}},
		{"DeleteExpired removes finished rows only", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			end := t0().Add(time.Hour)
			endedSessions(t, s, 4, end)
			claimed, err := s.ClaimBackchannelLogouts(ctx, end, end.Add(time.Minute), 10)
			must(t, err, "Claim")
			done := end.Add(time.Minute)
			must(t, s.BackchannelLogoutDelivered(ctx, claimed[0].ID, 1, done), "Delivered")
			must(t, s.BackchannelLogoutFailed(ctx, claimed[1].ID, 1, done, "gave up"), "Failed")
			must(t, s.RetryBackchannelLogout(ctx, claimed[2].ID, 1, end, "HTTP 503"), "Retry")
			// claimed[3] stays claimed.

			// Finished exactly at now: kept. (This sweep also removes the
			// expired codes that created the grants.)
			_, err = s.DeleteExpired(ctx, done)
			must(t, err, "DeleteExpired at finish time")
			if got := outbox(t, s); len(got) != 4 {
				t.Errorf("DeleteExpired at the finish time left %d rows, want 4", len(got))
			}
			n, err := s.DeleteExpired(ctx, done.Add(time.Microsecond))
			must(t, err, "DeleteExpired")
			if n != 2 {
				t.Errorf("DeleteExpired removed %d rows, want 2", n)
			}
			var left []int64
			for _, b := range outbox(t, s) {
				left = append(left, b.ID)
			}
			slices.Sort(left)
			want := []int64{claimed[2].ID, claimed[3].ID}
			slices.Sort(want)
			if !slices.Equal(left, want) {
				t.Errorf("left after DeleteExpired: rows %v, want %v (the retried and the claimed row)", left, want)
			}
		}},
		{"deleting the client removes its rows", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			endedSessions(t, s, 2, t0())
			must(t, s.DeleteClient(ctx, "c1"), "DeleteClient")
			assertOutbox(t, s, nil)
		}},
	})
}
