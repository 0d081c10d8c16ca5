package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/audit"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// defaultAuditLimit is how many events "idp audit list" shows unless told.
const defaultAuditLimit = 100

// runAudit is "idp audit list": the audit trail, filtered, oldest first.
func runAudit(ctx context.Context, e env) error {
	sub, rest, err := subcommand(e.args, "list")
	if err != nil {
		return err
	}
	fs := newFlagSet("idp audit "+sub, e.stderr)
	var sf storeFlags
	sf.register(fs)
	var f storage.AuditFilter
	var types, since, until string
	var asJSON bool
	fs.StringVar(&f.UserID, "user", "", "only events about this user id")
	fs.StringVar(&f.ClientID, "client", "", "only events about this client id")
	fs.StringVar(&f.SessionID, "session", "", "only events of this login session (sid): its sign-in, consents, every token issued and refreshed under it, its end")
	fs.StringVar(&types, "type", "", "only these event types, comma-separated (e.g. login.failed,refresh.reuse_detected)")
	fs.StringVar(&since, "since", "", "only events at or after this time: RFC 3339 (2026-01-02T15:04:05Z) or a duration ago (90m, 24h, 7d)")
	fs.StringVar(&until, "until", "", "only events before this time: RFC 3339 or a duration ago")
	fs.Int64Var(&f.AfterID, "after", 0, "only events with an id above this one (to page on from the last id shown)")
	fs.IntVar(&f.Limit, "limit", defaultAuditLimit, "show at most this many events (0: all)")
	fs.BoolVar(&asJSON, "json", false, "print JSON Lines (one event per line) instead of a table")
	if err := parseFlags(fs, rest, e.getenv); err != nil {
		return flagError(err)
	}
	if fs.NArg() != 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	now := time.Now()
	var problems []string
	if f.Types = splitList(types); len(f.Types) > 0 {
		known := audit.Types()
		for _, t := range f.Types {
			if !slices.Contains(known, t) {
				problems = append(problems, fmt.Sprintf("--type: unknown event type %q (known: %s)", t, strings.Join(known, ", ")))
			}
		}
	}
	if f.Since, err = parseWhen(since, now); err != nil {
		problems = append(problems, "--since: "+err.Error())
	}
	if f.Until, err = parseWhen(until, now); err != nil {
		problems = append(problems, "--until: "+err.Error())
	}
	if f.Limit < 0 {
		problems = append(problems, "--limit: must not be negative")
	}
	if f.AfterID < 0 {
		problems = append(problems, "--after: must not be negative")
	}
	if len(problems) > 0 {
		return usagef("%s", strings.Join(problems, "\n  "))
	}

	db, err := sf.openMigrated(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	events, err := db.ListAuditEvents(ctx, f)
	if err != nil {
		return err
	}
	if asJSON {
		err = printEventsJSON(e.stdout, events)
	} else {
		err = printEventsTable(e.stdout, events)
	}
	if err != nil {
		return err
	}
	if f.Limit > 0 && len(events) == f.Limit {
		// The table is oldest first: say how to see the rest.
		fmt.Fprintf(e.stderr, "showing the first %d matching events; more with --after %d (or --limit 0)\n", f.Limit, events[len(events)-1].ID)
	}
	return nil
}

// parseWhen reads a point in time: RFC 3339, or a duration before now
// (Go syntax, plus whole days as "7d"). Empty is the zero time (no bound).
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return time.Time{}, fmt.Errorf("%q is neither RFC 3339 nor a duration like 24h or 7d", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return time.Time{}, fmt.Errorf("%q is neither RFC 3339 nor a duration like 24h or 7d", s)
		}
	}
	if d <= 0 {
		return time.Time{}, fmt.Errorf("%q: the duration ago must be positive", s)
	}
	return now.Add(-d), nil
}

// eventJSON is an event as "idp audit list --json" prints it.
type eventJSON struct {
	ID        int64          `json:"id"`
	Time      time.Time      `json:"time"`
	Type      string         `json:"type"`
	Actor     string         `json:"actor,omitempty"`
	SessionID string         `json:"session_id,omitempty"`
	UserID    string         `json:"user_id,omitempty"`
	ClientID  string         `json:"client_id,omitempty"`
	IP        string         `json:"ip,omitempty"`
	UserAgent string         `json:"user_agent,omitempty"`
	Details   map[string]any `json:"details,omitempty"`
}

func printEventsJSON(w io.Writer, events []storage.AuditEvent) error {
	enc := json.NewEncoder(w) // one line per event: JSON Lines
	for _, ev := range events {
		if err := enc.Encode(eventJSON(ev)); err != nil {
			return err
		}
	}
	return nil
}

func printEventsTable(w io.Writer, events []storage.AuditEvent) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME\tTYPE\tACTOR\tUSER\tCLIENT\tSESSION\tIP\tDETAILS")
	for _, ev := range events {
		details := ""
		if len(ev.Details) > 0 {
			b, err := json.Marshal(ev.Details) // keys sorted
			if err != nil {
				return err
			}
			details = string(b)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ev.ID, ev.Time.Format(time.RFC3339), ev.Type,
			dash(ev.Actor), dash(ev.UserID), dash(ev.ClientID), dash(ev.SessionID), dash(ev.IP), details)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
