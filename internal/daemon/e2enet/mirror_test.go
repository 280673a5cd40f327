package e2enet

import (
	"context"
	"fmt"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gotd/internal/gittest"
)

// mirrorRoot makes a directory every process of the test can reach, for
// upstreams and mirrors made before gotd starts.
func mirrorRoot(t *testing.T) string {
	dir, err := os.MkdirTemp("", "gotd-mirror-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	return dir
}

// mirrorRepo makes an empty bare repository for gotd to mirror into,
// owned by the daemon's user.
func mirrorRepo(t *testing.T, path string) {
	run(t, "git", "init", "-q", "--bare", "-b", "main", path)
	if os.Geteuid() == 0 {
		run(t, "chown", "-R", rootDaemon, path)
	}
}

// gitUpstreams serves the repositories of root with C Git: git daemon
// (git://) and git http-backend behind net/http's CGI; it returns the
// base URL of each.
func gitUpstreams(t *testing.T, root string) (gitBase, httpBase string) {
	port := freePorts(t, 1)[0]
	ctx, cancel := context.WithCancel(context.Background())
	daemon := exec.CommandContext(ctx, "git", "daemon", "--export-all", "--reuseaddr", "--listen=127.0.0.1",
		fmt.Sprintf("--port=%d", port), "--base-path="+root, root)
	daemon.Env = gittest.Env(t)
	// git daemon runs git-daemon, which forks per connection: the
	// whole process group is stopped (killing git alone left
	// git-daemon running).
	daemon.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	daemon.Cancel = func() error { return syscall.Kill(-daemon.Process.Pid, syscall.SIGKILL) }
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		daemon.Wait()
	})
	waitPort(t, port, &lockedBuffer{})
	git, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	web := httptest.NewServer(&cgi.Handler{Path: git, Args: []string{"http-backend"},
		Env: append(gittest.Env(t), "GIT_PROJECT_ROOT="+root, "GIT_HTTP_EXPORT_ALL=1")})
	t.Cleanup(web.Close)
	return fmt.Sprintf("git://127.0.0.1:%d", port), web.URL
}

// dulwichUpstream serves the repositories of root with dulwich's
// servers (Debian's python3-dulwich): its git:// server and its WSGI
// application behind wsgiref's HTTP server; it returns the base URL of
// each, or "" without dulwich (a failure where GOTD_REQUIRE_INTEROP
// asks for every client and server).
func dulwichUpstream(t *testing.T, root string) (gitBase, httpBase string) {
	if exec.Command("/usr/bin/python3", "-c", "import dulwich").Run() != nil {
		if os.Getenv("GOTD_REQUIRE_INTEROP") != "" {
			t.Fatal("no dulwich for /usr/bin/python3")
		}
		t.Log("no dulwich for /usr/bin/python3: its server is not tried")
		return "", ""
	}
	ports := freePorts(t, 2)
	script := `import os, sys, threading
from wsgiref.simple_server import make_server, WSGIRequestHandler
from dulwich.repo import Repo
from dulwich.server import DictBackend, TCPGitServer
from dulwich.web import make_wsgi_chain
root = sys.argv[1]
def backend(key):
    # A Repo's pack files are read through shared file objects: the two
    # servers run in two threads, so each has Repo objects of its own
    # (one shared Repo cut a git:// fetch short while the WSGI server
    # read the same pack). The git:// server looks repositories up by
    # bytes, the WSGI one by str.
    return DictBackend({key("/" + n): Repo(os.path.join(root, n)) for n in os.listdir(root) if n.endswith(".git")})
class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass
web = make_server("127.0.0.1", int(sys.argv[3]), make_wsgi_chain(backend(str)), handler_class=Quiet)
threading.Thread(target=web.serve_forever, daemon=True).start()
TCPGitServer(backend(str.encode), "127.0.0.1", int(sys.argv[2])).serve_forever()
`
	ctx, cancel := context.WithCancel(context.Background())
	py := exec.CommandContext(ctx, "/usr/bin/python3", "-c", script, root, fmt.Sprint(ports[0]), fmt.Sprint(ports[1]))
	log := &lockedBuffer{}
	py.Stderr = log
	if err := py.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		py.Wait()
		if t.Failed() && log.String() != "" {
			t.Logf("dulwich's servers wrote:\n%s", log.String())
		}
	})
	waitPort(t, ports[0], log)
	waitPort(t, ports[1], log)
	return fmt.Sprintf("git://127.0.0.1:%d", ports[0]), fmt.Sprintf("http://127.0.0.1:%d", ports[1])
}

// mirrorBlock is a repository block of a pull mirror that anonymous
// clients read and the writer account may push to (it must be refused).
func mirrorBlock(name, path, url string) string {
	return fmt.Sprintf("repository \"%s\" {\n\tpath \"%s\"\n\tpermit ro anonymous\n\tpermit rw %s\n\tmirror from \"%s\" every 1h\n}\n",
		name, path, rwAccount, url)
}

// headsAndTags lists a repository's branches and tags with their ids
// (tags peeled too), as git for-each-ref prints them.
func headsAndTags(t *testing.T, gitDir string) string {
	return run(t, "git", "--git-dir", gitDir, "-c", "safe.directory=*", "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads", "refs/tags")
}

// sync runs gotctl sync on name and returns its output.
func (s *server) sync(name string) (string, error) {
	return s.gotctl("sync", name)
}

// TestMirrorFollows: pull mirrors of a C Git upstream over git:// (git
// daemon) and HTTP (git http-backend), of dulwich's git:// server and
// its WSGI application, and of a local path follow every kind of change
// upstream after gotctl sync: branches and tags created, moved
// forward, forced backwards, deleted; the mirrors pass fsck --strict,
// serve clones over git:// and HTTP that pass it too and have the
// upstream's references, keep a reflog of the moves, refuse pushes with
// the mirror's message, and gotctl info shows their last success.
func TestMirrorFollows(t *testing.T) {
	root := mirrorRoot(t)
	up := filepath.Join(root, "up.git")
	run(t, "git", "init", "-q", "--bare", "-b", "main", up)
	gittest.Generate(t, up, gittest.History{Commits: 12, Files: 6})
	git := func(args ...string) string {
		return run(t, "git", append([]string{"--git-dir", up, "-c", "safe.directory=*", "-c", "user.name=u", "-c", "user.email=u@example.org"}, args...)...)
	}
	git("branch", "b1", "main~2")
	git("branch", "gone", "main~4")
	git("tag", "-a", "-m", "one", "mt-v1", "main~1")
	git("tag", "mt-light", "main~3")
	gitBase, httpBase := gitUpstreams(t, root)
	kinds := map[string]string{"mirror-git": gitBase + "/up.git", "mirror-http": httpBase + "/up.git", "mirror-local": up}
	if gitBase, httpBase := dulwichUpstream(t, root); gitBase != "" {
		kinds["mirror-dulwich"] = gitBase + "/up.git"
		kinds["mirror-dulwich-http"] = httpBase + "/up.git"
	}
	var blocks string
	for name, url := range kinds {
		mirrorRepo(t, filepath.Join(root, name+".git"))
		blocks += mirrorBlock(name, filepath.Join(root, name+".git"), url)
	}
	s := start(t, options{extraTop: blocks})

	check := func(stage string) {
		t.Helper()
		want := headsAndTags(t, up)
		for name := range kinds {
			out, err := s.sync(name)
			if err != nil {
				t.Fatalf("%s: gotctl sync %s: %v\n%s", stage, name, err, out)
			}
			if !strings.Contains(out, "synced:") {
				t.Errorf("%s: gotctl sync %s: got %q; want the outcome", stage, name, out)
			}
			mirror := filepath.Join(root, name+".git")
			if got := headsAndTags(t, mirror); got != want {
				t.Errorf("%s: %s: got references\n%s\nwant\n%s", stage, name, got, want)
			}
			fsck(t, mirror)
			if left := leftovers(t, mirror); len(left) > 0 {
				t.Errorf("%s: %s: left behind: %v", stage, name, left)
			}
		}
	}
	check("first sync")

	// Every kind of change upstream.
	work := s.clientDir("work")
	s.mustGit(work, nil, "clone", "-q", up, "w")
	w := filepath.Join(work, "w")
	write(t, filepath.Join(w, "new.txt"), "new\n", 0o644)
	s.mustGit(w, nil, "add", "new.txt")
	s.mustGit(w, nil, "-c", "user.name=u", "-c", "user.email=u@example.org", "commit", "-q", "-m", "new")
	s.mustGit(w, nil, "push", "-q", up, "HEAD:main", "HEAD:refs/heads/b2")
	git("update-ref", "refs/heads/b1", "main~5") // forced backwards
	git("branch", "-D", "gone")
	git("tag", "-d", "mt-light")
	git("tag", "-a", "-m", "two", "mt-v2", "main")
	check("second sync")

	// Nothing new: a sync that moves nothing.
	out, err := s.sync("mirror-git")
	if err != nil || !strings.Contains(out, "synced: 0 references updated") {
		t.Errorf("a sync with nothing new: got %q, %v; want 0 references updated", out, err)
	}

	// The reflog records the moves as a push's does.
	logFile := filepath.Join(root, "mirror-git.git", "logs", "refs", "heads", "b1")
	if data, err := os.ReadFile(logFile); err != nil || !strings.Contains(string(data), "mirror: forced-update") {
		t.Errorf("reflog of b1: got %q, %v; want a forced update recorded", data, err)
	}

	// Clones of the mirrors over git:// and HTTP.
	want := headsAndTags(t, up)
	for i, url := range []string{s.gitURL("mirror-git"), s.httpURL("", "mirror-http")} {
		dir := s.clientDir(fmt.Sprintf("clone-%d", i))
		s.mustGit(dir, nil, "clone", "-q", "--mirror", url, "c")
		c := filepath.Join(dir, "c")
		fsck(t, c)
		if got := headsAndTags(t, c); got != want {
			t.Errorf("clone of %s: got references\n%s\nwant\n%s", url, got, want)
		}
	}

	// A push to a mirror is refused with its message.
	httpURL := s.httpURL(rwAccount+":"+strings.ReplaceAll(password, " ", "%20"), "mirror-git")
	out, err = s.git(w, nil, "push", httpURL, "HEAD:refs/heads/pushed")
	if wantMsg := "mirror-git is a read-only mirror of " + kinds["mirror-git"]; err == nil || !strings.Contains(out, wantMsg) {
		t.Errorf("push to the mirror: got %v\n%s\nwant refused with %q", err, out, wantMsg)
	}
	if got := headsAndTags(t, filepath.Join(root, "mirror-git.git")); got != want {
		t.Errorf("after a refused push: got references\n%s\nwant\n%s", got, want)
	}

	info, err := s.gotctl("info")
	if err != nil || !strings.Contains(info, `mirror "mirror-http" from `+kinds["mirror-http"]+": last success 2") ||
		!strings.Contains(info, "next attempt") {
		t.Errorf("gotctl info: got %v\n%s\nwant each mirror's last success and next attempt", err, info)
	}
}

// TestMirrorNotAMirror: gotctl sync names a repository that is not a
// mirror, or none.
func TestMirrorNotAMirror(t *testing.T) {
	s := start(t, options{})
	for _, tc := range []struct{ name, want string }{{"test", "not a mirror"}, {"nope", "no such repository"}} {
		out, err := s.sync(tc.name)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("gotctl sync %s: got %v, %q; want %q", tc.name, err, out, tc.want)
		}
	}
}

// waitMirrorInfo waits until gotctl info shows text.
func (s *server) waitMirrorInfo(text string) string {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, _ := s.gotctl("info")
		if strings.Contains(info, text) {
			return info
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("no %q in gotctl info:\n%s", text, info)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestMirrorSyncRacesClones: clones of a mirror over git:// while syncs
// move its branches (forward, forced, created, deleted) each see the
// references of one upstream state, whole: never some moved and others
// not, never a reference without its objects. The loop is bounded: a
// fixed number of syncs, and of clones per cloner.
func TestMirrorSyncRacesClones(t *testing.T) {
	root := mirrorRoot(t)
	up := filepath.Join(root, "up.git")
	run(t, "git", "init", "-q", "--bare", "-b", "main", up)
	gittest.Generate(t, up, gittest.History{Commits: 10, Files: 6})
	mirrorRepo(t, filepath.Join(root, "race.git"))
	gitBase, _ := gitUpstreams(t, root)
	s := start(t, options{extraTop: mirrorBlock("race", filepath.Join(root, "race.git"), gitBase+"/up.git")})

	var mu sync.Mutex
	states := map[string]bool{}
	record := func() {
		mu.Lock()
		states[headsAndTags(t, up)] = true
		mu.Unlock()
	}
	record()
	if out, err := s.sync("race"); err != nil {
		t.Fatalf("first sync: %v\n%s", err, out)
	}
	work := s.clientDir("work")
	s.mustGit(work, nil, "clone", "-q", up, "w")
	w := filepath.Join(work, "w")

	done := make(chan struct{})
	var wg sync.WaitGroup
	var failMu sync.Mutex
	var failures []string
	clones := 0
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for n := 0; n < 40; n++ {
				select {
				case <-done:
					return
				default:
				}
				dir := s.clientDir(fmt.Sprintf("race-%d-%d", g, n))
				out, err := s.git(dir, nil, "clone", "-q", "--mirror", s.gitURL("race"), "c")
				if err != nil {
					failMu.Lock()
					failures = append(failures, fmt.Sprintf("clone: %v\n%s", err, out))
					failMu.Unlock()
					return
				}
				got := headsAndTags(t, filepath.Join(dir, "c"))
				mu.Lock()
				ok := states[got]
				mu.Unlock()
				failMu.Lock()
				clones++
				if !ok {
					failures = append(failures, "a clone saw a state the upstream never had:\n"+got)
				}
				failMu.Unlock()
				os.RemoveAll(dir)
			}
		}(g)
	}
	for i := 0; i < 8; i++ {
		write(t, filepath.Join(w, "f.txt"), fmt.Sprintf("round %d\n", i), 0o644)
		s.mustGit(w, nil, "add", "f.txt")
		s.mustGit(w, nil, "-c", "user.name=u", "-c", "user.email=u@example.org", "commit", "-q", "-m", fmt.Sprintf("round %d", i))
		if i%3 == 2 {
			s.mustGit(w, nil, "reset", "-q", "--hard", "HEAD~2") // forced backwards
		}
		s.mustGit(w, nil, "push", "-q", "-f", up, "HEAD:main", fmt.Sprintf("HEAD:refs/heads/r%d", i), fmt.Sprintf(":refs/heads/r%d", i-1))
		record()
		if out, err := s.sync("race"); err != nil {
			t.Fatalf("sync %d: %v\n%s", i, err, out)
		}
	}
	close(done)
	wg.Wait()
	for _, f := range failures {
		t.Error(f)
	}
	if got, want := headsAndTags(t, filepath.Join(root, "race.git")), headsAndTags(t, up); got != want {
		t.Errorf("after the last sync: got\n%s\nwant\n%s", got, want)
	}
	t.Logf("%d clones during 8 syncs", clones)
}

// TestMirrorSSH: a pull mirror of OpenSSH serving C Git through
// git-shell follows it with the key and known_hosts file its line
// names; one whose pinned host key is not the server's is refused
// before any Git byte, left as it was, and gotctl sync says why.
func TestMirrorSSH(t *testing.T) {
	sshd := gittest.StartGitShellSSHD(t, true)
	root := mirrorRoot(t)
	up := filepath.Join(root, "up.git")
	run(t, "git", "init", "-q", "--bare", "-b", "main", up)
	gittest.Generate(t, up, gittest.History{Commits: 8, Files: 4})
	// The fetch process runs as the daemon's user: its key and
	// known_hosts file must be that user's to read.
	key, known := filepath.Join(root, "id"), filepath.Join(root, "known_hosts")
	for from, to := range map[string]string{sshd.Key: key, sshd.KnownHosts: known} {
		data, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		write(t, to, string(data), 0o600)
		if os.Geteuid() == 0 {
			run(t, "chown", rootDaemon, to)
		}
	}
	wrongKey, err := os.ReadFile(sshd.Key + ".pub") // the client's key, not the server's
	if err != nil {
		t.Fatal(err)
	}
	var blocks string
	for _, name := range []string{"ssh-good", "ssh-wrong"} {
		mirrorRepo(t, filepath.Join(root, name+".git"))
	}
	blocks += fmt.Sprintf("repository \"ssh-good\" {\n\tpath \"%s\"\n\tpermit ro anonymous\n\tmirror from \"%s\" key \"%s\" known hosts \"%s\"\n}\n",
		filepath.Join(root, "ssh-good.git"), sshd.URL(up), key, known)
	blocks += fmt.Sprintf("repository \"ssh-wrong\" {\n\tpath \"%s\"\n\tpermit ro anonymous\n\tmirror from \"%s\" key \"%s\" host key \"%s\"\n}\n",
		filepath.Join(root, "ssh-wrong.git"), sshd.URL(up), key, strings.TrimSpace(string(wrongKey)))
	s := start(t, options{extraTop: blocks})

	if out, err := s.sync("ssh-good"); err != nil || !strings.Contains(out, "synced:") {
		t.Fatalf("gotctl sync ssh-good: %v\n%s", err, out)
	}
	if got, want := headsAndTags(t, filepath.Join(root, "ssh-good.git")), headsAndTags(t, up); got != want {
		t.Errorf("ssh-good: got references\n%s\nwant\n%s", got, want)
	}
	fsck(t, filepath.Join(root, "ssh-good.git"))

	out, err := s.sync("ssh-wrong")
	if err == nil || !strings.Contains(out, "host key not accepted") {
		t.Errorf("gotctl sync ssh-wrong: got %v\n%s\nwant the host key refused", err, out)
	}
	if got := headsAndTags(t, filepath.Join(root, "ssh-wrong.git")); got != "" {
		t.Errorf("ssh-wrong: got references\n%s\nwant none", got)
	}
}

// TestMirrorSandboxPort: an upstream that redirects to a server on
// another port, which a plain HTTP client would follow, fails the sync,
// and the mirror stays empty. Two walls stand in the way: the fetch
// client follows redirects only to the same host and port, and the
// fetch process may connect to its upstream's port only (Landlock TCP
// rules, where the kernel has them); the first answers now, the second
// ("permission denied") did before the client had its rule.
func TestMirrorSandboxPort(t *testing.T) {
	root := mirrorRoot(t)
	up := filepath.Join(root, "up.git")
	run(t, "git", "init", "-q", "--bare", "-b", "main", up)
	gittest.Generate(t, up, gittest.History{Commits: 3, Files: 2})
	_, httpBase := gitUpstreams(t, root)
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, httpBase+r.URL.RequestURI(), http.StatusFound)
	}))
	t.Cleanup(redirect.Close)
	mirrorRepo(t, filepath.Join(root, "boxed.git"))
	s := start(t, options{extraTop: mirrorBlock("boxed", filepath.Join(root, "boxed.git"), redirect.URL+"/up.git")})
	out, err := s.sync("boxed")
	if err == nil || !strings.Contains(out, "redirect refused") && !strings.Contains(out, "permission denied") {
		t.Errorf("gotctl sync: got %v\n%s\nwant the redirect or the connection to the other port refused", err, out)
	}
	if got := headsAndTags(t, filepath.Join(root, "boxed.git")); got != "" {
		t.Errorf("got references\n%s\nwant none", got)
	}
}

// TestMirrorReload: a mirror line added by gotctl reload is synced at
// once, without a restart; removed by another, the repository takes
// pushes again and gotctl info no longer lists it.
func TestMirrorReload(t *testing.T) {
	root := mirrorRoot(t)
	up := filepath.Join(root, "up.git")
	run(t, "git", "init", "-q", "--bare", "-b", "main", up)
	gittest.Generate(t, up, gittest.History{Commits: 5, Files: 3})
	gitBase, _ := gitUpstreams(t, root)
	path := filepath.Join(root, "later.git")
	mirrorRepo(t, path)
	plain := fmt.Sprintf("repository \"later\" {\n\tpath \"%s\"\n\tpermit ro anonymous\n\tpermit rw %s\n}\n", path, rwAccount)
	mirrored := mirrorBlock("later", path, gitBase+"/up.git")
	s := start(t, options{extraTop: plain})
	conf, err := os.ReadFile(s.conf)
	if err != nil {
		t.Fatal(err)
	}
	reload := func(from, to string) {
		t.Helper()
		data, err := os.ReadFile(s.conf)
		if err != nil {
			t.Fatal(err)
		}
		write(t, s.conf, strings.Replace(string(data), from, to, 1), 0o644)
		if out, err := s.gotctl("reload"); err != nil {
			t.Fatalf("gotctl reload: %v\n%s", err, out)
		}
	}
	if !strings.Contains(string(conf), plain) {
		t.Fatalf("the configuration lacks the block:\n%s", conf)
	}
	reload(plain, mirrored)
	s.waitMirrorInfo(fmt.Sprintf("mirror %q from %s/up.git: last success 2", "later", gitBase))
	if got, want := headsAndTags(t, path), headsAndTags(t, up); got != want {
		t.Errorf("after the reload: got references\n%s\nwant\n%s", got, want)
	}

	reload(mirrored, plain)
	if info, _ := s.gotctl("info"); strings.Contains(info, `mirror "later"`) {
		t.Errorf("gotctl info lists a mirror no longer configured:\n%s", info)
	}
	work := s.clientDir("work")
	s.mustGit(work, nil, "clone", "-q", s.gitURL("later"), "w")
	w := filepath.Join(work, "w")
	httpURL := s.httpURL(rwAccount+":"+strings.ReplaceAll(password, " ", "%20"), "later")
	s.mustGit(w, nil, "push", "-q", httpURL, "HEAD:refs/heads/pushed")
}

// TestMirrorNotify: a sync that moves a mirror's branch is notified as
// a push is: the hook receives the moved reference with its new commit,
// from the user "mirror".
func TestMirrorNotify(t *testing.T) {
	h := newHook(t)
	h.start()
	spool := spoolParent(t)
	if os.Geteuid() == 0 {
		run(t, "chown", rootDaemon, spool)
	}
	root := mirrorRoot(t)
	up := filepath.Join(root, "up.git")
	run(t, "git", "init", "-q", "--bare", "-b", "main", up)
	gittest.Generate(t, up, gittest.History{Commits: 4, Files: 3})
	gitBase, _ := gitUpstreams(t, root)
	path := filepath.Join(root, "noted.git")
	mirrorRepo(t, path)
	o := notifyOptions(t, spool, h, nil, "")
	block := strings.Replace(mirrorBlock("noted", path, gitBase+"/up.git"), "\tmirror from", o.extraTest+"\n\tmirror from", 1)
	s := start(t, options{extraTop: o.extraTop + "\n" + block, extraSecrets: o.extraSecrets})
	if out, err := s.sync("noted"); err != nil {
		t.Fatalf("first sync: %v\n%s", err, out)
	}
	// The first sync creates every reference upstream has, each
	// notified on its own: all of them are waited for, or one of them
	// could come after the second sync's.
	refs := len(strings.Fields(run(t, "git", "--git-dir", up, "for-each-ref", "--format=%(refname)")))
	first := len(h.wait(refs, 10*time.Second))
	if first != refs {
		t.Fatalf("got %d notifications of the first sync; want %d, one a reference", first, refs)
	}

	tree := strings.TrimSpace(run(t, "git", "--git-dir", up, "rev-parse", "main^{tree}"))
	commit := strings.TrimSpace(run(t, "git", "--git-dir", up, "-c", "user.name=u", "-c", "user.email=u@example.org", "commit-tree", "-p", "main", "-m", "upstream moved", tree))
	run(t, "git", "--git-dir", up, "update-ref", "refs/heads/main", commit)
	if out, err := s.sync("noted"); err != nil {
		t.Fatalf("second sync: %v\n%s", err, out)
	}
	docs := h.wait(first+1, 30*time.Second)
	if len(docs) <= first {
		t.Fatalf("got %d notifications; want one more after the second sync", len(docs))
	}
	d := docs[len(docs)-1]
	if d.Repo != "noted" || d.User != "mirror" || d.Ref.Name != "refs/heads/main" || d.Ref.New != commit ||
		len(d.Notifications) == 0 || !strings.Contains(d.Notifications[0].Message, "upstream moved") {
		t.Errorf("notification %+v; want refs/heads/main moved to %s by mirror", d, commit)
	}
}

// TestMirrorFromGotd: a gotd mirrors a repository another gotd serves
// over git://, and follows a push made to it.
func TestMirrorFromGotd(t *testing.T) {
	t.Parallel()
	up := start(t, options{})
	root := mirrorRoot(t)
	path := filepath.Join(root, "copy.git")
	mirrorRepo(t, path)
	s := start(t, options{extraTop: mirrorBlock("copy", path, up.gitURL("test"))})
	upstream := filepath.Join(up.dir, "test.git")
	for _, stage := range []string{"first sync", "after a push upstream"} {
		if stage != "first sync" {
			work := up.clientDir("work")
			up.mustGit(work, nil, "clone", "-q", up.gitURL("test"), "w")
			w := filepath.Join(work, "w")
			write(t, filepath.Join(w, "more.txt"), "more\n", 0o644)
			up.mustGit(w, nil, "add", "more.txt")
			up.mustGit(w, nil, "-c", "user.name=u", "-c", "user.email=u@example.org", "commit", "-q", "-m", "more")
			pushURL := up.httpURL(rwAccount+":"+strings.ReplaceAll(password, " ", "%20"), "test")
			up.mustGit(w, nil, "push", "-q", pushURL, "HEAD:refs/heads/from-gotd")
		}
		if out, err := s.sync("copy"); err != nil {
			t.Fatalf("%s: gotctl sync: %v\n%s", stage, err, out)
		}
		if got, want := headsAndTags(t, path), headsAndTags(t, upstream); got != want {
			t.Errorf("%s: got references\n%s\nwant\n%s", stage, got, want)
		}
		fsck(t, path)
	}
}
