package keys_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/keys"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/internal/storage/pgtest"
)

// testPolicy is the default policy's timing with both default algorithms,
// spelled out so the tests read as the lifecycle they walk.
var testPolicy = keys.Policy{
	Algorithms:     []string{keys.RS256, keys.ES256},
	RotationPeriod: 30 * 24 * time.Hour,
	PrePublication: 24 * time.Hour,
	Retention:      time.Hour,
}

func newPolicyManager(t testing.TB, store storage.SigningKeyStore, kek keys.KEK, clk *clock, p keys.Policy, onChange func(context.Context, keys.Change)) *keys.Manager {
	t.Helper()
	return keys.NewManager(store, kek, keys.Options{
		Now:      clk.Now,
		Logger:   testLogger(t),
		Policy:   p,
		OnChange: onChange,
	})
}

// jwksKIDs is the kids the manager publishes, in JWKS order.
func jwksKIDs(t testing.TB, m *keys.Manager) []string {
	t.Helper()
	body, _ := m.JWKS()
	var doc struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range doc.Keys {
		kids = append(kids, k.KID)
	}
	return kids
}

// keyIn returns the one key of alg in state, failing if there is not
// exactly one.
func keyIn(t testing.TB, store storage.SigningKeyStore, alg string, state storage.KeyState) storage.SigningKey {
	t.Helper()
	var found []storage.SigningKey
	for _, r := range listKeys(t, store) {
		if r.Algorithm == alg && r.State == state {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d %s %s keys, want 1: %v", len(found), alg, state, describe(listKeys(t, store)))
	}
	return found[0]
}

func kidOf(t testing.TB, token string) string {
	t.Helper()
	kid, _ := decodeHeader(t, token)["kid"].(string)
	return kid
}

func maintain(t testing.TB, m *keys.Manager) keys.Change {
	t.Helper()
	c, err := m.Maintain(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ids(ks []keys.KeyInfo) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = k.ID
	}
	slices.Sort(out)
	return out
}

// TestLifecycle walks a key through next → active → retired → deleted on
// the injected clock, checking at each step what verifiers see.
func TestLifecycle(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store storage.Store) {
		kek, clk := newKEK(t), newClock()
		var changes []keys.Change
		m := newPolicyManager(t, store, kek, clk, testPolicy, func(_ context.Context, c keys.Change) {
			changes = append(changes, c)
		})
		if err := m.Init(t.Context()); err != nil {
			t.Fatal(err)
		}
		start := clk.Now()
		for _, alg := range testPolicy.Algorithms {
			keyIn(t, store, alg, storage.KeyActive)
			keyIn(t, store, alg, storage.KeyNext)
		}
		if got := len(jwksKIDs(t, m)); got != 4 {
			t.Fatalf("JWKS has %d keys after Init, want 4 (active and next for RS256 and ES256)", got)
		}
		first := keyIn(t, store, keys.RS256, storage.KeyActive)
		next := keyIn(t, store, keys.RS256, storage.KeyNext)
		if !slices.Contains(jwksKIDs(t, m), next.ID) {
			t.Fatal("next key not published")
		}
		before, err := m.Sign(keys.RS256, "at+jwt", map[string]any{"sub": "s", "exp": start.Add(time.Hour).Unix()})
		if err != nil {
			t.Fatal(err)
		}
		if kidOf(t, before) != first.ID {
			t.Fatalf("signed with %s, want the active key %s", kidOf(t, before), first.ID)
		}

		// Just before the rotation period ends nothing changes.
		clk.Advance(testPolicy.RotationPeriod - time.Second)
		if c := maintain(t, m); !c.Empty() {
			t.Fatalf("Maintain before the rotation is due changed %v", c.LogValue())
		}
		clk.Advance(time.Second)
		c := maintain(t, m)
		if got := ids(c.Promoted); len(got) != 2 || !slices.Contains(got, next.ID) {
			t.Fatalf("promoted %v, want the two next keys including %s", got, next.ID)
		}
		if got := ids(c.Retired); len(got) != 2 || !slices.Contains(got, first.ID) {
			t.Errorf("retired %v, want the two active keys including %s", got, first.ID)
		}
		if len(c.Created) != 2 {
			t.Errorf("created %d keys, want a fresh next key per algorithm", len(c.Created))
		}
		rotatedAt := clk.Now()
		// The key that signs from now on was published (as next) for the
		// whole rotation period, far beyond the pre-publication time.
		if published := rotatedAt.Sub(next.CreatedAt); published < testPolicy.PrePublication {
			t.Errorf("new active key was published %s before signing, want ≥ %s", published, testPolicy.PrePublication)
		}

		after, err := m.Sign(keys.RS256, "at+jwt", map[string]any{"sub": "s"})
		if err != nil {
			t.Fatal(err)
		}
		if kidOf(t, after) != next.ID {
			t.Errorf("after rotation signed with %s, want the former next key %s", kidOf(t, after), next.ID)
		}
		if _, _, err := m.Verify(before); err != nil {
			t.Errorf("token signed before the rotation no longer verifies: %v", err)
		}
		if r := keyIn(t, store, keys.RS256, storage.KeyRetired); r.ID != first.ID || r.RetiredAt == nil || !r.RetiredAt.Equal(rotatedAt) {
			t.Errorf("retired key = %s retired at %v, want %s at %v", r.ID, r.RetiredAt, first.ID, rotatedAt)
		}
		newNext := keyIn(t, store, keys.RS256, storage.KeyNext)
		if !slices.Contains(jwksKIDs(t, m), newNext.ID) || !slices.Contains(jwksKIDs(t, m), first.ID) {
			t.Errorf("JWKS %v lacks the retired %s or the new next %s", jwksKIDs(t, m), first.ID, newNext.ID)
		}

		// The retired key stays published for the retention time...
		clk.Advance(testPolicy.Retention - time.Second)
		if c := maintain(t, m); !c.Empty() {
			t.Fatalf("Maintain within retention changed %v", c.LogValue())
		}
		if !slices.Contains(jwksKIDs(t, m), first.ID) {
			t.Fatal("retired key left the JWKS before its retention ended")
		}
		if _, _, err := m.Verify(before); err != nil {
			t.Errorf("token of the retired key rejected within retention: %v", err)
		}
		// ... and then is deleted.
		clk.Advance(time.Second)
		c = maintain(t, m)
		if got := ids(c.Deleted); len(got) != 2 || !slices.Contains(got, first.ID) {
			t.Errorf("deleted %v, want both retired keys", got)
		}
		if slices.Contains(jwksKIDs(t, m), first.ID) {
			t.Error("retired key still published after retention")
		}
		if _, _, err := m.Verify(before); !errors.Is(err, keys.ErrUnknownKey) {
			t.Errorf("Verify with a deleted key: %v, want ErrUnknownKey", err)
		}
		if n := len(listKeys(t, store)); n != 4 {
			t.Errorf("%d keys stored at the end, want 4", n)
		}
		if len(changes) != 3 {
			t.Errorf("OnChange called %d times, want 3 (bootstrap, rotation, deletion)", len(changes))
		}
	})
}

// TestMaintainLoadsWhatItSees: keys made by another instance after this
// one last loaded, which Maintain finds already in order, are loaded by
// Maintain (the race of two instances starting at once, made
// deterministic).
func TestMaintainLoadsWhatItSees(t *testing.T) {
	store := openSQLite(t)
	kek, clk := newKEK(t), newClock()
	m := newPolicyManager(t, store, kek, clk, testPolicy, nil)
	if err := m.Refresh(t.Context()); err != nil { // sees no keys
		t.Fatal(err)
	}
	if err := newPolicyManager(t, store, kek, clk, testPolicy, nil).Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	c, err := m.Maintain(t.Context())
	if err != nil || !c.Empty() {
		t.Fatalf("Maintain = %v, %v; want no change", c.LogValue(), err)
	}
	if !m.Ready() || len(jwksKIDs(t, m)) != 4 {
		t.Errorf("after Maintain: ready %v, %d keys published; want the other instance's 4", m.Ready(), len(jwksKIDs(t, m)))
	}
}

// TestRotationWaitsForPrePublication: a next key younger than the
// pre-publication time is never promoted on schedule, even when the
// active key is overdue.
func TestRotationWaitsForPrePublication(t *testing.T) {
	store := openSQLite(t)
	kek, clk := newKEK(t), newClock()
	p := keys.Policy{Algorithms: []string{keys.RS256}, RotationPeriod: 48 * time.Hour, PrePublication: 24 * time.Hour}
	m := newPolicyManager(t, store, kek, clk, p, nil)
	if err := m.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	// The next key is revoked late in the period; its replacement is new.
	clk.Advance(47 * time.Hour)
	if _, err := m.Revoke(t.Context(), keyIn(t, store, keys.RS256, storage.KeyNext).ID); err != nil {
		t.Fatal(err)
	}
	replacement := keyIn(t, store, keys.RS256, storage.KeyNext)
	clk.Advance(2 * time.Hour) // active is overdue by an hour
	if c := maintain(t, m); !c.Empty() {
		t.Fatalf("promoted a key published 2h ago: %v", c.LogValue())
	}
	clk.Advance(22 * time.Hour)
	c := maintain(t, m)
	if got := ids(c.Promoted); !slices.Equal(got, []string{replacement.ID}) {
		t.Errorf("promoted %v, want %s once it had been published 24h", got, replacement.ID)
	}
}

func TestRotate(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store storage.Store) {
		kek, clk := newKEK(t), newClock()
		m := newPolicyManager(t, store, kek, clk, testPolicy, nil)
		if err := m.Init(t.Context()); err != nil {
			t.Fatal(err)
		}
		active := keyIn(t, store, keys.ES256, storage.KeyActive)
		next := keyIn(t, store, keys.ES256, storage.KeyNext)

		clk.Advance(time.Hour)
		_, err := m.Rotate(t.Context(), keys.ES256, false)
		if !errors.Is(err, keys.ErrTooEarly) {
			t.Fatalf("Rotate an hour after the next key appeared: %v, want ErrTooEarly", err)
		}
		if keyIn(t, store, keys.ES256, storage.KeyActive).ID != active.ID {
			t.Fatal("a refused rotation changed the active key")
		}
		clk.Advance(23 * time.Hour)
		c, err := m.Rotate(t.Context(), keys.ES256, false)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids(c.Promoted), []string{next.ID}) || !slices.Equal(ids(c.Retired), []string{active.ID}) || len(c.Created) != 1 {
			t.Errorf("change = %v", c.LogValue())
		}
		if kid, _ := m.ActiveKeyID(keys.ES256); kid != next.ID {
			t.Errorf("ES256 signs with %s, want %s", kid, next.ID)
		}
		if kid, _ := m.ActiveKeyID(keys.RS256); kid != keyIn(t, store, keys.RS256, storage.KeyActive).ID {
			t.Error("rotating ES256 touched RS256")
		}
		// Forced: the brand-new next key signs at once.
		fresh := keyIn(t, store, keys.ES256, storage.KeyNext)
		if _, err := m.Rotate(t.Context(), keys.ES256, true); err != nil {
			t.Fatal(err)
		}
		if kid, _ := m.ActiveKeyID(keys.ES256); kid != fresh.ID {
			t.Errorf("forced rotation: ES256 signs with %s, want %s", kid, fresh.ID)
		}
		if _, err := m.Rotate(t.Context(), "HS256", true); err == nil {
			t.Error("Rotate HS256 succeeded")
		}
	})
}

func TestRevoke(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store storage.Store) {
		kek, clk := newKEK(t), newClock()
		m := newPolicyManager(t, store, kek, clk, testPolicy, nil)
		if err := m.Init(t.Context()); err != nil {
			t.Fatal(err)
		}
		active := keyIn(t, store, keys.RS256, storage.KeyActive)
		next := keyIn(t, store, keys.RS256, storage.KeyNext)
		token, err := m.Sign(keys.RS256, "JWT", map[string]any{"sub": "s"})
		if err != nil {
			t.Fatal(err)
		}

		clk.Advance(time.Minute)
		c, err := m.Revoke(t.Context(), active.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids(c.Revoked), []string{active.ID}) || !slices.Equal(ids(c.Promoted), []string{next.ID}) || len(c.Created) != 1 {
			t.Errorf("change = %v", c.LogValue())
		}
		// Out of the JWKS and of Verify at once, without waiting for
		// retention.
		if slices.Contains(jwksKIDs(t, m), active.ID) {
			t.Error("revoked key still published")
		}
		if _, _, err := m.Verify(token); !errors.Is(err, keys.ErrUnknownKey) {
			t.Errorf("Verify with a revoked key: %v, want ErrUnknownKey", err)
		}
		if kid, _ := m.ActiveKeyID(keys.RS256); kid != next.ID {
			t.Errorf("after revoking the active key RS256 signs with %s, want the next key %s", kid, next.ID)
		}
		r := listKeys(t, store)[slices.IndexFunc(listKeys(t, store), func(r storage.SigningKey) bool { return r.ID == active.ID })]
		if r.State != storage.KeyRevoked || r.RevokedAt == nil || !r.RevokedAt.Equal(clk.Now()) {
			t.Errorf("revoked row = %s revoked at %v", r.State, r.RevokedAt)
		}
		// Maintenance never brings it back nor deletes the record early.
		clk.Advance(100 * 24 * time.Hour)
		maintain(t, m)
		if slices.Contains(jwksKIDs(t, m), active.ID) {
			t.Error("revoked key published again")
		}

		// Revoking the next key replaces it.
		n2 := keyIn(t, store, keys.RS256, storage.KeyNext)
		if _, err := m.Revoke(t.Context(), n2.ID); err != nil {
			t.Fatal(err)
		}
		if n3 := keyIn(t, store, keys.RS256, storage.KeyNext); n3.ID == n2.ID {
			t.Error("revoked next key was not replaced")
		}

		if _, err := m.Revoke(t.Context(), active.ID); !errors.Is(err, storage.ErrConflict) {
			t.Errorf("revoking twice: %v, want ErrConflict", err)
		}
		if _, err := m.Revoke(t.Context(), "no-such-kid"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("revoking an unknown kid: %v, want ErrNotFound", err)
		}
	})
}

// TestRevokeReachesOtherInstance: a revocation made by one instance (or
// the CLI) takes the key out of another instance's JWKS and Verify as
// soon as that instance refreshes.
func TestRevokeReachesOtherInstance(t *testing.T) {
	store := openPostgres(t)
	kek, clk := newKEK(t), newClock()
	a := newPolicyManager(t, store, kek, clk, testPolicy, nil)
	b := newPolicyManager(t, store, kek, clk, testPolicy, nil)
	for _, m := range []*keys.Manager{a, b} {
		if err := m.Init(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	token, err := b.Sign(keys.ES256, "JWT", map[string]any{"sub": "s"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Revoke(t.Context(), kidOf(t, token)); err != nil {
		t.Fatal(err)
	}
	if err := b.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Verify(token); !errors.Is(err, keys.ErrUnknownKey) {
		t.Errorf("other instance still accepts the revoked key: %v", err)
	}
	if !slices.Equal(jwksKIDs(t, a), jwksKIDs(t, b)) {
		t.Errorf("JWKS differ: %v vs %v", jwksKIDs(t, a), jwksKIDs(t, b))
	}
}

// TestMaintainConcurrent: when a rotation falls due, every instance's
// scheduler fires at about the same time; exactly one rotation happens.
func TestMaintainConcurrent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store storage.Store) {
		kek, clk := newKEK(t), newClock()
		const instances = 6
		var mu sync.Mutex
		var changes []keys.Change
		ms := make([]*keys.Manager, instances)
		for i := range ms {
			ms[i] = newPolicyManager(t, store, kek, clk, testPolicy, func(_ context.Context, c keys.Change) {
				mu.Lock()
				defer mu.Unlock()
				changes = append(changes, c)
			})
			if err := ms[i].Init(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		mu.Lock()
		changes = nil // Init's bootstrap
		mu.Unlock()
		clk.Advance(testPolicy.RotationPeriod)

		var wg sync.WaitGroup
		for _, m := range ms {
			wg.Go(func() {
				if _, err := m.Maintain(t.Context()); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		promoted := 0
		for _, c := range changes {
			promoted += len(c.Promoted)
		}
		if promoted != 2 {
			t.Errorf("%d promotions across %d instances (%d steps), want 2: one per algorithm", promoted, instances, len(changes))
		}
		for _, alg := range testPolicy.Algorithms {
			keyIn(t, store, alg, storage.KeyActive)
			keyIn(t, store, alg, storage.KeyNext)
			keyIn(t, store, alg, storage.KeyRetired)
		}
		// Every instance ends on the same keys.
		for _, m := range ms[1:] {
			if err := m.Refresh(t.Context()); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(jwksKIDs(t, m), jwksKIDs(t, ms[0])) {
				t.Errorf("instances disagree on the JWKS")
			}
		}
	})
}

// TestRewrap moves the keys to a new key-encryption key while the old one
// is still configured as an additional key, then runs without the old one.
func TestRewrap(t *testing.T) {
	store := openSQLite(t)
	oldKEK, newKEK_, clk := newKEK(t), newKEK(t), newClock()
	if err := newPolicyManager(t, store, oldKEK, clk, testPolicy, nil).Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	before := listKeys(t, store)

	// Only the new KEK: the keys cannot be opened, and the manager will
	// not create keys nobody could read alongside them.
	onlyNew := newPolicyManager(t, store, newKEK_, clk, testPolicy, nil)
	if err := onlyNew.Init(t.Context()); err == nil {
		t.Fatal("Init with a KEK that opens none of the keys succeeded")
	}
	if _, err := onlyNew.Rotate(t.Context(), keys.RS256, true); err == nil {
		t.Fatal("Rotate with a KEK that opens none of the keys succeeded")
	}
	if n := len(listKeys(t, store)); n != len(before) {
		t.Fatalf("%d keys after refused steps, want %d", n, len(before))
	}

	both := keys.NewManager(store, newKEK_, keys.Options{Now: clk.Now, Logger: testLogger(t), Policy: testPolicy, AdditionalKEKs: []keys.KEK{oldKEK}})
	if err := both.Init(t.Context()); err != nil {
		t.Fatalf("Init with the old KEK as additional: %v", err)
	}
	token, err := both.Sign(keys.RS256, "JWT", map[string]any{"sub": "s"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := both.Rewrap(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rewrapped) != len(before) || len(res.Current) != 0 {
		t.Errorf("rewrap = %+v, want all %d keys rewrapped", res, len(before))
	}
	res, err = both.Rewrap(t.Context())
	if err != nil || len(res.Rewrapped) != 0 || len(res.Current) != len(before) {
		t.Errorf("second rewrap = %+v, %v; want nothing to do", res, err)
	}
	for i, r := range listKeys(t, store) {
		if string(r.PrivateKeyEncrypted) == string(before[i].PrivateKeyEncrypted) {
			t.Errorf("key %s ciphertext unchanged", r.ID)
		}
	}

	// Now the old KEK can go.
	after := newPolicyManager(t, store, newKEK_, clk, testPolicy, nil)
	if err := after.Init(t.Context()); err != nil {
		t.Fatalf("Init with the new KEK alone after rewrap: %v", err)
	}
	if _, _, err := after.Verify(token); err != nil {
		t.Errorf("token signed before the rewrap: %v", err)
	}
	if !slices.Equal(jwksKIDs(t, after), jwksKIDs(t, both)) {
		t.Error("rewrap changed the published keys")
	}
	if _, err := newPolicyManager(t, store, oldKEK, clk, testPolicy, nil).Rotate(t.Context(), keys.RS256, true); err == nil {
		t.Error("a process with only the old KEK rotated keys after the rewrap")
	}
}

func TestPolicyValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		p      keys.Policy
		maxAge time.Duration
		errs   int
	}{
		{"defaults", keys.Policy{}, 10 * time.Minute, 0},
		{"all algorithms", keys.Policy{Algorithms: []string{keys.RS256, keys.ES256, keys.EdDSA}}, 10 * time.Minute, 0},
		{"unknown algorithm", keys.Policy{Algorithms: []string{"HS256"}}, 10 * time.Minute, 1},
		{"pre-publication within max-age", keys.Policy{PrePublication: 5 * time.Minute}, 10 * time.Minute, 1},
		{"pre-publication equal to max-age", keys.Policy{PrePublication: 10 * time.Minute}, 10 * time.Minute, 1},
		{"rotation shorter than pre-publication", keys.Policy{RotationPeriod: time.Hour}, 10 * time.Minute, 1},
		{"everything wrong", keys.Policy{Algorithms: []string{"none"}, RotationPeriod: 30 * time.Second, PrePublication: time.Minute}, time.Hour, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if errs := tc.p.Validate(tc.maxAge); len(errs) != tc.errs {
				t.Errorf("Validate = %v, want %d errors", errs, tc.errs)
			}
		})
	}
}

// BenchmarkMaintain is what every replica pays each minute when nothing
// is due: one read of the key list, on Postgres.
func BenchmarkMaintain(b *testing.B) {
	store := pgtest.NewStore(b)
	kek, clk := newKEK(b), newClock()
	m := keys.NewManager(store, kek, keys.Options{Now: clk.Now, Logger: slog.New(slog.DiscardHandler), Policy: testPolicy})
	if err := m.Init(b.Context()); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		c, err := m.Maintain(b.Context())
		if err != nil || !c.Empty() {
			b.Fatal(c, err)
		}
	}
}

// BenchmarkRotate is one scheduled rotation of RS256 and ES256 on
// Postgres, including generating the fresh next keys and reloading.
func BenchmarkRotate(b *testing.B) {
	store := pgtest.NewStore(b)
	kek, clk := newKEK(b), newClock()
	m := keys.NewManager(store, kek, keys.Options{Now: clk.Now, Logger: slog.New(slog.DiscardHandler), Policy: testPolicy})
	if err := m.Init(b.Context()); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		clk.Advance(testPolicy.RotationPeriod)
		c, err := m.Maintain(b.Context())
		if err != nil || len(c.Promoted) != 2 {
			b.Fatal(c, err)
		}
	}
}
