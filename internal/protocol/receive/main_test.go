package receive

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"gotd/internal/git/oid"
	"gotd/internal/git/refs"
	"gotd/internal/git/repo"
	"gotd/internal/git/walk"
	"gotd/internal/protocol/wire"
)

// TestMain doubles as the receive-pack program that the tests' git
// clients run: with GOTD_TEST_RECEIVE set, the test binary serves the
// repository named by its last argument on standard input and output,
// in the protocol version GIT_PROTOCOL asks for. Other variables steer
// it:
//
//	GOTD_TEST_RESULT  file to append what Serve returned to (see readResults)
//	GOTD_TEST_REFUSE  Options.Check refuses updates of this reference
//	GOTD_TEST_MOVE    "<ref> <id>": set ref to id once the advertisement
//	                  is sent, as a concurrent push would
//	GOTD_TEST_REBASE  Options.Rebase names the references with this prefix
//	                  (at most 5 commits)
func TestMain(m *testing.M) {
	if _, ok := os.LookupEnv("GOTD_TEST_RECEIVE"); ok {
		os.Exit(serveForGit())
	}
	os.Exit(m.Run())
}

func serveForGit() int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	r, err := repo.Open(os.Args[len(os.Args)-1], repo.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "test receive-pack:", err)
		return 1
	}
	defer r.Close()
	opts := Options{Repo: r, Version: wire.ParseVersion(os.Getenv("GIT_PROTOCOL")), Log: log}
	if who := os.Getenv("GOTD_TEST_PUSHER"); who != "" {
		opts.Reflog = refs.Who{Name: who, Message: "push via test"}
	}
	if ref := os.Getenv("GOTD_TEST_REFUSE"); ref != "" {
		opts.Check = func(_ context.Context, c *Command, _ walk.Store) error {
			if c.Name == ref {
				return wire.Errorf("refused by test")
			}
			return nil
		}
	}
	if ns := os.Getenv("GOTD_TEST_REBASE"); ns != "" {
		opts.Rebase = func(name string) bool { return strings.HasPrefix(name, ns) }
		opts.MaxRebase = 5
	}
	var in io.Reader = os.Stdin
	if mv := os.Getenv("GOTD_TEST_MOVE"); mv != "" {
		name, hex, _ := strings.Cut(mv, " ")
		in = &beforeRead{r: os.Stdin, fn: func() {
			id, err := oid.ParseHex(r.Format, hex)
			if err == nil {
				err = r.Refs.Update([]refs.Update{{Name: name, New: id}})
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "test receive-pack: move:", err)
			}
		}}
	}
	res, err := Serve(context.Background(), in, os.Stdout, opts)
	if path := os.Getenv("GOTD_TEST_RESULT"); path != "" {
		writeResult(path, res, err)
	}
	if err != nil {
		return 1
	}
	return 0
}

// beforeRead calls fn before the first read: after the advertisement,
// before the client's commands.
type beforeRead struct {
	r    io.Reader
	once sync.Once
	fn   func()
}

func (b *beforeRead) Read(p []byte) (int, error) {
	b.once.Do(b.fn)
	return b.r.Read(p)
}

// result is what one served push recorded.
type result struct {
	Options  []string
	Commands map[string]string // name → status ("" for ok)
	Order    []string          // command names in request order
	Pack     bool
	Err      string
	MaxRSSKB int64
}

func writeResult(path string, res *Result, err error) {
	var b strings.Builder
	b.WriteString("push\n")
	for _, o := range res.PushOptions {
		fmt.Fprintf(&b, "option %q\n", o)
	}
	for _, c := range res.Commands {
		fmt.Fprintf(&b, "command %s %q\n", c.Name, c.Status)
	}
	if res.Pack != "" {
		b.WriteString("pack\n")
	}
	if err != nil {
		fmt.Fprintf(&b, "error %q\n", err.Error())
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		fmt.Fprintf(&b, "maxrss %d\n", ru.Maxrss) // KiB on Linux
	}
	f, ferr := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if ferr == nil {
		f.WriteString(b.String())
		f.Close()
	}
}

// readResults returns the pushes recorded in path, oldest first, and
// empties the file.
func readResults(t *testing.T, path string) []*result {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(path)
	defer f.Close()
	var out []*result
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		kind, rest, _ := strings.Cut(sc.Text(), " ")
		if kind == "push" {
			out = append(out, &result{Commands: map[string]string{}})
			continue
		}
		r := out[len(out)-1]
		switch kind {
		case "option":
			o, _ := strconv.Unquote(rest)
			r.Options = append(r.Options, o)
		case "command":
			name, q, _ := strings.Cut(rest, " ")
			st, _ := strconv.Unquote(q)
			r.Commands[name] = st
			r.Order = append(r.Order, name)
		case "pack":
			r.Pack = true
		case "error":
			r.Err, _ = strconv.Unquote(rest)
		case "maxrss":
			r.MaxRSSKB, _ = strconv.ParseInt(rest, 10, 64)
		}
	}
	return out
}

// receivePackCmd is the --receive-pack value that makes git run this
// test binary as the server, recording into result, with env (NAME=value
// pairs) set.
func receivePackCmd(t testing.TB, result string, env ...string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// A race-enabled binary sleeps a second at exit unless told not to.
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	cmd := "GORACE=" + shellQuote(gorace) + " GOTD_TEST_RECEIVE=1 GOTD_TEST_RESULT=" + shellQuote(result)
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		cmd += " " + k + "=" + shellQuote(v)
	}
	return cmd + " " + shellQuote(exe)
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// quarantines lists the quarantine directories left in a repository.
func quarantines(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "objects", "incoming-*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}
