package server

import (
	"fmt"
	"net"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/oidc"
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
	// ClientCacheInterval bounds how long the token endpoint may still see
	// a client that another instance or the CLI changed or deleted
	// (default 1s).
	ClientCacheInterval time.Duration
	// KeyRefreshInterval is how often signing keys are reloaded from the
	// database (default 1s).
	KeyRefreshInterval time.Duration
	// ShutdownTimeout bounds the graceful shutdown (default 15s).
	ShutdownTimeout time.Duration
	// BackchannelLogoutTimeout bounds each request that delivers a logout
	// token to a client (default 5s).
	BackchannelLogoutTimeout time.Duration
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
	if c.RefreshGrace > time.Minute {
		// Longer windows give a thief of a spent token real time to use it.
		add("refresh-token-grace", "must be at most 1m (0 for the default, negative for none)")
	}
	return errs
}

func (c Config) withDefaults() Config {
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 15 * time.Second
	}
	return c
}
