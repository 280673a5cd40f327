package receive

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotd/internal/git/repo"
	"gotd/internal/protocol/wire"
)

// TestMain doubles as the receive-pack program that the tests' git
// clients run: with GOTD_TEST_RECEIVE set, the test binary serves the
// repository named by its last argument on standard input and output.
// If GOTD_TEST_RESULT names a file, the push options and the commands'
// results are appended to it.
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
	res, err := Serve(context.Background(), os.Stdin, os.Stdout, Options{Repo: r, Version: wire.ParseVersion(os.Getenv("GIT_PROTOCOL")), Log: log})
	if path := os.Getenv("GOTD_TEST_RESULT"); path != "" && res != nil {
		var b strings.Builder
		for _, o := range res.PushOptions {
			fmt.Fprintf(&b, "option %s\n", o)
		}
		for _, c := range res.Commands {
			fmt.Fprintf(&b, "command %s %q\n", c.Name, c.Status)
		}
		f, ferr := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if ferr == nil {
			f.WriteString(b.String())
			f.Close()
		}
	}
	if err != nil {
		return 1
	}
	return 0
}

// receivePack is the --receive-pack value that makes git run this test
// binary as the server; results go to the returned file.
func receivePack(t testing.TB) (string, string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	result := filepath.Join(t.TempDir(), "result")
	return fmt.Sprintf("GOTD_TEST_RECEIVE=1 GOTD_TEST_RESULT=%s %s", result, exe), result
}
