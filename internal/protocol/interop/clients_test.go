package interop

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	gogit "github.com/go-git/go-git/v5"
	gogitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing/object"

	"gotd/internal/gittest"
)

// python is Debian's interpreter, which has python3-pygit2 and
// python3-dulwich from the distribution's packages (.ci/run installs
// them).
const python = "/usr/bin/python3"

// needPython skips the test unless python has module.
func needPython(t *testing.T, module string) {
	t.Helper()
	if err := exec.Command(python, "-c", "import "+module).Run(); err != nil {
		if os.Getenv("CI") != "" || os.Getenv("GOTD_REQUIRE_INTEROP") != "" {
			t.Fatalf("%s cannot import %s: %v", python, module, err)
		}
		t.Skipf("%s cannot import %s (install python3-%s)", python, module, module)
	}
}

// runPython runs a script with arguments and returns its output.
func runPython(t *testing.T, script string, args ...string) string {
	t.Helper()
	cmd := exec.Command(python, append([]string{"-c", script}, args...)...)
	cmd.Env = append(gittest.Env(t), "PYTHONDONTWRITEBYTECODE=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("python: %v\n%s\n%s", err, out.String(), errb.String())
	}
	return out.String()
}

// setup returns a server and a bare source repository "src.git" under
// its root, with a generated history.
func setup(t *testing.T) (*server, string) {
	t.Helper()
	root := t.TempDir()
	src := filepath.Join(root, "src.git")
	gittest.Git(t, "", "-c", "init.defaultBranch=main", "init", "-q", "--bare", src)
	gittest.Generate(t, src, gittest.History{Commits: 20, Branches: 2, Files: 8})
	return startServer(t, root), src
}

// branchesAndTags lists the branches and tags of a repository, with
// remote-tracking branches of origin (where some clients put branches
// even in bare clones) named as branches.
func branchesAndTags(t *testing.T, dir string) string {
	t.Helper()
	out := gittest.Git(t, dir, "for-each-ref", "--format=%(objectname) %(refname)", "refs/heads", "refs/remotes/origin", "refs/tags")
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		l = strings.Replace(l, " refs/remotes/origin/", " refs/heads/", 1)
		if !strings.HasSuffix(l, " refs/heads/HEAD") {
			lines = append(lines, l)
		}
	}
	sort.Strings(lines)
	return strings.Join(slices.Compact(lines), "\n")
}

// emptyBare creates an empty bare repository name under the server's
// root.
func emptyBare(t *testing.T, s *server, name string) string {
	t.Helper()
	dir := filepath.Join(s.root, name)
	gittest.Git(t, "", "-c", "init.defaultBranch=main", "init", "-q", "--bare", dir)
	return dir
}

// checkNoSessionErrors fails the test if a session ended in error.
func checkNoSessionErrors(t *testing.T, s *server) {
	t.Helper()
	for _, err := range s.sessionErrors() {
		t.Errorf("session error: %v", err)
	}
}

// commitFile commits one new file in the work tree dir with C Git.
func commitFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	gittest.Git(t, dir, "add", name)
	gittest.Git(t, dir, "commit", "-q", "-m", "add "+name)
	return strings.TrimSpace(gittest.Git(t, dir, "rev-parse", "HEAD"))
}

func TestCGitOverGitProtocol(t *testing.T) {
	s, src := setup(t)
	for _, v := range []string{"0", "2"} {
		dst := filepath.Join(t.TempDir(), "c.git")
		gittest.Git(t, "", "-c", "protocol.version="+v, "clone", "-q", "--bare", s.url("src.git"), dst)
		gittest.Git(t, dst, "fsck", "--full")
		if a, b := branchesAndTags(t, dst), branchesAndTags(t, src); a != b {
			t.Errorf("v%s clone refs:\n%s\nwant\n%s", v, a, b)
		}
	}
	emptyBare(t, s, "push.git")
	work := filepath.Join(t.TempDir(), "work")
	gittest.Git(t, "", "clone", "-q", s.url("src.git"), work)
	id := commitFile(t, work, "c-git.txt", "pushed by C Git\n")
	gittest.Git(t, work, "push", "-q", s.url("push.git"), "HEAD:refs/heads/main")
	if got := strings.TrimSpace(gittest.Git(t, filepath.Join(s.root, "push.git"), "rev-parse", "main")); got != id {
		t.Errorf("pushed main = %s, want %s", got, id)
	}
	checkNoSessionErrors(t, s)
}

const pygit2Script = `
import sys, pygit2
url, path, work, pushurl = sys.argv[1:5]
r = pygit2.clone_repository(url, path, bare=True)
print("head", r.head.target)
print("refs", len([n for n in r.references if n.startswith("refs/tags/")]))
w = pygit2.clone_repository(url, work)
with open(work + "/pygit2.txt", "w") as f:
    f.write("written by libgit2\n")
w.index.add("pygit2.txt")
w.index.write()
tree = w.index.write_tree()
sig = pygit2.Signature("P Y", "py@example.com", 1800000000, 0)
c = w.create_commit("refs/heads/main", sig, sig, "pygit2 commit", tree, [w.head.target])
remote = w.remotes.create("dest", pushurl)
remote.push(["refs/heads/main:refs/heads/from-pygit2"])
print("pushed", c)
w.remotes["origin"].fetch()
print("fetched")
`

func TestPygit2(t *testing.T) {
	needPython(t, "pygit2")
	s, src := setup(t)
	dest := emptyBare(t, s, "dest.git")
	dir := t.TempDir()
	out := runPython(t, pygit2Script, s.url("src.git"), filepath.Join(dir, "bare.git"), filepath.Join(dir, "work"), s.url("dest.git"))
	head := strings.TrimSpace(gittest.Git(t, src, "rev-parse", "main"))
	if !strings.Contains(out, "head "+head) {
		t.Errorf("libgit2 clone HEAD: %s, want %s", out, head)
	}
	gittest.Git(t, filepath.Join(dir, "bare.git"), "fsck", "--full")
	if a, b := branchesAndTags(t, filepath.Join(dir, "bare.git")), branchesAndTags(t, src); a != b {
		t.Errorf("libgit2 clone refs:\n%s\nwant\n%s", a, b)
	}
	pushed := fieldAfter(out, "pushed")
	if got := strings.TrimSpace(gittest.Git(t, dest, "rev-parse", "refs/heads/from-pygit2")); got != pushed {
		t.Errorf("libgit2 push: server has %q, want %q", got, pushed)
	}
	gittest.Git(t, dest, "fsck", "--full")
	checkNoSessionErrors(t, s)
}

const dulwichScript = `
import sys
from dulwich import porcelain
from dulwich.repo import Repo
url, path, work, pushurl = sys.argv[1:5]
r = porcelain.clone(url, path, bare=True, errstream=sys.stderr.buffer)
print("head", r.refs[b"HEAD"].decode())
w = porcelain.clone(url, work, errstream=sys.stderr.buffer)
with open(work + "/dulwich.txt", "w") as f:
    f.write("written by dulwich\n")
porcelain.add(w, [work + "/dulwich.txt"])
c = porcelain.commit(w, message=b"dulwich commit", author=b"D U <d@example.com>", committer=b"D U <d@example.com>")
porcelain.push(w, pushurl, b"refs/heads/main:refs/heads/from-dulwich", errstream=sys.stderr.buffer)
print("pushed", c.decode())
porcelain.fetch(w, url, errstream=sys.stderr.buffer)
print("fetched")
`

func TestDulwich(t *testing.T) {
	needPython(t, "dulwich")
	s, src := setup(t)
	dest := emptyBare(t, s, "dest.git")
	dir := t.TempDir()
	out := runPython(t, dulwichScript, s.url("src.git"), filepath.Join(dir, "bare.git"), filepath.Join(dir, "work"), s.url("dest.git"))
	head := strings.TrimSpace(gittest.Git(t, src, "rev-parse", "main"))
	if !strings.Contains(out, "head "+head) {
		t.Errorf("dulwich clone HEAD: %s, want %s", out, head)
	}
	gittest.Git(t, filepath.Join(dir, "bare.git"), "fsck", "--full")
	pushed := fieldAfter(out, "pushed")
	if got := strings.TrimSpace(gittest.Git(t, dest, "rev-parse", "refs/heads/from-dulwich")); got != pushed {
		t.Errorf("dulwich push: server has %q, want %q", got, pushed)
	}
	gittest.Git(t, dest, "fsck", "--full")
	checkNoSessionErrors(t, s)
}

func TestGoGit(t *testing.T) {
	s, src := setup(t)
	dest := emptyBare(t, s, "dest.git")
	dir := t.TempDir()
	bare, err := gogit.PlainClone(filepath.Join(dir, "bare.git"), true, &gogit.CloneOptions{URL: s.url("src.git"), Tags: gogit.AllTags})
	if err != nil {
		t.Fatalf("go-git clone: %v", err)
	}
	head, err := bare.Head()
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSpace(gittest.Git(t, src, "rev-parse", "main")); head.Hash().String() != want {
		t.Errorf("go-git clone HEAD %v, want %s", head.Hash(), want)
	}
	gittest.Git(t, filepath.Join(dir, "bare.git"), "fsck", "--full")

	work, err := gogit.PlainClone(filepath.Join(dir, "work"), false, &gogit.CloneOptions{URL: s.url("src.git")})
	if err != nil {
		t.Fatalf("go-git clone: %v", err)
	}
	wt, err := work.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "work", "gogit.txt"), []byte("written by go-git\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := wt.Add("gogit.txt"); err != nil {
		t.Fatal(err)
	}
	sig := &object.Signature{Name: "G O", Email: "go@example.com"}
	c, err := wt.Commit("go-git commit", &gogit.CommitOptions{Author: sig, Committer: sig})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := work.CreateRemote(&gogitconfig.RemoteConfig{Name: "dest", URLs: []string{s.url("dest.git")}}); err != nil {
		t.Fatal(err)
	}
	err = work.Push(&gogit.PushOptions{RemoteName: "dest", RefSpecs: []gogitconfig.RefSpec{"refs/heads/main:refs/heads/from-gogit"}})
	if err != nil {
		t.Fatalf("go-git push: %v", err)
	}
	if got := strings.TrimSpace(gittest.Git(t, dest, "rev-parse", "refs/heads/from-gogit")); got != c.String() {
		t.Errorf("go-git push: server has %q, want %v", got, c)
	}
	gittest.Git(t, dest, "fsck", "--full")
	// An up-to-date fetch.
	if err := work.Fetch(&gogit.FetchOptions{RemoteName: "origin"}); err != nil && err != gogit.NoErrAlreadyUpToDate {
		t.Fatalf("go-git fetch: %v", err)
	}
	checkNoSessionErrors(t, s)
}

// fieldAfter returns the word after "key " in out.
func fieldAfter(out, key string) string {
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, key+" "); ok {
			return strings.TrimSpace(v)
		}
	}
	return fmt.Sprintf("(no %s line)", key)
}
