package oidc

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/audit"
	"github.com/gatehouse-idp/gatehouse/internal/oauth"
	"github.com/gatehouse-idp/gatehouse/internal/session"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/internal/throttle"
	"github.com/gatehouse-idp/gatehouse/internal/ui"
	"github.com/gatehouse-idp/gatehouse/internal/users"
)

// StandardScopes are the OpenID Connect scopes Gatehouse understands, and
// what a client that registered no scope may ask for. Clients may
// register API scopes of their own too.
func StandardScopes() []string { return []string{"openid", "profile", "email", "offline_access"} }

// KeySet signs tokens and publishes the public keys. Package keys
// implements it.
type KeySet interface {
	oauth.Signer
	oauth.Verifier
	JWKS() (body []byte, etag string)
	JWKSMaxAge() time.Duration
}

// Config is the provider's configuration.
type Config struct {
	// Issuer is the issuer identifier: an https URL (http only for
	// loopback development), without query or fragment.
	Issuer string
	// IDTokenTTL is the ID token lifetime (default 10 minutes).
	IDTokenTTL time.Duration
	// AuthRequestTTL bounds how long a person may take to sign in and
	// consent (default 15 minutes).
	AuthRequestTTL time.Duration
	// IDTokenAlg signs ID tokens of clients that did not register an
	// id_token_signed_response_alg (default RS256, which OIDC requires).
	IDTokenAlg string
	// SigningAlgorithms are the algorithms with signing keys, advertised
	// in discovery (default: IDTokenAlg alone).
	SigningAlgorithms []string
	// SessionLimit is the server's concurrent-session policy; a client's
	// max_sessions_per_user and session_limit_action override it for
	// sign-ins made for that client.
	SessionLimit session.Limit
}

func (c Config) withDefaults() Config {
	if c.IDTokenTTL == 0 {
		c.IDTokenTTL = 10 * time.Minute
	}
	if c.AuthRequestTTL == 0 {
		c.AuthRequestTTL = 15 * time.Minute
	}
	if c.IDTokenAlg == "" {
		c.IDTokenAlg = "RS256"
	}
	if len(c.SigningAlgorithms) == 0 {
		c.SigningAlgorithms = []string{c.IDTokenAlg}
	}
	if c.SessionLimit.Action == "" {
		c.SessionLimit.Action = storage.SessionLimitEvictOldest
	}
	return c
}

// Deps are the provider's collaborators.
type Deps struct {
	Store    storage.Store
	Keys     KeySet
	OAuth    *oauth.Server
	Sessions *session.Manager
	Users    *users.Service
	// Throttle slows down and stops password guessing at sign-in; nil
	// turns that off.
	Throttle *throttle.Limiter
	Renderer *ui.Renderer
	CSRF     ui.CSRF
	// Audit receives sign-ins and consents; nil records nothing.
	Audit  *audit.Recorder
	Now    func() time.Time
	Rand   io.Reader
	Logger *slog.Logger
}

// Provider serves the OpenID Connect endpoints.
type Provider struct {
	cfg       Config
	deps      Deps
	issuerURL *url.URL
	discovery []byte // the discovery document, built once
}

// New returns a Provider. Build deps.OAuth first, with an IDTokens from
// NewIDTokens as its ID token minter.
func New(cfg Config, deps Deps) (*Provider, error) {
	cfg = cfg.withDefaults()
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Rand == nil {
		deps.Rand = rand.Reader
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	iu, err := ParseIssuer(cfg.Issuer)
	if err != nil {
		return nil, err
	}
	if deps.Store == nil || deps.Keys == nil || deps.OAuth == nil || deps.Sessions == nil || deps.Users == nil || deps.Renderer == nil {
		return nil, errors.New("oidc: store, keys, oauth, sessions, users and renderer are required")
	}
	p := &Provider{cfg: cfg, deps: deps, issuerURL: iu}
	p.discovery, err = p.buildDiscovery()
	if err != nil {
		return nil, err
	}
	return p, nil
}

// ParseIssuer checks an issuer identifier (OIDC Discovery §3, RFC 8414
// §2): an absolute https URL with no query or fragment; http is allowed
// for loopback hosts so that development needs no certificate.
func ParseIssuer(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("issuer %q: %w", s, err)
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, fmt.Errorf("issuer %q: must be an https URL", s)
	case u.Host == "":
		return nil, fmt.Errorf("issuer %q: has no host", s)
	case u.RawQuery != "" || u.Fragment != "" || strings.Contains(s, "#") || strings.Contains(s, "?"):
		return nil, fmt.Errorf("issuer %q: must not have a query or fragment", s)
	case u.User != nil:
		return nil, fmt.Errorf("issuer %q: must not have user information", s)
	case strings.HasSuffix(u.Path, "/"):
		return nil, fmt.Errorf("issuer %q: must not end with a slash", s)
	case u.Scheme == "http" && !isLoopbackHost(u.Hostname()):
		return nil, fmt.Errorf("issuer %q: plain http is only allowed for localhost; use https", s)
	}
	return u, nil
}

func isLoopbackHost(h string) bool {
	return h == "localhost" || h == "127.0.0.1" || h == "::1"
}

// Secure reports whether the issuer is https (and cookies must be Secure).
func (p *Provider) Secure() bool { return p.issuerURL.Scheme == "https" }

// endpoint returns the absolute URL of a path under the issuer.
func (p *Provider) endpoint(path string) string { return p.cfg.Issuer + path }

// BasePath is the issuer's path, under which every endpoint is mounted.
func (p *Provider) BasePath() string { return p.issuerURL.Path }
