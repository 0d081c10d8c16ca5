package keys

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// Policy is the signing-key lifecycle: which algorithms have keys, how long
// a key signs, how long it is published before it signs, and how long after.
//
//	created (next) --PrePublication--> may be promoted
//	active --RotationPeriod--> retired (its successor, the next key, signs)
//	retired --Retention--> deleted
//
// revoked is outside the cycle: out of the JWKS at once, never used again.
type Policy struct {
	// Algorithms that keep an active and a next key. RS256 is always
	// among them (OIDC Core §15.1 requires it). Default: RS256 and ES256.
	Algorithms []string
	// RotationPeriod is how long a key signs before its next key takes
	// over; default 30 days.
	RotationPeriod time.Duration
	// PrePublication is the least time a key is in the JWKS before it
	// signs anything; default 24 hours. It must be longer than the JWKS
	// max-age, so that every verifier that caches the JWKS as told has
	// the key before the first token signed with it.
	PrePublication time.Duration
	// Retention is how long a retired key stays in the JWKS: at least the
	// longest lifetime of a token it signed, plus the clock-skew allowance
	// of verifiers. Default 1 hour.
	Retention time.Duration
}

// DefaultAlgorithms are the algorithms a Policy gets when it names none.
// EdDSA is opt-in: some JWKS consumers still reject OKP keys, and one key
// they cannot parse can make them reject the whole set.
var DefaultAlgorithms = []string{RS256, ES256}

func (p Policy) withDefaults() Policy {
	if len(p.Algorithms) == 0 {
		p.Algorithms = DefaultAlgorithms
	}
	algs := []string{RS256}
	for _, a := range p.Algorithms {
		if !slices.Contains(algs, a) {
			algs = append(algs, a)
		}
	}
	p.Algorithms = algs
	if p.RotationPeriod <= 0 {
		p.RotationPeriod = 30 * 24 * time.Hour
	}
	if p.PrePublication <= 0 {
		p.PrePublication = 24 * time.Hour
	}
	if p.Retention <= 0 {
		p.Retention = time.Hour
	}
	return p
}

// PolicyError is one problem with a Policy; Field names the setting
// ("algorithms", "rotation-period" or "pre-publication").
type PolicyError struct {
	Field string
	Err   error
}

func (e *PolicyError) Error() string { return e.Err.Error() }
func (e *PolicyError) Unwrap() error { return e.Err }

// WithDefaults is p as a Manager uses it: defaults filled in, RS256 first
// among the algorithms.
func (p Policy) WithDefaults() Policy { return p.withDefaults() }

// Validate reports every problem with p (after defaults), given the JWKS
// max-age it will be served with. Each error is a *PolicyError.
func (p Policy) Validate(jwksMaxAge time.Duration) []error {
	p = p.withDefaults()
	var errs []error
	for _, a := range p.Algorithms {
		if err := checkAlgorithm(a); err != nil {
			errs = append(errs, &PolicyError{"algorithms", err})
		}
	}
	if p.PrePublication <= jwksMaxAge {
		errs = append(errs, &PolicyError{"pre-publication", fmt.Errorf("key pre-publication (%s) must be longer than the JWKS max-age (%s): a verifier could meet a token signed by a key it has not fetched", p.PrePublication, jwksMaxAge)})
	}
	if p.RotationPeriod < p.PrePublication {
		errs = append(errs, &PolicyError{"rotation-period", fmt.Errorf("key rotation period (%s) must be at least the pre-publication time (%s): each next key must be published that long before it signs", p.RotationPeriod, p.PrePublication)})
	}
	return errs
}

// Change is what one lifecycle step did, for logs, the CLI and audit.
type Change struct {
	Created  []KeyInfo // new keys (next, or active at bootstrap)
	Promoted []KeyInfo // next keys that now sign
	Retired  []KeyInfo // keys that stopped signing
	Revoked  []KeyInfo
	Deleted  []KeyInfo
}

// Empty reports whether the step changed nothing.
func (c Change) Empty() bool {
	return len(c.Created)+len(c.Promoted)+len(c.Retired)+len(c.Revoked)+len(c.Deleted) == 0
}

// LogValue lists the kids by what happened to them.
func (c Change) LogValue() slog.Value {
	var attrs []slog.Attr
	add := func(name string, ks []KeyInfo) {
		if len(ks) == 0 {
			return
		}
		ids := make([]string, len(ks))
		for i, k := range ks {
			ids[i] = k.ID + " (" + k.Algorithm + ")"
		}
		attrs = append(attrs, slog.String(name, strings.Join(ids, ", ")))
	}
	add("created", c.Created)
	add("promoted", c.Promoted)
	add("retired", c.Retired)
	add("revoked", c.Revoked)
	add("deleted", c.Deleted)
	return slog.GroupValue(attrs...)
}

// KeyInfo is a key's public facts: everything but the key material.
type KeyInfo struct {
	ID          string
	Algorithm   string
	State       storage.KeyState
	CreatedAt   time.Time
	ActivatedAt *time.Time
	RetiredAt   *time.Time
	RevokedAt   *time.Time
}

func infoOf(r storage.SigningKey) KeyInfo {
	return KeyInfo{ID: r.ID, Algorithm: r.Algorithm, State: r.State, CreatedAt: r.CreatedAt,
		ActivatedAt: r.ActivatedAt, RetiredAt: r.RetiredAt, RevokedAt: r.RevokedAt}
}

// Keys lists every key in storage, in every state, oldest first.
func (m *Manager) Keys(ctx context.Context) ([]KeyInfo, error) {
	rows, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]KeyInfo, len(rows))
	for i, r := range rows {
		out[i] = infoOf(r)
	}
	return out, nil
}

// Schedule says when a key's next lifecycle event is due under the policy:
// for a next key, when it may first sign; for an active key, when it is
// due to be replaced; for a retired key, when it leaves the JWKS. Zero for
// revoked keys.
func (m *Manager) Schedule(k KeyInfo) time.Time {
	p := m.opts.Policy
	switch k.State {
	case storage.KeyNext:
		return k.CreatedAt.Add(p.PrePublication)
	case storage.KeyActive:
		if k.ActivatedAt != nil {
			return k.ActivatedAt.Add(p.RotationPeriod)
		}
	case storage.KeyRetired:
		if k.RetiredAt != nil {
			return k.RetiredAt.Add(p.Retention)
		}
	}
	return time.Time{}
}

// Policy returns the lifecycle policy in force, defaults applied.
func (m *Manager) Policy() Policy { return m.opts.Policy }

// byAlg is the keys of one algorithm that a step looks at.
type byAlg struct {
	active, next *storage.SigningKey
}

func groupByAlg(rows []storage.SigningKey) map[string]byAlg {
	groups := make(map[string]byAlg)
	for i := range rows {
		r := &rows[i]
		g := groups[r.Algorithm]
		switch r.State {
		case storage.KeyActive:
			if g.active == nil || laterActivation(*r, *g.active) {
				g.active = r
			}
		case storage.KeyNext:
			g.next = r
		}
		groups[r.Algorithm] = g
	}
	return groups
}

// Maintain brings the keys in line with the policy at the current time:
// every algorithm of the policy (and every algorithm that has an active
// key) gets an active and a next key; an active key older than the
// rotation period is replaced by its next key, if that has been published
// for the pre-publication time (if not, the rotation waits for it); a
// retired key past retention is deleted.
//
// Any number of instances may call Maintain at once: the step is one
// storage transaction under a lock, planned from a fresh read, and one
// made from a stale read fails and changes nothing. The instance whose
// step fails reloads the keys and reports no change. New keys are
// generated and encrypted before the transaction (RSA generation takes
// tens of milliseconds, and no connection is held meanwhile).
func (m *Manager) Maintain(ctx context.Context) (Change, error) {
	rows, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return Change{}, fmt.Errorf("maintain signing keys: %w", err)
	}
	now := m.opts.Now()
	p := m.opts.Policy
	groups := groupByAlg(rows)
	bootstrap := !slices.ContainsFunc(rows, func(r storage.SigningKey) bool { return published(r.State) })

	algs := slices.Clone(p.Algorithms)
	for alg, g := range groups {
		if g.active != nil && !slices.Contains(algs, alg) && checkAlgorithm(alg) == nil {
			// An algorithm dropped from the configuration keeps rotating
			// while it has an active key: dropping a key that may be
			// signing for a client is the operator's call (keys revoke).
			algs = append(algs, alg)
		}
	}
	slices.Sort(algs)

	var st step
	for _, alg := range algs {
		g := groups[alg]
		switch {
		case g.active == nil && g.next != nil:
			// Nothing signs for alg (the active key was revoked or retired
			// by hand): the next key signs at once, whatever its age.
			// Signing with a key published only recently beats not
			// signing at all.
			st.promote(*g.next, nil)
			g.next = nil
		case g.active == nil:
			// The first key of alg signs at once. At bootstrap nobody has
			// a JWKS to be stale; for an algorithm added later, see
			// docs/keys.md.
			k, err := m.create(&st, alg, storage.KeyActive, now)
			if err != nil {
				return Change{}, err
			}
			if !bootstrap {
				m.opts.Logger.WarnContext(ctx, "signing algorithm had no key: its first key signs without pre-publication",
					slog.String("alg", alg), slog.String("kid", k.ID))
			}
		case g.active.ActivatedAt != nil && !now.Before(g.active.ActivatedAt.Add(p.RotationPeriod)) &&
			g.next != nil && !now.Before(g.next.CreatedAt.Add(p.PrePublication)):
			st.promote(*g.next, g.active)
			g.next = nil
		}
		if g.next == nil {
			if _, err := m.create(&st, alg, storage.KeyNext, now); err != nil {
				return Change{}, err
			}
		}
	}
	for _, r := range rows {
		if r.State == storage.KeyRetired && (r.RetiredAt == nil || !now.Before(r.RetiredAt.Add(p.Retention))) {
			st.c.Delete = append(st.c.Delete, r.ID)
			st.change.Deleted = append(st.change.Deleted, infoOf(r))
		}
	}
	return m.applyStep(ctx, st, now)
}

// applyStep stores a scheduled step and reloads. A conflict means another
// instance (or the CLI) changed the keys since they were read: that is not
// an error for a scheduled step, which will look again next time.
func (m *Manager) applyStep(ctx context.Context, st step, now time.Time) (Change, error) {
	if st.change.Empty() {
		// Nothing to do, as planned from keys read just now; but another
		// instance may have made them since this one last loaded (two
		// instances starting at once: Init's load saw no keys, the
		// plan saw the other's). Load them if so.
		return Change{}, m.refreshIfChanged(ctx)
	}
	err := m.commit(ctx, st, now, slog.LevelInfo, "signing keys changed")
	if errors.Is(err, storage.ErrConflict) || errors.Is(err, storage.ErrAlreadyExists) || errors.Is(err, storage.ErrNotFound) {
		m.opts.Logger.InfoContext(ctx, "signing keys changed elsewhere meanwhile; nothing done", slog.Any("error", err))
		return Change{}, m.Refresh(ctx)
	}
	if err != nil {
		return Change{}, fmt.Errorf("maintain signing keys: %w", err)
	}
	return st.change, m.Refresh(ctx)
}

// step is one lifecycle step being planned: what storage is to do, and
// the report of it.
type step struct {
	c      storage.SigningKeyChanges
	change Change
}

// promote makes next sign; retired, if not nil, is the active key it
// replaces (storage retires it as part of the promotion).
func (st *step) promote(next storage.SigningKey, retired *storage.SigningKey) {
	st.c.Promote = append(st.c.Promote, next.ID)
	st.change.Promoted = append(st.change.Promoted, infoOf(next))
	if retired != nil {
		st.change.Retired = append(st.change.Retired, infoOf(*retired))
	}
}

// create generates a key for alg in state and adds it to the step.
func (m *Manager) create(st *step, alg string, state storage.KeyState, now time.Time) (storage.SigningKey, error) {
	k, err := m.newKey(alg, state, now)
	if err != nil {
		return storage.SigningKey{}, err
	}
	st.c.Create = append(st.c.Create, k)
	st.change.Created = append(st.change.Created, infoOf(k))
	return k, nil
}

// commit stores the step in one transaction and, once it is stored, logs
// it at level and reports it to OnChange. The caller reloads.
func (m *Manager) commit(ctx context.Context, st step, now time.Time, level slog.Level, msg string) error {
	st.c.At = now
	if err := m.store.ChangeSigningKeys(ctx, st.c); err != nil {
		return err
	}
	m.opts.Logger.Log(ctx, level, msg, slog.Any("change", st.change))
	if m.opts.OnChange != nil {
		m.opts.OnChange(ctx, st.change)
	}
	return nil
}

// newKey generates a key for alg and returns its row, encrypted under the
// primary key-encryption key.
func (m *Manager) newKey(alg string, state storage.KeyState, now time.Time) (storage.SigningKey, error) {
	k, err := Generate(alg, m.opts.Rand)
	if err != nil {
		return storage.SigningKey{}, fmt.Errorf("new signing key: %w", err)
	}
	row, err := k.Record(m.kek, state, now, m.opts.Rand)
	if err != nil {
		return storage.SigningKey{}, fmt.Errorf("new signing key: %w", err)
	}
	return row, nil
}

// ErrTooEarly: a rotation would make a key sign before it has been
// published for the pre-publication time.
var ErrTooEarly = errors.New("the next key has not been published long enough")

// Rotate promotes the next key of alg now: it signs from now on, the active
// key is retired (it stays in the JWKS for the retention time), and a fresh
// next key is created. Unless force is set, it refuses with ErrTooEarly if
// the next key has been published for less than the pre-publication time,
// because verifiers that cache the JWKS might not know it yet.
func (m *Manager) Rotate(ctx context.Context, alg string, force bool) (Change, error) {
	if err := checkAlgorithm(alg); err != nil {
		return Change{}, err
	}
	if err := m.checkKeys(ctx); err != nil {
		return Change{}, err
	}
	rows, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return Change{}, fmt.Errorf("rotate: %w", err)
	}
	now := m.opts.Now()
	g := groupByAlg(rows)[alg]
	var st step
	switch {
	case g.next != nil:
		if ready := g.next.CreatedAt.Add(m.opts.Policy.PrePublication); now.Before(ready) && !force {
			return Change{}, fmt.Errorf("rotate %s: %w: key %s was published %s ago, rotation is safe from %s",
				alg, ErrTooEarly, g.next.ID, now.Sub(g.next.CreatedAt).Round(time.Second), ready.Format(time.RFC3339))
		}
		st.promote(*g.next, g.active)
	case force:
		// No next key: the only way to change the signing key now is a
		// key nobody has seen.
		if g.active != nil {
			st.c.Retire = []string{g.active.ID}
			st.change.Retired = []KeyInfo{infoOf(*g.active)}
		}
		if _, err := m.create(&st, alg, storage.KeyActive, now); err != nil {
			return Change{}, err
		}
	default:
		return Change{}, fmt.Errorf("rotate %s: %w: there is no next key (start the server once to create one, or force)", alg, ErrTooEarly)
	}
	if _, err := m.create(&st, alg, storage.KeyNext, now); err != nil {
		return Change{}, err
	}
	if err := m.commit(ctx, st, now, slog.LevelInfo, "signing keys rotated by hand"); err != nil {
		return Change{}, fmt.Errorf("rotate %s: %w", alg, err)
	}
	return st.change, m.Refresh(ctx)
}

// Revoke takes key kid out of service for good: it leaves the JWKS and is
// never used again. If it was the active key, the next key of its
// algorithm signs at once (or, if there is none, a new key), and a fresh
// next key is created; if it was the next key, a fresh one replaces it.
func (m *Manager) Revoke(ctx context.Context, kid string) (Change, error) {
	rows, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return Change{}, fmt.Errorf("revoke: %w", err)
	}
	i := slices.IndexFunc(rows, func(r storage.SigningKey) bool { return r.ID == kid })
	if i < 0 {
		return Change{}, fmt.Errorf("revoke %s: %w", kid, storage.ErrNotFound)
	}
	target := rows[i]
	if target.State == storage.KeyRevoked {
		return Change{}, fmt.Errorf("revoke %s: already revoked: %w", kid, storage.ErrConflict)
	}
	now := m.opts.Now()
	g := groupByAlg(rows)[target.Algorithm]
	st := step{c: storage.SigningKeyChanges{Revoke: []string{kid}}, change: Change{Revoked: []KeyInfo{infoOf(target)}}}
	needNext := false
	switch target.State {
	case storage.KeyActive:
		if err := m.checkKeys(ctx); err != nil {
			return Change{}, err
		}
		if g.next != nil {
			// The revoked key is not retired: it is reported as revoked.
			st.promote(*g.next, nil)
		} else if _, err := m.create(&st, target.Algorithm, storage.KeyActive, now); err != nil {
			return Change{}, err
		}
		needNext = true
	case storage.KeyNext:
		if err := m.checkKeys(ctx); err != nil {
			return Change{}, err
		}
		needNext = true
	}
	if needNext {
		if _, err := m.create(&st, target.Algorithm, storage.KeyNext, now); err != nil {
			return Change{}, err
		}
	}
	if err := m.commit(ctx, st, now, slog.LevelWarn, "signing key revoked"); err != nil {
		return Change{}, fmt.Errorf("revoke %s: %w", kid, err)
	}
	return st.change, m.Refresh(ctx)
}

// checkKeys refuses to create keys when this process cannot open the keys
// already stored: a CLI run with the wrong key-encryption key would
// otherwise store keys that no server can decrypt.
func (m *Manager) checkKeys(ctx context.Context) error {
	rows, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range rows {
		if r.State == storage.KeyRevoked {
			continue
		}
		if _, _, err := m.openAny(r); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("refusing to create keys that the servers may not be able to read: %w", errors.Join(errs...))
	}
	return nil
}

// RewrapResult is what Rewrap did.
type RewrapResult struct {
	Rewrapped []string // kids re-encrypted under the primary key
	Current   []string // kids already under the primary key
	Skipped   []string // revoked keys no configured key opens; left as they are
}

// Rewrap re-encrypts every key that is not yet under the primary
// key-encryption key, opening it with one of the additional ones. Each key
// is swapped on its own (compare and swap on the old ciphertext), so
// servers keep running meanwhile: they hold decrypted keys in memory, and
// with both key-encryption keys configured they can open either
// ciphertext. A key no configured key opens is an error, except revoked
// keys, which are never opened again and are reported as skipped.
func (m *Manager) Rewrap(ctx context.Context) (RewrapResult, error) {
	rows, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return RewrapResult{}, fmt.Errorf("rewrap: %w", err)
	}
	var res RewrapResult
	var errs []error
	for _, r := range rows {
		k, which, err := m.openAny(r)
		switch {
		case err != nil && r.State == storage.KeyRevoked:
			res.Skipped = append(res.Skipped, r.ID)
			continue
		case err != nil:
			errs = append(errs, err)
			continue
		case which == 0:
			res.Current = append(res.Current, r.ID)
			continue
		}
		enc, err := EncryptPrivateKey(m.kek, k.ID, k.Algorithm, k.priv, m.opts.Rand)
		if err != nil {
			errs = append(errs, fmt.Errorf("rewrap %s: %w", r.ID, err))
			continue
		}
		if err := m.store.ReplaceSigningKeyCiphertext(ctx, r.ID, r.PrivateKeyEncrypted, enc); err != nil {
			errs = append(errs, fmt.Errorf("rewrap %s: %w", r.ID, err))
			continue
		}
		res.Rewrapped = append(res.Rewrapped, r.ID)
	}
	return res, errors.Join(errs...)
}

// openAny opens row with the primary key-encryption key or, failing that,
// an additional one, and says which (0 = primary).
func (m *Manager) openAny(row storage.SigningKey) (*KeyPair, int, error) {
	k, err := OpenKey(m.kek, row)
	if err == nil {
		return k, 0, nil
	}
	for i, kek := range m.opts.AdditionalKEKs {
		if k, err2 := OpenKey(kek, row); err2 == nil {
			return k, i + 1, nil
		}
	}
	return nil, -1, err
}
