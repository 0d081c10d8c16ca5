package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/gatehouse-idp/gatehouse/internal/audit"
	"github.com/gatehouse-idp/gatehouse/internal/backchannel"
	"github.com/gatehouse-idp/gatehouse/internal/clients"
	"github.com/gatehouse-idp/gatehouse/internal/keys"
	"github.com/gatehouse-idp/gatehouse/internal/oauth"
	"github.com/gatehouse-idp/gatehouse/internal/oidc"
	"github.com/gatehouse-idp/gatehouse/internal/session"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/internal/throttle"
	"github.com/gatehouse-idp/gatehouse/internal/ui"
	"github.com/gatehouse-idp/gatehouse/internal/users"
)

// Deps are the server's injected collaborators.
type Deps struct {
	Store storage.Store
	KEK   keys.KEK
	// AdditionalKEKs are earlier key-encryption keys, used only to open
	// what they encrypted while a key-encryption-key change is rolled out
	// (see docs/keys.md). New secrets are always under KEK.
	AdditionalKEKs []keys.KEK
	Now            func() time.Time
	Rand           io.Reader
	Logger         *slog.Logger
}

// Server is an assembled Gatehouse.
type Server struct {
	cfg      Config
	deps     Deps
	keys     *keys.Manager
	clients  *clients.Cache
	provider *oidc.Provider
	audit    *audit.Recorder
	handler  http.Handler

	backchannel *backchannel.Deliverer
}

// New builds a server. It loads (or, on first start, creates) the signing
// keys, so the store must be migrated.
func New(ctx context.Context, cfg Config, deps Deps) (*Server, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("invalid configuration: %w", errors.Join(toErrors(errs)...))
	}
	cfg = cfg.withDefaults()
	if deps.Store == nil {
		return nil, errors.New("server: store is required")
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
	issuer, err := oidc.ParseIssuer(cfg.Issuer)
	if err != nil {
		return nil, err
	}
	secure := issuer.Scheme == "https"

	// The recorder's writer goroutine runs from here; Serve closes it
	// after the HTTP server has stopped. A server that fails to build
	// closes it on the way out.
	rec := audit.NewRecorder(ctx, deps.Store, audit.Options{Now: deps.Now, Logger: deps.Logger})
	built := false
	defer func() {
		if !built {
			_ = rec.Close(ctx)
		}
	}()
	policy := cfg.keyPolicy().WithDefaults()
	// Every session that ends through this server (logout, a new sign-in
	// replacing a session, account and admin actions) wakes the
	// back-channel deliverer at once; sessions ended by other processes
	// are found by its polling.
	rawStore := deps.Store
	// The token endpoint finds clients in memory: a machine token then
	// needs no database at all. Changes made by other instances or the CLI
	// arrive within ClientCacheInterval. The browser flow reads the
	// database directly; it is not hot, and a deleted client stops there
	// at once.
	cache := clients.NewCache(rawStore, clients.CacheOptions{Interval: cfg.ClientCacheInterval, Logger: deps.Logger})
	km := keys.NewManager(rawStore, deps.KEK, keys.Options{
		Now: deps.Now, Rand: deps.Rand, Logger: deps.Logger, RefreshInterval: cfg.KeyRefreshInterval,
		Policy: policy, AdditionalKEKs: deps.AdditionalKEKs,
		// The server changes keys only on its schedule: actor "system".
		OnChange: keys.AuditChanges(rec, audit.ActorSystem),
	})
	if err := km.Init(ctx); err != nil {
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	deliverer, err := backchannel.New(backchannel.Config{
		Issuer:  cfg.Issuer,
		Timeout: cfg.BackchannelLogoutTimeout,
	}, backchannel.Deps{
		Store: rawStore, Clients: cache, Signer: km,
		Now: deps.Now, Rand: deps.Rand, Logger: deps.Logger,
	})
	if err != nil {
		return nil, err
	}
	deps.Store = deliverer.WakingStore(rawStore)
	renderer, err := ui.NewRenderer(issuer.Path)
	if err != nil {
		return nil, fmt.Errorf("load templates: %w", err)
	}
	renderer.Logger = deps.Logger
	sessions := session.NewManager(deps.Store, session.Config{
		Secure: secure, IdleTimeout: cfg.SessionIdleTimeout, AbsoluteTimeout: cfg.SessionAbsoluteTimeout,
	}, session.Options{Now: deps.Now, Rand: deps.Rand, Logger: deps.Logger, Audit: rec})
	oidcCfg := oidc.Config{Issuer: cfg.Issuer, IDTokenTTL: cfg.IDTokenTTL, SigningAlgorithms: policy.Algorithms, SessionLimit: session.Limit{
		Max: cfg.MaxSessionsPerUser, Action: storage.SessionLimitAction(cfg.SessionLimitAction),
	}}
	// Refresh-token successors are derived under the KEK; during a KEK
	// change a retry may reach an instance that derives with the other
	// one, so earlier keys' derivations are recognised too.
	var previousSuccessorKeys [][]byte
	for _, k := range deps.AdditionalKEKs {
		previousSuccessorKeys = append(previousSuccessorKeys, k.Derive(successorKeyLabel))
	}
	oauthSrv, err := oauth.NewServer(oauth.Config{
		Issuer:             cfg.Issuer,
		AccessTokenTTL:     cfg.AccessTokenTTL,
		CodeTTL:            cfg.CodeTTL,
		RefreshIdleTTL:     cfg.RefreshIdleTTL,
		RefreshAbsoluteTTL: cfg.RefreshAbsoluteTTL,
		RefreshGrace:       cfg.RefreshGrace,
		SigningAlg:         cfg.AccessTokenSigningAlg,
	}, oauth.Deps{
		Store:                 deps.Store,
		Clients:               cache,
		Sessions:              sessions,
		Signer:                km,
		Verifier:              km,
		IDTokens:              oidc.NewIDTokens(oidcCfg, km, deps.Now),
		SuccessorKey:          deps.KEK.Derive(successorKeyLabel),
		PreviousSuccessorKeys: previousSuccessorKeys,
		Audit:                 rec,
		Now:                   deps.Now,
		Rand:                  deps.Rand,
		Logger:                deps.Logger,
	})
	if err != nil {
		return nil, err
	}
	throttlePolicy := cfg.throttlePolicy()
	if err := throttlePolicy.Validate(); err != nil {
		return nil, fmt.Errorf("sign-in throttle: %w", err)
	}
	provider, err := oidc.New(oidcCfg, oidc.Deps{
		Store:    deps.Store,
		Keys:     km,
		OAuth:    oauthSrv,
		Sessions: sessions,
		Users:    users.New(deps.Store, users.Options{Now: deps.Now, Rand: deps.Rand, Logger: deps.Logger}),
		Throttle: throttle.New(deps.Store, throttlePolicy, throttle.Options{Now: deps.Now, Logger: deps.Logger}),
		Renderer: renderer,
		CSRF:     ui.CSRF{Secure: secure, Rand: deps.Rand},
		Audit:    rec,
		Now:      deps.Now,
		Rand:     deps.Rand,
		Logger:   deps.Logger,
	})
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, deps: deps, keys: km, clients: cache, provider: provider, backchannel: deliverer, audit: rec}
	s.handler = s.routes(oauthSrv, secure)
	built = true
	return s, nil
}

const successorKeyLabel = "refresh-successor/v1"

func toErrors(errs []ConfigError) []error {
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
	}
	return out
}

// Handler is the complete HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Backchannel exposes the back-channel logout deliverer (tests wake it
// after moving the clock).
func (s *Server) Backchannel() *backchannel.Deliverer { return s.backchannel }

// Keys exposes the key manager (for tests and readiness).
func (s *Server) Keys() *keys.Manager { return s.keys }

// Audit exposes the audit recorder (tests flush it before reading the
// trail).
func (s *Server) Audit() *audit.Recorder { return s.audit }

// routes mounts every endpoint under the issuer's path.
func (s *Server) routes(oauthSrv *oauth.Server, secure bool) http.Handler {
	p := s.provider
	r := chi.NewRouter()
	r.Use(recoverer(s.deps.Logger), accessLog(s.deps.Logger), securityHeaders(secure), audit.Middleware)

	api := chi.NewRouter()
	api.Get(oidc.PathDiscovery, p.HandleDiscovery)
	api.Get(oidc.PathJWKS, p.HandleJWKS)
	// The authorize endpoint deliberately gets no CORS headers: it is a
	// browser navigation, never an XHR target.
	api.Get(oidc.PathAuthorize, p.HandleAuthorize)
	api.Post(oidc.PathAuthorize, p.HandleAuthorize)
	// Token and userinfo use no cookies, so allowing any origin (without
	// credentials) lets browser apps with PKCE use them safely.
	api.With(cors).Post(oidc.PathToken, oauthSrv.HandleToken)
	api.With(cors).Options(oidc.PathToken, noContent)
	api.With(cors).Post(oidc.PathRevoke, oauthSrv.HandleRevoke)
	api.With(cors).Options(oidc.PathRevoke, noContent)
	api.Post(oidc.PathIntrospect, oauthSrv.HandleIntrospect)
	api.With(cors).Get(oidc.PathUserinfo, p.HandleUserinfo)
	api.With(cors).Post(oidc.PathUserinfo, p.HandleUserinfo)
	api.With(cors).Options(oidc.PathUserinfo, noContent)

	// Forms: token-based CSRF in the handlers, plus the browser's own
	// Sec-Fetch-Site/Origin signals refusing cross-origin posts outright.
	forms := http.NewCrossOriginProtection()
	api.Get(oidc.PathLogin, p.HandleLoginPage)
	api.With(forms.Handler).Post(oidc.PathLogin, p.HandleLogin)
	api.Get(oidc.PathConsent, p.HandleConsentPage)
	api.With(forms.Handler).Post(oidc.PathConsent, p.HandleConsent)
	api.Get(oidc.PathAccount, p.HandleAccountPage)
	api.With(forms.Handler).Post(oidc.PathAccountEndSession, p.HandleAccountEndSession)
	api.With(forms.Handler).Post(oidc.PathAccountEndOthers, p.HandleAccountEndOthers)
	api.With(forms.Handler).Post(oidc.PathAccountRevokeApp, p.HandleAccountRevokeApp)
	// RP-initiated logout arrives by GET or by a cross-site POST from an
	// app, so it cannot sit behind the cross-origin check; what it can do
	// without a confirmation needs the app's ID token for the browser's
	// own session. The confirmation is an ordinary CSRF-checked form.
	api.Get(oidc.PathLogout, p.HandleLogout)
	api.Post(oidc.PathLogout, p.HandleLogout)
	api.With(forms.Handler).Post(oidc.PathLogoutConfirm, p.HandleLogoutConfirm)
	api.Get("/", p.HandleHome)
	// ui.StaticHandler serves paths under /static/ itself; only the
	// issuer's path (chi does not strip it on Mount) has to go.
	api.Handle("/static/*", http.StripPrefix(p.BasePath(), ui.StaticHandler()))
	api.Get("/healthz", s.handleHealthz)
	api.Get("/readyz", s.handleReadyz)

	base := p.BasePath()
	if base == "" {
		r.Mount("/", api)
	} else {
		r.Mount(base, api)
	}
	// RFC 8414 §3: the metadata lives at /.well-known/oauth-authorization-server
	// with the issuer's path appended.
	r.Get("/.well-known/oauth-authorization-server"+base, p.HandleDiscovery)
	return r
}

func noContent(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }

func (s *Server) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = io.WriteString(w, "ok\n")
}

// handleReadyz is ready when the database answers and a signing key is
// loaded.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	var problems []string
	if err := s.deps.Store.Ping(ctx); err != nil {
		problems = append(problems, "database unreachable")
		s.deps.Logger.WarnContext(ctx, "readiness: database", slog.Any("error", err))
	}
	if !s.keys.Ready() {
		problems = append(problems, "no signing key loaded")
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if len(problems) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, strings.Join(problems, "\n")+"\n")
		return
	}
	_, _ = io.WriteString(w, "ready\n")
}

// Run serves on cfg.Listen until ctx is cancelled, then shuts down
// gracefully: it stops accepting, lets in-flight requests finish within
// ShutdownTimeout and stops the background loops. ready, if non-nil, is
// called with the bound address once the listener is open.
func (s *Server) Run(ctx context.Context, ready func(addr net.Addr)) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Listen, err)
	}
	return s.Serve(ctx, ln, ready)
}

// Serve is Run on an existing listener.
func (s *Server) Serve(ctx context.Context, ln net.Listener, ready func(addr net.Addr)) (err error) {
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { s.keys.Run(bg) })
	wg.Go(func() { s.clients.Run(bg) })
	wg.Go(func() { s.janitor(bg) })
	wg.Go(func() { s.backchannel.Run(bg) })
	// On the way out: stop the background loops (the key schedule records
	// events too), then write what the audit recorder still holds.
	defer func() {
		stopBG()
		wg.Wait()
		err = errors.Join(err, s.closeAudit(context.WithoutCancel(ctx)))
	}()

	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.deps.Logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	if ready != nil {
		ready(ln.Addr())
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.deps.Logger.Info("shutting down", slog.Duration("timeout", s.cfg.ShutdownTimeout))
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// closeAudit writes the audit events still queued, after the HTTP server
// has stopped (no request can record any more). It has a shutdown timeout
// of its own, so that slow requests cannot eat the time the database needs
// for the last batches; what cannot be written goes to the log at ERROR.
func (s *Server) closeAudit(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ShutdownTimeout)
	defer cancel()
	if err := s.audit.Close(ctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// deleteOldAuditEvents applies the audit retention; a negative retention
// keeps everything.
func (s *Server) deleteOldAuditEvents(ctx context.Context) {
	if s.cfg.AuditRetention < 0 {
		return
	}
	n, err := s.deps.Store.DeleteAuditEventsBefore(ctx, s.deps.Now().Add(-s.cfg.AuditRetention))
	if err != nil {
		s.deps.Logger.WarnContext(ctx, "delete old audit events", slog.Any("error", err))
	} else if n > 0 {
		s.deps.Logger.InfoContext(ctx, "deleted audit events past retention", slog.Int64("events", n), slog.Duration("retention", s.cfg.AuditRetention))
	}
}

// janitor deletes rows that can never be used again. Used authorization
// codes are kept an hour past expiry so that a late replay is still
// recognised as one (and revokes what the code issued).
func (s *Server) janitor(ctx context.Context) {
	t := time.NewTicker(5 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := s.deps.Store.DeleteExpired(ctx, s.deps.Now().Add(-time.Hour))
			if err != nil {
				s.deps.Logger.WarnContext(ctx, "delete expired rows", slog.Any("error", err))
			} else if n > 0 {
				s.deps.Logger.InfoContext(ctx, "deleted expired rows", slog.Int64("rows", n))
			}
			s.deleteOldAuditEvents(ctx)
		}
	}
}
