package server

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/clients"
	"github.com/gatehouse-idp/gatehouse/internal/keys"
	"github.com/gatehouse-idp/gatehouse/internal/oidc"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/internal/throttle"
)

// Config is everything the server needs to know. Zero durations take the
// defaults documented on each field.
type Config struct {
	// Issuer is the public base URL (https, or http for localhost).
	Issuer string
	// Listen is the address to listen on, host:port.
	Listen string
	// AccessTokenTTL (default 10m), IDTokenTTL (default 10m) and CodeTTL
	// (default 60s) are token lifetimes.
	AccessTokenTTL time.Duration
	IDTokenTTL     time.Duration
	CodeTTL        time.Duration
	// SessionIdleTimeout (default 24h) and SessionAbsoluteTimeout (default
	// 7 days) end login sessions.
	SessionIdleTimeout     time.Duration
	SessionAbsoluteTimeout time.Duration
	// RefreshIdleTTL (default 14 days) and RefreshAbsoluteTTL (default 90
	// days) end refresh tokens; clients may override both. RefreshGrace
	// (default 5 s; negative for none) is how long a just-spent refresh
	// token may be re-presented and get the same successor.
	RefreshIdleTTL     time.Duration
	RefreshAbsoluteTTL time.Duration
	RefreshGrace       time.Duration
	// MaxSessionsPerUser limits how many live login sessions a person may
	// have at once (0, the default: unlimited); clients may override it
	// (max_sessions_per_user). SessionLimitAction is what a sign-in past
	// the limit does: "evict_oldest" (the default) ends the least recently
	// active sessions, "refuse" refuses the sign-in.
	MaxSessionsPerUser int
	SessionLimitAction string
	// ClientCacheInterval bounds how long the token endpoint may still see
	// a client that another instance or the CLI changed or deleted
	// (default 1s).
	ClientCacheInterval time.Duration
	// KeyRefreshInterval is how often signing keys are reloaded from the
	// database (default 1s).
	KeyRefreshInterval time.Duration
	// ShutdownTimeout bounds the graceful shutdown (default 15s): first
	// of the HTTP server, then, with as long again, of the audit trail's
	// last writes.
	ShutdownTimeout time.Duration
	// AuditRetention is how long audit events are kept (default 90 days);
	// negative keeps them forever.
	AuditRetention time.Duration

	// SigningAlgorithms keep an active and a pre-published next signing
	// key each (default RS256 and ES256; RS256 is always among them, as
	// OIDC requires). Clients pick their ID token's algorithm among them
	// with id_token_signed_response_alg.
	SigningAlgorithms []string
	// AccessTokenSigningAlg signs JWT access tokens (default RS256); it
	// must be one of SigningAlgorithms.
	AccessTokenSigningAlg string
	// KeyRotationPeriod is how long a signing key signs before its
	// successor takes over (default 30 days).
	KeyRotationPeriod time.Duration
	// KeyPrePublication is how long a new key is in the JWKS before it
	// signs (default 24h); it must exceed the JWKS max-age (10 minutes).
	KeyPrePublication time.Duration

	// LoginThrottleAccountLimit is how many failed sign-ins for one email
	// within LoginThrottleLockout lock it for LoginThrottleLockout; from
	// half as many on, each attempt must wait a growing delay (1s, 2s,
	// 4s, ... at most 30s). Default 10; negative turns the account
	// throttle off.
	LoginThrottleAccountLimit int
	// LoginThrottleIPLimit is the same per client IP (IPv6: per /64),
	// across all emails. Default 100; negative turns it off (behind a
	// proxy every client has the proxy's address).
	LoginThrottleIPLimit int
	// LoginThrottleLockout is how long a lock lasts, and the window
	// failures are counted in (default 15m).
	LoginThrottleLockout time.Duration

	// BackchannelLogoutTimeout bounds each request that delivers a logout
	// token to a client (default 5s).
	BackchannelLogoutTimeout time.Duration
}

// DefaultAuditRetention is how long audit events are kept unless
// configured otherwise: 90 days.
const DefaultAuditRetention = 90 * 24 * time.Hour

// logoutTokenTTL is the lifetime of back-channel logout tokens, which are
// signed with the same keys.
const logoutTokenTTL = 2 * time.Minute

// clockSkew is the allowance verifiers commonly give a token's exp.
const clockSkew = 5 * time.Minute

// keyPolicy is the signing-key lifecycle c asks for. A retired key stays
// published until every token it can have signed has expired: the
// longest token lifetime plus the verifiers' clock-skew allowance.
func (c Config) keyPolicy() keys.Policy {
	longest := max(c.AccessTokenTTL, c.IDTokenTTL, logoutTokenTTL)
	if c.AccessTokenTTL == 0 || c.IDTokenTTL == 0 {
		longest = max(longest, 10*time.Minute) // their defaults
	}
	return keys.Policy{
		Algorithms:     c.SigningAlgorithms,
		RotationPeriod: c.KeyRotationPeriod,
		PrePublication: c.KeyPrePublication,
		Retention:      longest + clockSkew,
	}
}

// ConfigError names the setting that is wrong. cmd/idp maps Setting to its
// flag and environment variable.
type ConfigError struct {
	Setting string // e.g. "issuer"
	Message string
}

func (e ConfigError) Error() string { return e.Setting + ": " + e.Message }

// Validate reports every problem with c at once.
func (c Config) Validate() []ConfigError {
	var errs []ConfigError
	add := func(setting, format string, args ...any) {
		errs = append(errs, ConfigError{Setting: setting, Message: fmt.Sprintf(format, args...)})
	}
	if c.Issuer == "" {
		add("issuer", "is required")
	} else if _, err := oidc.ParseIssuer(c.Issuer); err != nil {
		add("issuer", "%v", err)
	}
	if c.Listen == "" {
		add("listen", "is required")
	} else if _, port, err := net.SplitHostPort(c.Listen); err != nil || port == "" {
		add("listen", "%q is not host:port (for example 127.0.0.1:8080 or :8080)", c.Listen)
	}
	durations := []struct {
		setting string
		v       time.Duration
		max     time.Duration
	}{
		{"access-token-ttl", c.AccessTokenTTL, 24 * time.Hour},
		{"id-token-ttl", c.IDTokenTTL, 24 * time.Hour},
		{"code-ttl", c.CodeTTL, 10 * time.Minute}, // RFC 6749 §4.1.2: 10 minutes at most
		{"session-idle-timeout", c.SessionIdleTimeout, 365 * 24 * time.Hour},
		{"session-absolute-timeout", c.SessionAbsoluteTimeout, 365 * 24 * time.Hour},
		{"refresh-token-idle-ttl", c.RefreshIdleTTL, 10 * 365 * 24 * time.Hour},
		{"refresh-token-absolute-ttl", c.RefreshAbsoluteTTL, 10 * 365 * 24 * time.Hour},
		{"key-refresh-interval", c.KeyRefreshInterval, time.Hour},
		{"client-cache-interval", c.ClientCacheInterval, time.Minute},
		{"shutdown-timeout", c.ShutdownTimeout, time.Hour},
		{"key-rotation-period", c.KeyRotationPeriod, 10 * 365 * 24 * time.Hour},
		{"key-prepublication", c.KeyPrePublication, 365 * 24 * time.Hour},
		{"login-throttle-lockout", c.LoginThrottleLockout, 24 * time.Hour},
		{"backchannel-logout-timeout", c.BackchannelLogoutTimeout, time.Minute},
	}
	for _, d := range durations {
		if d.v < 0 {
			add(d.setting, "must not be negative")
		} else if d.v > d.max {
			add(d.setting, "must be at most %v", d.max)
		}
	}
	if c.SessionIdleTimeout > 0 && c.SessionAbsoluteTimeout > 0 && c.SessionIdleTimeout > c.SessionAbsoluteTimeout {
		add("session-idle-timeout", "must not exceed session-absolute-timeout")
	}
	if c.RefreshIdleTTL > 0 && c.RefreshAbsoluteTTL > 0 && c.RefreshIdleTTL > c.RefreshAbsoluteTTL {
		add("refresh-token-idle-ttl", "must not exceed refresh-token-absolute-ttl")
	}
	policySettings := map[string]string{
		"algorithms": "signing-algs", "rotation-period": "key-rotation-period", "pre-publication": "key-prepublication",
	}
	for _, err := range c.keyPolicy().Validate(keys.DefaultJWKSMaxAge) {
		var pe *keys.PolicyError
		setting := "signing-algs"
		if errors.As(err, &pe) {
			setting = policySettings[pe.Field]
		}
		add(setting, "%v", err)
	}
	if algs := c.keyPolicy().WithDefaults().Algorithms; c.AccessTokenSigningAlg != "" && !slices.Contains(algs, c.AccessTokenSigningAlg) {
		add("access-token-signing-alg", "%q is not one of the signing algorithms (%s)", c.AccessTokenSigningAlg, strings.Join(algs, ", "))
	}
	if c.MaxSessionsPerUser < 0 || c.MaxSessionsPerUser > clients.MaxSessionsPerUser {
		add("max-sessions-per-user", "must be 0 (unlimited) to %d", clients.MaxSessionsPerUser)
	}
	switch storage.SessionLimitAction(c.SessionLimitAction) {
	case "", storage.SessionLimitEvictOldest, storage.SessionLimitRefuse:
	default:
		add("session-limit-action", "must be %s or %s, not %q", storage.SessionLimitEvictOldest, storage.SessionLimitRefuse, c.SessionLimitAction)
	}
	if c.LoginThrottleLockout > 0 && c.LoginThrottleLockout < time.Minute {
		// Shorter than the longest delay, a delay would outlive the count
		// it comes from; and a lock that short stops nobody.
		add("login-throttle-lockout", "must be at least 1m")
	}
	for _, l := range []struct {
		setting string
		v       int
	}{
		{"login-throttle-account-limit", c.LoginThrottleAccountLimit},
		{"login-throttle-ip-limit", c.LoginThrottleIPLimit},
	} {
		if l.v > 1_000_000 {
			add(l.setting, "must be at most 1000000 (negative turns it off)")
		}
	}
	if c.RefreshGrace > time.Minute {
		// Longer windows give a thief of a spent token real time to use it.
		add("refresh-token-grace", "must be at most 1m (0 for the default, negative for none)")
	}
	return errs
}

func (c Config) withDefaults() Config {
	if c.SessionLimitAction == "" {
		c.SessionLimitAction = string(storage.SessionLimitEvictOldest)
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 15 * time.Second
	}
	if c.AccessTokenSigningAlg == "" {
		c.AccessTokenSigningAlg = keys.RS256
	}
	if c.AuditRetention == 0 {
		c.AuditRetention = DefaultAuditRetention
	}
	return c
}

// throttlePolicy is the sign-in throttle the settings describe.
func (c Config) throttlePolicy() throttle.Policy {
	p := throttle.DefaultPolicy()
	if c.LoginThrottleAccountLimit != 0 {
		p.Account = throttle.LimitRule(c.LoginThrottleAccountLimit)
	}
	if c.LoginThrottleIPLimit != 0 {
		p.IP = throttle.LimitRule(c.LoginThrottleIPLimit)
	}
	if c.LoginThrottleLockout != 0 {
		p.Lockout = c.LoginThrottleLockout
	}
	return p
}
