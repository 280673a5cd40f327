package pack

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotd/internal/git/oid"
	"gotd/internal/gittest"
)

// midxPacks opens the packs of the repository dir for
// WriteMultiPackIndex, the one named preferred (a .pack file name, or
// "") marked preferred.
func midxPacks(t *testing.T, dir string, f oid.Format, preferred string) []MidxPack {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "pack-*.pack"))
	var out []MidxPack
	for _, path := range paths {
		p, err := Open(path, f, Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(filepath.Base(path), ".pack") + ".idx"
		out = append(out, MidxPack{Name: name, Index: p.Index(), MTime: st.ModTime(), Preferred: filepath.Base(path) == preferred})
	}
	return out
}

// TestWriteMidxAsGitDoes: over three packs sharing objects, of
// different ages, the multi-pack-index written is byte for byte the one
// C Git's multi-pack-index write makes, with and without a preferred
// pack, and C Git's multi-pack-index verify and gotd's reader accept
// it.
func TestWriteMidxAsGitDoes(t *testing.T) {
	for _, format := range formats {
		t.Run(format, func(t *testing.T) {
			dir, f := multiPackRepo(t, format)
			packDir := filepath.Join(dir, "objects", "pack")
			paths, _ := filepath.Glob(filepath.Join(packDir, "pack-*.pack"))
			// Distinct ages, so that which copy is taken depends on
			// them; the middle one in name order is the newest.
			for i, p := range paths {
				when := time.Unix(1700000000+int64([]int{100, 300, 200}[i]), 0)
				if err := os.Chtimes(p, when, when); err != nil {
					t.Fatal(err)
				}
			}
			largest := ""
			most := -1
			for _, p := range midxPacks(t, dir, f, "") {
				if n := p.Index.Count(); n > most {
					most, largest = n, strings.TrimSuffix(p.Name, ".idx")+".pack"
				}
			}
			for _, preferred := range []string{"", largest} {
				args := []string{"multi-pack-index", "write"}
				if preferred != "" {
					args = append(args, "--preferred-pack="+preferred)
				}
				os.Remove(filepath.Join(packDir, "multi-pack-index"))
				gittest.Git(t, dir, args...)
				want, err := os.ReadFile(filepath.Join(packDir, "multi-pack-index"))
				if err != nil {
					t.Fatal(err)
				}
				var got bytes.Buffer
				if _, err := WriteMultiPackIndex(&got, f, midxPacks(t, dir, f, preferred)); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got.Bytes(), want) {
					t.Errorf("preferred %q: multi-pack-index differs from C Git's (%d bytes against %d)", preferred, got.Len(), len(want))
				}
				if err := os.WriteFile(filepath.Join(packDir, "multi-pack-index"), got.Bytes(), 0o444); err != nil {
					t.Fatal(err)
				}
				gittest.Git(t, dir, "multi-pack-index", "verify")
				gittest.Git(t, dir, "fsck", "--full", "--strict")
				m, err := OpenMultiPackIndex(packDir, f)
				if err != nil {
					t.Fatal(err)
				}
				if err := m.Verify(); err != nil {
					t.Errorf("Verify: %v", err)
				}
				all := strings.Fields(gittest.Git(t, dir, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)"))
				if m.Count() != len(all) {
					t.Errorf("multi-pack-index holds %d objects; the packs %d", m.Count(), len(all))
				}
				m.Close()
			}
		})
	}
}
