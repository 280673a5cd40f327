package upload

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"

	"gotd/internal/git/repo"
	"gotd/internal/protocol/wire"
)

// TestMain doubles as the upload-pack program that the tests' git
// clients run: with GOTD_TEST_UPLOAD set, the test binary serves the
// repository named by its last argument on standard input and output,
// in the protocol version GIT_PROTOCOL asks for. The variable's value
// lists options: "filter", "reachable", "any", "refinwant",
// "sidebandall".
func TestMain(m *testing.M) {
	if mode, ok := os.LookupEnv("GOTD_TEST_UPLOAD"); ok {
		os.Exit(serveForGit(mode))
	}
	os.Exit(m.Run())
}

func serveForGit(mode string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r, err := repo.Open(os.Args[len(os.Args)-1], repo.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "test upload-pack:", err)
		return 1
	}
	defer r.Close()
	opts := Options{Repo: r, Version: wire.ParseVersion(os.Getenv("GIT_PROTOCOL")), Log: log}
	for _, o := range strings.Split(mode, ",") {
		switch o {
		case "filter":
			opts.Filter = true
		case "reachable":
			opts.Wants = WantReachable
		case "any":
			opts.Wants = WantAny
		case "refinwant":
			opts.RefInWant = true
		case "sidebandall":
			opts.SidebandAll = true
		}
	}
	if _, err := Serve(context.Background(), os.Stdin, os.Stdout, opts); err != nil {
		log.Error("test upload-pack", "err", err)
		return 1
	}
	return 0
}

// uploadPack is the --upload-pack value that makes git run this test
// binary as the server, with the given options.
func uploadPack(t testing.TB, mode string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("GOTD_TEST_UPLOAD=%s %s", mode, exe)
}
