package storagetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

func testLoginThrottles(t *testing.T, open OpenFunc) {
	const window = 15 * time.Minute
	record := func(t *testing.T, s storage.Store, now time.Time, keys ...string) []storage.LoginThrottle {
		t.Helper()
		got, err := s.RecordLoginFailure(t.Context(), keys, now, window)
		must(t, err, "RecordLoginFailure")
		if len(got) != len(keys) {
			t.Fatalf("RecordLoginFailure returned %d counters for %d keys", len(got), len(keys))
		}
		return got
	}
	get := func(t *testing.T, s storage.Store, now time.Time, keys ...string) []storage.LoginThrottle {
		t.Helper()
		got, err := s.GetLoginThrottles(t.Context(), keys, now)
		must(t, err, "GetLoginThrottles")
		return got
	}
	// stored is what GetLoginThrottles returns for a counter that
	// RecordLoginFailure returned: the same, without the prior state.
	stored := func(lt storage.LoginThrottle) storage.LoginThrottle {
		lt.PriorFailures, lt.PriorFailureAt = 0, nil
		return lt
	}

	runCases(t, open, []testCase{
		{"unknown keys read as no failures, in order", func(t *testing.T, s storage.Store) {
			got := get(t, s, t0(), "account:b", "ip:a", "account:b")
			want := []storage.LoginThrottle{{Key: "account:b"}, {Key: "ip:a"}, {Key: "account:b"}}
			assertEqual(t, "GetLoginThrottles", got, want)
		}},
		{"failures count up and report the state they replaced", func(t *testing.T, s storage.Store) {
			start := t0()
			var prior *time.Time
			for i := range 3 {
				now := start.Add(time.Duration(i) * time.Second)
				got := record(t, s, now, "account:x")
				want := storage.LoginThrottle{
					Key: "account:x", Failures: i + 1, WindowStart: start, LastFailureAt: now,
					PriorFailures: i, PriorFailureAt: prior, ExpiresAt: now.Add(window),
				}
				assertEqual(t, fmt.Sprintf("failure %d", i+1), got[0], want)
				assertEqual(t, "read back", get(t, s, now, "account:x")[0], stored(want))
				prior = ptr(now)
			}
		}},
		{"a counter starts over once its window has ended", func(t *testing.T, s storage.Store) {
			start := t0()
			record(t, s, start, "account:x")
			record(t, s, start.Add(time.Minute), "account:x")
			// Just inside the window: still counting.
			inside := start.Add(window - time.Microsecond)
			if got := record(t, s, inside, "account:x")[0]; got.Failures != 3 || !got.WindowStart.Equal(start.Truncate(time.Microsecond)) {
				t.Errorf("inside the window: failures %d since %v, want 3 since %v", got.Failures, got.WindowStart, start)
			}
			// WindowStart + window <= now: a new window.
			end := start.Add(window)
			got := record(t, s, end, "account:x")[0]
			want := storage.LoginThrottle{
				Key: "account:x", Failures: 1, WindowStart: end, LastFailureAt: end,
				PriorFailures: 3, PriorFailureAt: ptr(inside), ExpiresAt: end.Add(window),
			}
			assertEqual(t, "after the window", got, want)
		}},
		{"keys count separately", func(t *testing.T, s storage.Store) {
			now := t0()
			record(t, s, now, "account:a", "ip:1")
			got := record(t, s, now.Add(time.Second), "ip:1", "account:b")
			if got[0].Key != "ip:1" || got[0].Failures != 2 || got[1].Key != "account:b" || got[1].Failures != 1 {
				t.Errorf("second record = %+v, want ip:1 at 2 then account:b at 1", got)
			}
			counts := []int{}
			for _, lt := range get(t, s, now.Add(time.Second), "account:a", "ip:1", "account:b", "account:c") {
				counts = append(counts, lt.Failures)
			}
			if !slices.Equal(counts, []int{1, 2, 1, 0}) {
				t.Errorf("failures = %v, want [1 2 1 0]", counts)
			}
		}},
		{"an expired counter reads as none", func(t *testing.T, s storage.Store) {
			now := t0()
			rec := record(t, s, now, "ip:1")[0]
			assertEqual(t, "just before expiry", get(t, s, rec.ExpiresAt.Add(-time.Microsecond), "ip:1")[0], stored(rec))
			assertEqual(t, "at expiry", get(t, s, rec.ExpiresAt, "ip:1")[0], storage.LoginThrottle{Key: "ip:1"})
		}},
		{"forgive takes one back, never below zero", func(t *testing.T, s storage.Store) {
			ctx, now := t.Context(), t0()
			for range 3 {
				record(t, s, now, "ip:1", "account:a")
			}
			must(t, s.ForgiveLoginFailure(ctx, "ip:1"), "ForgiveLoginFailure")
			got := get(t, s, now, "ip:1", "account:a")
			if got[0].Failures != 2 || got[1].Failures != 3 {
				t.Errorf("after forgiving ip:1 once: %d and %d failures, want 2 and 3", got[0].Failures, got[1].Failures)
			}
			for range 4 {
				must(t, s.ForgiveLoginFailure(ctx, "ip:1"), "ForgiveLoginFailure")
			}
			if got := get(t, s, now, "ip:1")[0]; got.Failures != 0 {
				t.Errorf("after forgiving more than counted: %d failures, want 0", got.Failures)
			}
			must(t, s.ForgiveLoginFailure(ctx, "ip:unknown"), "ForgiveLoginFailure of an unknown key")
			if got := get(t, s, now, "ip:unknown")[0]; got.Failures != 0 {
				t.Errorf("forgiving an unknown key made a counter: %+v", got)
			}
			// The next failure counts from where forgiving left it.
			if got := record(t, s, now, "ip:1")[0]; got.Failures != 1 || got.PriorFailures != 0 {
				t.Errorf("failure after forgiving all: %d (prior %d), want 1 (prior 0)", got.Failures, got.PriorFailures)
			}
		}},
		{"clear deletes one key's counter", func(t *testing.T, s storage.Store) {
			ctx, now := t.Context(), t0()
			record(t, s, now, "account:a", "ip:1")
			record(t, s, now, "account:a", "ip:1")
			must(t, s.ClearLoginThrottle(ctx, "account:a"), "ClearLoginThrottle")
			got := get(t, s, now, "account:a", "ip:1")
			if got[0].Failures != 0 || got[1].Failures != 2 {
				t.Errorf("after clearing account:a: %d and %d failures, want 0 and 2", got[0].Failures, got[1].Failures)
			}
			must(t, s.ClearLoginThrottle(ctx, "account:a"), "ClearLoginThrottle again")
			must(t, s.ClearLoginThrottle(ctx, "account:never"), "ClearLoginThrottle of an unknown key")
			if got := record(t, s, now, "account:a")[0]; got.Failures != 1 || got.PriorFailureAt != nil {
				t.Errorf("failure after clearing: %d (prior at %v), want 1 (prior nil)", got.Failures, got.PriorFailureAt)
			}
		}},
		{"concurrent failures are each counted exactly once", func(t *testing.T, s storage.Store) {
			const n = 50
			now := t0()
			results := make([][]storage.LoginThrottle, n)
			errs := hammer(t, n, func(ctx context.Context, i int) error {
				var err error
				results[i], err = s.RecordLoginFailure(ctx, []string{"account:a", "ip:1"}, now, window)
				return err
			})
			for i, err := range errs {
				must(t, err, fmt.Sprintf("concurrent RecordLoginFailure %d", i))
			}
			for k, key := range []string{"account:a", "ip:1"} {
				// Each caller saw a different count, and the one just
				// before its own as the prior state: none was lost or
				// counted twice.
				var seen []int
				for _, r := range results {
					if r[k].Failures != r[k].PriorFailures+1 {
						t.Errorf("%s: a caller saw %d failures after %d", key, r[k].Failures, r[k].PriorFailures)
					}
					seen = append(seen, r[k].Failures)
				}
				slices.Sort(seen)
				for i, c := range seen {
					if c != i+1 {
						t.Fatalf("%s: counts seen %v, want each of 1..%d once", key, seen, n)
					}
				}
				if got := get(t, s, now, key)[0]; got.Failures != n {
					t.Errorf("%s: %d failures stored, want %d", key, got.Failures, n)
				}
			}
		}},
		{"DeleteExpired removes expired counters only", func(t *testing.T, s storage.Store) {
			ctx, start := t.Context(), t0()
			record(t, s, start, "ip:old")
			record(t, s, start.Add(time.Minute), "ip:new")
			// ip:old expires at start+window, ip:new a minute later.
			n, err := s.DeleteExpired(ctx, start.Add(window))
			must(t, err, "DeleteExpired")
			if n != 0 {
				t.Errorf("DeleteExpired at ip:old's expiry removed %d rows, want 0", n)
			}
			n, err = s.DeleteExpired(ctx, start.Add(window+time.Microsecond))
			must(t, err, "DeleteExpired")
			if n != 1 {
				t.Errorf("DeleteExpired after ip:old's expiry removed %d rows, want 1", n)
			}
			// Read as of long ago, where expiry does not hide rows.
			got := get(t, s, start.Add(-time.Hour), "ip:old", "ip:new")
			if got[0].Failures != 0 || got[1].Failures != 1 {
				t.Errorf("after DeleteExpired: ip:old %d, ip:new %d failures, want 0 and 1", got[0].Failures, got[1].Failures)
			}
		}},
	})
}
