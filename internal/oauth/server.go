package oauth

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-idp/gatehouse/internal/audit"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// Signer signs JWT claims with the active key for an algorithm. Package
// keys implements it; signing never touches the database.
type Signer interface {
	Sign(alg, typ string, claims any) (string, error)
}

// Verifier checks a compact JWS against the published keys and returns its
// payload and protected header.
type Verifier interface {
	Verify(token string) ([]byte, jose.Header, error)
}

// IDTokenMinter mints an OpenID Connect ID token for a token response when
// the grant includes the openid scope. Package oidc implements it.
type IDTokenMinter interface {
	MintIDToken(ctx context.Context, r IDTokenRequest) (string, error)
}

// IDTokenRequest is what the ID token is built from.
type IDTokenRequest struct {
	Client      storage.Client
	User        storage.User
	SessionID   string
	Nonce       string
	AuthTime    time.Time
	AMR         []string
	Scopes      []string
	AccessToken string // for at_hash
}

// Config holds the token settings. Zero durations take the defaults.
type Config struct {
	// Issuer is the iss of every token and the iss authorization response
	// parameter (RFC 9207).
	Issuer string
	// AccessTokenTTL is the access token lifetime (default 10 minutes).
	AccessTokenTTL time.Duration
	// CodeTTL is the authorization code lifetime (default 60 seconds).
	CodeTTL time.Duration
	// AccessTokenAudience is the aud of access tokens issued without a
	// resource indicator (default: the issuer, which serves userinfo).
	AccessTokenAudience string
	// SigningAlg signs access tokens (default RS256).
	SigningAlg string
	// RefreshIdleTTL ends a refresh token not used for this long (default
	// 14 days); RefreshAbsoluteTTL ends a whole family this long after the
	// sign-in that started it (default 90 days). Clients may override both.
	RefreshIdleTTL     time.Duration
	RefreshAbsoluteTTL time.Duration
	// RefreshGrace is how long a spent refresh token may be presented
	// again and get the same successor, for multi-tab and retrying
	// clients (default 5 s; negative disables it: strict rotation).
	RefreshGrace time.Duration
}

func (c Config) withDefaults() Config {
	if c.AccessTokenTTL == 0 {
		c.AccessTokenTTL = 10 * time.Minute
	}
	if c.CodeTTL == 0 {
		c.CodeTTL = 60 * time.Second
	}
	if c.AccessTokenAudience == "" {
		c.AccessTokenAudience = c.Issuer
	}
	if c.SigningAlg == "" {
		c.SigningAlg = "RS256"
	}
	if c.RefreshIdleTTL == 0 {
		c.RefreshIdleTTL = 14 * 24 * time.Hour
	}
	if c.RefreshAbsoluteTTL == 0 {
		c.RefreshAbsoluteTTL = 90 * 24 * time.Hour
	}
	if c.RefreshGrace == 0 {
		c.RefreshGrace = 5 * time.Second
	}
	if c.RefreshGrace < 0 {
		c.RefreshGrace = 0
	}
	return c
}

// Sessions answers whether a login session is still alive (not ended, not
// timed out, its user not disabled) and, when touch is set, records
// activity on it: an app refreshing its tokens keeps the person's session
// alive, as browsing would. Package session implements it.
type Sessions interface {
	Alive(ctx context.Context, id string, touch bool) (bool, error)
}

// Deps are the server's collaborators. Clients defaults to Store (an
// in-process cache belongs here in production); Now, Rand and Logger
// default to the real clock, crypto/rand and a discarding logger.
type Deps struct {
	Store    storage.Store
	Clients  ClientGetter
	Sessions Sessions
	Signer   Signer
	Verifier Verifier
	IDTokens IDTokenMinter
	// SuccessorKey (32 bytes, the same on every replica) derives a spent
	// refresh token's successor, so a retry within the grace window gets
	// the same successor without storing it anywhere.
	SuccessorKey []byte
	// PreviousSuccessorKeys are successor keys derived from earlier
	// key-encryption keys: a successor derived under one of them is
	// recognised as the same refresh, not as reuse.
	PreviousSuccessorKeys [][]byte
	// Audit receives token.issued, token.refreshed, token.revoked,
	// refresh.reuse_detected and code.replayed; nil records nothing.
	Audit  *audit.Recorder
	Now    func() time.Time
	Rand   io.Reader
	Logger *slog.Logger
}

func (d Deps) withDefaults() Deps {
	if d.Clients == nil && d.Store != nil {
		d.Clients = d.Store
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Rand == nil {
		d.Rand = rand.Reader
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	return d
}

// Server issues authorization codes and runs the token endpoint.
type Server struct {
	cfg  Config
	deps Deps
}

// NewServer returns a Server; cfg.Issuer and deps.Store, Signer, Verifier
// and IDTokens are required.
func NewServer(cfg Config, deps Deps) (*Server, error) {
	cfg = cfg.withDefaults()
	deps = deps.withDefaults()
	switch {
	case cfg.Issuer == "":
		return nil, fmt.Errorf("oauth: issuer is required")
	case deps.Store == nil || deps.Signer == nil || deps.Verifier == nil || deps.IDTokens == nil || deps.Sessions == nil:
		return nil, fmt.Errorf("oauth: store, sessions, signer, verifier and ID token minter are required")
	case len(deps.SuccessorKey) < 32:
		return nil, fmt.Errorf("oauth: a 32-byte refresh token successor key is required")
	}
	return &Server{cfg: cfg, deps: deps}, nil
}

// Config returns the effective configuration, defaults applied.
func (s *Server) Config() Config { return s.cfg }
