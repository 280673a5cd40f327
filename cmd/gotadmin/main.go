// Command gotadmin administers Git repositories on disk for gotd: it
// creates them, reports on them, packs their objects and removes what
// is redundant or unreachable, indexes and lists pack files, dumps
// references into Git bundles and loads them, and lists and restores
// references from their reflogs. It follows the commands of OpenBSD's gotadmin(1); see
// gotadmin.1 beside this file.
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

	"gotd/internal/git/repo"
)

// command is one gotadmin sub-command.
type command struct {
	name  string
	usage string // arguments, shown after "gotadmin <name>"
	run   func(ctx context.Context, args []string, stdout io.Writer) error
}

var commands = []command{
	{"init", "[-A sha1|sha256] [-b branch] repository-path", cmdInit},
	{"info", "[-r repository-path]", cmdInfo},
	{"pack", "[-a] [-q] [-r repository-path]", cmdPack},
	{"cleanup", "[-anpq] [-r repository-path]", cmdCleanup},
	{"dump", "[-q] [-r repository-path] [-x reference] [reference ...]", cmdDump},
	{"load", "[-nq] [-l bundle-path] [-r repository-path] [reference ...]", cmdLoad},
	{"clone", "[-q] [-c ca-file] [-i identity-file] [-k known-hosts-file] URL repository-path", cmdClone},
	{"fetch", "[-q] [-c ca-file] [-i identity-file] [-k known-hosts-file] [-r repository-path] [URL]", cmdFetch},
	{"indexpack", "packfile-path", cmdIndexPack},
	{"listpack", "[-hs] packfile-path", cmdListPack},
	{"ref", "-l | -c @{N}|object-id [-r repository-path] name", cmdRef},
	{"fast-import", "[-fqv] [-r repository-path]", cmdFastImport},
	{"fast-export", "[-q] [-r repository-path] [reference ...]", cmdFastExport},
}

// errUsage asks main to print the command's usage and exit with status 1.
var errUsage = errors.New("usage")

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: gotadmin [-h] command [arg ...]")
	fmt.Fprintln(w, "commands:")
	for _, c := range commands {
		fmt.Fprintf(w, "\t%s %s\n", c.name, c.usage)
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 1
	}
	if args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		return 0
	}
	var cmd *command
	for i := range commands {
		if commands[i].name == args[0] {
			cmd = &commands[i]
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "gotadmin: unknown command: %s\n", args[0])
		usage(stderr)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := cmd.run(ctx, args[1:], stdout)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprintf(stdout, "usage: gotadmin %s %s\n", cmd.name, cmd.usage)
		return 0
	case errors.Is(err, errUsage):
		if err != errUsage {
			fmt.Fprintf(stderr, "gotadmin %s: %v\n", cmd.name, errors.Unwrap(err))
		}
		fmt.Fprintf(stderr, "usage: gotadmin %s %s\n", cmd.name, cmd.usage)
		return 1
	default:
		fmt.Fprintf(stderr, "gotadmin: %v\n", err)
		return 1
	}
}

// newFlags returns a flag set for a command; its parse errors are
// reported by run, with the usage.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("gotadmin "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// usageError wraps what was wrong with the arguments.
type usageError struct{ err error }

func (e usageError) Error() string   { return e.err.Error() }
func (e usageError) Unwrap() error   { return e.err }
func (e usageError) Is(t error) bool { return t == errUsage }

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	return nil
}

// openRepo opens the repository named by -r, or the one in the current
// directory as gotadmin(1) does when -r is not given.
func openRepo(path string) (*repo.Repo, error) {
	if path == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, err
		}
		path = wd
	}
	return repo.Open(path, repo.Options{})
}

// humanSize formats n bytes with a binary unit, as -h asks.
func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%c", float64(n)/float64(div), "KMGTPE"[exp])
}
