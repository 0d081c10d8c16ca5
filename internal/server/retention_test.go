package server

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/keys"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/internal/storage/sqlitetest"
)

// TestAuditRetention: the janitor's audit step deletes events older than
// the retention (90 days unless configured) and keeps everything when the
// retention is negative.
func TestAuditRetention(t *testing.T) {
	now := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	ages := []time.Duration{100 * 24 * time.Hour, 91 * 24 * time.Hour, 89 * 24 * time.Hour, 48 * time.Hour, time.Hour}
	for _, tc := range []struct {
		name      string
		retention time.Duration
		kept      int // of ages, the youngest this many
	}{
		{"default is 90 days", 0, 3},
		{"24h", 24 * time.Hour, 1},
		{"negative keeps everything", -1, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := sqlitetest.NewStore(t)
			kek, err := keys.GenerateKEK(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			s, err := New(t.Context(), Config{Issuer: "http://localhost:8080", Listen: "localhost:0", AuditRetention: tc.retention},
				Deps{Store: db, KEK: kek, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := s.audit.Close(t.Context()); err != nil {
					t.Error(err)
				}
			})
			// Only the events below: the start-up's key events are
			// written first and are newer than all of them.
			if err := s.audit.Flush(t.Context()); err != nil {
				t.Fatal(err)
			}
			before, err := db.ListAuditEvents(t.Context(), storage.AuditFilter{})
			if err != nil {
				t.Fatal(err)
			}
			var events []storage.AuditEvent
			for _, age := range ages {
				events = append(events, storage.AuditEvent{Type: "test", Time: now.Add(-age), ClientID: age.String()})
			}
			if err := db.AppendAuditEvents(t.Context(), events); err != nil {
				t.Fatal(err)
			}
			s.deleteOldAuditEvents(t.Context())
			got, err := db.ListAuditEvents(t.Context(), storage.AuditFilter{Types: []string{"test"}})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.kept {
				t.Fatalf("kept %d events, want %d: %v", len(got), tc.kept, got)
			}
			for i, e := range got {
				if want := ages[len(ages)-tc.kept+i].String(); e.ClientID != want {
					t.Errorf("kept the event %s old, want %s", e.ClientID, want)
				}
			}
			if after, _ := db.ListAuditEvents(t.Context(), storage.AuditFilter{Types: []string{"key.created"}}); len(after) != len(before) || len(before) == 0 {
				t.Errorf("start-up key events: %d before, %d after; want the same, more than 0", len(before), len(after))
			}
		})
	}
}
