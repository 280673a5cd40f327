package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"gotd/internal/daemon/ipc"
)

// TestWebRole runs the web role as nobody, as the parent would, with
// one of two repositories: it confines itself, answers page requests
// passed as streams, lists and shows only the repository it was given
// (the other is not found), and ends when its channel closes.
func TestWebRole(t *testing.T) {
	dir, bin := roleDir(t)
	for _, name := range []string{"shown", "other"} {
		work := filepath.Join(dir, name+"-work")
		for _, args := range [][]string{{"init", "-q", "-b", "main", work}, {"-C", work, "commit", "-q", "--allow-empty", "-m", "commit of " + name},
			{"clone", "-q", "--bare", work, filepath.Join(dir, name+".git")}} {
			cmd := exec.Command("git", args...)
			cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=a", "GIT_AUTHOR_EMAIL=a@example.com", "GIT_COMMITTER_NAME=a", "GIT_COMMITTER_EMAIL=a@example.com")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("git %v: %v\n%s", args, err, out)
			}
		}
	}
	cmd, parentEnd, out, done := startRole(t, bin, "web", 40*time.Second)
	if err := ipc.Send(parentEnd, &ipc.WebStart{Timeout: 10, Repos: 1, Transports: []ipc.WebTransport{{Scheme: "git", Port: 9418}}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := ipc.Send(parentEnd, &ipc.WebRepo{Name: "shown", Path: filepath.Join(dir, "shown.git")}, nil); err != nil {
		t.Fatal(err)
	}
	page := func(path string) (int, string) {
		t.Helper()
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		theirs := os.NewFile(uintptr(fds[1]), "theirs")
		err = ipc.Send(parentEnd, &ipc.WebRequest{Client: 1}, theirs)
		theirs.Close()
		if err != nil {
			t.Fatal(err)
		}
		f := os.NewFile(uintptr(fds[0]), "mine")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		req, _ := http.NewRequest("GET", "http://127.0.0.1"+path, nil)
		req.Close = true
		if err := req.Write(c); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(bufio.NewReader(c), req)
		if err != nil {
			t.Fatalf("GET %s: %v\n%s", path, err, out.String())
		}
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}
	code, body := page("/")
	if code != 200 || !strings.Contains(body, `href="/shown/"`) || strings.Contains(body, "other") {
		t.Errorf("index: status %d:\n%s", code, body)
	}
	if !confined(cmd.Process.Pid) {
		t.Errorf("the web process is not under its seccomp filter")
	}
	if code, body := page("/shown/"); code != 200 || !strings.Contains(body, "commit of shown") || !strings.Contains(body, "git clone git://127.0.0.1/shown") {
		t.Errorf("summary: status %d:\n%s", code, body)
	}
	if code, _ := page("/other/"); code != 404 {
		t.Errorf("the repository not given: status %d, want 404", code)
	}
	parentEnd.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit: %v\n%s", err, out.String())
		}
	case <-time.After(20 * time.Second):
		t.Errorf("the web process outlived its channel")
	}
}
