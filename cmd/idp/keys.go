package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/audit"
	"github.com/gatehouse-idp/gatehouse/internal/keys"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// runKeys is "idp keys list|rotate|revoke|rewrap": the signing keys as an
// operator sees them. The running servers pick up every change within
// seconds (Postgres notifications, or polling of the change counter).
func runKeys(ctx context.Context, e env) (err error) {
	sub, rest, err := subcommand(e.args, "list", "rotate", "revoke", "rewrap")
	if err != nil {
		return err
	}
	fs := newFlagSet("idp keys "+sub, e.stderr)
	var sf storeFlags
	sf.register(fs)
	var policy keys.Policy
	registerKeyPolicyFlags(fs, &policy.RotationPeriod, &policy.PrePublication)
	var kekFile, oldKEKsFile, alg string
	var asJSON, force bool
	if sub != "list" {
		fs.StringVar(&kekFile, "key-encryption-key-file", "", "file holding the key-encryption key (alternative to IDP_KEY_ENCRYPTION_KEY; default with SQLite: the one in --data-dir)")
		registerAdditionalKEKsFlag(fs, &oldKEKsFile)
	}
	switch sub {
	case "list":
		fs.BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	case "rotate":
		fs.StringVar(&alg, "alg", keys.RS256, "algorithm whose next key should start signing")
		fs.BoolVar(&force, "force", false, "rotate even if the next key has been published for less than --key-prepublication (verifiers that cached the JWKS may reject its tokens until they refetch)")
	}
	if err := parseFlags(fs, rest, e.getenv); err != nil {
		return flagError(err)
	}
	if sub == "revoke" && fs.NArg() != 1 {
		return usagef("usage: idp keys revoke KID")
	}
	if sub != "revoke" && fs.NArg() != 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}

	var kek keys.KEK
	var oldKEKs []keys.KEK
	if sub != "list" {
		// Only list works without the key-encryption key: the other
		// steps create keys, and refuse to unless they can open the
		// existing ones (keys a server could not read are worse than
		// none).
		if kek, err = cliKEK(e, sf, kekFile); err != nil {
			return usageError{err.Error()}
		}
		if oldKEKs, err = loadAdditionalKEKs(e.getenv(additionalKEKsEnv), oldKEKsFile); err != nil {
			return usageError{err.Error()}
		}
	}
	db, err := sf.openMigrated(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	rec := newAdminRecorder(ctx, e, db)
	defer func() { err = errors.Join(err, closeAdminRecorder(ctx, rec)) }()
	m := keys.NewManager(db, kek, keys.Options{Policy: policy, AdditionalKEKs: oldKEKs, Logger: discardLogger(),
		OnChange: keys.AuditChanges(rec, audit.ActorAdmin)})

	switch sub {
	case "list":
		list, err := m.Keys(ctx)
		if err != nil {
			return err
		}
		return printKeys(e.stdout, m, list, asJSON)
	case "rotate":
		c, err := m.Rotate(ctx, alg, force)
		if errors.Is(err, keys.ErrTooEarly) {
			return fmt.Errorf("%w\n(--force rotates anyway)", err)
		}
		if err != nil {
			return err
		}
		for _, k := range c.Promoted {
			fmt.Fprintf(e.stdout, "%s now signs with %s (published since %s).\n", k.Algorithm, k.ID, k.CreatedAt.Format(time.RFC3339))
		}
		for _, k := range c.Created {
			if k.State == storage.KeyActive {
				fmt.Fprintf(e.stdout, "%s now signs with the new key %s. Verifiers that cached the JWKS fetch it when they meet its kid.\n", k.Algorithm, k.ID)
			}
		}
		for _, k := range c.Retired {
			fmt.Fprintf(e.stdout, "%s retired: it stays in the JWKS until the tokens it signed have expired, then is deleted.\n", k.ID)
		}
		for _, k := range c.Created {
			if k.State == storage.KeyNext {
				fmt.Fprintf(e.stdout, "New next key %s is published; it may sign from %s.\n", k.ID, m.Schedule(k).Format(time.RFC3339))
			}
		}
		fmt.Fprintln(e.stdout, "Running servers pick the change up within seconds.")
		return nil
	case "revoke":
		kid := fs.Arg(0)
		c, err := m.Revoke(ctx, kid)
		if errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("no signing key with kid %s", kid)
		}
		if errors.Is(err, storage.ErrConflict) {
			return fmt.Errorf("key %s is already revoked", kid)
		}
		if err != nil {
			return err
		}
		printRevoked(e.stdout, c, m)
		return nil
	default: // rewrap
		res, err := m.Rewrap(ctx)
		fmt.Fprintf(e.stdout, "re-encrypted %s under the current key-encryption key; %s already were",
			plural(int64(len(res.Rewrapped)), "key"), plural(int64(len(res.Current)), "key"))
		if len(res.Skipped) > 0 {
			fmt.Fprintf(e.stdout, "; skipped %s no configured key opens (revoked, never used again): %s",
				plural(int64(len(res.Skipped)), "revoked key"), strings.Join(res.Skipped, ", "))
		}
		fmt.Fprintln(e.stdout, ".")
		if err != nil {
			return err
		}
		if len(res.Skipped) == 0 {
			fmt.Fprintf(e.stdout, "Once every server runs with the current key-encryption key, %s can be removed.\n", additionalKEKsEnv)
		}
		return nil
	}
}

// printRevoked says what a revocation did and what it means for the
// tokens the key signed, which is what an operator in an incident needs.
func printRevoked(w io.Writer, c keys.Change, m *keys.Manager) {
	for _, k := range c.Revoked {
		fmt.Fprintf(w, "Revoked %s (%s, was %s). It is out of the JWKS and will never be used again.\n", k.ID, k.Algorithm, k.State)
	}
	for _, k := range c.Promoted {
		fmt.Fprintf(w, "%s now signs with %s.\n", k.Algorithm, k.ID)
	}
	for _, k := range c.Created {
		if k.State == storage.KeyActive {
			fmt.Fprintf(w, "%s now signs with the new key %s.\n", k.Algorithm, k.ID)
		} else {
			fmt.Fprintf(w, "New next key %s (%s) is published; it may sign from %s.\n", k.ID, k.Algorithm, m.Schedule(k).Format(time.RFC3339))
		}
	}
	fmt.Fprintf(w, `
Tokens it signed:
  - Gatehouse rejects them at once (introspection, userinfo, id_token_hint): every
    instance drops the key within seconds.
  - Resource servers that verify against the JWKS reject them once their cached copy
    expires: within %s (the JWKS max-age) for verifiers that honour it; restart or
    flush the others.
  - Refresh tokens are not signed and stay valid; clients get new access and ID
    tokens, signed with the new key, at their next refresh.
`, keys.DefaultJWKSMaxAge)
}

type keyJSON struct {
	KID         string     `json:"kid"`
	Algorithm   string     `json:"alg"`
	State       string     `json:"state"`
	CreatedAt   time.Time  `json:"created_at"`
	ActivatedAt *time.Time `json:"activated_at,omitempty"`
	RetiredAt   *time.Time `json:"retired_at,omitempty"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
	// Due is the next scheduled event: when a next key may sign, when an
	// active key is due to be replaced.
	Due *time.Time `json:"due,omitempty"`
}

func printKeys(w io.Writer, m *keys.Manager, list []keys.KeyInfo, asJSON bool) error {
	if asJSON {
		out := make([]keyJSON, 0, len(list))
		for _, k := range list {
			j := keyJSON{KID: k.ID, Algorithm: k.Algorithm, State: string(k.State), CreatedAt: k.CreatedAt,
				ActivatedAt: k.ActivatedAt, RetiredAt: k.RetiredAt, RevokedAt: k.RevokedAt}
			if due := m.Schedule(k); !due.IsZero() && k.State != storage.KeyRetired {
				j.Due = &due
			}
			out = append(out, j)
		}
		return printJSON(w, out)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tSTATE\tCREATED\tSINCE\tNEXT")
	for _, k := range list {
		since, next := "", ""
		switch k.State {
		case storage.KeyNext:
			since = k.CreatedAt.Format(time.RFC3339)
			next = "may sign from " + m.Schedule(k).Format(time.RFC3339)
		case storage.KeyActive:
			since = fmtTime(k.ActivatedAt)
			next = "rotation due " + m.Schedule(k).Format(time.RFC3339)
		case storage.KeyRetired:
			since = fmtTime(k.RetiredAt)
			next = "deleted once its tokens expired"
		case storage.KeyRevoked:
			since = fmtTime(k.RevokedAt)
			next = "never used again"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Algorithm, k.State, k.CreatedAt.Format(time.RFC3339), since, next)
	}
	return tw.Flush()
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format(time.RFC3339)
}

// discardLogger: the CLI reports what it did on stdout; the manager's
// own logs would repeat it.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// cliKEK is the key-encryption key for a CLI step: from the environment
// or --key-encryption-key-file, or, on the SQLite database of idp dev,
// the key file in its data directory (never created here).
func cliKEK(e env, sf storeFlags, file string) (keys.KEK, error) {
	fromEnv := e.getenv("IDP_KEY_ENCRYPTION_KEY")
	if fromEnv == "" && file == "" && sf.databaseURL == "" {
		file = filepath.Join(sf.dataDir, "key-encryption-key")
		if _, err := os.Stat(file); err != nil {
			return keys.KEK{}, fmt.Errorf("no key-encryption key: %s does not exist and IDP_KEY_ENCRYPTION_KEY is not set", file)
		}
	}
	return loadKEK(fromEnv, file)
}
