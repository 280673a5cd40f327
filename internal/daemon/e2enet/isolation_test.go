package e2enet

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestNoTerminal starts gotd -d from a terminal, as make run does: no
// child has a controlling terminal or shares the parent's session,
// and what a child writes to its standard error reaches the daemon's
// log through the parent, named with the child's role (issue 19: a
// role could type into the operator's shell with TIOCSTI).
func TestNoTerminal(t *testing.T) {
	s := start(t, options{terminal: true})
	dir := s.clientDir("noterm")
	// A clone, so that per-client roles have run and logged.
	s.mustGit(dir, nil, "clone", "-q", "--bare", s.gitURL("test"), "r.git")
	parent := s.daemon.Process.Pid
	psid, ptty := sessionOf(t, parent)
	if ptty == 0 {
		t.Fatalf("the daemon has no controlling terminal (tty_nr 0): the test does not test")
	}
	roles := children(t, parent)
	for _, role := range []string{"listen", "gitd", "httpd", "sshd"} {
		if len(roles[role]) == 0 {
			t.Errorf("no %s process: %v", role, roles)
		}
	}
	for role, pids := range roles {
		for _, pid := range pids {
			sid, tty := sessionOf(t, pid)
			if tty != 0 || sid == psid {
				t.Errorf("%s (pid %d): session %d tty_nr %#x; parent's session %d: got a terminal or the parent's session", role, pid, sid, tty, psid)
			}
		}
	}
	// A record of a child's logger comes through the parent.
	if !waitLog(s, `msg="fetch done" role=parent child=session_read`) {
		t.Errorf("session_read's log line did not come through the parent:\n%s", s.log.String())
	}
	// A line the Go runtime writes itself: the trace on SIGQUIT.
	gitd := s.waitRole("gitd", 0)
	syscall.Kill(gitd, syscall.SIGQUIT)
	if want := fmt.Sprintf(`msg="standard error" role=parent child=gitd pid=%d line="SIGQUIT: quit"`, gitd); !waitLog(s, want) {
		t.Errorf("gitd's standard error did not come through the parent (want %s):\n%s", want, s.log.String())
	}
	s.waitRole("gitd", gitd)
}

// sessionOf returns the session id and controlling terminal (tty_nr,
// 0 for none) of pid, from /proc/PID/stat (proc_pid_stat(5)).
func sessionOf(t *testing.T, pid int) (sid, tty int) {
	t.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// "pid (comm) state ppid pgrp session tty_nr …"
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(f) < 5 {
		t.Fatalf("/proc/%d/stat: %q", pid, stat)
	}
	fmt.Sscan(f[3], &sid)
	fmt.Sscan(f[4], &tty)
	return sid, tty
}

// waitLog waits, up to 10 s, for the daemon's log to hold want.
func waitLog(s *server, want string) bool {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if strings.Contains(s.log.String(), want) {
			return true
		}
	}
	return false
}

// TestControlAccess: gotctl is for root and the members of the
// "control group", not for any process of the daemon's user, which
// other services may share (issue 19: nobody could stop the daemon);
// gotd warns at start that nobody is such a user.
func TestControlAccess(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: gotctl runs as other users")
	}
	g, err := user.LookupGroup("daemon")
	if err != nil {
		t.Skipf("no group to name: %v", err)
	}
	gid, _ := strconv.Atoi(g.Gid)
	nobody := uint32(65534)
	// Another service running as the daemon's user.
	other := exec.Command("sleep", "120")
	other.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		other.Process.Kill()
		other.Wait()
	}()
	s := start(t, options{extraTop: "control group " + g.Name})
	for _, c := range []struct {
		name string
		cred *syscall.Credential
		ok   bool
	}{
		{"root", nil, true},
		{"the daemon's user", &syscall.Credential{Uid: nobody, Gid: nobody}, false},
		{"another group", &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{nobody}}, false},
		{"control group, primary", &syscall.Credential{Uid: nobody, Gid: uint32(gid)}, true},
		{"control group, supplementary", &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{uint32(gid)}}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(filepath.Join(s.bin, "gotctl"), "-f", s.socket, "info")
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
			out, err := cmd.CombinedOutput()
			if got := err == nil && strings.Contains(string(out), "gotd PID"); got != c.ok {
				t.Errorf("got allowed %v (%v); want %v\n%s", got, err, c.ok, out)
			}
			if !c.ok && !strings.Contains(string(out), "permission denied") {
				t.Errorf("refusal not told:\n%s", out)
			}
		})
	}
	if !strings.Contains(s.log.String(), "user nobody is shared with other services") {
		t.Errorf("no warning about the user nobody:\n%s", s.log.String())
	}
	if !strings.Contains(s.log.String(), "the daemon's user is shared with other services") {
		t.Errorf("no warning about another process of the daemon's user:\n%s", s.log.String())
	}
	out, _ := exec.Command(s.gotd(), "-n", "-f", s.conf, "-s", s.secrets).CombinedOutput()
	if !strings.Contains(string(out), "user nobody is shared with other services") {
		t.Errorf("gotd -n: no warning about the user nobody:\n%s", out)
	}
	// A control group that does not exist is an error.
	bad := filepath.Join(s.dir, "bad.conf")
	conf, _ := os.ReadFile(s.conf)
	write(t, bad, strings.Replace(string(conf), "control group "+g.Name, "control group no-such-group-here", 1), 0o644)
	if out, err := exec.Command(s.gotd(), "-n", "-f", bad, "-s", s.secrets).CombinedOutput(); err == nil || !strings.Contains(string(out), "group no-such-group-here not found") {
		t.Errorf("gotd -n with an unknown control group: %v\n%s", err, out)
	}
}

// TestRepositoryPermissions pushes into a repository closed to other
// users and into a group-shared one (core.sharedRepository=group):
// everything the push writes (pack, index, reverse index, references,
// their directories, packed-refs) grants others nothing in the first,
// and keeps the group's access in the second (issue 19: objects were
// written 0444 whatever the umask, references by the umask). gotd -n
// warns of a repository others can read that no rule opens to
// anonymous.
func TestRepositoryPermissions(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the repositories belong to the daemon's user")
	}
	top, err := os.MkdirTemp("", "gotd-e2enet-shared-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(top)
	os.Chmod(top, 0o755)
	shared := filepath.Join(top, "shared.git")
	// Made before gotd -n checks it.
	run(t, "git", "init", "-q", "--bare", "--shared=group", "-b", "main", shared)
	// The daemon's user is in the repository's group, as sharing needs.
	run(t, "chown", "-R", rootDaemon+":", shared)
	s := start(t, options{extraTop: fmt.Sprintf("repository \"shared\" {\n\tpath %q\n\tpermit rw %s\n}\n", shared, rwAccount)})
	private := filepath.Join(s.dir, "private.git")

	// Made by git init --bare under umask 022: open to others, and no
	// rule lets anonymous read it.
	checkConf := func() string {
		out, _ := exec.Command(s.gotd(), "-n", "-f", s.conf, "-s", s.secrets).CombinedOutput()
		return string(out)
	}
	if out := checkConf(); !strings.Contains(out, `repository "private": other local users can read`) ||
		strings.Contains(out, `repository "test": other local users`) {
		t.Errorf("gotd -n: want a warning for private and none for test (anonymous may read it):\n%s", out)
	}
	// Closed to others; a packed branch, whose deletion rewrites
	// packed-refs.
	run(t, "git", "--git-dir", private, "branch", "packed", "main")
	run(t, "git", "--git-dir", private, "pack-refs", "--all")
	run(t, "chown", "-R", rootDaemon, private)
	run(t, "chmod", "-R", "o-rwx", private)
	if out := checkConf(); strings.Contains(out, `repository "private": other local users`) {
		t.Errorf("gotd -n: warning for a closed repository:\n%s", out)
	}
	work := s.clientDir("perm")
	s.mustGit(work, nil, "clone", "-q", s.gitURL("test"), "w")
	w := filepath.Join(work, "w")
	os.WriteFile(filepath.Join(w, "new.txt"), []byte("new\n"), 0o644)
	s.mustGit(w, nil, "add", ".")
	s.mustGit(w, nil, "commit", "-q", "-m", "a commit of the push")
	for _, repo := range []string{private, shared} {
		before := modes(t, repo)
		name := strings.TrimSuffix(filepath.Base(repo), ".git")
		args := []string{"push", "-q", s.httpURL(rwAccount+":"+token, name), "HEAD:refs/heads/topic/new", "HEAD:main"}
		if repo == private {
			args = append(args, ":packed")
		}
		s.mustGit(w, nil, args...)
		fsck(t, repo)
		written := 0
		for path, mode := range modes(t, repo) {
			if old, ok := before[path]; ok && old == mode && !strings.Contains(path, "packed-refs") && !strings.HasPrefix(path, "refs/heads/main") {
				continue
			}
			written++
			switch {
			case repo == private && mode&0o007 != 0:
				t.Errorf("private: %s is %v: open to others", path, mode)
			case repo == shared && mode.IsDir() && mode&(0o070|fs.ModeSetgid) != 0o070|fs.ModeSetgid:
				t.Errorf("shared: directory %s is %v: want group rwx and set-group-ID", path, mode)
			case repo == shared && !mode.IsDir() && mode&0o040 == 0:
				t.Errorf("shared: %s is %v: the group cannot read it", path, mode)
			case repo == shared && !mode.IsDir() && mode&0o200 != 0 && mode&0o020 == 0:
				t.Errorf("shared: %s is %v: writable by its owner, not by the group", path, mode)
			}
		}
		// The pack, its index and reverse index, two references and
		// their directory, at least.
		if written < 6 {
			t.Errorf("%s: only %d files written or changed: %v", name, written, modes(t, repo))
		}
	}
}

// modes maps the paths under dir to their modes.
func modes(t *testing.T, dir string) map[string]fs.FileMode {
	m := map[string]fs.FileMode{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		m[rel] = fi.Mode()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestProcessNames checks that every long-lived child is named gotd
// where top(1), pgrep(1) and the kernel's messages look (its comm):
// re-executed through /proc/self/fd/N, it would be named "N".
func TestProcessNames(t *testing.T) {
	s := start(t, options{})
	roles := children(t, s.daemon.Process.Pid)
	for _, role := range []string{"listen", "notify", "gitd", "httpd", "sshd"} {
		if len(roles[role]) == 0 {
			t.Errorf("no %s process: %v", role, roles)
		}
		for _, pid := range roles[role] {
			comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(string(comm)); got != "gotd" {
				t.Errorf("%s (pid %d) is named %q, want gotd", role, pid, got)
			}
		}
	}
}
