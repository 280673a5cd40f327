package receive

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"gotd/internal/gittest"
)

// versions are the protocol versions every case runs in (version 2
// falls back to version 0 for pushes).
var versions = []string{"0", "2"}

// fixture is a server repository and a client work tree cloned from it
// by C Git.
type fixture struct {
	server, work string
	rp, result   string
	v            string
}

func newFixture(t *testing.T, v, format string, empty bool) *fixture {
	t.Helper()
	server := gittest.InitBare(t, format)
	work := filepath.Join(t.TempDir(), "work")
	if !empty {
		gittest.Generate(t, server, gittest.History{Commits: 10, Branches: 2, Files: 6})
		gittest.Git(t, "", "clone", "-q", server, work)
	} else {
		gittest.Git(t, "", "-c", "init.defaultBranch=main", "init", "-q", "--object-format="+format, work)
	}
	rp, result := receivePack(t)
	return &fixture{server: server, work: work, rp: rp, result: result, v: v}
}

// push runs git push from the work tree to the server and returns its
// error and standard error.
func (f *fixture) push(t *testing.T, args ...string) (string, error) {
	t.Helper()
	a := append([]string{"-c", "protocol.version=" + f.v, "push", "--receive-pack=" + f.rp, "--porcelain"}, args...)
	return gittest.Run(t, f.work, nil, a...)
}

func (f *fixture) mustPush(t *testing.T, args ...string) string {
	t.Helper()
	out, err := f.push(t, args...)
	if err != nil {
		t.Fatalf("push %v: %v\n%s", args, err, out)
	}
	return out
}

func (f *fixture) commit(t *testing.T, name, content string) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(f.work, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	gittest.Git(t, f.work, "add", name)
	gittest.Git(t, f.work, "commit", "-q", "-m", "change "+name)
	return strings.TrimSpace(gittest.Git(t, f.work, "rev-parse", "HEAD"))
}

func (f *fixture) ref(t *testing.T, name string) string {
	t.Helper()
	out, err := gittest.Run(t, f.server, nil, "rev-parse", "-q", "--verify", name)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(out)
}

func (f *fixture) fsck(t *testing.T) {
	t.Helper()
	gittest.Git(t, f.server, "fsck", "--full", "--no-dangling")
}

// snapshot hashes every file of a directory tree.
func snapshot(t testing.TB, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			lines = append(lines, rel+"/")
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		lines = append(lines, fmt.Sprintf("%s %x", rel, sha256.Sum256(b)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func TestPush(t *testing.T) {
	for _, v := range versions {
		t.Run("v"+v, func(t *testing.T) {
			f := newFixture(t, v, "sha1", false)
			// New branch.
			id := f.commit(t, "a.txt", "a\n")
			f.mustPush(t, "origin", "HEAD:refs/heads/new")
			if f.ref(t, "refs/heads/new") != id {
				t.Fatal("new branch not created")
			}
			// Fast-forward.
			id2 := f.commit(t, "b.txt", "b\n")
			f.mustPush(t, "origin", "HEAD:refs/heads/new")
			if f.ref(t, "refs/heads/new") != id2 {
				t.Fatal("fast-forward not applied")
			}
			// Non-fast-forward: the client refuses, --force goes through.
			gittest.Git(t, f.work, "reset", "-q", "--hard", "HEAD~2")
			id3 := f.commit(t, "c.txt", "c\n")
			if out, err := f.push(t, "origin", "HEAD:refs/heads/new"); err == nil {
				t.Fatalf("non-fast-forward push accepted: %s", out)
			}
			if f.ref(t, "refs/heads/new") != id2 {
				t.Fatal("rejected push moved the branch")
			}
			f.mustPush(t, "--force", "origin", "HEAD:refs/heads/new")
			if f.ref(t, "refs/heads/new") != id3 {
				t.Fatal("forced update not applied")
			}
			// Delete, loose and packed.
			f.mustPush(t, "origin", ":refs/heads/new")
			gittest.Git(t, f.server, "pack-refs", "--all")
			f.mustPush(t, "origin", ":refs/heads/topic0")
			if f.ref(t, "refs/heads/new") != "" || f.ref(t, "refs/heads/topic0") != "" {
				t.Fatal("deleted branches remain")
			}
			// A tag and a branch in one push, with push options.
			gittest.Git(t, f.work, "tag", "-a", "-m", "tag", "v9", id3)
			f.mustPush(t, "-o", "ci.skip", "-o", "reviewer=someone", "origin", "refs/tags/v9", "HEAD:refs/heads/two")
			res, _ := os.ReadFile(f.result)
			if !strings.Contains(string(res), "option ci.skip\noption reviewer=someone\n") {
				t.Errorf("push options not received:\n%s", res)
			}
			f.fsck(t)
		})
	}
}

func TestAtomicPush(t *testing.T) {
	for _, v := range versions {
		t.Run("v"+v, func(t *testing.T) {
			f := newFixture(t, v, "sha1", false)
			f.commit(t, "a.txt", "a\n")
			before := snapshot(t, filepath.Join(f.server, "refs"))
			main := f.ref(t, "refs/heads/main")
			wrong := f.ref(t, "refs/heads/topic1")
			// topic0's expected old value is stale: nothing may move.
			out, err := f.push(t, "--atomic", "--force-with-lease=topic0:"+wrong, "origin", "HEAD:refs/heads/main", "HEAD:refs/heads/topic0")
			if err == nil {
				t.Fatalf("atomic push with a stale lease accepted:\n%s", out)
			}
			if f.ref(t, "refs/heads/main") != main || snapshot(t, filepath.Join(f.server, "refs")) != before {
				t.Error("a reference moved in a failed atomic push")
			}
			// Without --atomic the good update lands on its own.
			f.push(t, "--force-with-lease=topic0:"+wrong, "origin", "HEAD:refs/heads/main", "HEAD:refs/heads/topic0")
			if f.ref(t, "refs/heads/main") == main {
				t.Error("non-atomic push did not apply its valid update")
			}
			f.fsck(t)
		})
	}
}

func TestFirstPush(t *testing.T) {
	for _, v := range versions {
		for _, branch := range []string{"main", "other"} {
			t.Run("v"+v+"/"+branch, func(t *testing.T) {
				f := newFixture(t, v, "sha1", true)
				id := f.commit(t, "a.txt", "a\n")
				f.mustPush(t, f.server, "HEAD:refs/heads/"+branch)
				if got := f.ref(t, "HEAD"); got != id {
					t.Errorf("HEAD resolves to %q, want %s", got, id)
				}
				f.fsck(t)
			})
		}
	}
}

func TestPushSHA256(t *testing.T) {
	f := newFixture(t, "0", "sha256", false)
	id := f.commit(t, "a.txt", "a\n")
	f.mustPush(t, "origin", "HEAD:refs/heads/sha256")
	if f.ref(t, "refs/heads/sha256") != id {
		t.Fatal("SHA-256 push not applied")
	}
	f.fsck(t)
}

func TestPushFromShallowClone(t *testing.T) {
	server := gittest.InitBare(t, "sha1")
	gittest.Generate(t, server, gittest.History{Commits: 10, Files: 6})
	work := filepath.Join(t.TempDir(), "work")
	gittest.Git(t, "", "clone", "-q", "--depth", "1", "file://"+server, work)
	rp, _ := receivePack(t)
	f := &fixture{server: server, work: work, rp: rp, v: "0"}
	id := f.commit(t, "shallow.txt", "from a shallow clone\n")
	f.mustPush(t, "origin", "HEAD:refs/heads/from-shallow")
	if f.ref(t, "refs/heads/from-shallow") != id {
		t.Fatal("push from a shallow clone not applied")
	}
	f.fsck(t)
}

func TestPushLargeFile(t *testing.T) {
	if testing.Short() {
		t.Skip("pushes 100 MB")
	}
	f := newFixture(t, "0", "sha1", false)
	big, err := os.Create(filepath.Join(f.work, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewSource(1))
	buf := make([]byte, 1<<20)
	for i := 0; i < 100; i++ {
		rnd.Read(buf)
		big.Write(buf)
	}
	big.Close()
	gittest.Git(t, f.work, "add", "big.bin")
	gittest.Git(t, f.work, "commit", "-q", "-m", "big")
	id := strings.TrimSpace(gittest.Git(t, f.work, "rev-parse", "HEAD"))
	f.mustPush(t, "origin", "HEAD:refs/heads/big")
	if f.ref(t, "refs/heads/big") != id {
		t.Fatal("large push not applied")
	}
	f.fsck(t)
}
