package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/audit"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/internal/useragent"
)

// sessionJSON is how the CLI shows a login session: never its secret hash.
type sessionJSON struct {
	SID        string    `json:"sid"`
	UserID     string    `json:"user_id"`
	Email      string    `json:"email,omitempty"`
	Browser    string    `json:"browser,omitempty"`
	OS         string    `json:"os,omitempty"`
	UserAgent  string    `json:"user_agent,omitempty"`
	IP         string    `json:"ip,omitempty"`
	AuthTime   time.Time `json:"auth_time"`
	AMR        []string  `json:"amr"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// activityJSON is idp sessions stats --json.
type activityJSON struct {
	Minutes   int                  `json:"minutes"`
	Sessions  int64                `json:"sessions"`
	Users     int64                `json:"users"`
	PerClient []clientActivityJSON `json:"per_client"`
}

type clientActivityJSON struct {
	ClientID   string `json:"client_id"`
	ClientName string `json:"client_name,omitempty"`
	Sessions   int64  `json:"sessions"`
	Users      int64  `json:"users"`
}

func runSessions(ctx context.Context, e env) (err error) {
	sub, rest, err := subcommand(e.args, "list", "revoke", "stats")
	if err != nil {
		return err
	}
	fs := newFlagSet("idp sessions "+sub, e.stderr)
	var sf storeFlags
	sf.register(fs)
	var (
		userID, sid string
		asJSON      bool
		idle        time.Duration
		minutes     int
	)
	switch sub {
	case "list":
		fs.StringVar(&userID, "user", "", "only this user's sessions (user id)")
		fs.BoolVar(&asJSON, "json", false, "print JSON instead of a table")
		// Same name (and IDP_ variable) as the server's setting, so a
		// shared environment gives both the same idea of "live".
		fs.DurationVar(&idle, "session-idle-timeout", 24*time.Hour, "sessions not used for this long have timed out and are not listed (as the server's setting)")
	case "revoke":
		fs.StringVar(&sid, "session", "", "end this session (its sid)")
		fs.StringVar(&userID, "user", "", "end every session of this user (user id)")
	case "stats":
		fs.IntVar(&minutes, "minutes", 15, "count sessions active (last seen) in this many minutes")
		fs.BoolVar(&asJSON, "json", false, "print JSON instead of text")
	}
	if err := parseFlags(fs, rest, e.getenv); err != nil {
		return flagError(err)
	}
	if fs.NArg() != 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	switch sub {
	case "list":
		if idle <= 0 {
			return usagef("--session-idle-timeout must be positive")
		}
	case "revoke":
		if (sid == "") == (userID == "") {
			return usagef("give exactly one of --session SID or --user USER_ID")
		}
	case "stats":
		if minutes <= 0 || minutes > 7*24*60 {
			return usagef("--minutes must be between 1 and %d", 7*24*60)
		}
	}
	db, err := sf.openMigrated(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	now := time.Now()
	switch sub {
	case "list":
		return listSessions(ctx, e, db, userID, now, now.Add(-idle), asJSON)
	case "revoke":
		rec := newAdminRecorder(ctx, e, db)
		defer func() { err = errors.Join(err, closeAdminRecorder(ctx, rec)) }()
		return revokeSessions(ctx, e, db, rec, sid, userID, now)
	default:
		return sessionStats(ctx, e, db, minutes, now, asJSON)
	}
}

func listSessions(ctx context.Context, e env, db storage.Store, userID string, now, idleCutoff time.Time, asJSON bool) error {
	var (
		list []storage.Session
		err  error
	)
	if userID != "" {
		if _, err := db.GetUser(ctx, userID); err != nil {
			return userError(userID, err)
		}
		list, err = db.ListUserSessions(ctx, userID, now)
	} else {
		list, err = db.ListLiveSessions(ctx, now)
	}
	if err != nil {
		return err
	}
	emails, err := userEmails(ctx, db)
	if err != nil {
		return err
	}
	out := make([]sessionJSON, 0, len(list))
	for _, s := range list {
		if s.LastSeenAt.Before(idleCutoff) {
			continue // timed out: the server no longer accepts it
		}
		ua := useragent.Parse(s.UserAgent)
		out = append(out, sessionJSON{
			SID: s.ID, UserID: s.UserID, Email: emails[s.UserID], Browser: ua.BrowserLabel(), OS: ua.OS,
			UserAgent: s.UserAgent, IP: s.IP, AuthTime: s.AuthTime, AMR: s.AMR,
			CreatedAt: s.CreatedAt, LastSeenAt: s.LastSeenAt, ExpiresAt: s.ExpiresAt,
		})
	}
	if asJSON {
		return printJSON(e.stdout, out)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SID\tUSER\tEMAIL\tDEVICE\tIP\tSTARTED\tLAST SEEN")
	for _, s := range out {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.SID, s.UserID, s.Email, useragent.Parse(s.UserAgent), s.IP,
			s.CreatedAt.Format(time.RFC3339), s.LastSeenAt.Format(time.RFC3339))
	}
	return tw.Flush()
}

func userEmails(ctx context.Context, db storage.Store) (map[string]string, error) {
	users, err := db.ListUsers(ctx)
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(users))
	for _, u := range users {
		m[u.ID] = u.Email
	}
	return m, nil
}

// revokeSessions is the forced logout: through EndSession and
// EndUserSessions, so everything that must follow the end of a session
// (its bound grants and refresh tokens revoked, apps told) follows.
func revokeSessions(ctx context.Context, e env, db storage.Store, rec *audit.Recorder, sid, userID string, now time.Time) error {
	if sid != "" {
		s, err := db.GetSession(ctx, sid)
		if errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("no session with id %s", sid)
		}
		if err != nil {
			return err
		}
		if err := db.EndSession(ctx, sid, now); err != nil {
			return err
		}
		if s.EndedAt == nil {
			rec.Record(ctx, storage.AuditEvent{Type: audit.SessionRevoked, Actor: audit.ActorAdmin, Time: now,
				SessionID: sid, UserID: s.UserID, Details: map[string]any{"by": audit.ActorAdmin}})
		}
		what := "ended session " + sid
		if s.EndedAt != nil {
			what = "session " + sid + " had already ended at " + s.EndedAt.Format(time.RFC3339) + "; revoked any grants made in it since"
		}
		fmt.Fprintf(e.stdout, "%s (user %s): its refresh tokens and session-bound grants are revoked%s", what, s.UserID, jwtCaveatCLI)
		return nil
	}
	if _, err := db.GetUser(ctx, userID); err != nil {
		return userError(userID, err)
	}
	// The sessions about to end, each to get its own audit event, so that
	// "idp audit list --session SID" tells how every one of them ended.
	live, err := db.ListUserSessions(ctx, userID, now)
	if err != nil {
		return err
	}
	n, err := db.EndUserSessions(ctx, userID, now)
	if err != nil {
		return err
	}
	for _, s := range live {
		rec.Record(ctx, storage.AuditEvent{Type: audit.SessionRevoked, Actor: audit.ActorAdmin, Time: now,
			SessionID: s.ID, UserID: userID, Details: map[string]any{"by": audit.ActorAdmin}})
	}
	fmt.Fprintf(e.stdout, "ended %s of user %s: their refresh tokens and session-bound grants are revoked%s",
		plural(n, "session"), userID, jwtCaveatCLI)
	return nil
}

// jwtCaveatCLI says what a forced logout cannot reach.
const jwtCaveatCLI = "; JWT access tokens already issued stay valid until they expire (at most the access token lifetime)\n"

func sessionStats(ctx context.Context, e env, db storage.Store, minutes int, now time.Time, asJSON bool) error {
	a, err := db.SessionActivity(ctx, now.Add(-time.Duration(minutes)*time.Minute), now)
	if err != nil {
		return err
	}
	out := activityJSON{Minutes: minutes, Sessions: a.Sessions, Users: a.Users, PerClient: []clientActivityJSON{}}
	for _, c := range a.PerClient {
		cj := clientActivityJSON{ClientID: c.ClientID, Sessions: c.Sessions, Users: c.Users}
		if cl, err := db.GetClient(ctx, c.ClientID); err == nil {
			cj.ClientName = cl.Metadata.ClientName
		}
		out.PerClient = append(out.PerClient, cj)
	}
	if asJSON {
		return printJSON(e.stdout, out)
	}
	fmt.Fprintf(e.stdout, "active in the last %d minutes: %s, %s\n", minutes, plural(a.Sessions, "session"), plural(a.Users, "user"))
	if len(out.PerClient) == 0 {
		return nil
	}
	fmt.Fprintln(e.stdout)
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT ID\tNAME\tSESSIONS\tUSERS")
	for _, c := range out.PerClient {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", c.ClientID, c.ClientName, c.Sessions, c.Users)
	}
	return tw.Flush()
}
