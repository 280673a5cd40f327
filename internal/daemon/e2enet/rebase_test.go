package e2enet

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Checks of server-side rebase (issue 24) with a real gotd and C Git:
// pushes made from a main that another push has moved since the
// client read it are rebased onto the new main.

// relayEnv, set in the environment of the test binary, makes it a
// relay between git and ssh instead of a test run (see TestMain): it
// starts the command of its arguments (ssh), passes its output on at
// once, and holds git's first bytes (the push's commands, sent once the
// advertisement is read) until the shell command in relayBeforeEnv
// has run: the racing push.
const (
	relayEnv       = "GOTD_E2ENET_RELAY"
	relayBeforeEnv = "GOTD_E2ENET_RELAY_BEFORE"
)

// relay is the test binary run by git as its ssh command.
func relay() int {
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	w, err := cmd.StdinPipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "relay:", err)
		return 1
	}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "relay:", err)
		return 1
	}
	go func() {
		defer w.Close()
		buf := make([]byte, 64<<10)
		n, _ := os.Stdin.Read(buf)
		if n == 0 {
			return
		}
		before := exec.Command("sh", "-c", os.Getenv(relayBeforeEnv))
		before.Stdout, before.Stderr = os.Stderr, os.Stderr
		if err := before.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "relay: the racing push:", err)
		}
		w.Write(buf[:n])
		io.Copy(w, os.Stdin)
	}()
	if err := cmd.Wait(); err != nil {
		return 1
	}
	return 0
}

// racingProxy forwards HTTP to gotd; the first time a push's request
// (the POST that follows the advertisement) comes, it runs before, and
// holds every push's request until before is done.
func racingProxy(t *testing.T, port int, before func()) string {
	target, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", port))
	proxy := httputil.NewSingleHostReverseProxy(target)
	var once sync.Once
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-receive-pack") {
			once.Do(before)
		}
		proxy.ServeHTTP(w, r)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// TestRebasePush: over HTTP and SSH, in protocol versions 0 and 2,
// one client pushes main while another's push lands between the first
// one's advertisement and its commands: the first push is rebased onto
// the second (the tree git merge-tree makes of the two, the second as
// parent), and git tells where main is. Then two stale pushes at once
// both land, one after the other; a conflicting one is refused with its
// reason and main left alone; the repository passes fsck.
func TestRebasePush(t *testing.T) {
	t.Parallel() // long and not timed: runs beside the other such tests, after the timed ones
	s := start(t, options{extraTest: "push {\n\t\trebase branch main\n\t}"})
	repo := filepath.Join(s.dir, "test.git")
	sshEnv := []string{"GIT_SSH_COMMAND=" + s.sshCommand(s.writerKey)}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	httpAuth := rwAccount + ":" + token
	n := 0
	clone := func(name string) string {
		dir := filepath.Join(s.clientDir("rebase"), name)
		s.mustGit("", nil, "clone", "-q", s.httpURL(httpAuth, "test"), dir)
		s.mustGit(dir, nil, "config", "user.name", "Pusher "+name)
		s.mustGit(dir, nil, "config", "user.email", name+"@example.com")
		return dir
	}
	change := func(dir, file string) string {
		n++
		write(t, filepath.Join(dir, file), fmt.Sprintf("change %d of %s\n", n, file), 0o644)
		s.mustGit(dir, nil, "add", file)
		s.mustGit(dir, nil, "commit", "-q", "-m", "change "+file)
		return strings.TrimSpace(s.mustGit(dir, nil, "rev-parse", "HEAD"))
	}
	mainOf := func() string {
		return strings.TrimSpace(run(t, "git", "--git-dir", repo, "rev-parse", "refs/heads/main"))
	}

	for _, tr := range []string{"http", "ssh"} {
		for _, v := range []string{"0", "2"} {
			name := tr + "-v" + v
			mine, other := clone(name+"-mine"), clone(name+"-other")
			pushed := change(mine, "mine-"+name+".txt")
			theirs := change(other, "other-"+name+".txt")
			proto := "protocol.version=" + v
			var out string
			switch tr {
			case "http":
				addr := racingProxy(t, s.httpPort, func() {
					s.mustGit(other, nil, "push", "-q", s.httpURL(httpAuth, "test"), "main")
				})
				out = s.mustGit(mine, nil, "-c", proto, "push", "http://"+httpAuth+"@"+addr+"/test", "main")
			case "ssh":
				race := fmt.Sprintf("GIT_SSH_COMMAND='%s' git -C '%s' push -q '%s' main", s.sshCommand(s.writerKey), other, s.sshURL(rwAccount, "test"))
				env := []string{"GIT_SSH_COMMAND=" + exe + " " + s.sshCommand(s.writerKey), relayEnv + "=1", relayBeforeEnv + "=" + race}
				out = s.mustGit(mine, env, "-c", proto, "push", s.sshURL(rwAccount, "test"), "main")
			}
			got := mainOf()
			if got == pushed || got == theirs {
				t.Fatalf("%s: main = %s; want a rebased commit\n%s", name, got, out)
			}
			if p := strings.TrimSpace(run(t, "git", "--git-dir", repo, "rev-parse", got+"^@")); p != theirs {
				t.Errorf("%s: rebased commit's parent %s; want %s (the racing push)", name, p, theirs)
			}
			want := strings.Fields(run(t, "git", "--git-dir", repo, "merge-tree", "--write-tree", "--no-messages", theirs, pushed))[0]
			if tree := strings.TrimSpace(run(t, "git", "--git-dir", repo, "rev-parse", got+"^{tree}")); tree != want {
				t.Errorf("%s: rebased tree %s; want %s (git merge-tree)", name, tree, want)
			}
			if a, b := run(t, "git", "--git-dir", repo, "log", "-1", "--format=%an %ae %at %cn %ce %B", got),
				run(t, "git", "--git-dir", repo, "log", "-1", "--format=%an %ae %at %cn %ce %B", pushed); a != b {
				t.Errorf("%s: rebased commit %q; want %q", name, a, b)
			}
			if !strings.Contains(out, "rebased onto "+theirs+", now at "+got) || !strings.Contains(out, theirs[:7]+".."+got[:7]) {
				t.Errorf("%s: git says\n%s\nwant the rebase told", name, out)
			}
			// git pull --rebase brings the client where the server is.
			env := sshEnv
			s.mustGit(mine, env, "pull", "-q", "--rebase")
			if head := strings.TrimSpace(s.mustGit(mine, nil, "rev-parse", "HEAD")); head != got {
				t.Errorf("%s: after git pull --rebase HEAD = %s; want %s", name, head, got)
			}
		}
	}

	// Two stale pushes at once, over HTTP, both land.
	a, b, other := clone("both-a"), clone("both-b"), clone("both-other")
	pa, pb := change(a, "both-a.txt"), change(b, "both-b.txt")
	theirs := change(other, "both-other.txt")
	addr := racingProxy(t, s.httpPort, func() {
		s.mustGit(other, nil, "push", "-q", s.httpURL(httpAuth, "test"), "main")
	})
	var wg sync.WaitGroup
	outs := make([]string, 2)
	errs := make([]error, 2)
	for i, dir := range []string{a, b} {
		wg.Go(func() { outs[i], errs[i] = s.git(dir, nil, "push", "http://"+httpAuth+"@"+addr+"/test", "main") })
	}
	wg.Wait()
	for i := range 2 {
		if errs[i] != nil {
			t.Errorf("push %d of two at once: %v\n%s", i, errs[i], outs[i])
		}
	}
	log := strings.Fields(run(t, "git", "--git-dir", repo, "log", "--format=%s", "--first-parent", "-3", "main"))
	if got := strings.Join(log, " "); got != "change both-b.txt change both-a.txt change both-other.txt" && got != "change both-a.txt change both-b.txt change both-other.txt" {
		t.Errorf("main's last three commits: %s; want both pushes on top of the racing one", got)
	}
	for _, id := range []string{pa, pb} {
		if strings.Contains(run(t, "git", "--git-dir", repo, "rev-list", "-5", "main"), id) {
			t.Errorf("pushed commit %s on main; want its rebased copy", id)
		}
	}
	_ = theirs

	// A conflicting stale push is refused, main left where it is.
	c, other := clone("conflict-c"), clone("conflict-other")
	write(t, filepath.Join(c, "same.txt"), "mine\n", 0o644)
	s.mustGit(c, nil, "add", "same.txt")
	s.mustGit(c, nil, "commit", "-q", "-m", "mine")
	write(t, filepath.Join(other, "same.txt"), "theirs\n", 0o644)
	s.mustGit(other, nil, "add", "same.txt")
	s.mustGit(other, nil, "commit", "-q", "-m", "theirs")
	addr = racingProxy(t, s.httpPort, func() {
		s.mustGit(other, nil, "push", "-q", s.httpURL(httpAuth, "test"), "main")
	})
	before := ""
	out, err := s.git(c, nil, "push", "http://"+httpAuth+"@"+addr+"/test", "main")
	if before = mainOf(); err == nil {
		t.Errorf("conflicting push accepted:\n%s", out)
	}
	if !strings.Contains(out, "cannot rebase: same.txt added on both sides with different contents") {
		t.Errorf("conflicting push: git says\n%s", out)
	}
	if want := strings.TrimSpace(s.mustGit(other, nil, "rev-parse", "HEAD")); before != want {
		t.Errorf("main = %s after a refused push; want %s (the racing push)", before, want)
	}
	fsck(t, repo)
	reflog := run(t, "git", "--git-dir", repo, "reflog", "show", "--format=%gs", "refs/heads/main")
	if !strings.Contains(reflog, "rebased") {
		t.Errorf("reflog of main:\n%s\nwant rebased updates", reflog)
	}
	if p := logProblems(s.log.String()); strings.Contains(p, "level=ERROR") {
		t.Errorf("the daemon's errors:\n%s", p)
	}
}
