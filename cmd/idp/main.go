// Command idp is Gatehouse, an OAuth 2.0 and OpenID Connect identity
// provider. It is the only place that reads flags and environment
// variables; everything below it receives a filled-in configuration.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `idp is Gatehouse, an OAuth 2.0 / OpenID Connect identity provider.

Usage:
  idp dev      [--listen ADDR] [--issuer URL] [--data-dir DIR]   zero-setup server on SQLite
  idp serve    --database-url URL --issuer URL [--listen ADDR]   production server on Postgres
  idp migrate  up|status                                         apply or show migrations
  idp users    create|list|disable|enable|set-password|unlock    manage people who sign in
  idp clients  create|list|delete                                manage OAuth clients
  idp keys     list|rotate|revoke KID|rewrap                     manage signing keys
  idp sessions list|revoke|stats                                 see and end login sessions
  idp audit    list [--user ID] [--session SID] [--type T,...]   show the audit trail

Every flag also reads an IDP_ environment variable (--database-url: IDP_DATABASE_URL).
Run "idp COMMAND -h" for a command's flags.
`

// env is the process environment as main sees it; tests substitute their own.
type env struct {
	args   []string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := env{args: os.Args[1:], stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	os.Exit(run(ctx, e))
}

// run executes one command and returns the exit status: 0 success, 1
// failure, 2 usage error.
func run(ctx context.Context, e env) int {
	if len(e.args) == 0 {
		fmt.Fprint(e.stderr, usage)
		return 2
	}
	cmd, rest := e.args[0], e.args[1:]
	e.args = rest
	var err error
	switch cmd {
	case "dev":
		err = runDev(ctx, e)
	case "serve":
		err = runServe(ctx, e)
	case "migrate":
		err = runMigrate(ctx, e)
	case "users":
		err = runUsers(ctx, e)
	case "clients":
		err = runClients(ctx, e)
	case "keys":
		err = runKeys(ctx, e)
	case "sessions":
		err = runSessions(ctx, e)
	case "audit":
		err = runAudit(ctx, e)
	case "help", "-h", "--help":
		fmt.Fprint(e.stdout, usage)
		return 0
	default:
		fmt.Fprintf(e.stderr, "idp: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, new(usageError)):
		fmt.Fprintf(e.stderr, "idp %s: %v\n", cmd, err)
		return 2
	default:
		fmt.Fprintf(e.stderr, "idp %s: %v\n", cmd, err)
		return 1
	}
}

// usageError is a mistake in how a command was called.
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }
