package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// envName is the environment variable for a flag: IDP_ + upper case, dashes
// to underscores (--database-url → IDP_DATABASE_URL).
func envName(flagName string) string {
	return "IDP_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// settingName names a setting the way an operator can fix it.
func settingName(flagName string) string {
	return "--" + flagName + " / " + envName(flagName)
}

// newFlagSet returns a flag set that reports errors instead of exiting.
// Its help names the environment variable of every flag.
func newFlagSet(name string, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage of %s:\n", name)
		fs.PrintDefaults()
		fmt.Fprintln(out, "\nEvery flag can also be set with an environment variable named IDP_ and the flag in\nupper case, dashes as underscores: --log-level is IDP_LOG_LEVEL.")
	}
	return fs
}

// flagError turns a flag parsing error into a usage error, except a
// request for help, which is not an error.
func flagError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return usageError{err.Error()}
}

// parseFlags parses args, then fills every flag not given on the command
// line from its IDP_ environment variable. Command line wins over
// environment, environment over defaults. A bad environment value is an
// error naming the variable.
//
// Flags may come before or after positional arguments
// ("idp clients delete ID --data-dir D"); the positional arguments are
// left in fs.Args().
func parseFlags(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if rest[0] == "--" {
			positional = append(positional, rest[1:]...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	// Parse leaves fs.Args() as what it did not consume; put the
	// positional arguments there.
	if err := fs.Parse(append([]string{"--"}, positional...)); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var bad envErrors
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		v := getenv(envName(f.Name))
		if v == "" {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			bad = append(bad, fmt.Sprintf("%s: invalid value %q: %v", envName(f.Name), v, err))
		}
	})
	if len(bad) > 0 {
		return bad
	}
	return nil
}

// envErrors are environment variables whose values do not parse. The
// server commands report them together with every other configuration
// problem.
type envErrors []string

func (e envErrors) Error() string { return strings.Join(e, "; ") }

// splitEnvErrors separates environment problems, which the caller lists
// with the rest, from command-line errors, which stop at once.
func splitEnvErrors(err error) ([]string, error) {
	var env envErrors
	if errors.As(err, &env) {
		return env, nil
	}
	return nil, err
}
