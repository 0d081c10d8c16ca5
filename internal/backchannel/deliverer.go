package backchannel

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// Config tunes delivery. Zero fields take the defaults in withDefaults.
type Config struct {
	// Issuer is the iss of logout tokens: the issuer of the ID tokens.
	Issuer string
	// Alg signs logout tokens (default RS256, as ID tokens).
	Alg string
	// TokenTTL is the logout token lifetime (default 2 minutes): long
	// enough for clock skew, short because it is sent at once.
	TokenTTL time.Duration
	// Timeout bounds one delivery request (default 5 s).
	Timeout time.Duration
	// PollInterval is how often the outbox is checked for rows that other
	// processes queued or that became due (default 5 s). Sessions ended
	// in this process wake the deliverer at once.
	PollInterval time.Duration
	// Lease is how long a claimed row is hidden from other claimants
	// (default 1 minute). It must exceed Timeout: a row whose claimant
	// died is retried when its lease runs out.
	Lease time.Duration
	// Batch is how many rows one claim takes and sends concurrently
	// (default 16).
	Batch int
	// MinBackoff is the wait after the first failed attempt (default 10 s);
	// each further failure doubles it, up to MaxBackoff (default 1 h).
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// GiveUpAfter is how long after the session ended delivery is
	// abandoned (default 24 h).
	GiveUpAfter time.Duration
}

func (c Config) withDefaults() Config {
	if c.Alg == "" {
		c.Alg = "RS256"
	}
	if c.TokenTTL == 0 {
		c.TokenTTL = 2 * time.Minute
	}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	if c.PollInterval == 0 {
		c.PollInterval = 5 * time.Second
	}
	if c.Lease == 0 {
		c.Lease = time.Minute
	}
	if c.Lease < 2*c.Timeout {
		c.Lease = 2 * c.Timeout
	}
	if c.Batch == 0 {
		c.Batch = 16
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = 10 * time.Second
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = time.Hour
	}
	if c.GiveUpAfter == 0 {
		c.GiveUpAfter = 24 * time.Hour
	}
	return c
}

// Clients finds a client's current metadata. clients.Cache implements it.
type Clients interface {
	GetClient(ctx context.Context, id string) (storage.Client, error)
}

// Deps are the deliverer's collaborators.
type Deps struct {
	Store   storage.BackchannelLogoutStore
	Clients Clients
	Signer  Signer
	// HTTP sends the logout tokens; default: a client that follows no
	// redirects. Config.Timeout applies to every request either way.
	HTTP   *http.Client
	Now    func() time.Time
	Rand   io.Reader
	Logger *slog.Logger
}

// Deliverer sends queued logout tokens. Run it in the background; Wake it
// when a session ends in this process.
type Deliverer struct {
	cfg  Config
	deps Deps
	wake chan struct{}
}

// New returns a Deliverer.
func New(cfg Config, deps Deps) (*Deliverer, error) {
	cfg = cfg.withDefaults()
	if cfg.Issuer == "" {
		return nil, errors.New("backchannel: issuer is required")
	}
	if deps.Store == nil || deps.Clients == nil || deps.Signer == nil {
		return nil, errors.New("backchannel: store, clients and signer are required")
	}
	if deps.HTTP == nil {
		deps.HTTP = &http.Client{
			// Back-Channel Logout §2.5 says nothing of redirects; the
			// registered URI is the receiver, and following a redirect
			// would let it point the server anywhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Rand == nil {
		deps.Rand = rand.Reader
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	return &Deliverer{cfg: cfg, deps: deps, wake: make(chan struct{}, 1)}, nil
}

// Wake makes Run look at the outbox now instead of at its next poll. It
// never blocks.
func (d *Deliverer) Wake() {
	select {
	case d.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// Run delivers until ctx ends: once at start (rows left by a previous
// process), then whenever woken and every PollInterval. In-flight requests
// are cancelled when ctx ends; their rows are retried when their lease
// runs out.
func (d *Deliverer) Run(ctx context.Context) {
	t := time.NewTicker(d.cfg.PollInterval)
	defer t.Stop()
	for {
		if _, err := d.DeliverDue(ctx); err != nil && ctx.Err() == nil {
			d.deps.Logger.WarnContext(ctx, "back-channel logout: deliver", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-t.C:
		}
	}
}

// DeliverDue claims and sends every row due now, batch after batch, until
// none is left, and returns how many it attempted.
func (d *Deliverer) DeliverDue(ctx context.Context) (int, error) {
	total := 0
	for ctx.Err() == nil {
		now := d.deps.Now()
		rows, err := d.deps.Store.ClaimBackchannelLogouts(ctx, now, now.Add(d.cfg.Lease), d.cfg.Batch)
		if err != nil {
			return total, fmt.Errorf("claim: %w", err)
		}
		if len(rows) == 0 {
			return total, nil
		}
		var wg sync.WaitGroup
		for _, row := range rows {
			wg.Go(func() { d.deliver(ctx, row) })
		}
		wg.Wait()
		total += len(rows)
	}
	return total, ctx.Err()
}

// deliver sends one claimed row and records the outcome.
func (d *Deliverer) deliver(ctx context.Context, row storage.BackchannelLogout) {
	log := d.deps.Logger.With(slog.Int64("id", row.ID), slog.String("client_id", row.ClientID),
		slog.String("sid", row.SessionID), slog.Int("attempt", row.Attempts))
	uri, err := d.send(ctx, row)
	if ctx.Err() != nil {
		// Shutting down: leave the row to its lease, another instance (or
		// the next start) picks it up.
		return
	}
	now := d.deps.Now()
	var permanent *permanentError
	switch {
	case err == nil:
		err = d.deps.Store.BackchannelLogoutDelivered(ctx, row.ID, row.Attempts, now)
		if err == nil {
			log.InfoContext(ctx, "back-channel logout delivered", slog.String("uri", uri))
		}
	case errors.As(err, &permanent) || now.Sub(row.CreatedAt) >= d.cfg.GiveUpAfter:
		log.ErrorContext(ctx, "back-channel logout failed, giving up", slog.String("uri", uri), slog.Any("error", err))
		err = d.deps.Store.BackchannelLogoutFailed(ctx, row.ID, row.Attempts, now, truncate(err.Error()))
	default:
		next := now.Add(d.Backoff(row.Attempts))
		log.WarnContext(ctx, "back-channel logout failed, will retry", slog.String("uri", uri),
			slog.Time("next_attempt_at", next), slog.Any("error", err))
		err = d.deps.Store.RetryBackchannelLogout(ctx, row.ID, row.Attempts, next, truncate(err.Error()))
	}
	if err != nil && ctx.Err() == nil {
		// ErrConflict: our lease ran out and another claimant took over;
		// its outcome is the one that counts.
		log.WarnContext(ctx, "back-channel logout: record outcome", slog.Any("error", err))
	}
}

// Backoff is the wait after the attempt-th failed attempt: MinBackoff
// doubled for each earlier failure, at most MaxBackoff.
func (d *Deliverer) Backoff(attempt int) time.Duration {
	b := d.cfg.MinBackoff
	for i := 1; i < attempt && b < d.cfg.MaxBackoff; i++ {
		b *= 2
	}
	return min(b, d.cfg.MaxBackoff)
}

// permanentError is a failure retrying cannot fix.
type permanentError struct{ msg string }

func (e *permanentError) Error() string { return e.msg }

// send builds the logout token and POSTs it (Back-Channel Logout §2.5).
// It returns the URI it used.
func (d *Deliverer) send(ctx context.Context, row storage.BackchannelLogout) (string, error) {
	client, err := d.deps.Clients.GetClient(ctx, row.ClientID)
	if errors.Is(err, storage.ErrNotFound) {
		return "", &permanentError{"client no longer exists"}
	}
	if err != nil {
		return "", fmt.Errorf("get client: %w", err)
	}
	uri := client.Metadata.BackchannelLogoutURI
	if uri == "" {
		return "", &permanentError{"client no longer has a backchannel_logout_uri"}
	}
	tok, err := NewToken(d.deps.Signer, d.cfg.Alg, d.deps.Rand, TokenRequest{
		Issuer:    d.cfg.Issuer,
		ClientID:  row.ClientID,
		Subject:   row.UserID,
		SessionID: row.SessionID,
		Now:       d.deps.Now(),
		TTL:       d.cfg.TokenTTL,
	})
	if err != nil {
		return uri, err
	}
	rctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	body := url.Values{"logout_token": {tok}}.Encode()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, uri, strings.NewReader(body))
	if err != nil {
		return uri, &permanentError{fmt.Sprintf("bad backchannel_logout_uri: %v", err)}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := d.deps.HTTP.Do(req)
	if err != nil {
		return uri, fmt.Errorf("post: %w", err)
	}
	defer resp.Body.Close()
	// Drained (a little) so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	// §2.8: "If the logout succeeded, the RP MUST respond with HTTP 200
	// OK"; 204 is accepted too, as many receivers answer with no body.
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		return uri, fmt.Errorf("receiver answered HTTP %d", resp.StatusCode)
	}
	return uri, nil
}

// truncate keeps stored error messages short.
func truncate(s string) string {
	const max = 500
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// WakingStore is a storage.Store that wakes d whenever a session ends
// through it, so that logouts in this process are delivered at once. The
// server hands it to everything that may end a session.
func (d *Deliverer) WakingStore(s storage.Store) storage.Store {
	return wakingStore{Store: s, wake: d.Wake}
}

type wakingStore struct {
	storage.Store
	wake func()
}

func (w wakingStore) EndSession(ctx context.Context, id string, now time.Time) error {
	err := w.Store.EndSession(ctx, id, now)
	if err == nil {
		w.wake()
	}
	return err
}

func (w wakingStore) EndUserSessions(ctx context.Context, userID string, now time.Time) (int64, error) {
	n, err := w.Store.EndUserSessions(ctx, userID, now)
	if err == nil && n > 0 {
		w.wake()
	}
	return n, err
}
