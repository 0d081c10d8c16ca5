package storagetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// rawExecer is implemented by each backend in its export_test.go: the
// append-only rule lives in the database, so it can only be checked by
// going around the Store.
type rawExecer interface {
	ExecRaw(ctx context.Context, sql string) error
}

// auditEvent is an event with every field set to something distinguishable.
func auditEvent(typ, sid, uid, cid string, at time.Time) storage.AuditEvent {
	return storage.AuditEvent{
		Time:      at,
		Type:      typ,
		Actor:     "user:" + uid,
		SessionID: sid,
		UserID:    uid,
		ClientID:  cid,
		IP:        "2001:db8::7",
		UserAgent: "Mozilla/5.0 (" + typ + ")",
		// As encoding/json reads them back: numbers float64, arrays []any.
		Details: map[string]any{
			"scope":  "openid email",
			"n":      float64(3),
			"scopes": []any{"openid", "email"},
			"nested": map[string]any{"ok": true},
		},
	}
}

// appendAudit stores events, failing the test on error.
func appendAudit(t *testing.T, s storage.Store, events ...storage.AuditEvent) {
	t.Helper()
	must(t, s.AppendAuditEvents(t.Context(), events), "AppendAuditEvents")
}

func listAudit(t *testing.T, s storage.Store, f storage.AuditFilter) []storage.AuditEvent {
	t.Helper()
	got, err := s.ListAuditEvents(t.Context(), f)
	must(t, err, "ListAuditEvents")
	return got
}

func auditTypes(es []storage.AuditEvent) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Type
	}
	return out
}

// checkIncreasing fails the test unless the ids are strictly increasing.
func checkIncreasing(t *testing.T, es []storage.AuditEvent) {
	t.Helper()
	for i := 1; i < len(es); i++ {
		if es[i].ID <= es[i-1].ID {
			t.Fatalf("ids not increasing: event %d has id %d after %d", i, es[i].ID, es[i-1].ID)
		}
	}
}

// auditFixture stores six events across two users, two clients, two
// sessions and three minutes, and returns them as stored (with ids).
func auditFixture(t *testing.T, s storage.Store) []storage.AuditEvent {
	t.Helper()
	m := func(n int) time.Time { return t0().Add(time.Duration(n) * time.Minute) }
	in := []storage.AuditEvent{
		auditEvent("login.succeeded", "s1", "u1", "c1", m(0)),
		auditEvent("token.issued", "s1", "u1", "c1", m(0)),
		auditEvent("login.failed", "", "u2", "c2", m(1)),
		auditEvent("token.refreshed", "s1", "u1", "c1", m(1)),
		auditEvent("token.issued", "", "", "c2", m(2)),
		auditEvent("logout", "s2", "u2", "", m(2)),
	}
	in[4].Details = nil
	in[4].Actor = "client:c2"
	appendAudit(t, s, in...)
	got := listAudit(t, s, storage.AuditFilter{})
	if len(got) != len(in) {
		t.Fatalf("stored %d events, listed %d", len(in), len(got))
	}
	return got
}

func testAudit(t *testing.T, open OpenFunc) {
	runCases(t, open, []testCase{
		{"round trip keeps every field, in order, ids assigned", func(t *testing.T, s storage.Store) {
			in := []storage.AuditEvent{
				auditEvent("a", "s1", "u1", "c1", t0()),
				auditEvent("b", "s2", "u2", "c2", t0().Add(time.Second)),
				auditEvent("c", "", "", "", t0().Add(-time.Hour)), // order is by id, not time
			}
			in[0].ID = 9999 // ignored: the database assigns ids
			in[2].Details = map[string]any{}
			appendAudit(t, s, in...)
			got := listAudit(t, s, storage.AuditFilter{})
			if len(got) != 3 {
				t.Fatalf("got %d events, want 3", len(got))
			}
			checkIncreasing(t, got)
			if got[0].ID == 9999 {
				t.Errorf("the caller's id was stored")
			}
			for i := range in {
				want := in[i]
				want.ID = got[i].ID
				if i == 2 {
					want.Details = nil // an empty map reads back as nil
				}
				assertEqual(t, fmt.Sprintf("event %d", i), got[i], want)
			}
		}},
		{"appending nothing is a no-op", func(t *testing.T, s storage.Store) {
			must(t, s.AppendAuditEvents(t.Context(), nil), "AppendAuditEvents(nil)")
			if got := listAudit(t, s, storage.AuditFilter{}); len(got) != 0 {
				t.Fatalf("got %d events, want 0", len(got))
			}
		}},
		{"a batch is all or nothing", func(t *testing.T, s storage.Store) {
			bad := auditEvent("", "s1", "u1", "c1", t0()) // a type is required
			err := s.AppendAuditEvents(t.Context(), []storage.AuditEvent{auditEvent("ok", "s1", "u1", "c1", t0()), bad})
			if err == nil {
				t.Fatalf("AppendAuditEvents with an empty type: got nil error")
			}
			if got := listAudit(t, s, storage.AuditFilter{}); len(got) != 0 {
				t.Fatalf("a failed batch left %d events: %v", len(got), auditTypes(got))
			}
		}},
		{"details that are not JSON are refused", func(t *testing.T, s storage.Store) {
			e := auditEvent("x", "", "", "", t0())
			e.Details = map[string]any{"f": func() {}}
			if err := s.AppendAuditEvents(t.Context(), []storage.AuditEvent{e}); err == nil {
				t.Fatalf("got nil error")
			}
		}},
		{"filters", func(t *testing.T, s storage.Store) {
			all := auditFixture(t, s)
			m := func(n int) time.Time { return t0().Add(time.Duration(n) * time.Minute) }
			for _, tc := range []struct {
				name string
				f    storage.AuditFilter
				want []int // indexes into all
			}{
				{"none", storage.AuditFilter{}, []int{0, 1, 2, 3, 4, 5}},
				{"user", storage.AuditFilter{UserID: "u1"}, []int{0, 1, 3}},
				{"client", storage.AuditFilter{ClientID: "c2"}, []int{2, 4}},
				{"session", storage.AuditFilter{SessionID: "s1"}, []int{0, 1, 3}},
				{"unknown session", storage.AuditFilter{SessionID: "nope"}, nil},
				{"one type", storage.AuditFilter{Types: []string{"token.issued"}}, []int{1, 4}},
				{"two types", storage.AuditFilter{Types: []string{"logout", "login.failed"}}, []int{2, 5}},
				{"since is inclusive", storage.AuditFilter{Since: m(1)}, []int{2, 3, 4, 5}},
				{"until is exclusive", storage.AuditFilter{Until: m(1)}, []int{0, 1}},
				{"since and until", storage.AuditFilter{Since: m(1), Until: m(2)}, []int{2, 3}},
				{"after id", storage.AuditFilter{AfterID: all[3].ID}, []int{4, 5}},
				{"limit", storage.AuditFilter{Limit: 2}, []int{0, 1}},
				{"combined", storage.AuditFilter{ClientID: "c1", Types: []string{"token.issued", "token.refreshed"}, Limit: 1, AfterID: all[1].ID}, []int{3}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					got := listAudit(t, s, tc.f)
					var want []storage.AuditEvent
					for _, i := range tc.want {
						want = append(want, all[i])
					}
					if len(got) != len(want) {
						t.Fatalf("got %v, want %v", auditTypes(got), auditTypes(want))
					}
					for i := range want {
						if got[i].ID != want[i].ID {
							t.Fatalf("event %d: got id %d (%s), want %d (%s)", i, got[i].ID, got[i].Type, want[i].ID, want[i].Type)
						}
					}
				})
			}
		}},
		{"paging with AfterID visits every event once", func(t *testing.T, s storage.Store) {
			all := auditFixture(t, s)
			var seen []int64
			after := int64(0)
			for range 10 {
				page := listAudit(t, s, storage.AuditFilter{AfterID: after, Limit: 4})
				if len(page) == 0 {
					break
				}
				for _, e := range page {
					seen = append(seen, e.ID)
				}
				after = page[len(page)-1].ID
			}
			var want []int64
			for _, e := range all {
				want = append(want, e.ID)
			}
			if !slices.Equal(seen, want) {
				t.Fatalf("paged ids %v, want %v", seen, want)
			}
		}},
		{"retention deletes only older events", func(t *testing.T, s storage.Store) {
			all := auditFixture(t, s)
			n, err := s.DeleteAuditEventsBefore(t.Context(), t0().Add(time.Minute))
			must(t, err, "DeleteAuditEventsBefore")
			if n != 2 {
				t.Errorf("deleted %d, want 2", n)
			}
			got := listAudit(t, s, storage.AuditFilter{})
			if len(got) != 4 || got[0].ID != all[2].ID {
				t.Fatalf("left %v, want the last 4", auditTypes(got))
			}
			n, err = s.DeleteAuditEventsBefore(t.Context(), t0().Add(time.Minute))
			must(t, err, "DeleteAuditEventsBefore again")
			if n != 0 {
				t.Errorf("second delete removed %d, want 0", n)
			}
			// Ids never go back, even once the newest rows are gone.
			_, err = s.DeleteAuditEventsBefore(t.Context(), t0().Add(time.Hour))
			must(t, err, "DeleteAuditEventsBefore all")
			appendAudit(t, s, auditEvent("later", "", "", "", t0()))
			if got := listAudit(t, s, storage.AuditFilter{}); len(got) != 1 || got[0].ID <= all[len(all)-1].ID {
				t.Fatalf("after deleting everything, new event got id %d, want more than %d", got[0].ID, all[len(all)-1].ID)
			}
		}},
		{"UPDATE is rejected by the database", func(t *testing.T, s storage.Store) {
			raw, ok := s.(rawExecer)
			if !ok {
				t.Fatalf("%T does not implement ExecRaw (export_test.go); the append-only rule cannot be checked", s)
			}
			before := auditFixture(t, s)
			for _, q := range []string{
				`UPDATE audit_events SET type = 'forged'`,
				`UPDATE audit_events SET details = NULL WHERE id = ` + fmt.Sprint(before[0].ID),
			} {
				if err := raw.ExecRaw(t.Context(), q); err == nil {
					t.Errorf("%s: got nil error, want it rejected", q)
				}
			}
			after := listAudit(t, s, storage.AuditFilter{})
			assertEqual(t, "events after rejected updates", after, before)
		}},
		{"concurrent appends keep every event and each batch's order", func(t *testing.T, s storage.Store) {
			const writers, perBatch = 16, 40
			errs := hammer(t, writers, func(ctx context.Context, w int) error {
				batch := make([]storage.AuditEvent, perBatch)
				for i := range batch {
					batch[i] = auditEvent("concurrent", "", fmt.Sprintf("w%02d", w), fmt.Sprintf("%03d", i), t0())
				}
				return s.AppendAuditEvents(ctx, batch)
			})
			for i, err := range errs {
				must(t, err, fmt.Sprintf("writer %d", i))
			}
			got := listAudit(t, s, storage.AuditFilter{})
			if len(got) != writers*perBatch {
				t.Fatalf("got %d events, want %d", len(got), writers*perBatch)
			}
			checkIncreasing(t, got)
			last := map[string]string{}
			for _, e := range got {
				if prev, ok := last[e.UserID]; ok && e.ClientID <= prev {
					t.Fatalf("writer %s: event %s stored after %s", e.UserID, e.ClientID, prev)
				}
				last[e.UserID] = e.ClientID
			}
		}},
		{"a large batch is one append", func(t *testing.T, s storage.Store) {
			batch := make([]storage.AuditEvent, 2500) // more than one SQLite statement holds
			for i := range batch {
				batch[i] = auditEvent("bulk", "", "", fmt.Sprintf("%05d", i), t0())
			}
			appendAudit(t, s, batch...)
			got := listAudit(t, s, storage.AuditFilter{Types: []string{"bulk"}})
			if len(got) != len(batch) {
				t.Fatalf("got %d, want %d", len(got), len(batch))
			}
			for i, e := range got {
				if e.ClientID != batch[i].ClientID {
					t.Fatalf("event %d is %s, want %s", i, e.ClientID, batch[i].ClientID)
				}
			}
		}},
	})
}
