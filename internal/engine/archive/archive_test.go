package archive

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"gotd/internal/git/oid"
	"gotd/internal/git/repo"
	"gotd/internal/gittest"
)

// bigSize is the size of the large file of TestBoundedMemory's extra
// commit, and streamedSize that of the other tests': both above
// SmallBlob, so that they are streamed, the first large enough for its
// allocations to show.
const (
	bigSize      = 8 << 20
	streamedSize = 256 << 10
)

// fixture builds a repository with gittest.Generate's history and a
// branch "extra" whose tree holds what an archive must handle
// specially: names too long for the ustar name field (split into the
// prefix field or moved to a pax header), non-ASCII names, a symbolic
// link whose target needs a pax header, an empty directory, and a large
// file of size bytes. It returns the repository's directory and the
// opened repository.
func fixture(t *testing.T, format string, size int) (string, *repo.Repo) {
	t.Helper()
	dir := gittest.InitBare(t, format)
	gittest.Generate(t, dir, gittest.History{Commits: 6, Branches: 1, Files: 12})

	var b bytes.Buffer
	data := func(s string) { fmt.Fprintf(&b, "data %d\n%s\n", len(s), s) }
	b.WriteString("commit refs/heads/extra\n")
	b.WriteString("author A U Thor <author@example.com> 1700001000 +0000\n")
	b.WriteString("committer C O Mitter <committer@example.com> 1700002000 -0700\n")
	data("extra names")
	b.WriteString("from refs/heads/main^0\n")
	long := strings.Repeat("d", 60) + "/" + strings.Repeat("e", 60) + "/file.txt" // prefix field
	longer := strings.Repeat("n", 120) + ".txt"                                   // pax path
	deep := strings.Repeat("a/", 80) + "leaf"                                     // prefix > 155: pax path
	dir100 := strings.Repeat("x", 99) + "/" + strings.Repeat("y", 99) + "/z"      // long directories
	for _, p := range []string{long, longer, deep, dir100, "ünïcödé/日本語.txt", "sp ace/tab\tname", "exact/" + strings.Repeat("q", 93)} {
		fmt.Fprintf(&b, "M 100644 inline %s\n", quote(p))
		data("content of " + p + "\n")
	}
	fmt.Fprintf(&b, "M 120000 inline %s\n", "farlink")
	data(strings.Repeat("t/", 70) + "target")
	fmt.Fprintf(&b, "M 100755 inline %s\n", "tools/exe")
	data("#!/bin/sh\n")
	fmt.Fprintf(&b, "M 100644 inline empty-file\n")
	data("")
	big := make([]byte, size)
	x := uint32(1)
	for i := range big {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		big[i] = byte(x)
	}
	fmt.Fprintf(&b, "M 100644 inline big.bin\n")
	fmt.Fprintf(&b, "data %d\n", len(big))
	b.Write(big)
	b.WriteString("\n\n")
	gittest.GitInput(t, dir, b.Bytes(), "fast-import", "--quiet")
	// fast-import drops empty trees: add one with mktree.
	ls := gittest.Git(t, dir, "ls-tree", "extra^{tree}")
	ls += "040000 tree " + emptyTree(t, dir) + "\temptydir\n"
	tree := strings.TrimSpace(gittest.GitInput(t, dir, []byte(ls), "mktree"))
	c := strings.TrimSpace(gittest.GitInput(t, dir, []byte("with an empty directory\n"), "commit-tree", tree, "-p", "extra"))
	gittest.Git(t, dir, "update-ref", "refs/heads/extra", c)
	gittest.Git(t, dir, "tag", "-a", "-m", "annotated", "v-extra", "extra")

	r, err := repo.Open(dir, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return dir, r
}

func quote(p string) string {
	if strings.ContainsAny(p, "\t\"\\\n") {
		return `"` + strings.NewReplacer(`\`, `\\`, "\t", `\t`, `"`, `\"`, "\n", `\n`).Replace(p) + `"`
	}
	return p
}

func emptyTree(t *testing.T, dir string) string {
	return strings.TrimSpace(gittest.GitInput(t, dir, []byte{}, "mktree"))
}

func resolveID(t *testing.T, dir string, r *repo.Repo, rev string) oid.ID {
	t.Helper()
	id, err := oid.ParseHex(r.Format, strings.TrimSpace(gittest.Git(t, dir, "rev-parse", rev)))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// gitArchive runs C Git's git archive, the oracle.
func gitArchive(t *testing.T, dir string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("git", append([]string{"archive"}, args...)...)
	cmd.Dir = dir
	cmd.Env = gittest.Env(t)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("git archive %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out.Bytes()
}

func TestTarMatchesGit(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"sha1", "sha256"} {
		t.Run(format, func(t *testing.T) {
			dir, r := fixture(t, format, streamedSize)
			revs := strings.Fields(gittest.Git(t, dir, "rev-list", "--all"))
			tests := []struct {
				rev    string
				prefix string
				paths  []string
			}{
				{rev: "extra"},
				{rev: "v-extra"},
				{rev: "extra", prefix: "snap/"},
				{rev: "extra", prefix: "x-"},
				{rev: "extra", prefix: "a//b//"},
				{rev: "extra", prefix: strings.Repeat("p", 120) + "/"},
				{rev: "extra", paths: []string{"dir0"}},
				{rev: "extra", paths: []string{"dir1/sub1/", "bin/run.sh", "vendor/sub"}},
				{rev: "extra", prefix: "p/", paths: []string{strings.Repeat("a/", 5) + "a", "farlink", "emptydir", "link"}},
				{rev: "main", paths: []string{"dir2/sub0"}},
			}
			for _, rev := range revs {
				tests = append(tests, struct {
					rev    string
					prefix string
					paths  []string
				}{rev: rev})
			}
			for _, tt := range tests {
				args := []string{"--format=tar"}
				if tt.prefix != "" {
					args = append(args, "--prefix="+tt.prefix)
				}
				args = append(args, tt.rev)
				if len(tt.paths) > 0 {
					args = append(args, "--")
					args = append(args, tt.paths...)
				}
				want := gitArchive(t, dir, args...)
				var got bytes.Buffer
				id := resolveID(t, dir, r, tt.rev)
				if err := WriteTar(context.Background(), &got, r, id, Options{Prefix: tt.prefix, Paths: tt.paths}); err != nil {
					t.Fatalf("WriteTar %v: %v", args, err)
				}
				if !bytes.Equal(got.Bytes(), want) {
					t.Errorf("WriteTar %v: %d bytes differ from git archive's %d at offset %d",
						args, got.Len(), len(want), firstDiff(got.Bytes(), want))
				}
			}
		})
	}
}

// TestTarOfTree checks a tree id: no pax global header, the given time.
// C Git stamps a tree with the current time, so the oracle is the
// archive of a commit of that tree, stamped with the same time, without
// its global header (a header record and one of content).
func TestTarOfTree(t *testing.T) {
	t.Parallel()
	dir, r := fixture(t, "sha1", streamedSize)
	tree := resolveID(t, dir, r, "extra^{tree}")
	when, err := strconv.ParseInt(strings.TrimSpace(gittest.Git(t, dir, "log", "-1", "--format=%ct", "extra")), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if err := WriteTar(context.Background(), &got, r, tree, Options{Time: when}); err != nil {
		t.Fatal(err)
	}
	want := gitArchive(t, dir, "--format=tar", "extra")[2*tarRecord:]
	if got.Len()%tarBlock != 0 {
		t.Errorf("tar of a tree is %d bytes; want a multiple of %d", got.Len(), tarBlock)
	}
	if g, w := bytes.TrimRight(got.Bytes(), "\x00"), bytes.TrimRight(want, "\x00"); !bytes.Equal(g, w) {
		t.Errorf("tar of a tree differs from git archive's of its commit at offset %d", firstDiff(g, w))
	}
}

func TestPathsMustMatch(t *testing.T) {
	t.Parallel()
	dir, r := fixture(t, "sha1", streamedSize)
	id := resolveID(t, dir, r, "extra")
	for _, paths := range [][]string{{"nosuch"}, {"../x"}, {"/abs"}, {""}, {"bin", "nosuch"}} {
		if err := WriteTar(context.Background(), io.Discard, r, id, Options{Paths: paths}); err == nil {
			t.Errorf("WriteTar with paths %q: got no error; want one", paths)
		}
	}
	for _, prefix := range []string{"a\x00b/", strings.Repeat("p", maxPrefix+1)} {
		if err := WriteTar(context.Background(), io.Discard, r, id, Options{Prefix: prefix}); err == nil {
			t.Errorf("WriteTar with a prefix of %d bytes: got no error; want one", len(prefix))
		}
	}
}

// TestBoundedMemory archives a tree holding an 8 MiB file as tar and
// zip: the writers must stream it, allocating far less than its size.
// It counts the process's allocations, so it is not run in parallel.
func TestBoundedMemory(t *testing.T) {
	dir, r := fixture(t, "sha1", bigSize)
	id := resolveID(t, dir, r, "extra")
	for _, tt := range []struct {
		name  string
		write func(context.Context, io.Writer, *repo.Repo, oid.ID, Options) error
	}{{"tar", WriteTar}, {"zip", WriteZip}} {
		// Warm the pack indexes, caches and pools.
		if err := tt.write(context.Background(), io.Discard, r, id, Options{Paths: []string{"tools"}}); err != nil {
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if err := tt.write(context.Background(), io.Discard, r, id, Options{Paths: []string{"big.bin"}}); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		got, limit := after.TotalAlloc-before.TotalAlloc, uint64(bigSize/4)
		t.Logf("%s of an %d-byte file allocated %d bytes", tt.name, bigSize, got)
		if got > limit {
			t.Errorf("%s of an %d-byte file allocated %d bytes; want at most %d", tt.name, bigSize, got, limit)
		}
	}
}

// TestDeepTree checks that a tree nested deeper than maxDepth is
// refused rather than walked.
func TestDeepTree(t *testing.T) {
	t.Parallel()
	dir := gittest.InitBare(t, "sha1")
	for _, tt := range []struct {
		depth int
		ok    bool
	}{{maxDepth, true}, {maxDepth + 1, false}} {
		path := strings.Repeat("d/", tt.depth-1) + "f"
		ref := fmt.Sprintf("refs/heads/depth%d", tt.depth)
		in := fmt.Sprintf("commit %s\ncommitter C <c@example.com> 1700000000 +0000\ndata 1\nx\nM 100644 inline %s\ndata 2\nf\n\n", ref, path)
		gittest.GitInput(t, dir, []byte(in), "fast-import", "--quiet")
		r, err := repo.Open(dir, repo.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		err = WriteTar(context.Background(), io.Discard, r, resolveID(t, dir, r, ref), Options{})
		if (err == nil) != tt.ok {
			t.Errorf("WriteTar of a file %d trees deep: got error %v; want error: %v", tt.depth, err, !tt.ok)
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
