package upload

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotd/internal/gittest"
	"gotd/internal/protocol/wire"
)

func TestLimits(t *testing.T) {
	src, r := openSource(t)
	rev := func(s string) string { return strings.TrimSpace(gittest.Git(t, src, "rev-parse", s)) }
	main, topic := rev("main"), rev("topic1")
	cases := []struct {
		name    string
		version int
		limits  wire.Limits
		in      string
		want    string
	}{
		{"wants v0", 0, wire.Limits{MaxWants: 1}, pkt("want "+main+" ofs-delta\n", "want "+topic+"\n", "0000"), "upload-pack: too many wants (limit 1)"},
		{"haves v0", 0, wire.Limits{MaxHaves: 1}, pkt("want "+main+" ofs-delta\n", "0000", "have "+topic+"\n", "have "+main+"\n", "0000"), "upload-pack: too many haves (limit 1)"},
		{"wants v2", 2, wire.Limits{MaxWants: 1}, pkt("command=fetch\n", "0001", "want "+main+"\n", "want "+topic+"\n", "done\n", "0000"), "upload-pack: too many wants (limit 1)"},
		{"haves v2", 2, wire.Limits{MaxHaves: 1}, pkt("command=fetch\n", "0001", "want "+main+"\n", "have "+topic+"\n", "have "+main+"\n", "0000"), "upload-pack: too many haves (limit 1)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out strings.Builder
			_, err := Serve(context.Background(), strings.NewReader(c.in), &out, Options{Repo: r, Version: c.version, Limits: c.limits})
			if wire.ClientMessage(err) != c.want || !strings.HasSuffix(out.String(), pkt("ERR "+c.want+"\n")) {
				t.Errorf("error %v, sent %q; want %q", err, out.String(), c.want)
			}
		})
	}
}

// TestRequestTimeout checks that a client that stops talking is dropped
// after the request timeout.
func TestRequestTimeout(t *testing.T) {
	_, r := openSource(t)
	server, client := net.Pipe()
	defer client.Close()
	go func() { // read the advertisement, then say nothing
		buf := make([]byte, 4096)
		for {
			if _, err := client.Read(buf); err != nil {
				return
			}
		}
	}()
	start := time.Now()
	_, err := Serve(context.Background(), server, server, Options{Repo: r, Limits: wire.Limits{RequestTimeout: 200 * time.Millisecond}})
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Serve returned %v; want a timeout", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("timed out after %v", d)
	}
}

// TestProgress checks that the client shows the server's progress
// unless it asked for quiet.
func TestProgress(t *testing.T) {
	src := source(t, "sha1")
	for _, v := range versions {
		t.Run("v"+v, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "c.git")
			cmd := []string{"-c", "protocol.version=" + v, "clone", "--bare", "--progress", "--upload-pack=" + uploadPack(t, ""), "file://" + src, dst}
			stderr := cloneStderr(t, cmd)
			if !strings.Contains(stderr, "remote: Enumerating objects: ") || !strings.Contains(stderr, "remote: Total ") {
				t.Errorf("no remote progress in:\n%s", stderr)
			}
			os.RemoveAll(dst)
			cmd[4] = "-q"
			if stderr := cloneStderr(t, cmd); strings.Contains(stderr, "remote:") {
				t.Errorf("progress despite -q:\n%s", stderr)
			}
		})
	}
}

// cloneStderr runs git and returns its standard error.
func cloneStderr(t *testing.T, args []string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Env = gittest.Env(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, stderr.String())
	}
	return stderr.String()
}
