package e2enet

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFrontendRestart kills each front-end's process: the parent starts
// it again, and the front-end serves as before.
func TestFrontendRestart(t *testing.T) {
	s := start(t, options{})
	for _, c := range []struct{ role, url string }{
		{"gitd", s.gitURL("test")},
		{"httpd", s.httpURL("", "test")},
		{"sshd", s.sshURL(roAccount, "test")},
	} {
		old := s.waitRole(c.role, 0)
		syscall.Kill(old, syscall.SIGKILL)
		s.waitRole(c.role, old)
		dir := s.clientDir("restart-" + c.role)
		s.mustGit(dir, []string{"GIT_SSH_COMMAND=" + s.sshCommand(s.readerKey)}, "clone", "-q", "--bare", c.url, "r.git")
		fsck(t, filepath.Join(dir, "r.git"))
	}
}

// TestReloadAccounts adds an account with gotctl reload: the SSH and
// HTTP front-ends accept it at once.
func TestReloadAccounts(t *testing.T) {
	s := start(t, options{})
	key := s.newKey("late")
	env := []string{"GIT_SSH_COMMAND=" + s.sshCommand(key)}
	if out, err := s.git(s.dir, env, "ls-remote", s.sshURL("late", "test")); err == nil {
		t.Fatalf("unknown account accepted:\n%s", out)
	}
	conf, err := os.ReadFile(s.conf)
	if err != nil {
		t.Fatal(err)
	}
	added := strings.Replace(string(conf), "repository \"test\" {\n",
		fmt.Sprintf("account late {\n\tkey %q\n}\nrepository \"test\" {\n\tpermit ro late\n", s.publicKey(key)), 1)
	write(t, s.conf, added, 0o644)
	if out, err := s.gotctl("reload"); err != nil {
		t.Fatalf("gotctl reload: %v\n%s", err, out)
	}
	s.mustGit(s.dir, env, "ls-remote", s.sshURL("late", "test"))
	info, err := s.gotctl("info")
	if err != nil || !strings.Contains(info, "number of repositories: 3") {
		t.Errorf("gotctl info: %v\n%s", err, info)
	}
}

// waitRole waits for the daemon to have one process of role, other
// than old, and returns its pid.
func (s *server) waitRole(role string, old int) int {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p := children(s.t, s.daemon.Process.Pid)[role]
		if len(p) == 1 && p[0] != old {
			return p[0]
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("no new %s process: %v", role, p)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// gotctl runs gotctl on the daemon's socket.
func (s *server) gotctl(args ...string) (string, error) {
	out, err := runErr(filepath.Join(s.bin, "gotctl"), append([]string{"-f", s.socket}, args...)...)
	return out, err
}

// children lists the pids of parent's children by role ("gotd: role").
func children(t testing.TB, parent int) map[string][]int {
	m := map[string][]int{}
	for _, pid := range pids() {
		if ppid, ok := parentOf(pid); !ok || ppid != parent {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		argv0, _, _ := strings.Cut(string(cmdline), "\x00")
		if role, ok := strings.CutPrefix(argv0, "gotd: "); ok {
			m[role] = append(m[role], pid)
		}
	}
	return m
}

// runErr runs a program, bounded in time, and returns its combined
// output and error.
func runErr(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), gitTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

// TestPrivateBinary runs gotd as root from a directory the daemon's
// user cannot enter (a checkout under /root): the parent re-executes
// its roles from the binary it opened before giving up root, and a
// clone over git:// succeeds (issue 20).
func TestPrivateBinary(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the daemon's user must differ from the binary's directory's owner")
	}
	s := start(t, options{privateBin: true})
	dir := s.clientDir("private-bin")
	s.mustGit(dir, nil, "clone", "-q", "--bare", s.gitURL("test"), "r.git")
	fsck(t, filepath.Join(dir, "r.git"))
}
