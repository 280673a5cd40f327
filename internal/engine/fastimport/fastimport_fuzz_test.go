package fastimport

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotd/internal/git/repo"
	"gotd/internal/gittest"
)

// FuzzImport feeds mutated streams to Import, with small bounds so that
// mutations reach them. C Git's fast-import is the oracle: a stream
// Import accepts must be accepted by git fast-import too, with the same
// references as the result; a stream Import refuses must leave the
// pack directory empty and no reference behind.
func FuzzImport(f *testing.F) {
	for _, s := range streams {
		f.Add([]byte(s.stream))
	}
	f.Add([]byte("blob\nmark :1\ndata <<E\nx\nE\ncommit refs/heads/a\ncommitter <e> 1 +0000\ndata 0\nM 644 :1 \"a\\nb\"\n\n"))
	f.Add([]byte("reset refs/heads/a\nfrom 0000000000000000000000000000000000000000\n\ndone\n"))
	f.Add([]byte("commit refs/heads/a\ncommitter C <c> 1 +1500\ndata 0\nM 040000 4b825dc642cb6eb9a060e54bf8d69288fbee4904 d\n"))
	f.Fuzz(func(t *testing.T, stream []byte) {
		dir := filepath.Join(t.TempDir(), "r.git")
		r, err := repo.Init(dir, repo.InitOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		_, err = Import(context.Background(), r, bytes.NewReader(stream), Options{
			MaxObjectSize: 1 << 16, MaxLine: 1 << 12, MaxMarks: 64, MaxBranches: 16,
		})
		if err != nil {
			left, _ := os.ReadDir(r.PackDir())
			if len(left) != 0 {
				t.Fatalf("Import failed (%v) and left %v", err, left)
			}
			if out := gittest.Git(t, dir, "for-each-ref"); out != "" {
				t.Fatalf("Import failed (%v) and set references:\n%s", err, out)
			}
			return
		}
		got := gittest.Git(t, dir, "for-each-ref")
		want := gittest.InitBare(t, "sha1")
		if _, err := gittest.Run(t, want, stream, "fast-import", "--quiet"); err != nil {
			t.Fatalf("Import accepted a stream git fast-import refuses: %v", err)
		}
		// C Git's fast-import also writes branches named outside refs/
		// (Import refuses those), so compare what is under refs/.
		if w := gittest.Git(t, want, "for-each-ref"); w != got {
			t.Fatalf("references:\ngot\n%s\nwant\n%s", got, w)
		}
		if strings.Contains(got, "commit") {
			gittest.Git(t, dir, "fsck", "--full", "--no-dangling")
		}
	})
}
