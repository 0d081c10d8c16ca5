package keys

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// Errors from Sign and Verify. Test with errors.Is.
var (
	// ErrNoActiveKey: there is no active key for the requested algorithm.
	ErrNoActiveKey = errors.New("no active signing key")
	// ErrInvalidToken wraps every reason Verify rejects a token.
	ErrInvalidToken = errors.New("invalid token")
	// ErrUnknownKey: the token names a kid that is not published (never
	// existed, revoked, or deleted). Verify's errors for this case match
	// both ErrUnknownKey and ErrInvalidToken.
	ErrUnknownKey = errors.New("unknown signing key")
)

// DefaultJWKSMaxAge is how long verifiers may cache the JWKS unless
// Options say otherwise. A key's pre-publication time must exceed it.
const DefaultJWKSMaxAge = 10 * time.Minute

// MaxTokenSize is the longest token Verify parses. Gatehouse's own tokens
// are a few hundred bytes to a few KiB; anything far larger is not one of
// them and is refused before any decoding.
const MaxTokenSize = 32 << 10

// Options configures a Manager. Zero fields get defaults (see withDefaults).
type Options struct {
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Rand is the random source for keys and encryption nonces; default
	// crypto/rand.Reader.
	Rand io.Reader
	// Logger receives refresh errors and key changes; default slog.Default().
	Logger *slog.Logger
	// RefreshInterval is how often Run polls storage's signing-key version
	// (one small read), reloading the keys when it moved; default 1s. On
	// Postgres, notifications usually bring changes sooner; polling is
	// the fallback that bounds how late a change can be seen.
	RefreshInterval time.Duration
	// MaintenanceInterval is how often Run calls Maintain; default 1 minute.
	MaintenanceInterval time.Duration
	// Policy is the key lifecycle; zero fields take defaults.
	Policy Policy
	// AdditionalKEKs open keys that are not under the primary
	// key-encryption key (during a key-encryption-key change; see
	// Rewrap). New keys are always encrypted under the primary one.
	AdditionalKEKs []KEK
	// OnChange, if set, is called after each lifecycle step this Manager
	// made (scheduled or by hand), for auditing.
	OnChange func(ctx context.Context, c Change)
	// JWKSMaxAge is how long clients may cache the JWKS (Cache-Control
	// max-age); default 10 minutes. It must stay well below how long a
	// next key is published before it signs, or a verifier may meet a
	// token from a kid it has not fetched yet.
	JWKSMaxAge time.Duration
}

func (o Options) withDefaults() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.RefreshInterval <= 0 {
		o.RefreshInterval = time.Second
	}
	if o.JWKSMaxAge <= 0 {
		o.JWKSMaxAge = DefaultJWKSMaxAge
	}
	if o.MaintenanceInterval <= 0 {
		o.MaintenanceInterval = time.Minute
	}
	o.Policy = o.Policy.withDefaults()
	return o
}

// Manager keeps the signing keys in memory: it signs with the active key of
// each algorithm, verifies Gatehouse's own tokens, and serves the JWKS as
// precomputed bytes. Storage is read only by Init, Refresh and Run; Sign,
// Verify, JWKS and the other accessors read an immutable snapshot through an
// atomic pointer, so they never touch the database and never wait on a
// lock. A Manager is safe for concurrent use.
type Manager struct {
	store storage.SigningKeyStore
	kek   KEK
	opts  Options

	snap atomic.Pointer[snapshot]
	// refreshMu serializes snapshot builders, so that a slow refresh can
	// never install an older key list over a newer one.
	refreshMu sync.Mutex
	// version is storage's SigningKeysVersion as read before the last
	// successful Refresh; Run reloads only when it moves.
	version atomic.Int64
}

// snapshot is everything Sign, Verify and JWKS need. It is never modified
// after it is stored; a change builds a new one.
type snapshot struct {
	rows      []rowSig             // the usable rows it was built from, for change detection
	byKID     map[string]*material // published keys (next, active, retired) that opened
	active    map[string]*material // alg → the key that signs
	algs      []string             // algorithms with an active key, RS256 first
	published []string             // kids in JWKS order
	jwks      []byte
	etag      string
	failed    map[string]error // kid → why it could not be opened; not retried
}

// rowSig is the part of a row whose change matters to a snapshot. Key
// material never changes under a kid (the kid is its thumbprint), so the
// ciphertext is not part of it.
type rowSig struct {
	id, alg   string
	state     storage.KeyState
	created   int64
	activated int64
}

// material is a decrypted key, kept across snapshots by kid so that a key
// is decrypted once per process, not once per refresh.
type material struct {
	pair   *KeyPair
	public any             // the public key, for verification
	jwk    json.RawMessage // public JWK for the JWKS document
	// signers caches go-jose signers per typ (the alg and kid are the
	// key's own); see BenchmarkSignerConstruction for why.
	signers sync.Map // string → jose.Signer
}

// NewManager returns a Manager over store that decrypts keys with kek. Call
// Init before use, then Run in the background.
func NewManager(store storage.SigningKeyStore, kek KEK, opts Options) *Manager {
	m := &Manager{store: store, kek: kek, opts: opts.withDefaults()}
	body, etag := buildJWKS(nil)
	m.snap.Store(&snapshot{jwks: body, etag: etag})
	return m
}

// Init loads the keys and brings them in line with the policy (Maintain):
// on an empty database it creates an active and a next key for each
// algorithm. It fails if any key that is not revoked cannot be decrypted
// (most likely a wrong key-encryption key): better to refuse to start than
// to serve with some keys missing. An unreadable key can be revoked to get
// past this.
//
// Many instances may Init at once against one database: storage lets one
// instance's keys in and the others load them.
func (m *Manager) Init(ctx context.Context) error {
	if m.kek.IsZero() {
		return errors.New("init signing keys: no key-encryption key configured")
	}
	if err := m.Refresh(ctx); err != nil {
		return fmt.Errorf("init signing keys: %w", err)
	}
	if err := m.snap.Load().failures(); err != nil {
		return fmt.Errorf("init signing keys: %w", err)
	}
	if _, err := m.Maintain(ctx); err != nil {
		return fmt.Errorf("init signing keys: %w", err)
	}
	if err := m.snap.Load().failures(); err != nil {
		return fmt.Errorf("init signing keys: %w", err)
	}
	if !m.Ready() {
		return errors.New("init signing keys: no active RS256 key")
	}
	return nil
}

// Refresh reloads the key list from storage. Keys seen before are not
// decrypted again, and the JWKS is rebuilt only when the set of published
// keys changes. A key that cannot be decrypted is left out and reported
// in the returned error once, the first time it is met; the other keys
// are still loaded.
func (m *Manager) Refresh(ctx context.Context) error {
	m.refreshMu.Lock()
	defer m.refreshMu.Unlock()
	// The version first: a change between the two reads is then seen
	// again by the next poll, never missed.
	v, err := m.store.SigningKeysVersion(ctx)
	if err != nil {
		return fmt.Errorf("refresh signing keys: %w", err)
	}
	rows, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("refresh signing keys: %w", err)
	}
	err = m.apply(ctx, rows)
	m.version.Store(v)
	return err
}

// refreshIfChanged reloads the keys if storage's version moved since the
// last Refresh.
func (m *Manager) refreshIfChanged(ctx context.Context) error {
	v, err := m.store.SigningKeysVersion(ctx)
	if err != nil {
		return fmt.Errorf("refresh signing keys: %w", err)
	}
	if v == m.version.Load() {
		return nil
	}
	return m.Refresh(ctx)
}

// Run keeps the keys current until ctx is done: it reloads them when
// storage notifies a change (Postgres LISTEN/NOTIFY) or when the version it
// polls every RefreshInterval moves, and calls Maintain every
// MaintenanceInterval. Errors are logged, not returned: the last good keys
// keep serving.
func (m *Manager) Run(ctx context.Context) {
	notified := make(chan struct{}, 1)
	// Run returns only after the watcher has: it holds a database
	// connection, which must be back in the pool before the pool closes.
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Go(func() { m.watch(ctx, notified) })
	poll := time.NewTicker(m.opts.RefreshInterval)
	defer poll.Stop()
	maintain := time.NewTicker(m.opts.MaintenanceInterval)
	defer maintain.Stop()
	for {
		var err error
		select {
		case <-ctx.Done():
			return
		case <-notified:
			err = m.Refresh(ctx)
		case <-poll.C:
			err = m.refreshIfChanged(ctx)
		case <-maintain.C:
			_, err = m.Maintain(ctx)
		}
		if err != nil && ctx.Err() == nil {
			m.opts.Logger.ErrorContext(ctx, "signing keys", slog.Any("error", err))
		}
	}
}

// watch relays storage's change notifications to notified until ctx ends,
// listening again after a failure with backoff (100 ms doubling to 10 s;
// polling covers the gap).
func (m *Manager) watch(ctx context.Context, notified chan<- struct{}) {
	backoff := 100 * time.Millisecond
	for {
		started := time.Now()
		err := m.store.WatchSigningKeys(ctx, func() {
			select {
			case notified <- struct{}{}:
			default: // a reload is already pending; it will see this change
			}
		})
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) > time.Minute {
			backoff = 100 * time.Millisecond
		}
		m.opts.Logger.WarnContext(ctx, "signing key notifications lost; polling until they are back",
			slog.Any("error", err), slog.Duration("retry_in", backoff))
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// published reports whether a key in state s appears in the JWKS and may
// verify tokens. Revoked keys and states this code does not know are left
// out.
func published(s storage.KeyState) bool {
	return s == storage.KeyNext || s == storage.KeyActive || s == storage.KeyRetired
}

func (m *Manager) apply(ctx context.Context, all []storage.SigningKey) error {
	rows := make([]storage.SigningKey, 0, len(all))
	for _, r := range all {
		if published(r.State) {
			rows = append(rows, r)
		}
	}
	// Storage already orders by CreatedAt, then ID; sorting again costs
	// nothing and keeps the JWKS order independent of the backend.
	slices.SortFunc(rows, func(a, b storage.SigningKey) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	sigs := make([]rowSig, len(rows))
	for i, r := range rows {
		sigs[i] = rowSig{id: r.ID, alg: r.Algorithm, state: r.State, created: r.CreatedAt.UnixMicro()}
		if r.ActivatedAt != nil {
			sigs[i].activated = r.ActivatedAt.UnixMicro()
		}
	}

	prev := m.snap.Load()
	if slices.Equal(sigs, prev.rows) {
		return nil
	}

	next := &snapshot{
		rows:   sigs,
		byKID:  make(map[string]*material, len(rows)),
		active: make(map[string]*material),
		failed: make(map[string]error),
	}
	activeRow := make(map[string]storage.SigningKey)
	var errs []error
	for _, r := range rows {
		if err, ok := prev.failed[r.ID]; ok {
			next.failed[r.ID] = err
			continue
		}
		mat := prev.byKID[r.ID]
		if mat == nil || mat.pair.Algorithm != r.Algorithm {
			var err error
			mat, err = m.open(r)
			if err != nil {
				next.failed[r.ID] = err
				errs = append(errs, err)
				continue
			}
		}
		next.byKID[r.ID] = mat
		next.published = append(next.published, r.ID)
		if r.State == storage.KeyActive {
			// Storage allows one active key per algorithm. Should two
			// appear anyway, every replica picks the same one: the most
			// recently activated.
			if cur, ok := activeRow[r.Algorithm]; !ok || laterActivation(r, cur) {
				activeRow[r.Algorithm] = r
				next.active[r.Algorithm] = mat
			}
		}
	}
	for _, alg := range algorithms {
		if next.active[alg] != nil {
			next.algs = append(next.algs, alg)
		}
	}
	if slices.Equal(next.published, prev.published) {
		next.jwks, next.etag = prev.jwks, prev.etag
	} else {
		mats := make([]*material, len(next.published))
		for i, kid := range next.published {
			mats[i] = next.byKID[kid]
		}
		next.jwks, next.etag = buildJWKS(mats)
	}
	m.snap.Store(next)

	activeKIDs := make([]any, 0, 2*len(next.algs))
	for _, alg := range next.algs {
		activeKIDs = append(activeKIDs, slog.String(alg, next.active[alg].pair.ID))
	}
	m.opts.Logger.InfoContext(ctx, "signing keys loaded",
		"published", len(next.published),
		slog.Group("active", activeKIDs...),
		"jwks_etag", strings.Trim(next.etag, `"`))
	return errors.Join(errs...)
}

func laterActivation(a, b storage.SigningKey) bool {
	var at, bt time.Time
	if a.ActivatedAt != nil {
		at = *a.ActivatedAt
	}
	if b.ActivatedAt != nil {
		bt = *b.ActivatedAt
	}
	if c := at.Compare(bt); c != 0 {
		return c > 0
	}
	if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
		return c > 0
	}
	return a.ID > b.ID
}

func (m *Manager) open(r storage.SigningKey) (*material, error) {
	k, _, err := m.openAny(r)
	if err != nil {
		return nil, err
	}
	jwk, err := json.Marshal(k.PublicJWK())
	if err != nil {
		return nil, fmt.Errorf("signing key %s: marshal public jwk: %w", r.ID, err)
	}
	return &material{pair: k, public: k.Public(), jwk: jwk}, nil
}

// failures returns every key that could not be opened, in kid order.
func (s *snapshot) failures() error {
	kids := make([]string, 0, len(s.failed))
	for kid := range s.failed {
		kids = append(kids, kid)
	}
	sort.Strings(kids)
	errs := make([]error, len(kids))
	for i, kid := range kids {
		errs[i] = s.failed[kid]
	}
	return errors.Join(errs...)
}

// buildJWKS renders {"keys":[...]} from public JWKs in the given order and
// its strong ETag: a quoted SHA-256 of the body. Every replica with the same
// keys produces the same bytes, so the ETag is the same behind any load
// balancer.
func buildJWKS(mats []*material) ([]byte, string) {
	doc := struct {
		Keys []json.RawMessage `json:"keys"`
	}{Keys: make([]json.RawMessage, len(mats))}
	for i, mat := range mats {
		doc.Keys[i] = mat.jwk
	}
	body, err := json.Marshal(doc)
	if err != nil {
		// The parts were produced by json.Marshal; this cannot happen.
		panic("keys: marshal jwks: " + err.Error())
	}
	sum := sha256.Sum256(body)
	return body, `"` + base64.RawURLEncoding.EncodeToString(sum[:]) + `"`
}

// Ready reports whether an active RS256 key is loaded: the one algorithm
// OIDC requires, and the one Init guarantees.
func (m *Manager) Ready() bool {
	return m.snap.Load().active[RS256] != nil
}

// ActiveKeyID returns the kid of the key that signs for alg.
func (m *Manager) ActiveKeyID(alg string) (string, bool) {
	mat := m.snap.Load().active[alg]
	if mat == nil {
		return "", false
	}
	return mat.pair.ID, true
}

// Algorithms returns the algorithms that have an active key, RS256 first;
// for discovery's id_token_signing_alg_values_supported and similar.
func (m *Manager) Algorithms() []string {
	return slices.Clone(m.snap.Load().algs)
}

// JWKS returns the JSON Web Key Set document of every published key (next,
// active and retired; never revoked), ordered by creation time then kid,
// and its strong ETag (quoted). The bytes are shared and precomputed: the
// caller must not modify them.
func (m *Manager) JWKS() (body []byte, etag string) {
	s := m.snap.Load()
	return s.jwks, s.etag
}

// JWKSMaxAge is how long clients may cache the JWKS.
func (m *Manager) JWKSMaxAge() time.Duration { return m.opts.JWKSMaxAge }

// Sign returns a compact JWS over the JSON encoding of claims, signed with
// the active key for alg, with kid, alg and typ in the protected header
// (typ "at+jwt" for RFC 9068 access tokens, "JWT" for ID tokens). claims
// must encode as a JSON object (RFC 7519 §7.2). Sign does not touch the
// database. typ should be one of a few constants: a signer is cached per
// key and typ.
func (m *Manager) Sign(alg, typ string, claims any) (string, error) {
	if typ == "" {
		// RFC 8725 §3.11: explicit typing keeps one kind of token from
		// being accepted as another.
		return "", errors.New("sign: empty typ")
	}
	mat := m.snap.Load().active[alg]
	if mat == nil {
		if err := checkAlgorithm(alg); err != nil {
			return "", fmt.Errorf("sign: %w", err)
		}
		return "", fmt.Errorf("sign: %w for %s", ErrNoActiveKey, alg)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("sign: marshal claims: %w", err)
	}
	if len(payload) == 0 || payload[0] != '{' {
		return "", errors.New("sign: claims must encode as a JSON object")
	}
	signer, err := mat.signer(typ)
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return obj.CompactSerialize()
}

func (mat *material) signer(typ string) (jose.Signer, error) {
	if s, ok := mat.signers.Load(typ); ok {
		return s.(jose.Signer), nil
	}
	s, err := mat.newSigner(typ)
	if err != nil {
		return nil, err
	}
	actual, _ := mat.signers.LoadOrStore(typ, s)
	return actual.(jose.Signer), nil
}

func (mat *material) newSigner(typ string) (jose.Signer, error) {
	return jose.NewSigner(jose.SigningKey{
		Algorithm: jose.SignatureAlgorithm(mat.pair.Algorithm),
		// A JSONWebKey with a KeyID makes go-jose put kid in the
		// protected header.
		Key: jose.JSONWebKey{Key: mat.pair.priv, KeyID: mat.pair.ID},
	}, (&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
}

// Verify checks a compact JWS made by Sign and returns its payload and
// protected header. Only RS256, ES256 and EdDSA are accepted (never "none"
// or an HMAC algorithm, so a public key cannot be abused as an HMAC
// secret); the key is looked up by the header's kid among published keys
// and must be of the header's alg. Verify checks only the signature: the
// caller checks typ and the claims (exp, iss, aud, ...). Every error
// matches ErrInvalidToken.
func (m *Manager) Verify(token string) (payload []byte, header jose.Header, err error) {
	if len(token) > MaxTokenSize {
		return nil, jose.Header{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalidToken, MaxTokenSize)
	}
	// RFC 8725 §3.1: the accepted algorithms are fixed here, never taken
	// from the token.
	jws, err := jose.ParseSignedCompact(token, joseAlgorithms)
	if err != nil {
		return nil, jose.Header{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if len(jws.Signatures) != 1 {
		return nil, jose.Header{}, fmt.Errorf("%w: want exactly one signature", ErrInvalidToken)
	}
	h := jws.Signatures[0].Protected
	if h.KeyID == "" {
		return nil, jose.Header{}, fmt.Errorf("%w: no kid in header", ErrInvalidToken)
	}
	mat := m.snap.Load().byKID[h.KeyID]
	if mat == nil {
		return nil, jose.Header{}, fmt.Errorf("%w: %w %q", ErrInvalidToken, ErrUnknownKey, h.KeyID)
	}
	if h.Algorithm != mat.pair.Algorithm {
		return nil, jose.Header{}, fmt.Errorf("%w: alg %s does not match key %s (%s)", ErrInvalidToken, h.Algorithm, mat.pair.ID, mat.pair.Algorithm)
	}
	payload, err = jws.Verify(mat.public)
	if err != nil {
		return nil, jose.Header{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	return payload, h, nil
}
