package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// ErrUnwritten: Close could not write every event to the database before
// its context ended; the rest are in the log at ERROR.
var ErrUnwritten = errors.New("audit events could not be written")

// Options tune a Recorder. Zero fields take the defaults.
type Options struct {
	// Now stamps events recorded without a Time; default time.Now.
	Now func() time.Time
	// Logger receives write failures and, when they cannot be written at
	// all, the events themselves; default: discard.
	Logger *slog.Logger
	// QueueSize bounds the events waiting to be written (default 8192).
	QueueSize int
	// BatchSize is the most events one write carries (default 500).
	BatchSize int
	// FlushInterval is the longest an event waits for its batch to fill
	// (default 100 ms).
	FlushInterval time.Duration
	// RetryMin and RetryMax bound the backoff between attempts to write a
	// batch the database refused (default 50 ms and 5 s).
	RetryMin, RetryMax time.Duration
}

func (o Options) withDefaults() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 8192
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 500
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 100 * time.Millisecond
	}
	if o.RetryMin <= 0 {
		o.RetryMin = 50 * time.Millisecond
	}
	if o.RetryMax < o.RetryMin {
		o.RetryMax = max(5*time.Second, o.RetryMin)
	}
	return o
}

// Recorder writes audit events to storage in the background.
//
// Record only puts the event on a bounded queue; one goroutine takes
// events off it and writes them in batches (BatchSize events, or whatever
// arrived within FlushInterval), so a busy server makes one INSERT per
// few hundred events and no request waits for one.
//
// When a write fails (the database is down or failing over), the
// goroutine keeps the batch and retries with exponential backoff. Events
// pile up in the queue meanwhile; once it is full, Record blocks until
// there is room again. That is deliberate: an audit trail that silently
// drops events under pressure cannot be trusted, and a database that
// cannot take a few hundred rows a second cannot take the tokens either,
// so the server slowing down is the honest outcome. A caller whose context
// ends while Record waits gets the event logged at ERROR (as JSON, through
// the Logger) instead: still not lost, just not in the database.
//
// Close stops accepting events and writes everything still queued.
//
// A nil *Recorder is valid and records nothing.
type Recorder struct {
	store storage.AuditStore
	opts  Options
	queue chan storage.AuditEvent

	// mu guards closed and the Add of senders, so that once Close has set
	// closed, no Record can start sending.
	mu      sync.RWMutex
	closed  bool
	senders sync.WaitGroup

	flushReq chan chan error
	stop     chan struct{} // closed by Close: drain and exit
	sent     chan struct{} // closed once no Record can send any more
	abandon  chan struct{} // closed when Close's context ends: stop retrying
	done     chan struct{} // closed when the writer has exited
	closeMu  sync.Mutex
	err      error // what the writer could not write, set before done

	// tick is the flush timer; tests replace it.
	tick func(d time.Duration) (<-chan time.Time, func())
}

// NewRecorder starts a Recorder writing to store. Its writes use ctx's
// values but not its cancellation: only Close ends the writer. Call Close
// when done.
func NewRecorder(ctx context.Context, store storage.AuditStore, opts Options) *Recorder {
	return newRecorder(ctx, store, opts, func(d time.Duration) (<-chan time.Time, func()) {
		t := time.NewTicker(d)
		return t.C, t.Stop
	})
}

func newRecorder(ctx context.Context, store storage.AuditStore, opts Options, tick func(time.Duration) (<-chan time.Time, func())) *Recorder {
	opts = opts.withDefaults()
	r := &Recorder{
		store:    store,
		opts:     opts,
		queue:    make(chan storage.AuditEvent, opts.QueueSize),
		flushReq: make(chan chan error),
		stop:     make(chan struct{}),
		sent:     make(chan struct{}),
		abandon:  make(chan struct{}),
		done:     make(chan struct{}),
		tick:     tick,
	}
	go r.run(context.WithoutCancel(ctx))
	return r
}

// Record queues e to be written. A zero Time is set from the clock, and
// empty IP and UserAgent from the request attached to ctx by WithRequest.
// It returns as soon as the event is queued; it blocks only while the
// queue is full (see Recorder). After Close, events are logged at ERROR
// instead.
func (r *Recorder) Record(ctx context.Context, e storage.AuditEvent) {
	if r == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = r.opts.Now()
	}
	if info, ok := ctx.Value(requestKey{}).(requestInfo); ok {
		if e.IP == "" {
			e.IP = info.ip
		}
		if e.UserAgent == "" {
			e.UserAgent = info.userAgent
		}
	}
	r.mu.RLock()
	if r.closed {
		r.mu.RUnlock()
		r.logUnwritten(ctx, "audit event recorded after the recorder closed", []storage.AuditEvent{e})
		return
	}
	r.senders.Add(1)
	r.mu.RUnlock()
	defer r.senders.Done()
	select {
	case r.queue <- e:
		return
	default:
	}
	// Full: wait for room (backpressure), but not past the caller's
	// deadline. No log line per waiting event: the writer already warns
	// about every failed attempt.
	select {
	case r.queue <- e:
	case <-ctx.Done():
		r.logUnwritten(ctx, "audit event not queued: "+ctx.Err().Error(), []storage.AuditEvent{e})
	}
}

// Flush waits until every event recorded before the call has been
// written, or ctx ends.
func (r *Recorder) Flush(ctx context.Context) error {
	if r == nil {
		return nil
	}
	reply := make(chan error, 1)
	select {
	case r.flushReq <- reply:
	case <-r.done:
		return errors.New("audit: recorder closed")
	case <-ctx.Done():
		return fmt.Errorf("audit flush: %w", ctx.Err())
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return fmt.Errorf("audit flush: %w", ctx.Err())
	}
}

// Close stops accepting events and writes every queued one. If the
// database does not take them before ctx ends, Close logs them at ERROR
// (each as JSON, so an operator can replay them) and returns an error.
// Closing twice returns the first result.
func (r *Recorder) Close(ctx context.Context) error {
	if r == nil {
		return nil
	}
	r.closeMu.Lock()
	defer r.closeMu.Unlock()
	r.mu.Lock()
	first := !r.closed
	r.closed = true
	r.mu.Unlock()
	if first {
		close(r.stop)
		go func() {
			// Records already past the closed check finish sending (the
			// writer keeps draining); then nothing more can arrive.
			r.senders.Wait()
			close(r.sent)
		}()
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		select {
		case <-r.abandon:
		default:
			close(r.abandon)
		}
		<-r.done
	}
	return r.err
}

// run is the writer goroutine.
func (r *Recorder) run(ctx context.Context) {
	defer close(r.done)
	// The writer outlives any request; its context ends only when Close
	// gives up (abandon).
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-r.abandon:
			cancel()
		case <-r.done:
		}
	}()
	tick, stopTick := r.tick(r.opts.FlushInterval)
	defer stopTick()
	batch := make([]storage.AuditEvent, 0, r.opts.BatchSize)
	var unwritten []storage.AuditEvent
	write := func() {
		if len(batch) == 0 {
			return
		}
		if err := r.write(ctx, batch); err != nil {
			unwritten = append(unwritten, batch...)
		}
		batch = batch[:0]
	}
	// takeQueued moves what is queued now into batches, writing each
	// full one: when it is time to write, everything that has arrived
	// goes, not only what the loop happened to pick up.
	takeQueued := func() {
		for n := len(r.queue); n > 0; n-- {
			batch = append(batch, <-r.queue)
			if len(batch) >= r.opts.BatchSize {
				write()
			}
		}
	}
	for {
		select {
		case e := <-r.queue:
			batch = append(batch, e)
			if len(batch) >= r.opts.BatchSize {
				write()
			}
		case <-tick:
			takeQueued()
			write()
		case reply := <-r.flushReq:
			// Everything recorded before Flush is in the queue now.
			takeQueued()
			before := len(unwritten)
			write()
			var err error
			if len(unwritten) > before {
				err = errors.New("audit: events could not be written")
			}
			reply <- err
		case <-r.stop:
			r.drain(&batch, write, takeQueued)
			if len(unwritten) > 0 {
				r.logUnwritten(ctx, "audit events could not be written before shutdown", unwritten)
				r.err = fmt.Errorf("audit: %w: %d events, logged at ERROR instead", ErrUnwritten, len(unwritten))
			}
			return
		}
	}
}

// drain writes what is queued until no Record can add more.
func (r *Recorder) drain(batch *[]storage.AuditEvent, write, takeQueued func()) {
	for {
		select {
		case e := <-r.queue:
			*batch = append(*batch, e)
			if len(*batch) >= r.opts.BatchSize {
				write()
			}
		case <-r.sent:
			takeQueued()
			write()
			return
		}
	}
}

// write stores batch, retrying with backoff until it succeeds or ctx ends.
func (r *Recorder) write(ctx context.Context, batch []storage.AuditEvent) error {
	wait := r.opts.RetryMin
	for attempt := 1; ; attempt++ {
		err := r.store.AppendAuditEvents(ctx, batch)
		if err == nil {
			if attempt > 1 {
				r.opts.Logger.InfoContext(ctx, "audit events written after retrying", slog.Int("events", len(batch)), slog.Int("attempts", attempt))
			}
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		r.opts.Logger.WarnContext(ctx, "write audit events; retrying", slog.Int("events", len(batch)),
			slog.Int("attempt", attempt), slog.Duration("wait", wait), slog.Any("error", err))
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		wait = min(wait*2, r.opts.RetryMax)
	}
}

// logUnwritten puts events that will not reach the database into the log,
// one record per event, with every field, so they are not lost.
func (r *Recorder) logUnwritten(ctx context.Context, msg string, events []storage.AuditEvent) {
	// The writer's own context may be done; logging must still happen.
	ctx = context.WithoutCancel(ctx)
	for _, e := range events {
		r.opts.Logger.ErrorContext(ctx, msg, slog.Any("audit_event", eventLog(e)))
	}
}

// eventLog is an event as it appears in the log: JSON field names, so
// the JSON log handler writes an object that reads back as an event.
func eventLog(e storage.AuditEvent) map[string]any {
	return map[string]any{
		"time":       e.Time.UTC().Format(time.RFC3339Nano),
		"type":       e.Type,
		"actor":      e.Actor,
		"session_id": e.SessionID,
		"user_id":    e.UserID,
		"client_id":  e.ClientID,
		"ip":         e.IP,
		"user_agent": e.UserAgent,
		"details":    e.Details,
	}
}

type requestKey struct{}

type requestInfo struct{ ip, userAgent string }

// WithRequest attaches r's client IP and user agent to ctx, for Record to
// fill into events. The server's middleware does it for every request.
func WithRequest(ctx context.Context, r *http.Request) context.Context {
	ip, ua := FromRequest(r)
	return context.WithValue(ctx, requestKey{}, requestInfo{ip: ip, userAgent: ua})
}

// Middleware applies WithRequest to every request.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(WithRequest(r.Context(), r)))
	})
}

// maxUserAgent bounds the stored user agent, as for sessions.
const maxUserAgent = 512

// FromRequest returns the client IP and user agent of r. The IP is the
// peer address (session.ClientIP uses this rule too): behind a proxy that
// is the proxy, because trusting X-Forwarded-For needs a list of trusted
// proxies, which is not configured yet.
func FromRequest(r *http.Request) (ip, userAgent string) {
	ip = r.RemoteAddr
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		ip = host
	}
	userAgent = r.UserAgent()
	if len(userAgent) > maxUserAgent {
		userAgent = userAgent[:maxUserAgent]
	}
	return ip, userAgent
}
