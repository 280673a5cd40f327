package treediff

import (
	"fmt"
	"strings"
	"testing"

	"gotd/internal/git/oid"
	"gotd/internal/git/repo"
	"gotd/internal/gittest"
)

// commits are the trees a test history steps through, as fast-import
// file commands after "deleteall".
var commits = [][]string{
	{"M 100644 inline a\ndata 2\na\n", "M 100644 inline a.b\ndata 2\nb\n", "M 100644 inline a-b\ndata 2\nc\n",
		"M 100644 inline dir/x\ndata 2\nx\n", "M 100644 inline dir/sub/y\ndata 2\ny\n", "M 100644 inline foo\ndata 4\nfoo\n"},
	// modify, chmod, delete, add nested
	{"M 100644 inline a\ndata 3\na2\n", "M 100755 inline a.b\ndata 2\nb\n", "M 100644 inline a-b\ndata 2\nc\n",
		"M 100644 inline dir/x\ndata 2\nx\n", "M 100644 inline dir/sub/y\ndata 2\ny\n", "M 100644 inline dir/sub/deeper/z\ndata 2\nz\n",
		"M 100644 inline foo\ndata 4\nfoo\n"},
	// file becomes a directory, a directory becomes a file, a symbolic link
	{"M 120000 inline a\ndata 6\ntarget", "M 100755 inline a.b\ndata 2\nb\n", "M 100644 inline a-b\ndata 2\nc\n",
		"M 100644 inline dir\ndata 5\nfile\n", "M 100644 inline foo/inside\ndata 2\ni\n"},
	// everything replaced
	{"M 100644 inline new\ndata 2\nn\n"},
}

func TestTreesMatchGit(t *testing.T) {
	for _, format := range []string{"sha1", "sha256"} {
		t.Run(format, func(t *testing.T) {
			dir := gittest.InitBare(t, format)
			var in strings.Builder
			for i, files := range commits {
				fmt.Fprintf(&in, "commit refs/heads/main\ncommitter C <c@example.com> %d +0000\ndata 2\nc\n", 1700000000+i)
				in.WriteString("deleteall\n")
				for _, f := range files {
					in.WriteString(f)
				}
			}
			gittest.GitInput(t, dir, []byte(in.String()), "fast-import", "--quiet")
			r, err := repo.Open(dir, repo.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			tree := func(rev string) oid.ID {
				id, err := oid.ParseHex(r.Format, strings.TrimSpace(gittest.Git(t, dir, "rev-parse", rev+"^{tree}")))
				if err != nil {
					t.Fatal(err)
				}
				return id
			}
			zero := strings.Repeat("0", r.Format.HexSize())
			for i := range commits {
				newer := fmt.Sprintf("main~%d", len(commits)-1-i)
				var older oid.ID
				args := []string{"diff-tree", "-r", "--no-renames", "--root", newer}
				if i > 0 {
					older = tree(newer + "^")
					args = []string{"diff-tree", "-r", "--no-renames", newer + "^", newer}
				}
				var got strings.Builder
				err := Trees(r, r.Format, older, tree(newer), func(c Change) error {
					o, n := c.Old.String(), c.New.String()
					if c.Old == (oid.ID{}) {
						o = zero
					}
					if c.New == (oid.ID{}) {
						n = zero
					}
					fmt.Fprintf(&got, ":%06o %06o %s %s %c\t%s\n", c.OldMode, c.NewMode, o, n, c.Status, c.Path)
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				want := gittest.Git(t, dir, args...)
				if i == 0 {
					want = want[strings.IndexByte(want, '\n')+1:] // --root prints the commit first
				}
				if got.String() != want {
					t.Errorf("commit %d:\ngot\n%swant (git diff-tree)\n%s", i, got.String(), want)
				}
			}
			// The same trees differ in nothing.
			n := 0
			Trees(r, r.Format, tree("main"), tree("main"), func(Change) error { n++; return nil })
			if n != 0 {
				t.Errorf("a tree differs from itself in %d paths", n)
			}
		})
	}
}
