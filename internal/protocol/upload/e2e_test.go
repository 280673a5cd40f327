package upload

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"gotd/internal/git/oid"
	"gotd/internal/git/repo"
	"gotd/internal/gittest"
)

// versions are the protocol versions every end-to-end case runs in.
var versions = []string{"0", "2"}

// source returns a bare repository with a generated history: merges,
// branches and every kind of tag.
func source(t *testing.T, format string) string {
	t.Helper()
	dir := gittest.InitBare(t, format)
	gittest.Generate(t, dir, gittest.History{Commits: 30, Branches: 3, Files: 12})
	return dir
}

// git runs git with protocol version v in dir and fails the test on
// error.
func git(t *testing.T, v, dir string, args ...string) string {
	t.Helper()
	return gittest.Git(t, dir, append([]string{"-c", "protocol.version=" + v}, args...)...)
}

// clone clones src through the test server into a new bare repository
// and records the server command for later fetches.
func clone(t *testing.T, v, mode, src string, args ...string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "clone.git")
	a := append([]string{"clone", "-q", "--bare", "--upload-pack=" + uploadPack(t, mode)}, args...)
	git(t, v, "", append(a, "file://"+src, dst)...)
	gittest.Git(t, dst, "config", "remote.origin.uploadpack", uploadPack(t, mode))
	return dst
}

// refsOf lists a repository's references with their values.
func refsOf(t *testing.T, dir string) string {
	t.Helper()
	return gittest.Git(t, dir, "for-each-ref", "--format=%(objectname) %(refname)")
}

// headsAndTags keeps only branches and tags of a ref listing, with the
// clone's remote-tracking names mapped back to branches.
func fsck(t *testing.T, dir string) {
	t.Helper()
	gittest.Git(t, dir, "fsck", "--full", "--no-dangling")
}

func TestClone(t *testing.T) {
	for _, format := range []string{"sha1", "sha256", "sha1+bitmap"} {
		src := source(t, strings.TrimSuffix(format, "+bitmap"))
		if strings.HasSuffix(format, "+bitmap") {
			gittest.Git(t, src, "repack", "-adbq")
		}
		for _, v := range versions {
			t.Run(format+"/v"+v, func(t *testing.T) {
				dst := clone(t, v, "", src)
				fsck(t, dst)
				if got, want := refsOf(t, dst), refsOf(t, src); got != want {
					t.Errorf("references differ:\n%s\nwant:\n%s", got, want)
				}
				if got, want := gittest.Git(t, dst, "symbolic-ref", "HEAD"), gittest.Git(t, src, "symbolic-ref", "HEAD"); got != want {
					t.Errorf("HEAD = %q, want %q", got, want)
				}
				// Every object of the source is there (the source has no
				// unreachable objects).
				if got, want := len(gittest.Objects(t, dst)), len(gittest.Objects(t, src)); got != want {
					t.Errorf("clone has %d objects, source %d", got, want)
				}
			})
		}
	}
}

func TestLsRemote(t *testing.T) {
	src := source(t, "sha1")
	for _, v := range versions {
		t.Run("v"+v, func(t *testing.T) {
			got := git(t, v, "", "ls-remote", "--symref", "--upload-pack="+uploadPack(t, ""), "file://"+src)
			want := git(t, v, "", "ls-remote", "--symref", "file://"+src)
			if got != want {
				t.Errorf("ls-remote:\n%s\nC Git:\n%s", got, want)
			}
			if !strings.Contains(got, "ref: refs/heads/main\tHEAD") || !strings.Contains(got, "refs/tags/v1.0^{}") {
				t.Errorf("ls-remote lacks the symref or a peeled tag:\n%s", got)
			}
		})
	}
}

// commitTo adds n commits to branch of the bare repository dir, each
// changing one line of a few existing files and adding a small one.
func commitTo(t *testing.T, dir, branch string, n int, tag string) {
	t.Helper()
	// An existing file grows by a line per commit: a thin pack sends it
	// as a delta against the version the client has.
	const edited = "dir0/sub0/file0.txt"
	content := gittest.Git(t, dir, "cat-file", "blob", branch+":"+edited)
	var b strings.Builder
	for i := 0; i < n; i++ {
		content += fmt.Sprintf("line added by commit %d on %s\n", i, branch)
		fmt.Fprintf(&b, "commit refs/heads/%s\ncommitter C <c@example.com> %d +0000\ndata 6\nmore%d\nfrom refs/heads/%s^0\n", branch, 1800000000+i*60, i%10, branch)
		fmt.Fprintf(&b, "M 100644 inline new/file%d.txt\ndata 12\nnew file %02d\n", i, i%100)
		fmt.Fprintf(&b, "M 100644 inline %s\ndata %d\n%s\n", edited, len(content), content)
	}
	gittest.GitInput(t, dir, []byte(b.String()), "fast-import", "--quiet")
	if tag != "" {
		gittest.Git(t, dir, "tag", "-a", "-m", "tag "+tag, tag, branch)
	}
}

// newPackSize fetches in dst and returns the size of the pack the fetch
// brought.
func newPackSize(t *testing.T, v, dst string, args ...string) int64 {
	t.Helper()
	before := packs(t, dst)
	git(t, v, dst, append([]string{"-c", "fetch.unpackLimit=1", "fetch", "-q"}, args...)...)
	var size int64
	for p := range packs(t, dst) {
		if !before[p] {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			size += fi.Size()
		}
	}
	return size
}

func packs(t *testing.T, dir string) map[string]bool {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "objects", "pack", "*.pack"))
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{}
	for _, p := range m {
		set[p] = true
	}
	return set
}

// copyRepo copies a repository directory.
func copyRepo(t *testing.T, dir string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "copy.git")
	if err := os.CopyFS(dst, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestIncrementalFetch(t *testing.T) {
	for _, mode := range []string{"v0", "v2", "v0+bitmap", "v2+bitmap"} {
		v := mode[1:2]
		t.Run(mode, func(t *testing.T) {
			src := source(t, "sha1")
			if strings.HasSuffix(mode, "+bitmap") {
				// The new commits then live outside the bitmapped pack.
				gittest.Git(t, src, "repack", "-adbq")
			}
			ours := clone(t, v, "", src, "--mirror")
			theirs := copyRepo(t, ours)
			gittest.Git(t, theirs, "config", "--unset", "remote.origin.uploadpack")
			commitTo(t, src, "main", 5, "v2.0")
			commitTo(t, src, "topic1", 2, "")

			got := newPackSize(t, v, ours)
			want := newPackSize(t, v, theirs)
			t.Logf("incremental fetch %s: gotd pack %d bytes, C Git pack %d bytes (%.2fx)", mode, got, want, float64(got)/float64(want))
			fsck(t, ours)
			if r, w := refsOf(t, ours), refsOf(t, src); r != w {
				t.Errorf("after fetch refs differ:\n%s\nwant\n%s", r, w)
			}
			// A negotiation that failed would resend the whole history.
			if got > 3*want+2048 {
				t.Errorf("incremental pack is %d bytes, C Git's %d", got, want)
			}
		})
	}
}

func TestTagFollowing(t *testing.T) {
	for _, v := range versions {
		t.Run("v"+v, func(t *testing.T) {
			src := source(t, "sha1")
			dst := filepath.Join(t.TempDir(), "work")
			git(t, v, "", "clone", "-q", "--upload-pack="+uploadPack(t, ""), "file://"+src, dst)
			gittest.Git(t, dst, "config", "remote.origin.uploadpack", uploadPack(t, ""))
			commitTo(t, src, "main", 2, "v3.0")
			// Tags of tags: one packed (its peeled value in
			// packed-refs), one loose on top of it.
			gittest.Git(t, src, "-c", "advice.nestedTag=false", "tag", "-a", "-m", "outer", "v3.0-outer", "v3.0")
			gittest.Git(t, src, "pack-refs", "--all")
			gittest.Git(t, src, "-c", "advice.nestedTag=false", "tag", "-a", "-m", "loose", "v3.0-loose", "v3.0-outer")
			// A plain fetch of the branch follows the new tags pointing at it.
			git(t, v, dst, "fetch", "-q", "origin", "main:refs/remotes/origin/main")
			for _, tag := range []string{"v3.0", "v3.0-outer", "v3.0-loose"} {
				if out := gittest.Git(t, dst, "tag", "-l", tag); strings.TrimSpace(out) != tag {
					t.Errorf("tag %s was not followed; tags: %q", tag, gittest.Git(t, dst, "tag", "-l"))
				}
			}
			gittest.Git(t, dst, "fsck", "--full")
		})
	}
}

// shallowOf returns the sorted contents of a repository's shallow file.
func shallowOf(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "shallow"))
	if os.IsNotExist(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	l := strings.Fields(string(b))
	sort.Strings(l)
	return strings.Join(l, "\n")
}

func TestShallow(t *testing.T) {
	src := source(t, "sha1")
	for _, v := range versions {
		t.Run("v"+v, func(t *testing.T) {
			// Each step runs against gotd and against C Git; the shallow
			// files and references must agree.
			ours := clone(t, v, "", src, "--depth", "1")
			theirs := filepath.Join(t.TempDir(), "theirs.git")
			git(t, v, "", "clone", "-q", "--bare", "--depth", "1", "file://"+src, theirs)
			same := func(step string) {
				t.Helper()
				if a, b := shallowOf(t, ours), shallowOf(t, theirs); a != b {
					t.Errorf("%s: shallow\n%s\nC Git:\n%s", step, a, b)
				}
				if a, b := refsOf(t, ours), refsOf(t, theirs); a != b {
					t.Errorf("%s: refs\n%s\nC Git:\n%s", step, a, b)
				}
				fsck(t, ours)
			}
			same("--depth 1")
			git(t, v, ours, "fetch", "-q", "--deepen=2")
			git(t, v, theirs, "fetch", "-q", "--deepen=2")
			same("--deepen=2")
			git(t, v, ours, "fetch", "-q", "--unshallow")
			git(t, v, theirs, "fetch", "-q", "--unshallow")
			same("--unshallow")
			if s := shallowOf(t, ours); s != "" {
				t.Errorf("still shallow after --unshallow: %s", s)
			}
		})
	}
}

func TestShallowSinceAndExclude(t *testing.T) {
	src := source(t, "sha1")
	for _, v := range versions {
		for _, arg := range [][]string{
			{"--shallow-since=1700000900"},
			{"--shallow-exclude=topic1"},
			{"--shallow-exclude=v1.0", "--branch=topic2", "--single-branch"},
		} {
			t.Run("v"+v+arg[0], func(t *testing.T) {
				ours := clone(t, v, "", src, arg...)
				theirs := filepath.Join(t.TempDir(), "theirs.git")
				git(t, v, "", append(append([]string{"clone", "-q", "--bare"}, arg...), "file://"+src, theirs)...)
				if a, b := shallowOf(t, ours), shallowOf(t, theirs); a != b || a == "" {
					t.Errorf("shallow\n%s\nC Git:\n%s", a, b)
				}
				fsck(t, ours)
			})
		}
	}
}

func TestPartialClone(t *testing.T) {
	src := source(t, "sha1")
	for _, v := range versions {
		t.Run("v"+v, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "work")
			up := uploadPack(t, "filter,reachable")
			git(t, v, "", "clone", "-q", "--no-checkout", "--filter=blob:none", "--upload-pack="+up, "file://"+src, dst)
			gittest.Git(t, dst, "config", "remote.origin.uploadpack", up)
			missing := gittest.Git(t, dst, "rev-list", "--objects", "--missing=print", "HEAD")
			n := strings.Count(missing, "\n?")
			if n == 0 {
				t.Fatalf("blob:none clone has every blob")
			}
			// Checking out fetches the blobs of HEAD on demand.
			git(t, v, dst, "checkout", "-q", "main")
			data, err := os.ReadFile(filepath.Join(dst, "dir0", "sub0", "file0.txt"))
			if err != nil || !strings.Contains(string(data), "file 0 line 0") {
				t.Fatalf("checked out file: %q, %v", data, err)
			}
			after := strings.Count(gittest.Git(t, dst, "rev-list", "--objects", "--missing=print", "HEAD"), "\n?")
			if after >= n {
				t.Errorf("missing objects %d before checkout, %d after", n, after)
			}
			gittest.Git(t, dst, "fsck", "--connectivity-only")
		})
	}
}

// TestV2Options exercises the version 2 fetch features C Git's client
// uses when the server offers them: want-ref and sideband-all.
func TestV2Options(t *testing.T) {
	src := source(t, "sha1")
	for _, mode := range []string{"refinwant", "sidebandall", "refinwant,sidebandall,filter"} {
		t.Run(mode, func(t *testing.T) {
			dst := clone(t, "2", mode, src)
			fsck(t, dst)
			commitTo(t, src, "topic2", 2, "")
			git(t, "2", dst, "fetch", "-q", "origin", "topic2:refs/heads/topic2")
			if a, b := gittest.Git(t, dst, "rev-parse", "topic2"), gittest.Git(t, src, "rev-parse", "topic2"); a != b {
				t.Errorf("fetched topic2 %s, want %s", a, b)
			}
			fsck(t, dst)
		})
	}
}

// TestIncludeTag checks the tags a fetch with include-tag adds: those
// peeling to a commit sent, with the tags between (packed with a peeled
// value or loose), and not a tag of a commit the client has. C Git's
// verify-pack lists what the pack holds.
func TestIncludeTag(t *testing.T) {
	src := source(t, "sha1")
	old := strings.TrimSpace(gittest.Git(t, src, "rev-parse", "main"))
	gittest.Git(t, src, "tag", "-a", "-m", "old", "old-tag", "main")
	commitTo(t, src, "main", 2, "v3.0")
	gittest.Git(t, src, "-c", "advice.nestedTag=false", "tag", "-a", "-m", "outer", "v3.0-outer", "v3.0")
	gittest.Git(t, src, "pack-refs", "--all")
	gittest.Git(t, src, "-c", "advice.nestedTag=false", "tag", "-a", "-m", "loose", "v3.0-loose", "v3.0-outer")
	r, err := repo.Open(src, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	id := func(name string) oid.ID {
		x, err := oid.ParseHex(oid.SHA1, strings.TrimSpace(gittest.Git(t, src, "rev-parse", name)))
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	for _, include := range []bool{true, false} {
		dir := t.TempDir()
		f, err := os.Create(filepath.Join(dir, "p.pack"))
		if err != nil {
			t.Fatal(err)
		}
		req := &PackRequest{Wants: []oid.ID{id("main")}, Common: []oid.ID{id(old)}, OfsDelta: true, IncludeTag: include}
		if _, err := WritePack(context.Background(), r, req, f, nil); err != nil {
			t.Fatal(err)
		}
		f.Close()
		gittest.Git(t, src, "index-pack", "-o", filepath.Join(dir, "p.idx"), filepath.Join(dir, "p.pack"))
		listed := gittest.Git(t, src, "verify-pack", "-v", filepath.Join(dir, "p.idx"))
		for _, tag := range []string{"v3.0", "v3.0-outer", "v3.0-loose"} {
			if has := strings.Contains(listed, id(tag).String()+" tag "); has != include {
				t.Errorf("include-tag %v: tag %s in the pack: %v", include, tag, has)
			}
		}
		if strings.Contains(listed, id("old-tag").String()) {
			t.Errorf("include-tag %v: the tag of a commit the client has was sent", include)
		}
	}
}
