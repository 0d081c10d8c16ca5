package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/keys"
	"github.com/gatehouse-idp/gatehouse/internal/server"
)

// serverFlags are the settings shared by dev and serve.
type serverFlags struct {
	cfg         server.Config
	signingAlgs string
	logLevel    string
	logFormat   string
}

func (sf *serverFlags) register(fs *flag.FlagSet, defaultListen string) {
	fs.StringVar(&sf.cfg.Issuer, "issuer", "", "issuer URL: the public base URL of this server (https; http only for localhost)")
	fs.StringVar(&sf.cfg.Listen, "listen", defaultListen, "address to listen on, host:port")
	fs.DurationVar(&sf.cfg.AccessTokenTTL, "access-token-ttl", 10*time.Minute, "access token lifetime")
	fs.DurationVar(&sf.cfg.IDTokenTTL, "id-token-ttl", 10*time.Minute, "ID token lifetime")
	fs.DurationVar(&sf.cfg.CodeTTL, "code-ttl", 60*time.Second, "authorization code lifetime")
	fs.DurationVar(&sf.cfg.SessionIdleTimeout, "session-idle-timeout", 24*time.Hour, "end a login session after this long without use")
	fs.DurationVar(&sf.cfg.SessionAbsoluteTimeout, "session-absolute-timeout", 7*24*time.Hour, "end a login session this long after sign-in")
	fs.DurationVar(&sf.cfg.RefreshIdleTTL, "refresh-token-idle-ttl", 14*24*time.Hour, "end a refresh token not used for this long (clients may override)")
	fs.DurationVar(&sf.cfg.RefreshAbsoluteTTL, "refresh-token-absolute-ttl", 90*24*time.Hour, "end a refresh token family this long after sign-in (clients may override)")
	fs.DurationVar(&sf.cfg.BackchannelLogoutTimeout, "backchannel-logout-timeout", 5*time.Second, "bound each request delivering a logout token to a client (at most 1m)")
	fs.DurationVar(&sf.cfg.RefreshGrace, "refresh-token-grace", 5*time.Second, "how long a just-spent refresh token may be re-presented and get the same successor (negative: never)")
	fs.StringVar(&sf.signingAlgs, "signing-algs", "RS256,ES256", "signing algorithms with keys, comma-separated: RS256 (always), ES256, EdDSA; clients choose among them with id_token_signed_response_alg")
	fs.StringVar(&sf.cfg.AccessTokenSigningAlg, "access-token-signing-alg", "RS256", "algorithm of JWT access tokens; one of --signing-algs")
	registerKeyPolicyFlags(fs, &sf.cfg.KeyRotationPeriod, &sf.cfg.KeyPrePublication)
	fs.IntVar(&sf.cfg.MaxSessionsPerUser, "max-sessions-per-user", 0, "most live login sessions a person may have at once; 0 for unlimited (clients may override)")
	fs.StringVar(&sf.cfg.SessionLimitAction, "session-limit-action", "evict_oldest", "a sign-in past --max-sessions-per-user: evict_oldest (end the least recently active sessions) or refuse")
	fs.IntVar(&sf.cfg.LoginThrottleAccountLimit, "login-throttle-account-limit", 10, "failed sign-ins for one email that lock it for the lockout; delays from half as many (negative: off)")
	fs.IntVar(&sf.cfg.LoginThrottleIPLimit, "login-throttle-ip-limit", 100, "failed sign-ins from one client IP (IPv6: /64) that lock it for the lockout; delays from half as many (negative: off, e.g. behind a proxy)")
	fs.DurationVar(&sf.cfg.LoginThrottleLockout, "login-throttle-lockout", 15*time.Minute, "how long a sign-in lock lasts, and the window failures are counted in")
	fs.DurationVar(&sf.cfg.AuditRetention, "audit-retention", server.DefaultAuditRetention, "delete audit events older than this (0: the default, 2160h = 90 days; negative: keep forever)")
	fs.StringVar(&sf.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&sf.logFormat, "log-format", "text", "log format: text or json")
}

// validate checks the server settings, naming each bad one by flag and
// environment variable.
func (sf *serverFlags) validate() []string {
	var problems []string
	sf.cfg.SigningAlgorithms = splitList(sf.signingAlgs)
	for _, e := range sf.cfg.Validate() {
		problems = append(problems, settingName(e.Setting)+": "+e.Message)
	}
	if _, err := parseLevel(sf.logLevel); err != nil {
		problems = append(problems, settingName("log-level")+": "+err.Error())
	}
	if sf.logFormat != "text" && sf.logFormat != "json" {
		problems = append(problems, settingName("log-format")+": must be text or json")
	}
	return problems
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("unknown level %q", s)
	}
	return l, nil
}

func (sf *serverFlags) logger(w io.Writer) *slog.Logger {
	level, _ := parseLevel(sf.logLevel)
	opts := &slog.HandlerOptions{Level: level}
	if sf.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// registerKeyPolicyFlags adds the signing-key schedule flags, shared by
// the servers and "idp keys" (which shows the schedule).
func registerKeyPolicyFlags(fs *flag.FlagSet, rotation, prePublication *time.Duration) {
	fs.DurationVar(rotation, "key-rotation-period", 30*24*time.Hour, "how long a signing key signs before the next key takes over")
	fs.DurationVar(prePublication, "key-prepublication", 24*time.Hour, "how long a new signing key is in the JWKS before it signs (more than the JWKS max-age, 10m)")
}

// splitList splits a comma-separated setting, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// configError lists every configuration problem at once.
func configError(problems []string) error {
	return usagef("invalid configuration:\n  %s", strings.Join(problems, "\n  "))
}

func runServe(ctx context.Context, e env) error {
	fs := newFlagSet("idp serve", e.stderr)
	var sf serverFlags
	sf.register(fs, ":8080")
	var databaseURL, kekFile string
	fs.StringVar(&databaseURL, "database-url", "", "Postgres URL, e.g. postgres://gatehouse:secret@db:5432/gatehouse (required)")
	fs.StringVar(&kekFile, "key-encryption-key-file", "", "file holding the key-encryption key (alternative to IDP_KEY_ENCRYPTION_KEY)")
	var oldKEKsFile string
	registerAdditionalKEKsFlag(fs, &oldKEKsFile)
	envProblems, err := splitEnvErrors(parseFlags(fs, e.args, e.getenv))
	if err != nil {
		return flagError(err)
	}
	problems := append(envProblems, sf.validate()...)
	if databaseURL == "" {
		problems = append(problems, settingName("database-url")+": is required")
	}
	// The key-encryption key is a secret, so it has no flag of its own
	// (flags show up in ps): environment or a file.
	kek, err := loadKEK(e.getenv("IDP_KEY_ENCRYPTION_KEY"), kekFile)
	if err != nil {
		problems = append(problems, err.Error())
	}
	oldKEKs, err := loadAdditionalKEKs(e.getenv(additionalKEKsEnv), oldKEKsFile)
	if err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return configError(problems)
	}
	logger := sf.logger(e.stderr)
	sflags := storeFlags{databaseURL: databaseURL}
	db, _, err := sflags.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return serveUntilDone(ctx, e, sf, server.Deps{Store: db, KEK: kek, AdditionalKEKs: oldKEKs, Logger: logger}, nil)
}

// loadKEK reads the key-encryption key from the environment value or a
// file, never both.
func loadKEK(fromEnv, file string) (keys.KEK, error) {
	switch {
	case fromEnv != "" && file != "":
		return keys.KEK{}, errors.New("IDP_KEY_ENCRYPTION_KEY and " + settingName("key-encryption-key-file") + ": set only one")
	case fromEnv != "":
		k, err := keys.ParseKEK(fromEnv)
		if err != nil {
			return keys.KEK{}, fmt.Errorf("IDP_KEY_ENCRYPTION_KEY: %v", err)
		}
		return k, nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return keys.KEK{}, fmt.Errorf("%s: %v", settingName("key-encryption-key-file"), err)
		}
		k, err := keys.ParseKEK(strings.TrimSpace(string(b)))
		if err != nil {
			return keys.KEK{}, fmt.Errorf("%s: %v", settingName("key-encryption-key-file"), err)
		}
		return k, nil
	default:
		return keys.KEK{}, errors.New("IDP_KEY_ENCRYPTION_KEY is required: 32 random bytes, standard base64 (openssl rand -base64 32); it encrypts the signing keys at rest")
	}
}

// additionalKEKsEnv holds earlier key-encryption keys, comma-separated,
// during a key-encryption-key change (docs/keys.md). Like the key itself,
// it is a secret: environment or file, never a flag value.
const additionalKEKsEnv = "IDP_ADDITIONAL_KEY_ENCRYPTION_KEYS"

func registerAdditionalKEKsFlag(fs *flag.FlagSet, file *string) {
	fs.StringVar(file, "additional-key-encryption-keys-file", "", "file with earlier key-encryption keys, one per line, used only to read what they encrypted (alternative to "+additionalKEKsEnv+")")
}

// loadAdditionalKEKs reads the earlier key-encryption keys from the
// environment value (comma-separated) or a file (one per line).
func loadAdditionalKEKs(fromEnv, file string) ([]keys.KEK, error) {
	var raw []string
	switch {
	case fromEnv != "" && file != "":
		return nil, errors.New(additionalKEKsEnv + " and " + settingName("additional-key-encryption-keys-file") + ": set only one")
	case fromEnv != "":
		raw = splitList(fromEnv)
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", settingName("additional-key-encryption-keys-file"), err)
		}
		raw = splitList(strings.ReplaceAll(string(b), "\n", ","))
	}
	out := make([]keys.KEK, 0, len(raw))
	for i, r := range raw {
		k, err := keys.ParseKEK(r)
		if err != nil {
			return nil, fmt.Errorf("additional key-encryption key #%d: %v", i+1, err)
		}
		out = append(out, k)
	}
	return out, nil
}

// serveUntilDone builds the server and serves until ctx ends (SIGINT or
// SIGTERM), then shuts down gracefully. started, if set, runs once the
// listener is open.
func serveUntilDone(ctx context.Context, e env, sf serverFlags, deps server.Deps, started func(addr net.Addr)) error {
	srv, err := server.New(ctx, sf.cfg, deps)
	if err != nil {
		return err
	}
	return srv.Run(ctx, func(addr net.Addr) {
		deps.Logger.Info("listening", slog.String("addr", addr.String()), slog.String("issuer", sf.cfg.Issuer))
		if started != nil {
			started(addr)
		}
	})
}

func runDev(ctx context.Context, e env) error {
	fs := newFlagSet("idp dev", e.stderr)
	var sf serverFlags
	sf.register(fs, "localhost:8080")
	var dataDir string
	fs.StringVar(&dataDir, "data-dir", defaultDataDir, "data directory for the SQLite database and the key-encryption key")
	var oldKEKsFile string
	registerAdditionalKEKsFlag(fs, &oldKEKsFile)
	envProblems, err := splitEnvErrors(parseFlags(fs, e.args, e.getenv))
	if err != nil {
		return flagError(err)
	}
	if sf.cfg.Issuer == "" {
		// Derive the issuer from the listen port, so that
		// "idp dev --listen localhost:9090" just works.
		_, port, err := net.SplitHostPort(sf.cfg.Listen)
		if err == nil && port != "" {
			sf.cfg.Issuer = "http://localhost:" + port
		}
	}
	problems := append(envProblems, sf.validate()...)
	oldKEKs, err := loadAdditionalKEKs(e.getenv(additionalKEKsEnv), oldKEKsFile)
	if err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return configError(problems)
	}
	logger := sf.logger(e.stderr)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	kekPath := filepath.Join(dataDir, "key-encryption-key")
	kek, created, err := keys.LoadOrCreateKEKFile(kekPath, rand.Reader)
	if err != nil {
		return fmt.Errorf("key-encryption key %s: %w", kekPath, err)
	}
	if created {
		logger.Info("created a key-encryption key", slog.String("path", kekPath))
	}
	sflags := storeFlags{dataDir: dataDir}
	db, desc, err := sflags.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return serveUntilDone(ctx, e, sf, server.Deps{Store: db, KEK: kek, AdditionalKEKs: oldKEKs, Logger: logger}, func(net.Addr) {
		printNextSteps(e.stdout, sf.cfg.Issuer, desc, dataDir)
	})
}

func printNextSteps(w io.Writer, issuer, storeDesc, dataDir string) {
	dd := ""
	if dataDir != defaultDataDir {
		dd = " --data-dir " + dataDir
	}
	fmt.Fprintf(w, `
Gatehouse is running in development mode (%s).

  Discovery: %s/.well-known/openid-configuration

Next steps, in another terminal (go run ./cmd/idp works in place of idp):

  1. Create a person who can sign in:
       echo 'correct horse battery staple' | idp users create%s --email ada@example.com --name "Ada Lovelace" --password-stdin

  2. Register an app (a confidential web client):
       echo '{"client_name":"My App","redirect_uris":["http://127.0.0.1:9000/callback"]}' | idp clients create%s

  3. Sign in through it with the example app (x/oauth2 + go-oidc), then open
     http://127.0.0.1:9000/ in your browser:
       go run ./examples/rp -issuer %s -client-id CLIENT_ID -client-secret CLIENT_SECRET

Any OpenID Connect library works the same way: point it at %s.
Stop with Ctrl-C.
`, storeDesc, issuer, dd, dd, issuer, issuer)
}
