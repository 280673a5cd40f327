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

// midxChunks returns the chunks of a multi-pack-index file by id.
func midxChunks(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	chunks := map[string][]byte{}
	n := int(data[6])
	for i := 0; i < n; i++ {
		row := data[midxHeaderSize+12*i:]
		chunks[string(row[:4])] = data[be64(row[4:]):be64(row[16:])]
	}
	return chunks
}

// TestWriteMidxReverseAsGitDoes: with Reverse, the reverse index and
// the bitmapped packs are those of C Git's multi-pack-index write
// --bitmap (BTMP only where that C Git writes it, from 2.44), the other
// chunks the same as without, and gotd's reader maps every pseudo-pack
// position back to the object C Git's bitmap has there.
func TestWriteMidxReverseAsGitDoes(t *testing.T) {
	for _, format := range formats {
		t.Run(format, func(t *testing.T) {
			dir, f := multiPackRepo(t, format)
			packDir := filepath.Join(dir, "objects", "pack")
			largest := ""
			most := -1
			for _, p := range midxPacks(t, dir, f, "") {
				if n := p.Index.Count(); n > most {
					most, largest = n, strings.TrimSuffix(p.Name, ".idx")+".pack"
				}
			}
			os.Remove(filepath.Join(packDir, "multi-pack-index"))
			gittest.Git(t, dir, "multi-pack-index", "write", "--bitmap", "--preferred-pack="+largest)
			want, err := os.ReadFile(filepath.Join(packDir, "multi-pack-index"))
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			if _, err := WriteMultiPackIndexWith(&got, f, midxPacks(t, dir, f, largest), MidxOptions{Reverse: true}); err != nil {
				t.Fatal(err)
			}
			gc, wc := midxChunks(t, got.Bytes()), midxChunks(t, want)
			for id, w := range wc {
				if !bytes.Equal(gc[id], w) {
					t.Errorf("chunk %s differs from C Git's:\n%x\n%x", id, gc[id], w)
				}
			}
			if wc["RIDX"] == nil {
				t.Fatalf("C Git wrote no RIDX chunk")
			}
			if _, ok := wc["BTMP"]; ok && !bytes.Equal(got.Bytes(), want) {
				t.Errorf("multi-pack-index differs from C Git's")
			}
			m, err := ParseMultiPackIndex(got.Bytes(), f)
			if err != nil {
				t.Fatal(err)
			}
			if !m.HasReverse() {
				t.Fatal("HasReverse false")
			}
			seen := make([]bool, m.Count())
			for pos := range m.Count() {
				i, err := m.IndexAtPseudoPos(pos)
				if err != nil || seen[i] {
					t.Fatalf("IndexAtPseudoPos(%d) = %d, %v; seen before %v", pos, i, err, err == nil && seen[i])
				}
				seen[i] = true
			}
			var plain bytes.Buffer
			if _, err := WriteMultiPackIndex(&plain, f, midxPacks(t, dir, f, largest)); err != nil {
				t.Fatal(err)
			}
			if m, err := ParseMultiPackIndex(plain.Bytes(), f); err != nil || m.HasReverse() {
				t.Errorf("without Reverse: %v, HasReverse %v; want no reverse index", err, err == nil && m.HasReverse())
			}
		})
	}
}
