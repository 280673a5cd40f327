package remote

import (
	"context"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gotd/internal/git/oid"
	"gotd/internal/git/repo"
	"gotd/internal/gittest"
)

// TestSendToCGit pushes a repository's branches and tags to empty
// targets served by C Git's git daemon (receive-pack enabled) and
// http-backend (http.receivepack), and to a local path (gotd's own
// receive-pack, in-process): the targets end with the same references
// and pass fsck; after the source gains a commit, moves a branch back
// and deletes a tag, a second Send follows; a reference another writer
// moved at the target is not overwritten when Expect says so.
func TestSendToCGit(t *testing.T) {
	root := t.TempDir()
	src := filepath.Join(t.TempDir(), "src.git")
	gittest.Git(t, "", "-c", "init.defaultBranch=main", "init", "-q", "--bare", src)
	gittest.Generate(t, src, gittest.History{Commits: 12, Branches: 2, Files: 5})
	names := []string{"daemon.git", "http.git", "local.git"}
	for _, n := range names {
		dir := filepath.Join(root, n)
		gittest.Git(t, "", "-c", "init.defaultBranch=main", "init", "-q", "--bare", dir)
		gittest.Git(t, dir, "config", "http.receivepack", "true")
		gittest.Git(t, dir, "config", "receive.fsckObjects", "true")
	}
	servers := upstreams(t, root)
	urls := map[string]string{
		"daemon.git": servers["git daemon"]("daemon.git"),
		"http.git":   servers["http-backend"]("http.git"),
		"local.git":  servers["local path"]("local.git"),
	}
	r, err := repo.Open(src, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, n := range names {
		res, err := Send(context.Background(), SendOptions{URL: urls[n], Repo: r})
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if f := res.Failed(); len(f) > 0 || len(res.Updates) == 0 {
			t.Fatalf("%s: %+v", n, res.Updates)
		}
		if got, want := mirrored(t, filepath.Join(root, n)), mirrored(t, src); got != want {
			t.Fatalf("%s: target's references\n%s\nwant\n%s", n, got, want)
		}
		gittest.Git(t, filepath.Join(root, n), "fsck", "--full", "--strict", "--no-dangling")
	}

	work := filepath.Join(t.TempDir(), "work")
	gittest.Git(t, "", "clone", "-q", src, work)
	os.WriteFile(filepath.Join(work, "n.txt"), []byte("n\n"), 0o644)
	gittest.Git(t, work, "add", "n.txt")
	gittest.Git(t, work, "commit", "-q", "-m", "n")
	gittest.Git(t, work, "push", "-q", "origin", "main")
	tags := strings.Fields(gittest.Git(t, src, "for-each-ref", "--format=%(refname)", "refs/tags/"))
	gittest.Git(t, src, "update-ref", "-d", tags[0])
	branches := strings.Fields(gittest.Git(t, src, "for-each-ref", "--format=%(refname)", "refs/heads/"))
	var moved string
	for _, b := range branches {
		if b != "refs/heads/main" {
			gittest.Git(t, src, "update-ref", b, b+"~1")
			moved = b
			break
		}
	}
	r.Rescan()
	for _, n := range names {
		res, err := Send(context.Background(), SendOptions{URL: urls[n], Repo: r})
		if err != nil {
			t.Fatalf("%s: second send: %v", n, err)
		}
		if f := res.Failed(); len(f) > 0 || len(res.Updates) != 3 {
			t.Errorf("%s: second send %+v; want 3 updates done", n, res.Updates)
		}
		if got, want := mirrored(t, filepath.Join(root, n)), mirrored(t, src); got != want {
			t.Fatalf("%s: after the second send\n%s\nwant\n%s", n, got, want)
		}
		gittest.Git(t, filepath.Join(root, n), "fsck", "--full", "--strict", "--no-dangling")
	}

	// Another writer moves the branch at the target: with Expect
	// giving the value last sent, it is not overwritten.
	target := filepath.Join(root, "daemon.git")
	last := strings.TrimSpace(gittest.Git(t, target, "rev-parse", moved))
	gittest.Git(t, target, "update-ref", moved, last+"~1")
	gittest.Git(t, src, "update-ref", moved, strings.TrimSpace(gittest.Git(t, src, "rev-parse", "refs/heads/main")))
	expect := func(name string) (oid.ID, bool) {
		if name == moved {
			id, _ := oid.ParseHex(oid.SHA1, last)
			return id, true
		}
		id, err := oid.ParseHex(oid.SHA1, strings.TrimSpace(gittest.Git(t, target, "rev-parse", name)))
		return id, err == nil
	}
	res, err := Send(context.Background(), SendOptions{URL: urls["daemon.git"], Repo: r, Expect: expect})
	if err != nil {
		t.Fatal(err)
	}
	if f := res.Failed(); len(f) != 1 || f[0].Name != moved || f[0].Status != StatusMovedElsewhere {
		t.Errorf("send over another writer's move: %+v; want %s held back", res.Updates, moved)
	}
	if got := strings.TrimSpace(gittest.Git(t, target, "rev-parse", moved)); got == last || got != strings.TrimSpace(gittest.Git(t, target, "rev-parse", last+"~1")) {
		t.Errorf("target's %s = %s; want the other writer's value", moved, got)
	}
}

// TestSendHTTPAuth pushes to http-backend behind a web server that
// asks for basic authentication: without credentials the target is
// refused with HTTP 401 and left empty; with HTTPUser and HTTPPassword
// it ends equal to the source.
func TestSendHTTPAuth(t *testing.T) {
	root := t.TempDir()
	src := filepath.Join(t.TempDir(), "src.git")
	gittest.Git(t, "", "-c", "init.defaultBranch=main", "init", "-q", "--bare", src)
	gittest.Generate(t, src, gittest.History{Commits: 4, Files: 3})
	dir := filepath.Join(root, "t.git")
	gittest.Git(t, "", "-c", "init.defaultBranch=main", "init", "-q", "--bare", dir)
	gittest.Git(t, dir, "config", "http.receivepack", "true")
	git, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	backend := &cgi.Handler{Path: git, Args: []string{"http-backend"},
		Env: append(gittest.Env(t), "GIT_PROJECT_ROOT="+root, "GIT_HTTP_EXPORT_ALL=1")}
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if u, p, ok := req.BasicAuth(); !ok || u != "mirror" || p != "s3cret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, req)
	}))
	t.Cleanup(web.Close)
	r, err := repo.Open(src, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := Send(context.Background(), SendOptions{URL: web.URL + "/t.git", Repo: r}); err == nil || !strings.Contains(err.Error(), "HTTP 401") {
		t.Errorf("without credentials: got %v; want HTTP 401", err)
	}
	res, err := Send(context.Background(), SendOptions{URL: web.URL + "/t.git", Repo: r, Auth: &BasicAuth{User: "mirror", Password: "s3cret"}})
	if err != nil {
		t.Fatal(err)
	}
	if f := res.Failed(); len(f) > 0 || len(res.Updates) == 0 {
		t.Fatalf("%+v", res.Updates)
	}
	if got, want := mirrored(t, dir), mirrored(t, src); got != want {
		t.Fatalf("target's references\n%s\nwant\n%s", got, want)
	}
}
