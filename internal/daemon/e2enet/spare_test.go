package e2enet

import (
	"fmt"
	"io"
	"net"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestSpareSession: a fetch is given the session_read process the
// parent started before it came (the spare, named apart until then),
// which then names itself session_read and serves that client alone;
// the next spare is started meanwhile. Killing a client's session ends
// that client only: the next fetch is served, by the next spare.
func TestSpareSession(t *testing.T) {
	s := start(t, options{})
	// waitRole returns the pids of role once there are n of them.
	waitRole := func(role string, n int) []int {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			p := children(t, s.daemon.Process.Pid)[role]
			if len(p) == n {
				return p
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d %s processes; want %d: %v", len(p), role, n, children(t, s.daemon.Process.Pid))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// The first fetch's session is started for it; the spare after it.
	s.mustGit(s.dir, nil, "ls-remote", s.gitURL("test"))
	spare := waitRole(spareRole, 1)[0]

	// A client that sends its request and holds: its session is the
	// spare, renamed.
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.gitPort), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := "git-upload-pack /test\x00host=127.0.0.1\x00"
	fmt.Fprintf(c, "%04x%s", len(req)+4, req)
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	var b [4]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		t.Fatalf("the held client's advertisement: %v", err)
	}
	if got := waitRole("session_read", 1); got[0] != spare {
		t.Errorf("the held client's session is pid %d; want the spare, %d", got[0], spare)
	}
	next := waitRole(spareRole, 1)[0]
	if next == spare {
		t.Fatalf("the spare taken is still the spare")
	}

	// The held client's session ends, killed: its client only.
	if err := syscall.Kill(spare, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Errorf("the killed session's client: %v; want the end of its stream", err)
	}
	clone := filepath.Join(s.clientDir("spare"), "c.git")
	s.mustGit(s.dir, nil, "clone", "-q", "--bare", s.gitURL("test"), clone)
	fsck(t, clone)
	// The clone took the spare, which served it and exited with it.
	waitRole("session_read", 0)
	if got := waitRole(spareRole, 1)[0]; got == next {
		t.Errorf("the spare is pid %d, still; want the clone to have taken it", got)
	}
}
