package e2enet

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	gogit "github.com/go-git/go-git/v5"
	gogitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
)

// TestGoGit clones and pushes with go-git, an implementation of the
// client independent of C Git, over SSH, git:// and HTTP.
func TestGoGit(t *testing.T) {
	s := start(t, options{})
	src := filepath.Join(s.dir, "test.git")
	main := strings.TrimSpace(run(t, "git", "--git-dir", src, "rev-parse", "main"))

	sshAuth, err := gitssh.NewPublicKeysFromFile(rwAccount, s.writerKey, "")
	if err != nil {
		t.Fatal(err)
	}
	hostPub, err := os.ReadFile(filepath.Join(s.dir, "ssh_host_ed25519_key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	hostKey, _, _, _, err := ssh.ParseAuthorizedKey(hostPub)
	if err != nil {
		t.Fatal(err)
	}
	sshAuth.HostKeyCallback = ssh.FixedHostKey(hostKey)

	for _, c := range []struct {
		name      string
		url       string
		auth      transport.AuthMethod // for the clone
		pushURL   string
		pushAuth  transport.AuthMethod
		wantClone bool
	}{
		{"ssh", s.sshURL(rwAccount, "test"), sshAuth, s.sshURL(rwAccount, "test"), sshAuth, true},
		{"git", s.gitURL("test"), nil, s.httpURL("", "test"), &githttp.BasicAuth{Username: rwAccount, Password: token}, true},
		{"http", s.httpURL("", "test"), nil, s.httpURL("", "test"), &githttp.BasicAuth{Username: rwAccount, Password: password}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), gitTimeout)
			defer cancel()
			dir := s.clientDir("go-git-" + c.name)
			// All tags, as C Git clones them: the test repository has
			// tags of a blob, a tree and a tag, which tag following
			// would leave out.
			r, err := gogit.PlainCloneContext(ctx, dir, false, &gogit.CloneOptions{URL: c.url, Auth: c.auth, Tags: gogit.AllTags})
			if err != nil {
				t.Fatalf("clone: %v", err)
			}
			head, err := r.Head()
			if err != nil || head.Hash().String() != main {
				t.Fatalf("HEAD %v %v, want %s", head, err, main)
			}
			if got, want := cloneRefs(t, filepath.Join(dir, ".git"), ""), serverRefs(t, src); got != want {
				t.Errorf("clone's branches and tags:\n%s\nwant the server's:\n%s", got, want)
			}
			fsck(t, dir)
			wt, err := r.Worktree()
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(dir, "go-git-"+c.name+".txt"), []byte("written by go-git\n"), 0o644)
			if _, err := wt.Add("go-git-" + c.name + ".txt"); err != nil {
				t.Fatal(err)
			}
			sig := &object.Signature{Name: "Go Git", Email: "go@example.com", When: time.Unix(1800000000, 0)}
			id, err := wt.Commit("go-git over "+c.name, &gogit.CommitOptions{Author: sig, Committer: sig})
			if err != nil {
				t.Fatal(err)
			}
			branch := "refs/heads/go-git-" + c.name
			r.CreateRemote(&gogitconfig.RemoteConfig{Name: "push", URLs: []string{c.pushURL}})
			err = r.PushContext(ctx, &gogit.PushOptions{RemoteName: "push", Auth: c.pushAuth,
				RefSpecs: []gogitconfig.RefSpec{gogitconfig.RefSpec("refs/heads/main:" + branch)}})
			if err != nil {
				t.Fatalf("push: %v", err)
			}
			if got := strings.TrimSpace(run(t, "git", "--git-dir", src, "rev-parse", branch)); got != id.String() {
				t.Errorf("pushed %s, server has %s", id, got)
			}
			fsck(t, src)
		})
	}
	// go-git without credentials is refused a push over HTTP.
	r, err := gogit.PlainOpen(s.clientDir("go-git-http"))
	if err != nil {
		t.Fatal(err)
	}
	err = r.Push(&gogit.PushOptions{RemoteName: "push", RefSpecs: []gogitconfig.RefSpec{"refs/heads/main:refs/heads/anonymous"}})
	if err == nil || !strings.Contains(err.Error(), "authentication required") {
		t.Errorf("anonymous push: %v", err)
	}
}

// serverRefs lists the branches and tags of a bare repository as sorted
// "id refname" lines.
func serverRefs(t testing.TB, gitDir string) string {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(refs(t, gitDir)), "\n") {
		if _, name, _ := strings.Cut(l, " "); strings.HasPrefix(name, "refs/heads/") || strings.HasPrefix(name, "refs/tags/") {
			lines = append(lines, l)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// cloneRefs lists a clone's remote-tracking branches of origin, named as
// the server's branches, and its tags, in the form of serverRefs. The
// clone's own branches, origin/HEAD and the branch pushed (which some
// clients also record as origin's) are left out.
func cloneRefs(t testing.TB, gitDir, pushed string) string {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(refs(t, gitDir)), "\n") {
		id, name, _ := strings.Cut(l, " ")
		if b, ok := strings.CutPrefix(name, "refs/remotes/origin/"); ok && b != "HEAD" && b != pushed {
			lines = append(lines, id+" refs/heads/"+b)
		} else if strings.HasPrefix(name, "refs/tags/") {
			lines = append(lines, l)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

const python = "/usr/bin/python3"

// needPython skips the test unless python has module, or fails it when
// the interop clients are required.
func needPython(t *testing.T, module string) {
	t.Helper()
	if err := exec.Command(python, "-c", "import "+module).Run(); err != nil {
		if os.Getenv("GOTD_REQUIRE_INTEROP") != "" {
			t.Fatalf("%s cannot import %s: %v", python, module, err)
		}
		t.Skipf("%s cannot import %s (install python3-%s)", python, module, module)
	}
}

// runPython runs a script with arguments, bounded in time, and returns
// its standard output.
func runPython(t *testing.T, script string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), gitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, append([]string{"-c", script}, args...)...)
	cmd.Env = append(safeEnv(t), "PYTHONDONTWRITEBYTECODE=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("python: %v\n%s\n%s", err, out.String(), errb.String())
	}
	return out.String()
}

// scriptValue is what a script printed on its line "key value".
func scriptValue(t *testing.T, out, key string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, " "); ok && k == key {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("script printed no %q line:\n%s", key, out)
	return ""
}

const dulwichScript = `
import sys
from dulwich import porcelain
url, work, pushurl, user, pw, branch = sys.argv[1:7]
w = porcelain.clone(url, work, errstream=sys.stderr.buffer)
print("head", w.refs[b"HEAD"].decode())
with open(work + "/dulwich.txt", "w") as f:
    f.write("written by dulwich\n")
porcelain.add(w, [work + "/dulwich.txt"])
c = porcelain.commit(w, message=b"dulwich commit", author=b"D U <d@example.com>", committer=b"D U <d@example.com>")
porcelain.push(w, pushurl, ("HEAD:refs/heads/" + branch).encode(), errstream=sys.stderr.buffer, username=user, password=pw)
print("pushed", c.decode())
`

// TestDulwich clones with dulwich over git:// and HTTP and pushes over
// HTTP with basic authentication.
func TestDulwich(t *testing.T) {
	needPython(t, "dulwich")
	s := start(t, options{})
	src := filepath.Join(s.dir, "test.git")
	main := strings.TrimSpace(run(t, "git", "--git-dir", src, "rev-parse", "main"))
	for name, url := range map[string]string{"git": s.gitURL("test"), "http": s.httpURL("", "test")} {
		branch := "dulwich-" + name
		want := serverRefs(t, src)
		work := filepath.Join(s.clientDir("dulwich"), name)
		out := runPython(t, dulwichScript, url, work, s.httpURL("", "test"), rwAccount, token, branch)
		checkScriptClient(t, name, src, work, out, main, branch, want)
	}
	fsck(t, src)
}

// checkScriptClient checks what a client script did: its clone's HEAD
// is main and its branches and tags are want (the server's before the
// push, plus branch), the clone is sound, and the commit it reported
// pushing is the server's branch.
func checkScriptClient(t *testing.T, name, src, work, out, main, branch, want string) {
	t.Helper()
	if head := scriptValue(t, out, "head"); head != main {
		t.Errorf("%s: clone HEAD %s, want %s", name, head, main)
	}
	if got := cloneRefs(t, filepath.Join(work, ".git"), branch); got != want {
		t.Errorf("%s: clone's branches and tags:\n%s\nwant the server's:\n%s", name, got, want)
	}
	fsck(t, work)
	pushed := scriptValue(t, out, "pushed")
	if got := strings.TrimSpace(run(t, "git", "--git-dir", src, "rev-parse", branch)); got != pushed {
		t.Errorf("%s: pushed %s, server has %s", name, pushed, got)
	}
}

const pygit2Script = `
import sys, pygit2
url, work, user, pw, branch = sys.argv[1:6]
w = pygit2.clone_repository(url, work)
print("head", str(w.head.target))
with open(work + "/pygit2.txt", "w") as f:
    f.write("written by libgit2\n")
w.index.add("pygit2.txt")
w.index.write()
tree = w.index.write_tree()
sig = pygit2.Signature("P Y", "py@example.com", 1800000000, 0)
c = w.create_commit("HEAD", sig, sig, "pygit2 commit", tree, [w.head.target])
cb = pygit2.RemoteCallbacks(credentials=pygit2.UserPass(user, pw))
w.remotes["origin"].push(["HEAD:refs/heads/" + branch], callbacks=cb)
print("pushed", str(c))
`

// TestPygit2 clones with libgit2 over HTTP and pushes with basic
// authentication. HTTPS is left to C Git: Debian's libgit2 1.5 is built
// on mbedTLS 2.28, which takes the test's authority from
// pygit2.settings.set_ssl_cert_locations but matches the host only
// against DNS names, and the test's certificate names 127.0.0.1 as an
// IP address, so libgit2 rejects it (mbedTLS matches IP addresses from
// 3.5 on).
func TestPygit2(t *testing.T) {
	needPython(t, "pygit2")
	s := start(t, options{})
	src := filepath.Join(s.dir, "test.git")
	main := strings.TrimSpace(run(t, "git", "--git-dir", src, "rev-parse", "main"))
	for name, url := range map[string]string{"http": s.httpURL("", "test"), "http-dot-git": s.httpURL("", "test.git")} {
		branch := "pygit2-" + name
		want := serverRefs(t, src)
		work := filepath.Join(s.clientDir("pygit2"), name)
		out := runPython(t, pygit2Script, url, work, rwAccount, password, branch)
		checkScriptClient(t, name, src, work, out, main, branch, want)
	}
	fsck(t, src)
}
