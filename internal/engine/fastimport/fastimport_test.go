package fastimport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"gotd/internal/git/repo"
	"gotd/internal/gittest"
)

// streams are fast-import streams fed both to C Git's fast-import and to
// Import; the repositories must end up with the same objects and
// references.
var streams = []struct {
	name, stream string
}{
	{"modes and data forms", `# a comment
blob
mark :1
data 6
hello

blob
mark :2
original-oid 0123
data <<EOT
line one
line two
EOT

commit refs/heads/main
mark :3
author A U Thor <author@example.com> 1700000000 +0100
committer C O Mitter <committer@example.com> 1700000060 -0230
data 15
initial commit

M 100644 :1 a.txt
M 644 :2 dir/b.txt
M 755 :1 bin/run
M 100755 :2 bin/run2
M 120000 inline link
data 5
a.txt
M 160000 1111111111111111111111111111111111111111 vendor/sub
M 100644 inline "with space/and \"quotes\"\tand\303\251"
data 4
xyz

`},
	{"renames copies deletes", `blob
mark :1
data 2
a

blob
mark :2
data 2
b

commit refs/heads/main
mark :10
committer C <c@example.com> 1700000000 +0000
data 3
one
M 100644 :1 top/a
M 100644 :2 top/sub/b
M 100644 :2 other/only
M 100644 :1 f

commit refs/heads/main
mark :11
committer C <c@example.com> 1700000100 +0000
data 3
two
from :10
R top/sub newdir/sub
C top newtop
D other/only
R f "f renamed"
M 100644 :2 f2

commit refs/heads/main
mark :12
committer C <c@example.com> 1700000200 +0000
data 5
three
D newtop
M 100644 :1 top/a/now-a-dir
M 100644 :2 newdir

commit refs/heads/main
mark :13
committer C <c@example.com> 1700000300 +0000
data 4
four
deleteall
M 100644 :1 only
C only copy
R copy renamed
`},
	{"branches merges resets", `blob
mark :1
data 2
1

blob
mark :2
data 2
2

commit refs/heads/main
mark :10
committer C <c@example.com> 1700000000 +0000
data 4
root
M 100644 :1 x

commit refs/heads/topic
mark :11
committer C <c@example.com> 1700000010 +0000
data 5
topic
from refs/heads/main
M 100644 :2 y

commit refs/heads/main
mark :12
committer C <c@example.com> 1700000020 +0000
data 4
main
M 100644 :2 z

commit refs/heads/main
mark :13
author <nameless@example.com> 1700000030 +0000
committer C <c@example.com> 1700000030 +0000
data 5
merge
merge :11
M 100644 :1 y

reset refs/heads/second-root
commit refs/heads/second-root
mark :14
committer C <c@example.com> 1700000040 +0000
data 11
second root
M 100644 :1 only

commit refs/heads/main
mark :15
committer C <c@example.com> 1700000050 +0000
data 7
octopus
from :13
merge :14
merge refs/heads/topic

reset refs/heads/moved
from :12

reset refs/heads/later
from :10

commit refs/heads/later
committer C <c@example.com> 1700000060 +0000
data 5
later

reset refs/heads/gone
from :10

reset refs/heads/gone
from 0000000000000000000000000000000000000000

`},
	{"tags encodings messages", "blob\nmark :1\ndata 2\nb\n\n" +
		"commit refs/heads/main\nmark :2\ncommitter C <c@example.com> 1700000000 +0000\n" +
		"encoding ISO-8859-1\ndata 10\ncaf\xe9 na\xefve\nM 100644 :1 f\n\n" +
		"commit refs/heads/main\nmark :3\ncommitter C <c@example.com> 1700000001 +0000\n" +
		"data 19\nno newline\xff\xfe at end" +
		"tag v1\nmark :4\nfrom :2\ntagger T <t@example.com> 1700000002 +0000\n" +
		"data <<END\nrelease\n-----BEGIN PGP SIGNATURE-----\n\niQEzBAABCAAdFiEE\n=abcd\n-----END PGP SIGNATURE-----\nEND\n\n" +
		"tag untagged\nfrom :3\ndata 3\nno\n\n" +
		"tag blobtag\nfrom :1\ntagger T <t@example.com> 1700000003 +0000\ndata 5\nblob\n\n" +
		"tag nested\nfrom :4\ntagger T <t@example.com> 1700000004 +0000\ndata 7\nnested\n\n" +
		"tag branchtag\nfrom refs/heads/main\ntagger T <t@example.com> 1700000005 +0000\ndata 0\n\n"},
	// git fast-export --all writes a detached HEAD as "reset HEAD";
	// the update moves the branch HEAD names (main here).
	{"HEAD", "commit refs/heads/side\nmark :1\ncommitter C <c@example.com> 1700000000 +0000\ndata 4\nside\n\n" +
		"commit refs/heads/side\nmark :2\ncommitter C <c@example.com> 1700000001 +0000\ndata 5\nside2\n\n" +
		"reset HEAD\nfrom :1\n\n"},
	{"commands", "feature done\nfeature date-format=raw\noption git quiet\noption hg something\n" +
		"blob\nmark :1\ndata 2\nb\n\nprogress one\ncheckpoint\n\n" +
		"commit refs/heads/main\nmark :2\ncommitter C <c@example.com> 1700000000 +0000\ndata 1\nx" +
		"M 100644 :1 f\n\nalias\nmark :7\nto :2\n\n" +
		"commit refs/heads/other\nmark :3\ncommitter C <c@example.com> 1700000001 +0000\ndata 1\ny" +
		"from :7\nM 100644 :1 g\n\nprogress two\ndone\n"},
	{"wide directories", wideStream()},
}

// wideStream fills directories past indexMin entries, then deletes,
// renames, copies and replaces some of them across commits.
func wideStream() string {
	var b strings.Builder
	b.WriteString("blob\nmark :1\ndata 2\na\n\nblob\nmark :2\ndata 2\nb\n\n")
	commit := func(n int) {
		fmt.Fprintf(&b, "commit refs/heads/main\ncommitter C <c@example.com> %d +0000\ndata 1\nw", 1700000000+n)
	}
	commit(0)
	for i := range 60 {
		fmt.Fprintf(&b, "M 100644 :1 d/f%02d\n", i)
	}
	for i := range 40 {
		fmt.Fprintf(&b, "M 100644 :2 t%02d\nM 100644 :1 s/s%02d/x\n", i, i)
	}
	b.WriteString("\n")
	commit(1)
	b.WriteString("D d/f05\nD d/f59\nD d/f00\nR d/f10 d/g10\nC d/f20 d/f99\nM 100644 :2 d/f30\nM 100755 :1 d/new\nD s/s07/x\nR s/s39 s/s00/in\n")
	for i := range 36 {
		fmt.Fprintf(&b, "D t%02d\n", i)
	}
	b.WriteString("M 100644 :1 d/f05\n\n")
	commit(2)
	b.WriteString("deleteall\n")
	for i := range 50 {
		fmt.Fprintf(&b, "M 100644 :%d e/f%02d\n", 1+i%2, 49-i)
	}
	b.WriteString("D e/f10\nD e/f11\n\n")
	return b.String()
}

func fastImportGit(t *testing.T, stream string) string {
	t.Helper()
	dir := gittest.InitBare(t, "sha1")
	gittest.GitInput(t, dir, []byte(stream), "fast-import", "--quiet")
	return dir
}

func fastImportOurs(t *testing.T, stream string, opts Options) (string, *Stats, error) {
	t.Helper()
	dir := gittest.InitBare(t, "sha1")
	r, err := repo.Open(dir, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	st, err := Import(context.Background(), r, strings.NewReader(stream), opts)
	return dir, st, err
}

// state lists a repository's references and objects, as git sees them.
func state(t *testing.T, dir string) (refs string, objects []string) {
	t.Helper()
	refs = gittest.Git(t, dir, "for-each-ref", "--format=%(objectname) %(objecttype) %(refname)")
	objects = gittest.Objects(t, dir)
	sort.Strings(objects)
	return refs, objects
}

func TestSameIDsAsGit(t *testing.T) {
	for _, tc := range streams {
		t.Run(tc.name, func(t *testing.T) {
			want := fastImportGit(t, tc.stream)
			for _, verify := range []bool{false, true} {
				var progress bytes.Buffer
				got, st, err := fastImportOurs(t, tc.stream, Options{Progress: &progress, Verify: verify})
				if err != nil {
					t.Fatalf("Import (verify %v): %v", verify, err)
				}
				sameState(t, want, got, st)
				if strings.Contains(tc.stream, "progress") && progress.String() != "progress one\nprogress two\n" {
					t.Errorf("progress: got %q", progress.String())
				}
			}
		})
	}
}

// sameState compares a repository C Git's fast-import wrote with one
// Import wrote, and checks the latter.
func sameState(t *testing.T, want, got string, st *Stats) {
	t.Helper()
	wantRefs, wantObjs := state(t, want)
	gotRefs, gotObjs := state(t, got)
	if gotRefs != wantRefs {
		t.Errorf("references:\ngot\n%s\nwant\n%s", gotRefs, wantRefs)
	}
	if strings.Join(gotObjs, " ") != strings.Join(wantObjs, " ") {
		t.Errorf("objects: got %d %v\nwant %d %v", len(gotObjs), gotObjs, len(wantObjs), wantObjs)
	}
	checkRepo(t, got, st)
}

// checkRepo checks that an import left one pack, no loose objects, and
// a repository git fsck finds clean.
func checkRepo(t *testing.T, dir string, st *Stats) {
	t.Helper()
	gittest.Git(t, dir, "fsck", "--full", "--strict", "--no-dangling")
	packs, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "*"))
	var names []string
	for _, p := range packs {
		names = append(names, filepath.Base(p))
	}
	if len(names) != 3 {
		t.Errorf("pack directory: got %v, want one .pack, .idx and .rev", names)
	}
	loose, _ := filepath.Glob(filepath.Join(dir, "objects", "[0-9a-f][0-9a-f]"))
	if len(loose) != 0 {
		t.Errorf("loose object directories: %v", loose)
	}
	if st == nil || st.PackPath == "" {
		t.Errorf("stats: got %+v, want a pack path", st)
		return
	}
	gittest.Git(t, dir, "verify-pack", strings.TrimSuffix(st.PackPath, ".pack")+".idx")
}

// TestRefused: streams Import must refuse, each with an error naming
// what is wrong, leaving the repository as it was.
func TestRefused(t *testing.T) {
	commit := "commit refs/heads/main\ncommitter C <c@example.com> 1700000000 +0000\ndata 1\nx\n"
	tests := []struct {
		name, stream, want string
		opts               Options
	}{
		{"unknown command", "frobnicate\n", "unsupported command", Options{}},
		{"marks file", "feature export-marks=/tmp/x\n", "not accepted from a stream", Options{}},
		{"cat-blob", "cat-blob :1\n", "not supported", Options{}},
		{"notes", commit + "N inline :1\n", "notemodify is not supported", Options{}},
		{"feature after data", "blob\ndata 0\nfeature done\n", "after a data command", Options{}},
		{"done missing", "feature done\nblob\ndata 0\n", "stream ends early", Options{}},
		{"line too long", "blob\nmark :" + strings.Repeat("1", 100) + "\n", "line too long", Options{MaxLine: 64}},
		{"data too large", "blob\ndata 1000\n", "larger than", Options{MaxObjectSize: 999}},
		{"delimited data too large", "blob\ndata <<E\n" + strings.Repeat("x", 100) + "\nE\n", "larger than", Options{MaxObjectSize: 50}},
		{"data cut short", "blob\ndata 10\nabc", "end of stream in data", Options{}},
		{"terminator missing", "blob\ndata <<E\nabc\n", "terminator not found", Options{}},
		{"too many marks", "blob\nmark :1\ndata 0\nblob\nmark :2\ndata 0\n", "more than 1 marks", Options{MaxMarks: 1}},
		{"unknown mark", commit + "M 100644 :5 f\n", "mark :5 not declared", Options{}},
		{"git dir path", "blob\nmark :1\ndata 0\n" + commit + "M 100644 :1 .git/config\n", "invalid path", Options{}},
		{"dot dot path", "blob\nmark :1\ndata 0\n" + commit + "M 100644 :1 a/../b\n", "invalid path", Options{}},
		{"bad mode", "blob\nmark :1\ndata 0\n" + commit + "M 100664 :1 f\n", "corrupt mode", Options{}},
		{"bad branch", "commit refs/heads/a..b\ncommitter C <c@example.com> 1 +0000\ndata 0\n", "not a valid reference name", Options{}},
		{"bad ident", "commit refs/heads/main\ncommitter C c@example.com 1 +0000\ndata 0\n", "missing < in ident", Options{}},
		{"bad date", "commit refs/heads/main\ncommitter C <c@example.com> yesterday\ndata 0\n", "invalid raw date", Options{}},
		{"signed commit", "commit refs/heads/main\ncommitter C <c@example.com> 1 +0000\ngpgsig sha1 openpgp\n", "gpgsig", Options{}},
		{"missing path", commit + "R nothere elsewhere\n", "not in branch", Options{}},
		{"too many branches", "reset refs/heads/a\nreset refs/heads/b\n", "more than 1 branches", Options{MaxBranches: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, _, err := fastImportOurs(t, tc.stream, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Import: got %v, want an error containing %q", err, tc.want)
			}
			if !errors.Is(err, ErrStream) {
				t.Errorf("error %v does not wrap ErrStream", err)
			}
			if refs, objs := state(t, dir); refs != "" || len(objs) != 0 {
				t.Errorf("repository changed: refs %q, %d objects", refs, len(objs))
			}
			left, _ := os.ReadDir(filepath.Join(dir, "objects", "pack"))
			if len(left) != 0 {
				t.Errorf("pack directory not empty: %v", left)
			}
		})
	}
}

// TestNotFastForward: an existing branch is not moved to a commit that
// does not contain its tip, unless forced.
func TestNotFastForward(t *testing.T) {
	one := "commit refs/heads/main\ncommitter C <c@example.com> 1700000000 +0000\ndata 3\none\n\n"
	two := "commit refs/heads/main\ncommitter C <c@example.com> 1700000001 +0000\ndata 3\ntwo\n\n"
	dir := gittest.InitBare(t, "sha1")
	r, err := repo.Open(dir, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := Import(context.Background(), r, strings.NewReader(one), Options{}); err != nil {
		t.Fatal(err)
	}
	before := gittest.Git(t, dir, "rev-parse", "main")
	_, err = Import(context.Background(), r, strings.NewReader(two), Options{})
	if !errors.Is(err, ErrNotFastForward) {
		t.Fatalf("second import: got %v, want ErrNotFastForward", err)
	}
	if after := gittest.Git(t, dir, "rev-parse", "main"); after != before {
		t.Errorf("main moved from %s to %s", before, after)
	}
	if _, err := Import(context.Background(), r, strings.NewReader(two), Options{Force: true}); err != nil {
		t.Fatalf("forced import: %v", err)
	}
	if after := gittest.Git(t, dir, "rev-parse", "main"); after == before {
		t.Errorf("forced import left main at %s", after)
	}
}

var _ = fmt.Sprint

// TestIncremental: a second stream builds on what the repository holds
// (C Git's idiom "from refs/heads/main^0", a commit by id, a tree by id
// in a filemodify), with the same result as C Git's.
func TestIncremental(t *testing.T) {
	first := "blob\nmark :1\ndata 2\na\n\n" +
		"commit refs/heads/main\nmark :2\ncommitter C <c@example.com> 1700000000 +0000\ndata 3\none\nM 100644 :1 a\nM 100644 :1 d/b\nM 100755 :1 d/e/f\n\n"
	want := fastImportGit(t, first)
	got, _, err := fastImportOurs(t, first, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tip := strings.TrimSpace(gittest.Git(t, want, "rev-parse", "main"))
	tree := strings.TrimSpace(gittest.Git(t, want, "rev-parse", "main:d"))
	second := "commit refs/heads/main\ncommitter C <c@example.com> 1700000001 +0000\ndata 3\ntwo\nfrom refs/heads/main^0\nM 100644 inline c\ndata 2\nc\n\n" +
		"commit refs/heads/other\ncommitter C <c@example.com> 1700000002 +0000\ndata 5\nother\nfrom " + tip + "\nM 040000 " + tree + " copy/of/d\nD a\n\n"
	gittest.GitInput(t, want, []byte(second), "fast-import", "--quiet")
	r, err := repo.Open(got, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	st, err := Import(context.Background(), r, strings.NewReader(second), Options{})
	if err != nil {
		t.Fatalf("second import: %v", err)
	}
	wantRefs, _ := state(t, want)
	gotRefs, _ := state(t, got)
	if gotRefs != wantRefs {
		t.Errorf("references:\ngot\n%s\nwant\n%s", gotRefs, wantRefs)
	}
	if st.Written != 7 {
		// Two commits, the blob c, two root trees, copy and copy/of
		// (copy/of/d is the tree given by id): nothing the repository
		// held already.
		t.Errorf("second import wrote %d objects, want 7", st.Written)
	}
	gittest.Git(t, got, "fsck", "--full", "--strict", "--no-dangling")
}
