package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/audit"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/internal/storage/pgtest"
	"github.com/gatehouse-idp/gatehouse/internal/storage/sqlitetest"
)

// backends are the real stores the recorder is tested against.
var backends = []struct {
	name string
	open func(t *testing.T) storage.Store
}{
	{"sqlite", func(t *testing.T) storage.Store { return sqlitetest.NewStore(t) }},
	{"postgres", func(t *testing.T) storage.Store { return pgtest.NewStore(t) }},
}

// store wraps a real store: it counts writes and can fail or hold them.
type store struct {
	storage.AuditStore
	mu      sync.Mutex
	fail    int // fail this many more writes
	always  bool
	sizes   []int // sizes of successful writes
	calls   int
	entered chan int      // if set, gets the batch size of every write as it starts
	gate    chan struct{} // if set, a write waits for it
}

var errDown = errors.New("database down (test)")

func (s *store) AppendAuditEvents(ctx context.Context, events []storage.AuditEvent) error {
	if s.entered != nil {
		s.entered <- len(events)
	}
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	s.calls++
	if s.always || s.fail > 0 {
		s.fail--
		s.mu.Unlock()
		return errDown
	}
	s.mu.Unlock()
	if err := s.AuditStore.AppendAuditEvents(ctx, events); err != nil {
		return err
	}
	s.mu.Lock()
	s.sizes = append(s.sizes, len(events))
	s.mu.Unlock()
	return nil
}

func (s *store) stats() (calls int, sizes []int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls, slices.Clone(s.sizes)
}

func list(t *testing.T, s storage.AuditStore) []storage.AuditEvent {
	t.Helper()
	got, err := s.ListAuditEvents(t.Context(), storage.AuditFilter{})
	if err != nil {
		t.Fatalf("ListAuditEvents: %v", err)
	}
	return got
}

func closeOK(t *testing.T, r *audit.Recorder) {
	t.Helper()
	if err := r.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// never is a flush timer that does not fire.
var never = make(chan time.Time)

func TestRecordFillsTimeAndRequestInfo(t *testing.T) {
	db := sqlitetest.NewStore(t)
	now := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	r := audit.NewRecorderTicking(t.Context(), db, audit.Options{Now: func() time.Time { return now }}, never)
	req := httptest.NewRequest("POST", "/login", nil)
	req.RemoteAddr = "203.0.113.9:51234"
	req.Header.Set("User-Agent", "TestBrowser/1.0 "+strings.Repeat("x", 600))
	ctx := audit.WithRequest(t.Context(), req)

	explicit := now.Add(-time.Hour)
	r.Record(ctx, storage.AuditEvent{Type: audit.LoginSucceeded, UserID: "u1"})
	r.Record(ctx, storage.AuditEvent{Type: audit.LoginFailed, Time: explicit, IP: "198.51.100.1", UserAgent: "own"})
	r.Record(t.Context(), storage.AuditEvent{Type: audit.KeyCreated, Actor: audit.ActorSystem})
	closeOK(t, r)

	got := list(t, db)
	if len(got) != 3 {
		t.Fatalf("got %d events, want 3", len(got))
	}
	for _, tc := range []struct {
		name       string
		e          storage.AuditEvent
		time       time.Time
		ip, uaHead string
		uaLen      int
	}{
		{"filled from clock and request", got[0], now, "203.0.113.9", "TestBrowser/1.0 ", 512},
		{"own values kept", got[1], explicit, "198.51.100.1", "own", 3},
		{"no request", got[2], now, "", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.e.Time.Equal(tc.time) {
				t.Errorf("Time = %v, want %v", tc.e.Time, tc.time)
			}
			if tc.e.IP != tc.ip {
				t.Errorf("IP = %q, want %q", tc.e.IP, tc.ip)
			}
			if !strings.HasPrefix(tc.e.UserAgent, tc.uaHead) || len(tc.e.UserAgent) != tc.uaLen {
				t.Errorf("UserAgent = %q (len %d), want prefix %q, len %d", tc.e.UserAgent, len(tc.e.UserAgent), tc.uaHead, tc.uaLen)
			}
		})
	}
}

func TestNilRecorderRecordsNothing(t *testing.T) {
	var r *audit.Recorder
	r.Record(t.Context(), storage.AuditEvent{Type: audit.Logout}) // must not panic
	if err := r.Flush(t.Context()); err != nil {
		t.Errorf("Flush: %v", err)
	}
	if err := r.Close(t.Context()); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// TestBatches: a full batch is written at once, the rest when the flush
// interval passes, nothing before.
func TestBatches(t *testing.T) {
	db := sqlitetest.NewStore(t)
	s := &store{AuditStore: db, entered: make(chan int, 10)}
	tick := make(chan time.Time)
	r := audit.NewRecorderTicking(t.Context(), s, audit.Options{BatchSize: 500}, tick)
	defer closeOK(t, r)
	for i := range 1200 {
		r.Record(t.Context(), storage.AuditEvent{Type: "test", ClientID: fmt.Sprint(i)})
	}
	for i := range 2 {
		if n := <-s.entered; n != 500 {
			t.Fatalf("write %d carried %d events, want 500", i, n)
		}
	}
	tick <- time.Now() // the interval has passed: the remaining 200 go
	if n := <-s.entered; n != 200 {
		t.Fatalf("flush on the timer carried %d events, want 200", n)
	}
	tick <- time.Now() // and an empty batch writes nothing
	if err := r.Flush(t.Context()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	select {
	case n := <-s.entered:
		t.Fatalf("an extra write of %d events", n)
	default:
	}
	got := list(t, db)
	if len(got) != 1200 {
		t.Fatalf("stored %d, want 1200", len(got))
	}
	for i, e := range got {
		if e.ClientID != fmt.Sprint(i) {
			t.Fatalf("event %d is %s: order not kept", i, e.ClientID)
		}
	}
}

// TestCloseWritesEverything: 10,000 events recorded from many goroutines,
// then Close: every one is in the database.
func TestCloseWritesEverything(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			db := b.open(t)
			r := audit.NewRecorder(t.Context(), db, audit.Options{})
			const writers, each = 20, 500
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					for i := range each {
						r.Record(t.Context(), storage.AuditEvent{Type: "test", UserID: fmt.Sprint(w), ClientID: fmt.Sprint(i)})
					}
				})
			}
			wg.Wait()
			closeOK(t, r)
			got := list(t, db)
			if len(got) != writers*each {
				t.Fatalf("stored %d events, want %d", len(got), writers*each)
			}
			seen := map[string]bool{}
			for _, e := range got {
				k := e.UserID + "/" + e.ClientID
				if seen[k] {
					t.Fatalf("event %s stored twice", k)
				}
				seen[k] = true
			}
		})
	}
}

// TestRetryAfterWriteFailures: a refused batch is kept and written once the
// database takes it again, exactly once.
func TestRetryAfterWriteFailures(t *testing.T) {
	db := sqlitetest.NewStore(t)
	var logs bytes.Buffer
	s := &store{AuditStore: db, fail: 3}
	r := audit.NewRecorderTicking(t.Context(), s, audit.Options{
		RetryMin: time.Millisecond, RetryMax: 2 * time.Millisecond,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
	}, never)
	for i := range 10 {
		r.Record(t.Context(), storage.AuditEvent{Type: "test", ClientID: fmt.Sprint(i)})
	}
	if err := r.Flush(t.Context()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	calls, sizes := s.stats()
	if calls != 4 || !slices.Equal(sizes, []int{10}) {
		t.Errorf("calls = %d, successful writes %v; want 4 calls, one write of 10", calls, sizes)
	}
	if got := list(t, db); len(got) != 10 {
		t.Errorf("stored %d, want 10", len(got))
	}
	if n := strings.Count(logs.String(), `"write audit events; retrying"`); n != 3 {
		t.Errorf("%d retry warnings, want 3:\n%s", n, logs.String())
	}
	closeOK(t, r)
}

// loggedEvents returns the audit events in JSON log output, by message.
func loggedEvents(t *testing.T, logs string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(logs) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if ev, ok := rec["audit_event"].(map[string]any); ok {
			if rec["level"] != "ERROR" {
				t.Errorf("unwritten event logged at %v, want ERROR", rec["level"])
			}
			out = append(out, ev)
		}
	}
	return out
}

// TestCloseWithDatabaseDown: when the database stays unreachable until
// Close's context ends, Close returns an error and every event is in the
// log at ERROR, with its fields.
func TestCloseWithDatabaseDown(t *testing.T) {
	db := sqlitetest.NewStore(t)
	var logs bytes.Buffer
	s := &store{AuditStore: db, always: true, entered: make(chan int, 100)}
	r := audit.NewRecorderTicking(t.Context(), s, audit.Options{
		BatchSize: 2, RetryMin: time.Millisecond, RetryMax: time.Millisecond,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
	}, never)
	for i := range 5 {
		r.Record(t.Context(), storage.AuditEvent{Type: audit.TokenIssued, ClientID: fmt.Sprint(i), Details: map[string]any{"scope": "openid"}})
	}
	<-s.entered // the writer is failing
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // the deadline has passed: give up at once
	if err := r.Close(ctx); !errors.Is(err, audit.ErrUnwritten) {
		t.Fatalf("Close with the database down: got %v, want ErrUnwritten", err)
	}
	r.Record(t.Context(), storage.AuditEvent{Type: audit.Logout, ClientID: "late"})

	got := loggedEvents(t, logs.String())
	var ids []string
	for _, e := range got {
		ids = append(ids, e["client_id"].(string))
		if e["client_id"] != "late" && (e["type"] != audit.TokenIssued || e["details"].(map[string]any)["scope"] != "openid") {
			t.Errorf("logged event lost fields: %v", e)
		}
	}
	slices.Sort(ids)
	if want := []string{"0", "1", "2", "3", "4", "late"}; !slices.Equal(ids, want) {
		t.Fatalf("logged events %v, want %v", ids, want)
	}
	if n := len(list(t, db)); n != 0 {
		t.Errorf("%d events in the database, want 0", n)
	}
}

// TestFullQueueBlocks: with the writer stuck, Record waits for room rather
// than dropping; a caller whose context ends while waiting gets its event
// logged at ERROR; once the database answers, everything queued is written.
func TestFullQueueBlocks(t *testing.T) {
	db := sqlitetest.NewStore(t)
	var logs bytes.Buffer
	s := &store{AuditStore: db, entered: make(chan int, 100), gate: make(chan struct{})}
	r := audit.NewRecorderTicking(t.Context(), s, audit.Options{
		QueueSize: 4, BatchSize: 1, Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
	}, never)
	r.Record(t.Context(), storage.AuditEvent{Type: "test", ClientID: "0"})
	<-s.entered // the writer holds event 0 and waits for the database
	for i := 1; i <= 4; i++ {
		r.Record(t.Context(), storage.AuditEvent{Type: "test", ClientID: fmt.Sprint(i)}) // fills the queue
	}
	gone, cancel := context.WithCancel(t.Context())
	cancel()
	r.Record(gone, storage.AuditEvent{Type: "test", ClientID: "cancelled"}) // returns: its context is done

	blocked := make(chan struct{})
	go func() {
		r.Record(t.Context(), storage.AuditEvent{Type: "test", ClientID: "5"})
		close(blocked)
	}()
	select {
	case <-blocked:
		t.Fatalf("Record returned with the queue full")
	default:
	}
	close(s.gate) // the database answers again
	<-blocked
	closeOK(t, r)

	var ids []string
	for _, e := range list(t, db) {
		ids = append(ids, e.ClientID)
	}
	if want := []string{"0", "1", "2", "3", "4", "5"}; !slices.Equal(ids, want) {
		t.Errorf("stored %v, want %v", ids, want)
	}
	logged := loggedEvents(t, logs.String())
	if len(logged) != 1 || logged[0]["client_id"] != "cancelled" {
		t.Errorf("logged %v, want only the cancelled event", logged)
	}
}

func TestFromRequest(t *testing.T) {
	for _, tc := range []struct {
		remote, ua string
		ip, wantUA string
	}{
		{"203.0.113.9:51234", "curl/8", "203.0.113.9", "curl/8"},
		{"[2001:db8::1]:443", "", "2001:db8::1", ""},
		{"@", "x", "@", "x"}, // no port (a unix socket): kept as it is
		{"198.51.100.7:1", strings.Repeat("u", 513), "198.51.100.7", strings.Repeat("u", 512)},
	} {
		t.Run(tc.remote, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			r.Header.Set("User-Agent", tc.ua)
			ip, ua := audit.FromRequest(r)
			if ip != tc.ip || ua != tc.wantUA {
				t.Errorf("FromRequest = %q, %q (len %d); want %q, %q", ip, ua, len(ua), tc.ip, tc.wantUA)
			}
		})
	}
}
