package e2enet

import (
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gotd/internal/gittest"
)

// mirrorWait bounds the wait for a push mirror to follow.
const mirrorWait = 60 * time.Second

// mirrorTargets is a directory of bare repositories that C Git serves
// as push mirror targets.
type mirrorTargets struct {
	t    *testing.T
	root string
}

// newMirrorTargets creates the bare repositories names under a new
// directory, accepting pushes over HTTP and checking what they receive.
func newMirrorTargets(t *testing.T, names ...string) *mirrorTargets {
	root := spoolParent(t)
	for _, n := range names {
		dir := filepath.Join(root, n)
		run(t, "git", "init", "-q", "--bare", "-b", "main", dir)
		run(t, "git", "-C", dir, "config", "http.receivepack", "true")
		run(t, "git", "-C", dir, "config", "receive.fsckObjects", "true")
	}
	return &mirrorTargets{t: t, root: root}
}

// gitDaemon starts C Git's git daemon on port with pushes enabled; the
// returned function stops it.
func (m *mirrorTargets) gitDaemon(port int) func() {
	m.t.Helper()
	cmd := exec.Command("git", "daemon", "--export-all", "--enable=receive-pack", "--reuseaddr", "--listen=127.0.0.1",
		fmt.Sprintf("--port=%d", port), "--base-path="+m.root, m.root)
	cmd.Env = safeEnv(m.t)
	log := &lockedBuffer{}
	cmd.Stderr = log
	// git daemon runs git-daemon, which forks per connection: the
	// whole process group is stopped.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		m.t.Fatal(err)
	}
	stop := func() {
		if cmd.ProcessState == nil {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			cmd.Wait()
		}
	}
	m.t.Cleanup(stop)
	waitPort(m.t, port, log)
	return stop
}

// httpBackend serves the targets with git http-backend behind the
// test's web server, which asks for basic authentication (user
// "mirror", password "s3cret"); it returns the server's base URL.
func (m *mirrorTargets) httpBackend() string {
	git, err := exec.LookPath("git")
	if err != nil {
		m.t.Fatal(err)
	}
	backend := &cgi.Handler{Path: git, Args: []string{"http-backend"},
		Env: append(safeEnv(m.t), "GIT_PROJECT_ROOT="+m.root, "GIT_HTTP_EXPORT_ALL=1")}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		m.t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if u, p, ok := req.BasicAuth(); !ok || u != "mirror" || p != "s3cret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, req)
	})}
	go srv.Serve(l)
	m.t.Cleanup(func() { srv.Close() })
	return "http://" + l.Addr().String()
}

// branchesAndTags lists a repository's branches and tags.
func branchesAndTags(t testing.TB, gitDir string) string {
	t.Helper()
	return run(t, "git", "--git-dir", gitDir, "for-each-ref", "--format=%(objectname) %(refname)", "refs/heads/", "refs/tags/")
}

// waitMirrored waits until target's branches and tags equal src's.
func waitMirrored(t *testing.T, s *server, src, target, what string) {
	t.Helper()
	deadline := time.Now().Add(mirrorWait)
	for {
		want, got := branchesAndTags(t, src), branchesAndTags(t, target)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			info, _ := s.gotctl("info")
			t.Fatalf("%s: the target's references\n%s\nwant\n%s\ngotctl info:\n%s", what, got, want, info)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// mirrorInfo returns gotctl info's line about the target whose URL
// ends with suffix.
func mirrorInfo(t *testing.T, s *server, suffix string) string {
	t.Helper()
	out, err := s.gotctl("info")
	if err != nil {
		t.Fatalf("gotctl info: %v\n%s", err, out)
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "mirror \"test\" to ") && strings.Contains(l, suffix+":") {
			return l
		}
	}
	t.Fatalf("no line about the mirror to %s in gotctl info:\n%s", suffix, out)
	return ""
}

// TestMirrorTo: repository "test" has two push mirrors, C Git's git
// daemon and http-backend behind a web server that asks for the
// credentials of the secrets file. A push makes both equal to it (the
// first send takes every branch and tag) and fsck clean; a forced
// update and a deletion are followed; a branch another writer moved at
// one target is not overwritten there (the other target follows) and
// gotctl info shows why.
func TestMirrorTo(t *testing.T) {
	targets := newMirrorTargets(t, "daemon.git", "http.git")
	port := freePort(t)
	targets.gitDaemon(port)
	web := targets.httpBackend()
	daemonURL := fmt.Sprintf("git://127.0.0.1:%d/daemon.git", port)
	s := start(t, options{
		extraTop:     fmt.Sprintf("mirror spool %q", filepath.Join(spoolParent(t), "mirror")),
		extraTest:    fmt.Sprintf("\tmirror to %q\n\tmirror to %q auth hub insecure", daemonURL, web+"/http.git"),
		extraSecrets: "auth hub user mirror password s3cret\n",
	})
	src := filepath.Join(s.dir, "test.git")
	daemonDir, httpDir := filepath.Join(targets.root, "daemon.git"), filepath.Join(targets.root, "http.git")
	pushURL := s.httpURL(rwAccount+":"+strings.ReplaceAll(password, " ", "%20"), "test")
	work := s.clientDir("pusher")
	s.mustGit(work, nil, "clone", "-q", s.gitURL("test"), "w")
	w := filepath.Join(work, "w")
	commit := func(name string) {
		os.WriteFile(filepath.Join(w, name), []byte(name+"\n"), 0o644)
		s.mustGit(w, nil, "add", name)
		s.mustGit(w, nil, "commit", "-q", "-m", name)
	}

	// A new commit on main and a new branch: the first send takes them
	// and every other branch and tag.
	commit("one.txt")
	s.mustGit(w, nil, "push", "-q", pushURL, "HEAD:main", "HEAD:refs/heads/topic")
	for _, d := range []string{daemonDir, httpDir} {
		waitMirrored(t, s, src, d, "first push")
		fsck(t, d)
	}
	// The target has the references before the send process has told
	// the parent: gotctl info says so a moment later.
	for deadline := time.Now().Add(mirrorWait); ; {
		l := mirrorInfo(t, s, "daemon.git")
		if strings.Contains(l, "idle, queued 0, last success 20") && !strings.Contains(l, "last error") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gotctl info after a send: %s", l)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A forced update of main and the deletion of topic.
	s.mustGit(w, nil, "push", "-q", "--force", pushURL, "HEAD~2:main", ":refs/heads/topic")
	for _, d := range []string{daemonDir, httpDir} {
		waitMirrored(t, s, src, d, "forced update and deletion")
		fsck(t, d)
	}
	if out := run(t, "git", "--git-dir", daemonDir, "for-each-ref", "refs/heads/topic"); out != "" {
		t.Errorf("topic still at the target: %s", out)
	}

	// Another writer moves main at the git daemon target; a push then
	// moves it at gotd: the git daemon target keeps the other writer's
	// value, the http target follows.
	other := s.clientDir("other")
	s.mustGit(other, nil, "clone", "-q", daemonURL, "o")
	o := filepath.Join(other, "o")
	os.WriteFile(filepath.Join(o, "other.txt"), []byte("other\n"), 0o644)
	s.mustGit(o, nil, "add", "other.txt")
	s.mustGit(o, nil, "commit", "-q", "-m", "another writer")
	s.mustGit(o, nil, "push", "-q", "origin", "HEAD:main")
	theirs := strings.TrimSpace(s.mustGit(o, nil, "rev-parse", "HEAD"))
	s.mustGit(w, nil, "reset", "-q", "--hard", "HEAD~2")
	commit("two.txt")
	s.mustGit(w, nil, "push", "-q", pushURL, "HEAD:main")
	waitMirrored(t, s, src, httpDir, "push after another writer")
	deadline := time.Now().Add(mirrorWait)
	for !strings.Contains(mirrorInfo(t, s, "daemon.git"), "last error") {
		if time.Now().After(deadline) {
			t.Fatalf("no error shown for the target another writer moved: %s", mirrorInfo(t, s, "daemon.git"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	l := mirrorInfo(t, s, "daemon.git")
	if !strings.Contains(l, "refs/heads/main: the target moved it: not overwritten") || !strings.Contains(l, "queued 0") {
		t.Errorf("gotctl info after another writer's move: %s", l)
	}
	if got := strings.TrimSpace(run(t, "git", "--git-dir", daemonDir, "rev-parse", "refs/heads/main")); got != theirs {
		t.Errorf("the target's main: got %s; want the other writer's %s", got, theirs)
	}
	if !strings.Contains(s.log.String(), "references not sent") {
		t.Errorf("no log line about the references not sent")
	}
	fsck(t, daemonDir)
}

// TestMirrorToDown: a push while the target is down stays queued,
// gotctl info shows it with the error and the next attempt, and it
// survives a restart of gotd; once the target is back, the retry
// brings it up to date.
func TestMirrorToDown(t *testing.T) {
	targets := newMirrorTargets(t, "down.git")
	port := freePort(t)
	url := fmt.Sprintf("git://127.0.0.1:%d/down.git", port)
	s := start(t, options{
		extraTop:  fmt.Sprintf("mirror spool %q", filepath.Join(spoolParent(t), "mirror")),
		extraTest: fmt.Sprintf("\tmirror to %q", url),
	})
	src := filepath.Join(s.dir, "test.git")
	dir := filepath.Join(targets.root, "down.git")
	pushURL := s.httpURL(rwAccount+":"+strings.ReplaceAll(password, " ", "%20"), "test")
	work := s.clientDir("pusher")
	s.mustGit(work, nil, "clone", "-q", s.gitURL("test"), "w")
	w := filepath.Join(work, "w")
	os.WriteFile(filepath.Join(w, "down.txt"), []byte("down\n"), 0o644)
	s.mustGit(w, nil, "add", "down.txt")
	s.mustGit(w, nil, "commit", "-q", "-m", "while the target is down")
	s.mustGit(w, nil, "push", "-q", pushURL, "HEAD:main")

	waitInfo := func(what string, ok func(string) bool) string {
		t.Helper()
		deadline := time.Now().Add(mirrorWait)
		for {
			l := mirrorInfo(t, s, "down.git")
			if ok(l) {
				return l
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: gotctl info: %s", what, l)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	queued := func(l string) bool {
		return strings.Contains(l, "queued all") && strings.Contains(l, "last success never") &&
			strings.Contains(l, "last error") && strings.Contains(l, "next attempt")
	}
	l := waitInfo("target down", queued)
	t.Logf("target down: %s", l)
	if !strings.Contains(l, "connection refused") {
		t.Errorf("the error does not say why: %s", l)
	}

	s.restart()
	l = waitInfo("after a restart", queued)
	t.Logf("after a restart: %s", l)

	targets.gitDaemon(port)
	waitMirrored(t, s, src, dir, "target back")
	fsck(t, dir)
	waitInfo("delivered", func(l string) bool { return strings.Contains(l, "idle, queued 0, last success 20") })
}

// TestMirrorToSSHAndGotd: push mirrors over SSH to C Git behind
// OpenSSH's sshd and git-shell (a key file and a known_hosts file the
// daemon's user reads), and over HTTP to another gotd with one of its accounts'
// password from the secrets file, follow pushes and deletions and stay
// fsck clean; a target whose host key is not the one pinned is never
// sent to, and gotctl info says why.
func TestMirrorToSSHAndGotd(t *testing.T) {
	sshd := gittest.StartGitShellSSHD(t, false)
	targets := newMirrorTargets(t, "ssh.git", "wrongkey.git")
	// The daemon's user reads the key and known_hosts.
	creds := spoolParent(t)
	key, kh := filepath.Join(creds, "key"), filepath.Join(creds, "known_hosts")
	for from, to := range map[string]string{sshd.Key: key, sshd.KnownHosts: kh} {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		write(t, to, string(b), 0o600)
		if os.Geteuid() == 0 {
			run(t, "chown", rootDaemon, to)
		}
	}
	other := start(t, options{})
	gotdURL := other.httpURL("", "private")
	sshURL := sshd.URL(filepath.Join(targets.root, "ssh.git"))
	wrongURL := sshd.URL(filepath.Join(targets.root, "wrongkey.git"))
	s := start(t, options{
		extraTop: fmt.Sprintf("mirror spool %q", filepath.Join(spoolParent(t), "mirror")),
		extraTest: fmt.Sprintf("\tmirror to %q key %q known hosts %q\n\tmirror to %q key %q host key %q\n\tmirror to %q auth gotd insecure",
			sshURL, key, kh, wrongURL, key, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHYyBvR6aeyqPCeWAZJW4gOFDw5ABDs/Q5ozGKw4VItb", gotdURL),
		extraSecrets: fmt.Sprintf("auth gotd user %s password '%s'\n", rwAccount, password),
	})
	src := filepath.Join(s.dir, "test.git")
	sshDir, gotdDir := filepath.Join(targets.root, "ssh.git"), filepath.Join(other.dir, "private.git")
	pushURL := s.httpURL(rwAccount+":"+strings.ReplaceAll(password, " ", "%20"), "test")
	work := s.clientDir("pusher")
	s.mustGit(work, nil, "clone", "-q", s.gitURL("test"), "w")
	w := filepath.Join(work, "w")
	os.WriteFile(filepath.Join(w, "ssh.txt"), []byte("ssh\n"), 0o644)
	s.mustGit(w, nil, "add", "ssh.txt")
	s.mustGit(w, nil, "commit", "-q", "-m", "over ssh")
	s.mustGit(w, nil, "push", "-q", pushURL, "HEAD:main", "HEAD:refs/heads/side", "HEAD:refs/tags/t1")
	for _, d := range []string{sshDir, gotdDir} {
		waitMirrored(t, s, src, d, "first push")
		fsck(t, d)
	}
	s.mustGit(w, nil, "push", "-q", pushURL, ":refs/heads/side", ":refs/tags/t1")
	for _, d := range []string{sshDir, gotdDir} {
		waitMirrored(t, s, src, d, "deletions")
		fsck(t, d)
	}
	l := mirrorInfo(t, s, "wrongkey.git")
	if !strings.Contains(l, "ssh host key not accepted") || !strings.Contains(l, "next attempt") {
		t.Errorf("gotctl info for a target with another host key: %s", l)
	}
	if out := run(t, "git", "--git-dir", filepath.Join(targets.root, "wrongkey.git"), "for-each-ref"); out != "" {
		t.Errorf("the target with another host key got references:\n%s", out)
	}
}
