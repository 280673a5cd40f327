package receive

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gotd/internal/git/oid"
	"gotd/internal/git/refs"
	"gotd/internal/git/repo"
	"gotd/internal/gittest"
)

// End-to-end tests: the real git client pushes to this package's
// Serve (the test binary, run by git through --receive-pack), and C
// Git checks the result on disk: `git fsck --full` for the objects,
// rev-parse and show-ref for the references.

// versions are the protocol versions pushes run in; version 2 falls
// back to version 0 for pushes.
var versions = []string{"0", "1", "2"}

// fixture is a server repository and a client repository that pushes
// to it.
type fixture struct {
	server, work string
	result       string // where the served pushes record their Result
	v            string // protocol.version
}

// newFixture makes a server repository of the given format, with a
// generated history unless empty, and a client work tree: a clone of
// it, or a new repository for an empty server.
func newFixture(t *testing.T, v, format string, empty bool) *fixture {
	t.Helper()
	server := gittest.InitBare(t, format)
	work := filepath.Join(t.TempDir(), "work")
	if empty {
		gittest.Git(t, "", "-c", "init.defaultBranch=main", "init", "-q", "--object-format="+format, work)
		gittest.Git(t, work, "remote", "add", "origin", server)
	} else {
		gittest.Generate(t, server, gittest.History{Commits: 10, Branches: 2, Files: 6})
		gittest.Git(t, "", "clone", "-q", server, work)
	}
	return &fixture{server: server, work: work, result: filepath.Join(t.TempDir(), "result"), v: v}
}

// push runs git push in the work tree against the test server, with
// env set for the server, and returns git's standard error and its
// error.
func (f *fixture) push(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	a := append([]string{"-c", "protocol.version=" + f.v, "push", "--receive-pack=" + receivePackCmd(t, f.result, env...)}, args...)
	_, stderr, err := runGit(t, f.work, nil, a...)
	return stderr, err
}

func (f *fixture) mustPush(t *testing.T, args ...string) string {
	t.Helper()
	stderr, err := f.push(t, nil, args...)
	if err != nil {
		t.Fatalf("push %v: %v\n%s", args, err, stderr)
	}
	return stderr
}

// results returns what the served pushes since the last call
// recorded.
func (f *fixture) results(t *testing.T) []*result { return readResults(t, f.result) }

// lastResult returns the one push served since the last call.
func (f *fixture) lastResult(t *testing.T) *result {
	t.Helper()
	rs := f.results(t)
	if len(rs) != 1 {
		t.Fatalf("%d pushes served, want 1", len(rs))
	}
	return rs[0]
}

// commit writes content to name in the work tree and commits it.
func (f *fixture) commit(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(f.work, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	gittest.Git(t, f.work, "add", name)
	gittest.Git(t, f.work, "commit", "-q", "-m", "change "+name)
	return strings.TrimSpace(gittest.Git(t, f.work, "rev-parse", "HEAD"))
}

// ref returns what name resolves to in the server repository, "" if
// nothing.
func (f *fixture) ref(t *testing.T, name string) string {
	t.Helper()
	out, err := gittest.Run(t, f.server, nil, "rev-parse", "-q", "--verify", name)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(out)
}

// wantRef fails the test unless the server's name resolves to want.
func (f *fixture) wantRef(t *testing.T, name, want string) {
	t.Helper()
	if got := f.ref(t, name); got != want {
		t.Errorf("server %s = %q, want %q", name, got, want)
	}
}

// verify checks the server repository with C Git and that no
// quarantine directory is left.
func (f *fixture) verify(t *testing.T) {
	t.Helper()
	gittest.Git(t, f.server, "fsck", "--full", "--strict", "--no-dangling")
	if q := quarantines(t, f.server); len(q) > 0 {
		t.Errorf("quarantine left behind: %v", q)
	}
}

// runGit runs git with the test environment plus env, returning its
// standard output and standard error.
func runGit(t testing.TB, dir string, env []string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(gittest.Env(t), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// snapshot lists every file and directory of a tree with a hash of
// each file's content.
func snapshot(t testing.TB, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == repo.PruneLockFile {
			return nil // the empty lock file a push may create and leaves
		}
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
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// diffLines lists the lines only one of a and b has.
func diffLines(a, b string) string {
	in := map[string]int{}
	for _, l := range strings.Split(a, "\n") {
		in[l]--
	}
	for _, l := range strings.Split(b, "\n") {
		in[l]++
	}
	var out []string
	for l, n := range in {
		if n < 0 {
			out = append(out, "- "+l)
		} else if n > 0 {
			out = append(out, "+ "+l)
		}
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

func TestPush(t *testing.T) {
	for _, v := range versions {
		t.Run("v"+v, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, v, "sha1", false)

			// A new branch.
			id := f.commit(t, "a.txt", "a\n")
			f.mustPush(t, "origin", "HEAD:refs/heads/new")
			f.wantRef(t, "refs/heads/new", id)
			if r := f.lastResult(t); r.Commands["refs/heads/new"] != "" || !r.Pack || r.Err != "" {
				t.Errorf("new branch: served %+v", r)
			}

			// A fast-forward.
			id2 := f.commit(t, "b.txt", "b\n")
			f.mustPush(t, "origin", "HEAD:refs/heads/new")
			f.wantRef(t, "refs/heads/new", id2)
			f.results(t)

			// A non-fast-forward: git refuses it before sending any
			// command; --force sends it and the server takes it.
			gittest.Git(t, f.work, "reset", "-q", "--hard", "HEAD~2")
			id3 := f.commit(t, "c.txt", "c\n")
			if stderr, err := f.push(t, nil, "origin", "HEAD:refs/heads/new"); err == nil || !strings.Contains(stderr, "[rejected]") {
				t.Errorf("non-fast-forward push: err %v\n%s", err, stderr)
			}
			f.wantRef(t, "refs/heads/new", id2)
			if r := f.lastResult(t); len(r.Commands) != 0 || r.Err != "" {
				t.Errorf("non-fast-forward push: served %+v, want no command", r)
			}
			f.mustPush(t, "--force", "origin", "HEAD:refs/heads/new")
			f.wantRef(t, "refs/heads/new", id3)
			f.results(t)

			// Deletions: a loose reference, then a packed one. No pack
			// follows deletions.
			f.mustPush(t, "origin", ":refs/heads/new")
			f.wantRef(t, "refs/heads/new", "")
			gittest.Git(t, f.server, "pack-refs", "--all")
			f.mustPush(t, "origin", ":refs/heads/topic0")
			f.wantRef(t, "refs/heads/topic0", "")
			packed, _ := os.ReadFile(filepath.Join(f.server, "packed-refs"))
			if bytes.Contains(packed, []byte("refs/heads/topic0")) {
				t.Error("deleted reference still in packed-refs")
			}
			for _, r := range f.results(t) {
				if r.Pack || len(r.Commands) != 1 || r.Err != "" {
					t.Errorf("deletion: served %+v", r)
				}
			}

			// An annotated tag and a branch in one push, with push
			// options.
			gittest.Git(t, f.work, "tag", "-a", "-m", "tag", "v9", id3)
			f.mustPush(t, "-o", "ci.skip", "-o", "reviewer=someone else", "origin", "refs/tags/v9", "HEAD:refs/heads/two")
			f.wantRef(t, "refs/heads/two", id3)
			f.wantRef(t, "refs/tags/v9", strings.TrimSpace(gittest.Git(t, f.work, "rev-parse", "v9")))
			if r := f.lastResult(t); !slices.Equal(r.Options, []string{"ci.skip", "reviewer=someone else"}) {
				t.Errorf("push options = %q", r.Options)
			}

			// Deleting the branch HEAD names is refused, as C Git's
			// receive.denyDeleteCurrent does by default.
			main := f.ref(t, "refs/heads/main")
			stderr, err := f.push(t, nil, "origin", ":refs/heads/main")
			if err == nil || !strings.Contains(stderr, "deletion of the current branch prohibited") {
				t.Errorf("deleting main: err %v\n%s", err, stderr)
			}
			f.wantRef(t, "refs/heads/main", main)
			f.verify(t)
		})
	}
}

// TestAdvertisement checks the advertisement git receives, in its
// packet trace: every reference, no HEAD and no peeled lines, the
// capabilities, "version 1" first in version 1 only.
func TestAdvertisement(t *testing.T) {
	f := newFixture(t, "0", "sha1", false)
	var refs []string
	for _, l := range strings.Split(strings.TrimSpace(gittest.Git(t, f.server, "for-each-ref", "--format=%(objectname) %(refname)")), "\n") {
		refs = append(refs, l)
	}
	caps := "report-status report-status-v2 delete-refs side-band-64k quiet atomic ofs-delta push-options object-format=sha1 agent=gotd/0.1"
	for _, v := range versions {
		t.Run("v"+v, func(t *testing.T) {

			_, stderr, err := runGit(t, f.work, []string{"GIT_TRACE_PACKET=1"}, "-c", "protocol.version="+v, "push", "--dry-run",
				"--receive-pack="+receivePackCmd(t, f.result), "origin", "HEAD:refs/heads/dry")
			if err != nil {
				t.Fatalf("push --dry-run: %v\n%s", err, stderr)
			}
			var got []string
			re := regexp.MustCompile(`packet: +push< (.*)$`)
			for _, l := range strings.Split(stderr, "\n") {
				if m := re.FindStringSubmatch(l); m != nil {
					got = append(got, m[1])
				}
			}
			var want []string
			if v == "1" {
				want = append(want, "version 1")
			}
			want = append(want, refs[0]+`\0`+caps)
			want = append(want, refs[1:]...)
			want = append(want, "0000")
			if !slices.Equal(got, want) {
				t.Errorf("advertisement:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// TestAtomicPush pushes two updates atomically, one of which fails
// because its old value is stale, and checks that nothing moves.
func TestAtomicPush(t *testing.T) {
	for _, v := range []string{"0", "2"} {
		t.Run("v"+v, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, v, "sha1", false)
			id := f.commit(t, "a.txt", "a\n")
			main := f.ref(t, "refs/heads/main")
			topic0 := f.ref(t, "refs/heads/topic0")
			wrong := f.ref(t, "refs/heads/topic1")
			packs := snapshot(t, filepath.Join(f.server, "objects", "pack"))

			// The lease names a value topic0 does not have: git sees
			// it in the advertisement and, atomic, sends no command.
			stderr, err := f.push(t, nil, "--atomic", "--force-with-lease=topic0:"+wrong, "origin", "HEAD:refs/heads/main", "HEAD:refs/heads/topic0")
			if err == nil {
				t.Fatalf("atomic push with a stale lease accepted:\n%s", stderr)
			}
			if r := f.lastResult(t); len(r.Commands) != 0 {
				t.Errorf("stale lease: served %+v, want no command", r)
			}

			// topic0 moves on the server after the advertisement, as
			// if another push came first: the server finds the stale
			// old value and fails both.
			moved := f.ref(t, "refs/tags/v1.0^{commit}")
			race := []string{"GOTD_TEST_MOVE=refs/heads/topic0 " + moved}
			stderr, err = f.push(t, race, "--atomic", "--force", "origin", "HEAD:refs/heads/main", "HEAD:refs/heads/topic0")
			if err == nil {
				t.Fatalf("atomic push with a stale old value accepted:\n%s", stderr)
			}
			r := f.lastResult(t)
			if r.Commands["refs/heads/main"] != ngAtomic || r.Commands["refs/heads/topic0"] != ngStale || r.Pack {
				t.Errorf("atomic push: served %+v", r)
			}
			if !strings.Contains(stderr, "main ("+ngAtomic+")") || !strings.Contains(stderr, "topic0 ("+ngStale+")") {
				t.Errorf("atomic push: git says\n%s", stderr)
			}
			f.wantRef(t, "refs/heads/main", main)
			f.wantRef(t, "refs/heads/topic0", moved)
			if got := snapshot(t, filepath.Join(f.server, "objects", "pack")); got != packs {
				t.Errorf("failed atomic push installed a pack:\n%s", diffLines(packs, got))
			}

			// The same without --atomic: main moves, topic0 does not.
			gittest.Git(t, f.server, "update-ref", "refs/heads/topic0", topic0)
			stderr, err = f.push(t, race, "--force", "origin", "HEAD:refs/heads/main", "HEAD:refs/heads/topic0")
			if err == nil {
				t.Fatalf("push with a stale old value accepted:\n%s", stderr)
			}
			r = f.lastResult(t)
			if r.Commands["refs/heads/main"] != "" || r.Commands["refs/heads/topic0"] != ngStale || !r.Pack {
				t.Errorf("non-atomic push: served %+v", r)
			}
			f.wantRef(t, "refs/heads/main", id)
			f.wantRef(t, "refs/heads/topic0", moved)
			f.verify(t)
		})
	}
}

// TestPushCheck refuses one update through Options.Check.
func TestPushCheck(t *testing.T) {
	f := newFixture(t, "0", "sha1", false)
	id := f.commit(t, "a.txt", "a\n")
	stderr, err := f.push(t, []string{"GOTD_TEST_REFUSE=refs/heads/no"}, "origin", "HEAD:refs/heads/yes", "HEAD:refs/heads/no")
	if err == nil || !strings.Contains(stderr, "no (refused by test)") {
		t.Errorf("refused push: err %v\n%s", err, stderr)
	}
	f.wantRef(t, "refs/heads/yes", id)
	f.wantRef(t, "refs/heads/no", "")
	f.verify(t)
}

// TestFirstPush pushes into an empty repository whose HEAD names main:
// HEAD resolves afterwards, to main when main was pushed, else to the
// first branch pushed.
func TestFirstPush(t *testing.T) {
	cases := []struct {
		name     string
		refspecs []string
		head     string
	}{
		{"main", []string{"HEAD:refs/heads/main"}, "refs/heads/main"},
		{"other", []string{"HEAD:refs/heads/other"}, "refs/heads/other"},
		{"tag and other", []string{"HEAD:refs/tags/t", "HEAD:refs/heads/other"}, "refs/heads/other"},
		{"other and main", []string{"HEAD:refs/heads/other", "HEAD:refs/heads/main"}, "refs/heads/main"},
	}
	for _, v := range []string{"0", "2"} {
		for _, c := range cases {
			t.Run("v"+v+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				f := newFixture(t, v, "sha1", true)
				id := f.commit(t, "a.txt", "a\n")
				f.mustPush(t, append([]string{"origin"}, c.refspecs...)...)
				if got := strings.TrimSpace(gittest.Git(t, f.server, "symbolic-ref", "HEAD")); got != c.head {
					t.Errorf("HEAD -> %s, want %s", got, c.head)
				}
				f.wantRef(t, "HEAD", id)
				f.verify(t)
			})
		}
	}
}

func TestPushSHA256(t *testing.T) {
	for _, v := range []string{"0", "2"} {
		t.Run("v"+v, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, v, "sha256", false)
			id := f.commit(t, "a.txt", "a\n")
			f.mustPush(t, "origin", "HEAD:refs/heads/sha256", ":refs/heads/topic1")
			f.wantRef(t, "refs/heads/sha256", id)
			f.wantRef(t, "refs/heads/topic1", "")
			f.verify(t)
		})
	}
}

// TestPushFromShallowClone pushes from a clone of depth 1: to its
// origin, which has the history, and to an empty repository, which
// lacks the parents the client cannot send and so must refuse.
func TestPushFromShallowClone(t *testing.T) {
	server := gittest.InitBare(t, "sha1")
	gittest.Generate(t, server, gittest.History{Commits: 10, Files: 6})
	work := filepath.Join(t.TempDir(), "work")
	gittest.Git(t, "", "clone", "-q", "--depth", "1", "file://"+server, work)
	for _, v := range []string{"0", "2"} {
		f := &fixture{server: server, work: work, result: filepath.Join(t.TempDir(), "result"), v: v}
		id := f.commit(t, "shallow-"+v+".txt", "from a shallow clone\n")
		f.mustPush(t, "origin", "HEAD:refs/heads/from-shallow-"+v)
		f.wantRef(t, "refs/heads/from-shallow-"+v, id)
		f.verify(t)

		empty := &fixture{server: gittest.InitBare(t, "sha1"), work: work, result: f.result, v: v}
		before := snapshot(t, empty.server)
		stderr, err := empty.push(t, nil, empty.server, "HEAD:refs/heads/main")
		if err == nil || !strings.Contains(stderr, ngMissing) {
			t.Errorf("v%s: incomplete push from a shallow clone: err %v\n%s", v, err, stderr)
		}
		if after := snapshot(t, empty.server); after != before {
			t.Errorf("v%s: refused push changed the repository:\n%s", v, diffLines(before, after))
		}
		empty.verify(t)
	}
}

// TestPushProgress checks the "Resolving deltas" lines on band 2, and
// that quiet silences them.
func TestPushProgress(t *testing.T) {
	f := newFixture(t, "0", "sha1", false)
	big := strings.Repeat("a line of text that deltas well\n", 400)
	f.commit(t, "big.txt", big)
	f.mustPush(t, "origin", "HEAD:refs/heads/p")
	// Small changes to the big file: the pack holds deltas.
	f.commit(t, "big.txt", big+"one more\n")
	f.commit(t, "big.txt", "first\n"+big+"one more\n")
	stderr := f.mustPush(t, "--progress", "origin", "HEAD:refs/heads/p")
	if !regexp.MustCompile(`remote: Resolving deltas: 100% \((\d+)/(\d+)\), done\.`).MatchString(stderr) {
		t.Errorf("no progress from the server:\n%s", stderr)
	}
	f.commit(t, "big.txt", "second\n"+big+"one more\n")
	stderr = f.mustPush(t, "--progress", "--quiet", "origin", "HEAD:refs/heads/p")
	if strings.Contains(stderr, "remote:") {
		t.Errorf("quiet push got server messages:\n%s", stderr)
	}
	f.verify(t)
}

// TestPushLargeFile pushes a 100 MB file of pseudo-random bytes and
// checks that the server never held it in memory.
func TestPushLargeFile(t *testing.T) {
	if testing.Short() {
		t.Skip("pushes 100 MB")
	}
	const size = 100 << 20
	f := newFixture(t, "0", "sha1", false)
	// Random bytes do not compress: store them so, to save time.
	gittest.Git(t, f.work, "config", "core.compression", "0")
	w, err := os.Create(filepath.Join(f.work, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	rnd := rand.NewChaCha8([32]byte{1})
	buf := make([]byte, 1<<20)
	for i := 0; i < size/len(buf); i++ {
		rnd.Read(buf)
		if _, err := w.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	gittest.Git(t, f.work, "add", "big.bin")
	gittest.Git(t, f.work, "commit", "-q", "-m", "big")
	id := strings.TrimSpace(gittest.Git(t, f.work, "rev-parse", "HEAD"))
	f.mustPush(t, "origin", "HEAD:refs/heads/big")
	f.wantRef(t, "refs/heads/big", id)
	r := f.lastResult(t)
	t.Logf("server peak RSS %d MiB", r.MaxRSSKB>>10)
	// The race detector's shadow memory multiplies the heap: holding the
	// blob would cost several times its size.
	if limit := int64(size>>10) * 3 / 4; r.MaxRSSKB > limit {
		t.Errorf("server peak RSS %d KiB, over %d KiB: the blob was held in memory", r.MaxRSSKB, limit)
	}
	f.verify(t)
}

// TestPushLocked: a reference whose lock another writer holds is
// refused with a reason saying so, and the lock is left alone (issue
// 19).
func TestPushLocked(t *testing.T) {
	f := newFixture(t, "0", "sha1", false)
	f.commit(t, "a.txt", "a\n")
	topic0 := f.ref(t, "refs/heads/topic0")
	lock := filepath.Join(f.server, "refs", "heads", "topic0.lock")
	if err := os.WriteFile(lock, []byte("held\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	for _, atomic := range []bool{false, true} {
		args := []string{"--force", "origin", "HEAD:refs/heads/topic0"}
		if atomic {
			args = append([]string{"--atomic"}, args...)
		}
		stderr, err := f.push(t, nil, args...)
		if err == nil {
			t.Fatalf("atomic %v: push to a locked reference accepted:\n%s", atomic, stderr)
		}
		if r := f.lastResult(t); r.Commands["refs/heads/topic0"] != ngLocked {
			t.Errorf("atomic %v: served %+v; want %q", atomic, r, ngLocked)
		}
		if !strings.Contains(stderr, "topic0 (reference is locked by another update)") {
			t.Errorf("atomic %v: git says\n%s", atomic, stderr)
		}
		f.wantRef(t, "refs/heads/topic0", topic0)
		if _, err := os.Stat(lock); err != nil {
			t.Errorf("atomic %v: the other writer's lock: %v", atomic, err)
		}
	}
}

// TestPushBranchHEAD: refs/heads/HEAD is refused as C Git's `git
// branch HEAD` refuses it (issue 19); one made before may be deleted.
func TestPushBranchHEAD(t *testing.T) {
	f := newFixture(t, "0", "sha1", false)
	stderr, err := f.push(t, nil, "origin", "HEAD:refs/heads/HEAD")
	if err == nil {
		t.Fatalf("push of refs/heads/HEAD accepted:\n%s", stderr)
	}
	if !strings.Contains(stderr, "HEAD (funny refname)") {
		t.Errorf("git says\n%s", stderr)
	}
	f.wantRef(t, "refs/heads/HEAD", "")
	main := f.ref(t, "refs/heads/main")
	gittest.Git(t, f.server, "update-ref", "refs/heads/HEAD", main)
	f.mustPush(t, "origin", ":refs/heads/HEAD")
	f.wantRef(t, "refs/heads/HEAD", "")
	// refs/tags/HEAD and refs/heads/x/HEAD are names C Git makes.
	f.mustPush(t, "origin", "HEAD:refs/heads/x/HEAD")
	f.wantRef(t, "refs/heads/x/HEAD", main)
}

// TestPushReflog: every reference a push moves gets a reflog entry
// saying who and how, HEAD's branch in HEAD's reflog too, in one
// atomic push and in separate ones; a deleted branch keeps its reflog.
func TestPushReflog(t *testing.T) {
	f := newFixture(t, "0", "sha1", false)
	env := []string{"GOTD_TEST_PUSHER=alice\n<evil>"}
	push := func(args ...string) {
		t.Helper()
		if stderr, err := f.push(t, env, args...); err != nil {
			t.Fatalf("push %v: %v\n%s", args, err, stderr)
		}
	}
	old := f.ref(t, "main")
	push("origin", "main:refs/heads/new")
	c1 := f.commit(t, "a", "1")
	push("--atomic", "origin", "main", "main:refs/heads/new")
	gittest.Git(t, f.work, "reset", "-q", "--hard", "HEAD~2")
	back := strings.TrimSpace(gittest.Git(t, f.work, "rev-parse", "HEAD"))
	push("--force", "origin", "HEAD:main")
	push("origin", ":refs/heads/new")

	reflog := func(name string) string {
		var b strings.Builder
		s := refs.New(f.server, oid.SHA1)
		err := s.ReadLog(name, func(e refs.LogEntry) error {
			fmt.Fprintf(&b, "%s %s %s <%s> %s\n", e.Old, e.New, e.Name, e.Email, e.Message)
			return nil
		}, func(line int, err error) { t.Errorf("%s:%d: %v", name, line, err) })
		if err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	z := strings.Repeat("0", 40)
	if got, want := reflog("refs/heads/new"), z+" "+old+" aliceevil <> push via test: created\n"+
		old+" "+c1+" aliceevil <> push via test: fast-forward\n"+
		c1+" "+z+" aliceevil <> push via test: deleted\n"; got != want {
		t.Errorf("reflog of new:\n%s\nwant\n%s", got, want)
	}
	mainLog := old + " " + c1 + " aliceevil <> push via test: fast-forward\n" +
		c1 + " " + back + " aliceevil <> push via test: forced-update\n"
	if got := reflog("refs/heads/main"); got != mainLog {
		t.Errorf("reflog of main:\n%s\nwant\n%s", got, mainLog)
	}
	if got := reflog("HEAD"); got != mainLog {
		t.Errorf("reflog of HEAD:\n%s\nwant\n%s", got, mainLog)
	}
	out := gittest.Git(t, f.server, "reflog", "show", "--format=%gn %gs", "main")
	if want := "aliceevil push via test: forced-update\naliceevil push via test: fast-forward\n"; out != want {
		t.Errorf("git reflog show main: %q; want %q", out, want)
	}
	f.verify(t)
}
