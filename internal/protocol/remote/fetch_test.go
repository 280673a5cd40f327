package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gotd/internal/git/oid"
	"gotd/internal/git/repo"
	"gotd/internal/gittest"
	"gotd/internal/protocol/pktline"
)

// upstreams starts C Git's servers on the bare repositories under root
// and returns each one's URL maker: git daemon, and git http-backend
// behind a web server (net/http's CGI), and the local path.
func upstreams(t *testing.T, root string) map[string]func(name string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	daemon := exec.CommandContext(ctx, "git", "daemon", "--export-all", "--enable=receive-pack", "--reuseaddr", "--listen=127.0.0.1", fmt.Sprintf("--port=%d", port), "--base-path="+root, root)
	daemon.Env = gittest.Env(t)
	// git daemon runs git-daemon, which forks per connection: the
	// whole process group is stopped.
	daemon.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	daemon.Cancel = func() error { return syscall.Kill(-daemon.Process.Pid, syscall.SIGKILL) }
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); daemon.Wait() })
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			break
		}
		if i == 100 {
			t.Fatal("git daemon does not listen")
		}
		time.Sleep(50 * time.Millisecond)
	}
	git, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	web := httptest.NewServer(&cgi.Handler{Path: git, Args: []string{"http-backend"},
		Env: append(gittest.Env(t), "GIT_PROJECT_ROOT="+root, "GIT_HTTP_EXPORT_ALL=1")})
	t.Cleanup(web.Close)
	servers := map[string]func(string) string{
		"git daemon":   func(name string) string { return fmt.Sprintf("git://127.0.0.1:%d/%s", port, name) },
		"http-backend": func(name string) string { return web.URL + "/" + name },
		"local path":   func(name string) string { return filepath.Join(root, name) },
	}
	// dulwich's git:// server (protocol version 0 only: asked for
	// version 2, it answers in version 0), from Debian's python3.
	if exec.Command("/usr/bin/python3", "-c", "import dulwich").Run() == nil {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dport := l.Addr().(*net.TCPAddr).Port
		l.Close()
		script := `import os, sys
from dulwich.repo import Repo
from dulwich.server import DictBackend, TCPGitServer
root = sys.argv[1]
repos = {("/" + n).encode(): Repo(os.path.join(root, n)) for n in os.listdir(root) if n.endswith(".git")}
TCPGitServer(DictBackend(repos), "127.0.0.1", int(sys.argv[2])).serve_forever()
`
		py := exec.CommandContext(ctx, "/usr/bin/python3", "-c", script, root, fmt.Sprint(dport))
		if err := py.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cancel(); py.Wait() })
		for i := 0; ; i++ {
			c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", dport))
			if err == nil {
				c.Close()
				break
			}
			if i == 200 {
				t.Fatal("dulwich does not listen")
			}
			time.Sleep(50 * time.Millisecond)
		}
		servers["dulwich"] = func(name string) string { return fmt.Sprintf("git://127.0.0.1:%d/%s", dport, name) }
	} else {
		t.Log("no dulwich for /usr/bin/python3: its server is not tried")
	}
	return servers
}

// mirrored lists a repository's branches and tags as C Git sees them.
func mirrored(t *testing.T, dir string) string {
	return gittest.Git(t, dir, "for-each-ref", "--format=%(objectname) %(refname)", "refs/heads/", "refs/tags/")
}

// TestFetchFromCGit mirrors a repository from C Git's git daemon and
// http-backend, dulwich's git:// server, and a local path, asking for
// protocol version 2 and for version 0: the first fetch makes the
// branches and tags equal to the upstream's, and after the upstream
// gains commits, moves a branch backwards, deletes a tag and adds a
// branch, the next fetch follows; a fetch with nothing new moves
// nothing; every mirror passes git fsck.
func TestFetchFromCGit(t *testing.T) {
	root := t.TempDir()
	up := filepath.Join(root, "up.git")
	gittest.Git(t, "", "-c", "init.defaultBranch=main", "init", "-q", "--bare", up)
	gittest.Generate(t, up, gittest.History{Commits: 15, Branches: 2, Files: 6})
	servers := upstreams(t, root)
	type mirror struct {
		r   *repo.Repo
		url string
		v0  bool
	}
	mirrors := map[string]mirror{}
	for name, url := range servers {
		for _, v0 := range []bool{false, true} {
			mirrors[fmt.Sprintf("%s v0=%v", name, v0)] = mirror{url: url("up.git"), v0: v0}
		}
	}
	for name, m := range mirrors {
		dir := filepath.Join(t.TempDir(), "mirror.git")
		r, err := repo.Init(dir, repo.InitOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		res, err := Fetch(context.Background(), FetchOptions{URL: m.url, Repo: r, Prune: true, V0: m.v0})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got, want := mirrored(t, dir), mirrored(t, up); got != want {
			t.Fatalf("%s: mirror's references\n%s\nwant\n%s", name, got, want)
		}
		if res.Head != "refs/heads/main" || res.Pack == "" {
			t.Errorf("%s: result %+v; want HEAD refs/heads/main and a pack", name, res)
		}
		gittest.Git(t, dir, "fsck", "--full", "--strict", "--no-dangling")
		m.r = r
		mirrors[name] = m
	}

	work := filepath.Join(t.TempDir(), "work")
	gittest.Git(t, "", "clone", "-q", up, work)
	os.WriteFile(filepath.Join(work, "new.txt"), []byte("new\n"), 0o644)
	gittest.Git(t, work, "add", "new.txt")
	gittest.Git(t, work, "commit", "-q", "-m", "new")
	gittest.Git(t, work, "push", "-q", "origin", "main", "HEAD:refs/heads/added")
	tags := strings.Fields(gittest.Git(t, up, "for-each-ref", "--format=%(refname)", "refs/tags/"))
	gittest.Git(t, up, "update-ref", "-d", tags[0])
	branches := strings.Fields(gittest.Git(t, up, "for-each-ref", "--format=%(refname)", "refs/heads/"))
	for _, b := range branches {
		if b != "refs/heads/main" && b != "refs/heads/added" {
			gittest.Git(t, up, "update-ref", b, b+"~1") // moved backwards: forced
			break
		}
	}
	for name, m := range mirrors {
		r := m.r
		res, err := Fetch(context.Background(), FetchOptions{URL: m.url, Repo: r, Prune: true, V0: m.v0})
		if err != nil {
			t.Fatalf("%s: second fetch: %v", name, err)
		}
		if got, want := mirrored(t, r.GitDir), mirrored(t, up); got != want {
			t.Fatalf("%s: mirror's references after the upstream moved\n%s\nwant\n%s", name, got, want)
		}
		if len(res.Updates) != 4 {
			t.Errorf("%s: %d updates %+v; want 4 (main, added, the moved branch, the deleted tag)", name, len(res.Updates), res.Updates)
		}
		gittest.Git(t, r.GitDir, "fsck", "--full", "--strict", "--no-dangling")
		res, err = Fetch(context.Background(), FetchOptions{URL: m.url, Repo: r, Prune: true, V0: m.v0})
		if err != nil || len(res.Updates) != 0 || res.Pack != "" {
			t.Errorf("%s: fetch with nothing new: %+v, %v; want nothing done", name, res, err)
		}
	}
}

// liar is an upstream speaking protocol version 2 over git:// that
// answers ls-refs with refs and fetch with pack, whatever is asked.
func liar(t *testing.T, refs []string, pack []byte) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				pr := pktline.NewReader(c)
				pr.Read() // the request line
				var b bytes.Buffer
				pw := pktline.NewWriter(&b)
				pw.WriteString("version 2\n")
				pw.WriteString("ls-refs\n")
				pw.WriteString("fetch\n")
				pw.Flush()
				c.Write(b.Bytes())
				for {
					var cmd string
					for {
						kind, p, err := pr.Read()
						if err != nil {
							return
						}
						if kind == pktline.Flush {
							break
						}
						if s, ok := strings.CutPrefix(string(p), "command="); ok {
							cmd = strings.TrimSpace(s)
						}
					}
					b.Reset()
					switch cmd {
					case "ls-refs":
						for _, r := range refs {
							pw.WriteString(r + "\n")
						}
						pw.Flush()
					case "fetch":
						pw.WriteString("packfile\n")
						for len(pack) > 0 {
							n := min(len(pack), 60000)
							pw.Write(append([]byte{1}, pack[:n]...))
							pack = pack[n:]
						}
						pw.Flush()
					}
					c.Write(b.Bytes())
				}
			}()
		}
	}()
	return "git://" + l.Addr().String() + "/r"
}

// TestFetchHostile: upstreams that lie leave the mirror exactly as it
// was, with an error that says why.
func TestFetchHostile(t *testing.T) {
	commit := strings.Repeat("1", 40)
	var empty bytes.Buffer
	h := oid.SHA1.New()
	hdr := []byte("PACK\x00\x00\x00\x02\x00\x00\x00\x00")
	h.Write(hdr)
	empty.Write(hdr)
	empty.Write(h.Sum(nil))
	for _, c := range []struct {
		name string
		refs []string
		pack []byte
		want string
	}{
		{"missing objects", []string{commit + " refs/heads/main"}, empty.Bytes(), "refs/heads/main: object " + commit},
		{"corrupt pack", []string{commit + " refs/heads/main"}, []byte("PACK\x00\x00\x00\x02\x00\x00\x00\x01garbage"), "pack is invalid"},
		{"bad name", []string{commit + " refs/heads/a..b"}, nil, "invalid reference name"},
		{"bad id", []string{"xyz refs/heads/main"}, nil, "malformed object id"},
		{"listed twice", []string{commit + " refs/heads/main", commit + " refs/heads/main"}, nil, "listed twice"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "mirror.git")
			r, err := repo.Init(dir, repo.InitOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			before := snapshot(t, dir)
			_, err = Fetch(context.Background(), FetchOptions{URL: liar(t, c.refs, c.pack), Repo: r, Timeout: 20 * time.Second})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v; want an error holding %q", err, c.want)
			}
			if after := snapshot(t, dir); after != before {
				t.Errorf("the mirror changed:\n%s\nwant\n%s", after, before)
			}
		})
	}
	// Endless references: bounded.
	var many []string
	for i := range 200 {
		many = append(many, fmt.Sprintf("%s refs/heads/b%d", commit, i))
	}
	r, err := repo.Init(filepath.Join(t.TempDir(), "m.git"), repo.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := Fetch(context.Background(), FetchOptions{URL: liar(t, many, nil), Repo: r, MaxRefs: 100}); !errors.Is(err, ErrUpstream) {
		t.Errorf("200 references with MaxRefs 100: got %v; want ErrUpstream", err)
	}
}

// snapshot lists the files of a repository with their sizes.
func snapshot(t *testing.T, dir string) string {
	var b strings.Builder
	filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err == nil {
			fmt.Fprintf(&b, "%s %d\n", strings.TrimPrefix(path, dir), fi.Size())
		}
		return nil
	})
	return b.String()
}

// TestFetchBasicAuth: FetchOptions.Auth reaches an HTTP upstream that
// wants it (git http-backend behind a check of the credentials); without
// it, or with a wrong password, the fetch fails with the upstream's
// status and the repository is left empty.
func TestFetchBasicAuth(t *testing.T) {
	root := t.TempDir()
	up := filepath.Join(root, "up.git")
	gittest.Git(t, "", "-c", "init.defaultBranch=main", "init", "-q", "--bare", up)
	gittest.Generate(t, up, gittest.History{Commits: 4, Files: 3})
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git is not installed")
	}
	backend := &cgi.Handler{Path: git, Args: []string{"http-backend"},
		Env: append(gittest.Env(t), "GIT_PROJECT_ROOT="+root, "GIT_HTTP_EXPORT_ALL=1")}
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "mirror" || p != "s3cret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(web.Close)
	for _, tc := range []struct {
		name string
		auth *BasicAuth
		ok   bool
	}{
		{"none", nil, false},
		{"wrong password", &BasicAuth{User: "mirror", Password: "guess"}, false},
		{"right", &BasicAuth{User: "mirror", Password: "s3cret"}, true},
	} {
		dir := filepath.Join(t.TempDir(), "mirror.git")
		r, err := repo.Init(dir, repo.InitOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = Fetch(context.Background(), FetchOptions{URL: web.URL + "/up.git", Repo: r, Prune: true, Auth: tc.auth})
		r.Close()
		got := mirrored(t, dir)
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.ok && got != mirrored(t, up):
			t.Errorf("%s: references\n%s\nwant\n%s", tc.name, got, mirrored(t, up))
		case !tc.ok && (err == nil || !strings.Contains(err.Error(), "HTTP 401")):
			t.Errorf("%s: got %v; want HTTP 401", tc.name, err)
		case !tc.ok && got != "":
			t.Errorf("%s: references %q; want none", tc.name, got)
		}
	}
}

// TestFetchPackObjects: FetchOptions.PackObjects is told the object
// count of the pack the upstream sends, once, before the pack is
// read; a fetch that needs no pack does not call it.
func TestFetchPackObjects(t *testing.T) {
	root := t.TempDir()
	up := filepath.Join(root, "up.git")
	gittest.Git(t, "", "-c", "init.defaultBranch=main", "init", "-q", "--bare", up)
	gittest.Generate(t, up, gittest.History{Commits: 8, Branches: 2, Files: 4})
	dir := filepath.Join(t.TempDir(), "mirror.git")
	r, err := repo.Init(dir, repo.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var counts []uint32
	opts := FetchOptions{URL: up, Repo: r, Prune: true, PackObjects: func(n uint32) { counts = append(counts, n) }}
	res, err := Fetch(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := os.ReadFile(strings.TrimSuffix(res.Pack, ".pack") + ".idx")
	if err != nil {
		t.Fatal(err)
	}
	want := len(strings.Split(strings.TrimSpace(gittest.GitInput(t, dir, idx, "show-index")), "\n"))
	if len(counts) != 1 || int(counts[0]) != want {
		t.Errorf("got PackObjects called with %v; want [%d]", counts, want)
	}
	counts = nil
	if _, err := Fetch(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if len(counts) != 0 {
		t.Errorf("a fetch with nothing new: got PackObjects called with %v; want no call", counts)
	}
}
