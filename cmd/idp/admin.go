package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/audit"
	"github.com/gatehouse-idp/gatehouse/internal/clients"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/internal/throttle"
	"github.com/gatehouse-idp/gatehouse/internal/users"
)

func runMigrate(ctx context.Context, e env) error {
	fs := newFlagSet("idp migrate", e.stderr)
	var sf storeFlags
	sf.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "Usage: idp migrate up|status [--database-url URL | --data-dir DIR]")
		fs.PrintDefaults()
	}
	sub, rest, err := subcommand(e.args, "up", "status")
	if err != nil {
		return err
	}
	if err := parseFlags(fs, rest, e.getenv); err != nil {
		return flagError(err)
	}
	db, _, err := sf.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	if sub == "up" {
		if err := db.Migrate(ctx); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	status, err := db.MigrationStatus(ctx)
	if err != nil {
		return fmt.Errorf("migration status: %w", err)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tMIGRATION\tAPPLIED AT")
	for _, s := range status {
		at := "pending"
		if s.Applied {
			at = s.AppliedAt.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\n", s.Version, s.Source, at)
	}
	return tw.Flush()
}

// subcommand splits "create --flag ..." into its verb and the rest.
func subcommand(args []string, verbs ...string) (string, []string, error) {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return "", nil, usagef("expected one of: %s", strings.Join(verbs, ", "))
	}
	for _, v := range verbs {
		if args[0] == v {
			return v, args[1:], nil
		}
	}
	return "", nil, usagef("unknown subcommand %q; expected one of: %s", args[0], strings.Join(verbs, ", "))
}

// userJSON is how the CLI shows a user: never the password hash.
type userJSON struct {
	ID            string    `json:"id"`
	Email         string    `json:"email"`
	EmailVerified bool      `json:"email_verified"`
	Name          string    `json:"name,omitempty"`
	Disabled      bool      `json:"disabled"`
	CreatedAt     time.Time `json:"created_at"`
}

func toUserJSON(u storage.User) userJSON {
	return userJSON{ID: u.ID, Email: u.Email, EmailVerified: u.EmailVerified, Name: u.Name, Disabled: u.Disabled, CreatedAt: u.CreatedAt}
}

func runUsers(ctx context.Context, e env) (err error) {
	sub, rest, err := subcommand(e.args, "create", "list", "disable", "enable", "set-password", "unlock")
	if err != nil {
		return err
	}
	fs := newFlagSet("idp users "+sub, e.stderr)
	var sf storeFlags
	sf.register(fs)
	var email, name string
	var passwordStdin, emailVerified, asJSON bool
	switch sub {
	case "create":
		fs.StringVar(&email, "email", "", "email address (required); people sign in with it")
		fs.StringVar(&name, "name", "", "display name")
		fs.BoolVar(&emailVerified, "email-verified", false, "record the email address as verified (you checked it belongs to the person)")
		fs.BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of standard input (required)")
	case "set-password":
		fs.BoolVar(&passwordStdin, "password-stdin", false, "read the new password from the first line of standard input (required)")
	case "list":
		fs.BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	}
	if err := parseFlags(fs, rest, e.getenv); err != nil {
		return flagError(err)
	}
	// Check the command line before touching the database.
	var id string
	switch sub {
	case "create":
		if email == "" {
			return usagef("--email is required")
		}
	case "disable", "enable", "set-password":
		if fs.NArg() != 1 || fs.Arg(0) == "" {
			return usagef("usage: idp users %s USER_ID", sub)
		}
		id = fs.Arg(0)
	case "unlock":
		// By email, not id: sign-in failures are counted per email typed,
		// whether or not it has an account.
		if fs.NArg() != 1 || strings.TrimSpace(fs.Arg(0)) == "" {
			return usagef("usage: idp users unlock EMAIL")
		}
		email = fs.Arg(0)
	default:
		if fs.NArg() != 0 {
			return usagef("unexpected argument %q", fs.Arg(0))
		}
	}
	if (sub == "create" || sub == "set-password") && !passwordStdin {
		// Passwords on the command line end up in shell history and ps.
		return usagef("--password-stdin is required: pipe the password in, e.g. printf '%%s' \"$PASSWORD\" | idp users %s ...", sub)
	}
	db, err := sf.openMigrated(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	rec := newAdminRecorder(ctx, e, db)
	defer func() { err = errors.Join(err, closeAdminRecorder(ctx, rec)) }()
	svc := users.New(db, users.Options{})
	switch sub {
	case "unlock":
		if err := throttle.Unlock(ctx, db, email); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "cleared the failed sign-ins of %s; failures from client addresses still count against those addresses\n",
			strings.ToLower(strings.TrimSpace(email)))
		return nil
	case "create":
		password, err := readSecretLine(e.stdin)
		if err != nil {
			return err
		}
		u, err := svc.Create(ctx, users.CreateUser{Email: email, Name: name, Password: password, EmailVerified: emailVerified})
		var ve *users.ValidationError
		switch {
		case errors.As(err, &ve):
			return usagef("--%s: %s", ve.Field, ve.Message)
		case errors.Is(err, storage.ErrAlreadyExists):
			return fmt.Errorf("a user with email %s already exists", strings.ToLower(strings.TrimSpace(email)))
		case err != nil:
			return err
		}
		rec.Record(ctx, storage.AuditEvent{Type: audit.UserCreated, Actor: audit.ActorAdmin, UserID: u.ID,
			Details: map[string]any{"email_verified": u.EmailVerified}})
		return printJSON(e.stdout, toUserJSON(u))
	case "disable":
		live := liveSessions(ctx, db, id)
		ended, err := svc.Disable(ctx, id)
		if err != nil {
			return userError(id, err)
		}
		rec.Record(ctx, storage.AuditEvent{Type: audit.UserDisabled, Actor: audit.ActorAdmin, UserID: id, Details: endedDetails(ended)})
		recordSessionsEnded(ctx, rec, id, live, "user_disabled")
		fmt.Fprintf(e.stdout, "disabled user %s: %s\n", id, describeEnded(ended))
		return nil
	case "enable":
		if err := svc.Enable(ctx, id); err != nil {
			return userError(id, err)
		}
		rec.Record(ctx, storage.AuditEvent{Type: audit.UserEnabled, Actor: audit.ActorAdmin, UserID: id})
		fmt.Fprintf(e.stdout, "enabled user %s; sessions and grants ended earlier stay ended\n", id)
		return nil
	case "set-password":
		password, err := readSecretLine(e.stdin)
		if err != nil {
			return err
		}
		live := liveSessions(ctx, db, id)
		ended, err := svc.SetPassword(ctx, id, password)
		var ve *users.ValidationError
		if errors.As(err, &ve) {
			return usagef("--%s: %s", ve.Field, ve.Message)
		}
		if err != nil {
			return userError(id, err)
		}
		// Never the password or its hash: only that it changed.
		rec.Record(ctx, storage.AuditEvent{Type: audit.UserPasswordSet, Actor: audit.ActorAdmin, UserID: id, Details: endedDetails(ended)})
		recordSessionsEnded(ctx, rec, id, live, "password_set")
		fmt.Fprintf(e.stdout, "set the password of user %s: %s\n", id, describeEnded(ended))
		return nil
	default:
		list, err := svc.List(ctx)
		if err != nil {
			return err
		}
		if asJSON {
			out := make([]userJSON, 0, len(list))
			for _, u := range list {
				out = append(out, toUserJSON(u))
			}
			return printJSON(e.stdout, out)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tEMAIL\tNAME\tSTATUS\tCREATED")
		for _, u := range list {
			status := "active"
			if u.Disabled {
				status = "disabled"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.ID, u.Email, u.Name, status, u.CreatedAt.Format(time.RFC3339))
		}
		return tw.Flush()
	}
}

// liveSessions are the user's sessions that a command is about to end, so
// that each gets its own audit event (and "idp audit list --session"
// tells how it ended). Best effort: the command itself does not depend
// on it, and a session that races in is still ended, only not listed.
func liveSessions(ctx context.Context, db storage.Store, userID string) []storage.Session {
	list, err := db.ListUserSessions(ctx, userID, time.Now())
	if err != nil {
		return nil
	}
	return list
}

// recordSessionsEnded records a forced logout of each session, by the
// admin, for reason.
func recordSessionsEnded(ctx context.Context, rec *audit.Recorder, userID string, sessions []storage.Session, reason string) {
	for _, s := range sessions {
		rec.Record(ctx, storage.AuditEvent{Type: audit.SessionRevoked, Actor: audit.ActorAdmin, SessionID: s.ID, UserID: userID,
			Details: map[string]any{"by": audit.ActorAdmin, "reason": reason}})
	}
}

// endedDetails is what disabling a user or setting a password ended, for
// the audit trail.
func endedDetails(e users.Ended) map[string]any {
	return map[string]any{"sessions_ended": e.Sessions, "grants_revoked": e.Grants}
}

// userError says "no user with id X" for an unknown id.
func userError(id string, err error) error {
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("no user with id %s", id)
	}
	return err
}

// describeEnded says what disabling a user or setting their password
// ended, and what it could not: JWT access tokens are checked by resource
// servers without asking Gatehouse.
func describeEnded(e users.Ended) string {
	return fmt.Sprintf("ended %s, revoked %s; JWT access tokens already issued stay valid until they expire "+
		"(at most the access token lifetime)", plural(e.Sessions, "session"), plural(e.Grants, "grant"))
}

func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// readSecretLine reads the first line of r, without its line ending.
func readSecretLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password from standard input: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", usagef("no password on standard input")
	}
	return line, nil
}

func runClients(ctx context.Context, e env) (err error) {
	sub, rest, err := subcommand(e.args, "create", "list", "delete")
	if err != nil {
		return err
	}
	fs := newFlagSet("idp clients "+sub, e.stderr)
	var sf storeFlags
	sf.register(fs)
	var file string
	var asJSON bool
	switch sub {
	case "create":
		fs.StringVar(&file, "file", "", "read RFC 7591 client metadata JSON from this file instead of standard input")
	case "list":
		fs.BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	}
	if err := parseFlags(fs, rest, e.getenv); err != nil {
		return flagError(err)
	}
	if sub == "delete" && fs.NArg() != 1 {
		return usagef("usage: idp clients delete CLIENT_ID")
	}
	// Parse the metadata before touching the database, so a typo costs
	// nothing.
	var md storage.ClientMetadata
	if sub == "create" {
		in := e.stdin
		if file != "" {
			f, err := os.Open(file)
			if err != nil {
				return usagef("--file: %v", err)
			}
			defer f.Close()
			in = f
		}
		if md, err = clients.ParseMetadata(in); err != nil {
			return err
		}
	}
	db, err := sf.openMigrated(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	rec := newAdminRecorder(ctx, e, db)
	defer func() { err = errors.Join(err, closeAdminRecorder(ctx, rec)) }()
	svc := clients.New(db, clients.Options{})
	switch sub {
	case "create":
		reg, err := svc.Register(ctx, md)
		if err != nil {
			return err
		}
		rec.Record(ctx, storage.AuditEvent{Type: audit.ClientCreated, Actor: audit.ActorAdmin, ClientID: reg.Client.ID,
			Details: map[string]any{"client_name": reg.Client.Metadata.ClientName, "auth_method": reg.Client.Metadata.TokenEndpointAuthMethod}})
		return printJSON(e.stdout, reg)
	case "delete":
		id := fs.Arg(0)
		if err := svc.Delete(ctx, id); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("no client with id %s", id)
			}
			return err
		}
		rec.Record(ctx, storage.AuditEvent{Type: audit.ClientDeleted, Actor: audit.ActorAdmin, ClientID: id})
		fmt.Fprintf(e.stdout, "deleted client %s\n", id)
		return nil
	default:
		list, err := svc.List(ctx)
		if err != nil {
			return err
		}
		if asJSON {
			out := make([]clientJSON, 0, len(list))
			for _, c := range list {
				out = append(out, clientJSON{ClientID: c.ID, IssuedAt: c.CreatedAt.Unix(), ClientMetadata: c.Metadata})
			}
			return printJSON(e.stdout, out)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CLIENT ID\tNAME\tAUTH METHOD\tREDIRECT URIS\tCREATED")
		for _, c := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.ID, c.Metadata.ClientName, c.Metadata.TokenEndpointAuthMethod,
				strings.Join(c.Metadata.RedirectURIs, " "), c.CreatedAt.Format(time.RFC3339))
		}
		return tw.Flush()
	}
}

// clientJSON is a client as listed: its metadata, never its secret hash.
type clientJSON struct {
	ClientID string `json:"client_id"`
	IssuedAt int64  `json:"client_id_issued_at"`
	storage.ClientMetadata
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
