package clients

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// CacheOptions configure a Cache. Zero values are replaced by defaults.
type CacheOptions struct {
	// Interval is how often Run calls Refresh, and so how long a client
	// deleted by another process (a replica, the CLI) may still be served
	// from the cache. Default 1s.
	Interval time.Duration
	// MaxEntries bounds the number of cached clients. Default 10000.
	MaxEntries int
	Logger     *slog.Logger // default: discards
}

func (o CacheOptions) withDefaults() CacheOptions {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = 10000
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Cache keeps clients in memory so that the token endpoint needs no
// database read for a client it has seen (DESIGN.md, "Scale"). It is safe
// for concurrent use.
//
// Staleness is bounded by polling storage.ClientStore.ClientsVersion: when
// the version changes, Refresh drops every entry. While Run is running, a
// client deleted or created by any process is seen within one Interval of
// its transaction's commit. (A created client is seen at once: unknown ids
// are never cached.) If the database cannot be reached, cached clients are
// still served and Run keeps trying.
type Cache struct {
	store storage.ClientStore
	opts  CacheOptions

	// refreshMu serializes Refresh calls, so that versions are applied in
	// the order they were read.
	refreshMu sync.Mutex

	mu sync.RWMutex
	// gen counts flushes. A GetClient miss notes gen before it reads the
	// database and stores what it read only if no flush happened in
	// between: a flush means the version moved while it was reading, so
	// the row may predate the change that moved it.
	gen     uint64
	version int64
	known   bool // version has been read at least once
	entries map[string]storage.Client
}

// NewCache returns an empty Cache over store. Call Run to keep it fresh.
func NewCache(store storage.ClientStore, opts CacheOptions) *Cache {
	return &Cache{store: store, opts: opts.withDefaults(), entries: make(map[string]storage.Client)}
}

// GetClient has the contract of storage.ClientStore.GetClient: the client
// with this id, or an error wrapping storage.ErrNotFound. Clients found are
// cached; unknown ids and errors are not. The result is the caller's to
// modify: it shares no memory with the cache.
func (c *Cache) GetClient(ctx context.Context, id string) (storage.Client, error) {
	c.mu.RLock()
	cl, ok := c.entries[id]
	gen := c.gen
	c.mu.RUnlock()
	if ok {
		return cloneClient(cl), nil
	}

	cl, err := c.store.GetClient(ctx, id)
	if err != nil {
		return storage.Client{}, err
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen == gen {
		if _, present := c.entries[id]; !present && len(c.entries) >= c.opts.MaxEntries {
			// Evict an arbitrary entry: map iteration order is
			// unspecified. Unknown ids are never cached, so only real
			// clients compete for the space.
			for k := range c.entries {
				delete(c.entries, k)
				break
			}
		}
		c.entries[id] = cloneClient(cl)
	}
	return cl, nil
}

// Refresh reads the clients version and, if it differs from the one the
// last successful Refresh read (or none has succeeded yet), drops every
// cached client. On error the cache is left as it was.
func (c *Cache) Refresh(ctx context.Context) error {
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	// Read outside c.mu: GetClient hits must not wait on the database.
	v, err := c.store.ClientsVersion(ctx)
	if err != nil {
		return fmt.Errorf("refresh client cache: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.known && v == c.version {
		return nil
	}
	// Entries cached before the first version was read were loaded at
	// an unknown version: they go too.
	n := len(c.entries)
	c.entries = make(map[string]storage.Client)
	c.gen++
	c.version, c.known = v, true
	if n > 0 {
		c.opts.Logger.DebugContext(ctx, "client cache flushed", "version", v, "dropped", n)
	}
	return nil
}

// Run calls Refresh at once and then every Interval until ctx is done. It
// logs failures and carries on, serving what is cached meanwhile.
func (c *Cache) Run(ctx context.Context) {
	t := time.NewTicker(c.opts.Interval)
	defer t.Stop()
	for {
		if err := c.Refresh(ctx); err != nil && ctx.Err() == nil {
			c.opts.Logger.ErrorContext(ctx, "client cache refresh failed; serving cached clients", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Len returns the number of cached clients.
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

// cloneClient copies every slice of cl, so that no caller can change what
// the cache holds.
func cloneClient(cl storage.Client) storage.Client {
	cl.SecretHash = slices.Clone(cl.SecretHash)
	md := &cl.Metadata
	md.RedirectURIs = slices.Clone(md.RedirectURIs)
	md.PostLogoutRedirectURIs = slices.Clone(md.PostLogoutRedirectURIs)
	md.GrantTypes = slices.Clone(md.GrantTypes)
	md.ResponseTypes = slices.Clone(md.ResponseTypes)
	md.Contacts = slices.Clone(md.Contacts)
	md.AllowedResources = slices.Clone(md.AllowedResources)
	if md.MaxSessionsPerUser != nil {
		n := *md.MaxSessionsPerUser
		md.MaxSessionsPerUser = &n
	}
	return cl
}
