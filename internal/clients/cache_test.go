package clients_test

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/clients"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/internal/storage/pgtest"
	"github.com/gatehouse-idp/gatehouse/internal/storage/postgres"
	"github.com/gatehouse-idp/gatehouse/internal/storage/sqlite"
	"github.com/gatehouse-idp/gatehouse/internal/storage/sqlitetest"
)

// handles returns a function that opens another connection pool on one
// fresh, migrated database, closed when the test ends: one per replica,
// and one for the CLI.
type handles = func(testing.TB) func(testing.TB) storage.Store

var cacheBackends = []struct {
	name string
	open handles
}{
	{"sqlite", func(tb testing.TB) func(testing.TB) storage.Store {
		path := sqlitetest.NewPath(tb)
		return func(tb testing.TB) storage.Store {
			tb.Helper()
			db, err := sqlite.Open(tb.Context(), path)
			if err != nil {
				tb.Fatalf("open sqlite: %v", err)
			}
			tb.Cleanup(func() { db.Close() })
			// The first handle creates the schema; the others find it.
			if err := db.Migrate(tb.Context()); err != nil {
				tb.Fatalf("migrate sqlite: %v", err)
			}
			return db
		}
	}},
	{"postgres", func(tb testing.TB) func(testing.TB) storage.Store {
		url := pgtest.NewDatabaseURL(tb)
		return func(tb testing.TB) storage.Store {
			tb.Helper()
			db, err := postgres.Open(tb.Context(), url)
			if err != nil {
				tb.Fatalf("open postgres: %v", err)
			}
			tb.Cleanup(func() { db.Close() })
			return db
		}
	}},
}

func eachCacheBackend(t *testing.T, test func(t *testing.T, open handles)) {
	t.Helper()
	for _, b := range cacheBackends {
		t.Run(b.name, func(t *testing.T) { test(t, b.open) })
	}
}

// countingStore is a real store that counts the reads the cache makes and
// lets a test stop a GetClient between its database read and its return.
// It is instrumentation around real storage, not a mock: every call reaches
// the database.
type countingStore struct {
	storage.ClientStore
	gets     atomic.Int64
	versions atomic.Int64
	// afterGet, when set, runs after the database read of GetClient.
	afterGet func(id string)
	// versionRead, when set, receives after each ClientsVersion read
	// (unbuffered: the read waits for the test), until ctx is done.
	versionRead chan<- int64
}

func (s *countingStore) GetClient(ctx context.Context, id string) (storage.Client, error) {
	s.gets.Add(1)
	c, err := s.ClientStore.GetClient(ctx, id)
	if s.afterGet != nil {
		s.afterGet(id)
	}
	return c, err
}

func (s *countingStore) ClientsVersion(ctx context.Context) (int64, error) {
	s.versions.Add(1)
	v, err := s.ClientStore.ClientsVersion(ctx)
	if s.versionRead != nil {
		select {
		case s.versionRead <- v:
		case <-ctx.Done():
		}
	}
	return v, err
}

// writer is what the CLI does: register and delete clients through its own
// connection to the database.
type writer struct {
	store storage.Store
	svc   *clients.Service
}

func newWriter(t *testing.T, open func(testing.TB) storage.Store) writer {
	t.Helper()
	st := open(t)
	return writer{store: st, svc: clients.New(st, clients.Options{})}
}

func (w writer) register(t *testing.T, name string) storage.Client {
	t.Helper()
	reg, err := w.svc.Register(t.Context(), storage.ClientMetadata{
		ClientName: name, GrantTypes: []string{clients.GrantClientCredentials}, Scope: "invoices:read",
	})
	if err != nil {
		t.Fatalf("register %s: %v", name, err)
	}
	return reg.Client
}

func (w writer) delete(t *testing.T, id string) {
	t.Helper()
	if err := w.svc.Delete(t.Context(), id); err != nil {
		t.Fatalf("delete %s: %v", id, err)
	}
}

func mustRefresh(t *testing.T, c *clients.Cache) {
	t.Helper()
	if err := c.Refresh(t.Context()); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
}

// wantClient checks that the cache returns want (by id and name).
func wantClient(t *testing.T, c *clients.Cache, want storage.Client) {
	t.Helper()
	got, err := c.GetClient(t.Context(), want.ID)
	if err != nil {
		t.Fatalf("GetClient(%s): %v, want the client", want.ID, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("GetClient(%s) =\n%+v\nwant\n%+v", want.ID, got, want)
	}
}

func wantNotFound(t *testing.T, c *clients.Cache, id string) {
	t.Helper()
	if got, err := c.GetClient(t.Context(), id); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetClient(%s) = %q, %v; want ErrNotFound", id, got.Metadata.ClientName, err)
	}
}

func TestCacheServesKnownClientsFromMemory(t *testing.T) {
	eachCacheBackend(t, func(t *testing.T, open handles) {
		handle := open(t)
		w := newWriter(t, handle)
		a := w.register(t, "A")
		st := &countingStore{ClientStore: handle(t)}
		c := clients.NewCache(st, clients.CacheOptions{})
		mustRefresh(t, c)

		for range 3 {
			wantClient(t, c, a)
		}
		if n := st.gets.Load(); n != 1 {
			t.Errorf("3 GetClient calls read the database %d times, want 1", n)
		}
		// Nothing changed: a refresh keeps what is cached.
		mustRefresh(t, c)
		wantClient(t, c, a)
		if n := st.gets.Load(); n != 1 {
			t.Errorf("after a refresh without changes, %d database reads, want still 1", n)
		}
		if c.Len() != 1 {
			t.Errorf("Len = %d, want 1", c.Len())
		}
	})
}

// TestCacheSeesChangesByOtherProcesses has two replicas' caches and a CLI,
// each with its own connection to one database.
func TestCacheSeesChangesByOtherProcesses(t *testing.T) {
	eachCacheBackend(t, func(t *testing.T, open handles) {
		handle := open(t)
		cli := newWriter(t, handle)
		c1 := clients.NewCache(handle(t), clients.CacheOptions{})
		c2 := clients.NewCache(handle(t), clients.CacheOptions{})
		caches := []*clients.Cache{c1, c2}
		for _, c := range caches {
			mustRefresh(t, c)
		}

		x := cli.register(t, "X")
		for _, c := range caches {
			wantClient(t, c, x)
		}

		// Created: seen at once, even before a refresh, because an
		// unknown id is not remembered.
		const yID = "0000000000000000000000000000000y"
		for _, c := range caches {
			wantNotFound(t, c, yID)
		}
		y := storage.Client{ID: yID, Metadata: storage.ClientMetadata{ClientName: "Y"}, CreatedAt: x.CreatedAt, UpdatedAt: x.CreatedAt}
		if err := cli.store.CreateClient(t.Context(), y); err != nil {
			t.Fatal(err)
		}
		for _, c := range caches {
			wantClient(t, c, y)
		}

		// Deleted: served from memory until the cache's next refresh (at
		// most one Interval under Run), gone after it.
		cli.delete(t, x.ID)
		for _, c := range caches {
			wantClient(t, c, x)
		}
		mustRefresh(t, c1)
		wantNotFound(t, c1, x.ID)
		wantClient(t, c2, x) // c2 has not refreshed yet
		mustRefresh(t, c2)
		wantNotFound(t, c2, x.ID)
		for _, c := range caches {
			wantClient(t, c, y) // reloaded after the flush
		}

		// Deleted and created again under the same id with other
		// metadata: after a refresh the new row is served, not the old.
		cli.delete(t, y.ID)
		y2 := y
		y2.Metadata.ClientName = "Y, second edition"
		if err := cli.store.CreateClient(t.Context(), y2); err != nil {
			t.Fatal(err)
		}
		for _, c := range caches {
			wantClient(t, c, y)
			mustRefresh(t, c)
			wantClient(t, c, y2)
		}
	})
}

// TestCacheFirstRefreshFlushes: what was cached before the version was
// first read was read at an unknown version, so it cannot be trusted.
func TestCacheFirstRefreshFlushes(t *testing.T) {
	eachCacheBackend(t, func(t *testing.T, open handles) {
		handle := open(t)
		cli := newWriter(t, handle)
		x := cli.register(t, "X")
		c := clients.NewCache(handle(t), clients.CacheOptions{})
		wantClient(t, c, x) // cached before any Refresh
		cli.delete(t, x.ID)
		mustRefresh(t, c)
		wantNotFound(t, c, x.ID)
	})
}

// TestCacheMissRacingFlush is the race in which a GetClient miss reads a
// client, the client is deleted, a Refresh flushes, and only then does the
// miss store what it read. The stale row must not outlive the flush.
func TestCacheMissRacingFlush(t *testing.T) {
	eachCacheBackend(t, func(t *testing.T, open handles) {
		handle := open(t)
		cli := newWriter(t, handle)
		x := cli.register(t, "X")
		loaded, proceed := make(chan struct{}), make(chan struct{})
		st := &countingStore{ClientStore: handle(t)}
		st.afterGet = func(string) {
			loaded <- struct{}{}
			<-proceed
		}
		c := clients.NewCache(st, clients.CacheOptions{})
		mustRefresh(t, c)

		type result struct {
			c   storage.Client
			err error
		}
		done := make(chan result, 1)
		go func() {
			got, err := c.GetClient(t.Context(), x.ID)
			done <- result{got, err}
		}()
		<-loaded // the row is read; the miss has not stored it yet
		cli.delete(t, x.ID)
		mustRefresh(t, c)
		st.afterGet = nil // proceed is the only wait left
		close(proceed)
		r := <-done
		// The read happened before the delete: returning it is right.
		if r.err != nil || r.c.ID != x.ID {
			t.Fatalf("the racing GetClient = %q, %v; want the client it read", r.c.ID, r.err)
		}
		if n := c.Len(); n != 0 {
			t.Errorf("Len = %d after the racing miss; the stale row was stored after the flush", n)
		}
		wantNotFound(t, c, x.ID)
	})
}

func TestCacheDoesNotRememberMissesOrErrors(t *testing.T) {
	eachCacheBackend(t, func(t *testing.T, open handles) {
		handle := open(t)
		cli := newWriter(t, handle)
		x := cli.register(t, "X")
		st := &countingStore{ClientStore: handle(t)}
		c := clients.NewCache(st, clients.CacheOptions{})
		mustRefresh(t, c)

		canceled, cancel := context.WithCancel(t.Context())
		cancel()
		if got, err := c.GetClient(canceled, x.ID); err == nil || errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("GetClient with a canceled context = %q, %v; want the database's error", got.ID, err)
		}
		wantClient(t, c, x)
		if n := st.gets.Load(); n != 2 {
			t.Errorf("database reads = %d, want 2: the failed read must not be cached", n)
		}

		for range 2 {
			wantNotFound(t, c, "nope")
		}
		if n := st.gets.Load(); n != 4 {
			t.Errorf("database reads = %d, want 4: an unknown id must be asked again", n)
		}
		if c.Len() != 1 {
			t.Errorf("Len = %d, want 1 (only the client found)", c.Len())
		}
	})
}

func TestCacheServesCachedClientsWhileDatabaseIsDown(t *testing.T) {
	eachCacheBackend(t, func(t *testing.T, open handles) {
		handle := open(t)
		cli := newWriter(t, handle)
		x := cli.register(t, "X")
		replica := handle(t)
		logs := newLogCapture()
		c := clients.NewCache(replica, clients.CacheOptions{Interval: time.Hour, Logger: slog.New(logs)})
		mustRefresh(t, c)
		wantClient(t, c, x)

		// This replica loses its database.
		if err := replica.Close(); err != nil {
			t.Fatal(err)
		}
		if err := c.Refresh(t.Context()); err == nil {
			t.Fatal("Refresh on a closed store succeeded")
		}
		wantClient(t, c, x)
		if _, err := c.GetClient(t.Context(), "nope"); err == nil || errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetClient(unknown) with the database down = %v; want the database's error, not ErrNotFound", err)
		}

		// Run logs the failure and keeps going.
		ctx, cancel := context.WithCancel(t.Context())
		stopped := make(chan struct{})
		go func() {
			c.Run(ctx)
			close(stopped)
		}()
		rec := <-logs.records
		if rec.Level != slog.LevelError || rec.Message != "client cache refresh failed; serving cached clients" {
			t.Errorf("Run logged %s %q, want the refresh failure at ERROR", rec.Level, rec.Message)
		}
		wantClient(t, c, x)
		cancel()
		<-stopped
	})
}

func TestCacheRun(t *testing.T) {
	eachCacheBackend(t, func(t *testing.T, open handles) {
		handle := open(t)
		cli := newWriter(t, handle)
		x := cli.register(t, "X")
		reads := make(chan int64)
		st := &countingStore{ClientStore: handle(t), versionRead: reads}
		c := clients.NewCache(st, clients.CacheOptions{Interval: time.Millisecond})

		ctx, cancel := context.WithCancel(t.Context())
		stopped := make(chan struct{})
		go func() {
			c.Run(ctx)
			close(stopped)
		}()
		v0 := <-reads // Run refreshes at once
		wantClient(t, c, x)

		cli.delete(t, x.ID)
		// The first read may have started before the delete committed;
		// the second started after the first refresh finished, so after
		// the commit; the third means the second has been applied.
		<-reads
		<-reads
		v3 := <-reads
		if v3 == v0 {
			t.Errorf("clients version did not move with the delete: %d", v3)
		}
		wantNotFound(t, c, x.ID)

		cancel()
		<-stopped
		if n := st.versions.Load(); n < 4 {
			t.Errorf("%d version reads, want at least 4", n)
		}
	})
}

func TestCacheIsBounded(t *testing.T) {
	eachCacheBackend(t, func(t *testing.T, open handles) {
		handle := open(t)
		cli := newWriter(t, handle)
		var all []storage.Client
		for _, name := range []string{"A", "B", "C", "D", "E"} {
			all = append(all, cli.register(t, name))
		}
		c := clients.NewCache(handle(t), clients.CacheOptions{MaxEntries: 3})
		mustRefresh(t, c)
		for round := range 2 {
			for i, cl := range all {
				wantClient(t, c, cl)
				if want := min(i+1, 3); round == 0 && c.Len() != want {
					t.Errorf("after %d clients Len = %d, want %d", i+1, c.Len(), want)
				}
				if c.Len() > 3 {
					t.Fatalf("Len = %d, over MaxEntries 3", c.Len())
				}
			}
		}
	})
}

// TestCacheReturnsCopies fills every slice of a client, changes every
// element of what GetClient returned, and checks the cache did not see it.
func TestCacheReturnsCopies(t *testing.T) {
	eachCacheBackend(t, func(t *testing.T, open handles) {
		handle := open(t)
		cli := newWriter(t, handle)
		want := storage.Client{ID: "c", CreatedAt: epoch.Truncate(time.Microsecond), UpdatedAt: epoch.Truncate(time.Microsecond)}
		forEachSlice(&want, func(name string, v reflect.Value) {
			switch v.Type().Elem().Kind() {
			case reflect.String:
				v.Set(reflect.ValueOf([]string{name}))
			case reflect.Uint8:
				v.Set(reflect.ValueOf([]byte(name)))
			default:
				t.Fatalf("%s: a slice of %s; teach this test to fill it", name, v.Type().Elem())
			}
		})
		if err := cli.store.CreateClient(t.Context(), want); err != nil {
			t.Fatal(err)
		}
		c := clients.NewCache(handle(t), clients.CacheOptions{})
		for _, step := range []string{"miss", "hit"} {
			got, err := c.GetClient(t.Context(), want.ID)
			if err != nil {
				t.Fatal(err)
			}
			forEachSlice(&got, func(name string, v reflect.Value) {
				if v.Len() == 0 {
					t.Fatalf("%s: %s came back empty; the copy check proves nothing", step, name)
				}
				v.Index(0).Set(reflect.Zero(v.Type().Elem()))
			})
			wantClient(t, c, want)
		}
	})
}

// forEachSlice calls f with every slice field of c and of its metadata.
func forEachSlice(c *storage.Client, f func(name string, v reflect.Value)) {
	for _, s := range []reflect.Value{reflect.ValueOf(c).Elem(), reflect.ValueOf(&c.Metadata).Elem()} {
		for i := range s.NumField() {
			if s.Field(i).Kind() == reflect.Slice {
				f(s.Type().Field(i).Name, s.Field(i))
			}
		}
	}
}

// TestCacheConcurrentUse runs lookups, refreshes and deletes at once; run
// it with -race.
func TestCacheConcurrentUse(t *testing.T) {
	eachCacheBackend(t, func(t *testing.T, open handles) {
		handle := open(t)
		cli := newWriter(t, handle)
		var all []storage.Client
		for _, name := range []string{"A", "B", "C", "D"} {
			all = append(all, cli.register(t, name))
		}
		c := clients.NewCache(handle(t), clients.CacheOptions{MaxEntries: 2})
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for i := range 50 {
					cl := all[(g+i)%len(all)]
					got, err := c.GetClient(t.Context(), cl.ID)
					switch {
					case errors.Is(err, storage.ErrNotFound) && cl.ID == all[0].ID:
					case err != nil:
						t.Errorf("GetClient(%s): %v", cl.Metadata.ClientName, err)
						return
					case got.Metadata.ClientName != cl.Metadata.ClientName:
						t.Errorf("GetClient(%s) = %s", cl.Metadata.ClientName, got.Metadata.ClientName)
						return
					}
				}
			})
		}
		wg.Go(func() {
			for range 20 {
				if err := c.Refresh(t.Context()); err != nil {
					t.Errorf("Refresh: %v", err)
					return
				}
			}
		})
		wg.Go(func() {
			if err := cli.svc.Delete(t.Context(), all[0].ID); err != nil {
				t.Errorf("Delete: %v", err)
			}
		})
		wg.Wait()
		mustRefresh(t, c)
		wantNotFound(t, c, all[0].ID)
		for _, cl := range all[1:] {
			wantClient(t, c, cl)
		}
	})
}

// logCapture is a slog.Handler that hands records to the test.
type logCapture struct{ records chan slog.Record }

func newLogCapture() *logCapture { return &logCapture{records: make(chan slog.Record, 100)} }

func (h *logCapture) Enabled(context.Context, slog.Level) bool { return true }
func (h *logCapture) Handle(_ context.Context, r slog.Record) error {
	select {
	case h.records <- r:
	default: // the test has seen enough
	}
	return nil
}
func (h *logCapture) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logCapture) WithGroup(string) slog.Handler      { return h }
