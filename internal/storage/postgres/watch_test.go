package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/internal/storage/pgtest"
)

// waitFor receives from ch or fails after a generous bound. The bound is not
// a timing assertion: notifications arrive in milliseconds, and the bound
// only keeps a broken listener from hanging the test.
func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("no call to changed: %s", what)
	}
}

// TestWatchSigningKeys: a change made through another pool (another
// instance, the CLI) reaches the listener; so does a raw SQL change (the
// trigger, not the Go code, sends the notification); and when its
// connection is killed the listener returns an error for the caller to
// retry on.
func TestWatchSigningKeys(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	dbURL := pgtest.NewDatabaseURL(t)
	watcher, other := open(t, dbURL), open(t, dbURL)

	changed := make(chan struct{}, 100)
	done := make(chan error, 1)
	go func() {
		done <- watcher.WatchSigningKeys(ctx, func() { changed <- struct{}{} })
	}()
	waitFor(t, changed, "the first call, after connecting")

	at := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	k := storage.SigningKey{ID: "k1", Algorithm: "ES256", State: storage.KeyNext,
		PrivateKeyEncrypted: []byte{1}, PublicJWK: []byte(`{}`), CreatedAt: at}
	if err := other.CreateSigningKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	waitFor(t, changed, "after CreateSigningKey on another pool")

	if _, err := other.Pool().Exec(ctx, `UPDATE signing_keys SET state = 'active' WHERE id = 'k1'`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, changed, "after a raw UPDATE")

	// Kill the listener's backend, as a failover or an idle-connection
	// reaper would.
	tag, err := other.Pool().Exec(ctx, `
		SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()`)
	if err != nil {
		t.Fatal(err)
	}
	if tag.RowsAffected() != 1 {
		t.Fatalf("terminated %d listener backends, want 1", tag.RowsAffected())
	}
	select {
	case err := <-done:
		if err == nil || ctx.Err() != nil {
			t.Fatalf("WatchSigningKeys after its backend was killed = %v, want a connection error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WatchSigningKeys did not return after its backend was killed")
	}
	go func() {
		done <- watcher.WatchSigningKeys(ctx, func() { changed <- struct{}{} })
	}()
	waitFor(t, changed, "after listening again")
	if err := other.ChangeSigningKeys(ctx, storage.SigningKeyChanges{At: at, Retire: []string{"k1"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, changed, "after a change on the new connection")

	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("WatchSigningKeys = %v, want context.Canceled", err)
	}
}
