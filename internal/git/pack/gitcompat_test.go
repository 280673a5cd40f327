package pack

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/gittest"
)

// repackedRepo returns a generated repository packed by C Git with the
// given repack arguments, and its single pack's path.
func repackedRepo(t *testing.T, format string, args ...string) (string, string) {
	t.Helper()
	dir := gittest.InitBare(t, format)
	gittest.Generate(t, dir, gittest.History{Commits: 40, Branches: 2, Files: 12})
	gittest.Git(t, dir, append([]string{"repack", "-q"}, args...)...)
	packs, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "pack-*.pack"))
	if len(packs) != 1 {
		t.Fatalf("packs = %v; want one", packs)
	}
	return dir, packs[0]
}

func TestReadMatchesGit(t *testing.T) {
	for _, format := range []string{"sha1", "sha256"} {
		for _, args := range [][]string{
			{"-adf"},
			{"-adf", "--depth=250", "--window=250"},
			{"-adb", "--write-bitmap-index"},
		} {
			t.Run(format+strings.Join(args, ""), func(t *testing.T) {
				dir, path := repackedRepo(t, format, args...)
				f, _ := oid.ParseFormat(format)
				for _, withRev := range []bool{false, true} {
					if withRev {
						gittest.Git(t, dir, "index-pack", "--rev-index", path)
					}
					p, err := Open(path, f, Options{Cache: NewDeltaCache(1 << 20)})
					if err != nil {
						t.Fatalf("Open: %v", err)
					}
					compareWithGit(t, dir, p)
					p.Close()
				}
			})
		}
	}
}

func compareWithGit(t *testing.T, dir string, p *Pack) {
	t.Helper()
	ids := gittest.Objects(t, dir)
	out := gittest.GitInput(t, dir, []byte(strings.Join(ids, "\n")+"\n"), "cat-file", "--batch")
	br := bufio.NewReader(strings.NewReader(out))
	for range ids {
		hdr, _ := br.ReadString('\n')
		fl := strings.Fields(hdr)
		size, _ := strconv.Atoi(fl[2])
		want := make([]byte, size+1)
		io.ReadFull(br, want)
		want = want[:size]
		id, _ := oid.ParseHex(p.Format(), fl[0])
		typ, data, err := p.ReadObject(id)
		if err != nil || typ.String() != fl[1] || !bytes.Equal(data, want) {
			t.Fatalf("ReadObject(%s) = %v, %d bytes, %v; want %s, %d bytes", id, typ, len(data), err, fl[1], size)
		}
		st, n, err := p.StatObject(id)
		if err != nil || st != typ || n != int64(size) {
			t.Errorf("StatObject(%s) = %v, %d, %v", id, st, n, err)
		}
		pos, ok := p.PackPos(id)
		if !ok {
			t.Fatalf("PackPos(%s) not found", id)
		}
		if got, _ := p.IDAtPackPos(pos); got != id {
			t.Errorf("IDAtPackPos(PackPos(%s)) = %s", id, got)
		}
		off, _ := p.OffsetOf(id)
		if got, ok := p.IDAt(off); !ok || got != id {
			t.Errorf("IDAt(%d) = %s, %v; want %s", off, got, ok, id)
		}
		e, err := p.Entry(off)
		if err != nil || e.End <= e.Offset {
			t.Errorf("Entry(%d) = %+v, %v", off, e, err)
		}
	}
	if _, _, err := p.ReadObject(oid.Zero(p.Format())); !errors.Is(err, object.ErrNotFound) {
		t.Errorf("ReadObject(null) err = %v; want ErrNotFound", err)
	}
	// Entries tile the pack: each ends where the next starts.
	end := uint64(HeaderSize)
	for k := 0; k < p.Count(); k++ {
		e, err := p.Entry(p.OffsetAtPackPos(k))
		if err != nil || e.Offset != end {
			t.Fatalf("entry %d at %d (err %v); want %d", k, e.Offset, err, end)
		}
		end = e.End
	}
	if end != uint64(p.Size())-uint64(p.Format().Size()) {
		t.Errorf("entries end at %d; trailer at %d", end, p.Size()-int64(p.Format().Size()))
	}
}

func TestWriteIndexAndRevMatchGit(t *testing.T) {
	for _, format := range []string{"sha1", "sha256"} {
		t.Run(format, func(t *testing.T) {
			dir, path := repackedRepo(t, format, "-adf")
			gittest.Git(t, dir, "index-pack", "--rev-index", path)
			f, _ := oid.ParseFormat(format)
			base := strings.TrimSuffix(path, ".pack")
			x, err := OpenIndex(base+".idx", f)
			if err != nil {
				t.Fatal(err)
			}
			defer x.Close()
			if err := x.Verify(); err != nil {
				t.Errorf("Verify: %v", err)
			}
			entries := make([]IndexEntry, x.Count())
			for i := range entries {
				entries[i] = IndexEntry{x.ID(i), x.Offset(i), x.CRC32(i)}
			}
			var idx, rev bytes.Buffer
			if _, err := WriteIndex(&idx, f, entries, x.PackChecksum()); err != nil {
				t.Fatal(err)
			}
			if want, _ := os.ReadFile(base + ".idx"); !bytes.Equal(idx.Bytes(), want) {
				t.Errorf("WriteIndex output differs from git's .idx")
			}
			if _, err := WriteRev(&rev, f, entries, x.PackChecksum()); err != nil {
				t.Fatal(err)
			}
			if want, _ := os.ReadFile(base + ".rev"); !bytes.Equal(rev.Bytes(), want) {
				t.Errorf("WriteRev output differs from git's .rev")
			}
		})
	}
}

// TestLargeOffsets writes an index whose offsets need the 64-bit table
// and reads it back.
func TestLargeOffsetsRoundTrip(t *testing.T) {
	f := oid.SHA1
	var entries []IndexEntry
	for i := 0; i < 300; i++ {
		id, _ := oid.Sum(f, []byte{byte(i), byte(i >> 8)})
		entries = append(entries, IndexEntry{ID: id, Offset: uint64(i) << 24, CRC32: uint32(i)})
	}
	sum := make([]byte, 20)
	var buf bytes.Buffer
	if _, err := WriteIndex(&buf, f, entries, sum); err != nil {
		t.Fatal(err)
	}
	x, err := ParseIndex(buf.Bytes(), f)
	if err != nil {
		t.Fatalf("ParseIndex: %v", err)
	}
	if err := x.Verify(); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		i, ok := x.Find(e.ID)
		if !ok || x.Offset(i) != e.Offset || x.CRC32(i) != e.CRC32 {
			t.Errorf("entry %s: found %v, offset %d, crc %d; want %d, %d", e.ID, ok, x.Offset(i), x.CRC32(i), e.Offset, e.CRC32)
		}
	}
	// 300 ids with 8+1024 bytes of header, 28 bytes each, 172 large
	// offsets of 8 bytes, and two checksums.
	if want := 8 + 1024 + 300*28 + (300-128)*8 + 40; buf.Len() != want {
		t.Errorf("index of %d bytes; want %d (a 64-bit table of %d entries)", buf.Len(), want, 300-128)
	}
}

func TestParseIndexMalformedCases(t *testing.T) {
	f := oid.SHA1
	var entries []IndexEntry
	for i := 0; i < 10; i++ {
		id, _ := oid.Sum(f, []byte{byte(i)})
		entries = append(entries, IndexEntry{ID: id, Offset: uint64(12+i*10) << 28})
	}
	var buf bytes.Buffer
	WriteIndex(&buf, f, entries, make([]byte, 20))
	good := buf.Bytes()
	mutate := func(fn func(b []byte) []byte) []byte { return fn(append([]byte(nil), good...)) }
	for name, data := range map[string][]byte{
		"empty":              {},
		"truncated":          good[:len(good)-1],
		"bad magic":          mutate(func(b []byte) []byte { b[0] = 0; return b }),
		"version 3":          mutate(func(b []byte) []byte { b[7] = 3; return b }),
		"fan-out decreasing": mutate(func(b []byte) []byte { b[8+4*10+3] = 0xff; return b }),
		"huge count":         mutate(func(b []byte) []byte { copy(b[8+255*4:], []byte{0x7f, 0xff, 0xff, 0xff}); return b }),
	} {
		if _, err := ParseIndex(data, f); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: ParseIndex err = %v; want ErrCorrupt", name, err)
		}
	}
	// A 64-bit reference out of the table is left to Verify too: it
	// reads as BadOffset, which no pack holds.
	outOfRange := mutate(func(b []byte) []byte {
		p := 8 + 1024 + 10*24
		copy(b[p:], []byte{0x80, 0, 0, 99})
		return b
	})
	if x, err := ParseIndex(outOfRange, f); err != nil {
		t.Errorf("large ref out of range: ParseIndex err = %v; want nil", err)
	} else if got := x.Offset(0); got != BadOffset {
		t.Errorf("large ref out of range: Offset(0) = %d; want BadOffset", got)
	}
	// Id order is left to Verify: out-of-order ids only make lookups
	// miss, they cannot make a reader go out of bounds.
	unsorted := mutate(func(b []byte) []byte {
		p := 8 + 1024
		tmp := append([]byte(nil), b[p:p+20]...)
		copy(b[p:], b[p+20:p+40])
		copy(b[p+20:], tmp)
		return b
	})
	if x, err := ParseIndex(unsorted, f); err != nil {
		t.Errorf("unsorted ids: ParseIndex err = %v; want nil", err)
	} else if err := x.Verify(); !errors.Is(err, ErrCorrupt) {
		t.Errorf("unsorted ids: Verify err = %v; want ErrCorrupt", err)
	}
}

func TestMultiPackIndexMatchesGit(t *testing.T) {
	for _, format := range []string{"sha1", "sha256"} {
		t.Run(format, func(t *testing.T) {
			dir := gittest.InitBare(t, format)
			gittest.Generate(t, dir, gittest.History{Commits: 10, Files: 6})
			gittest.Git(t, dir, "repack", "-adq")
			blob := gittest.GitInput(t, dir, []byte("x\n"), "hash-object", "-w", "--stdin")
			gittest.Git(t, dir, "tag", "blob", strings.TrimSpace(blob))
			gittest.Git(t, dir, "repack", "-dq")
			gittest.Git(t, dir, "multi-pack-index", "write")
			f, _ := oid.ParseFormat(format)
			packDir := filepath.Join(dir, "objects", "pack")
			m, err := OpenMultiPackIndex(packDir, f)
			if err != nil {
				t.Fatalf("OpenMultiPackIndex: %v", err)
			}
			defer m.Close()
			if len(m.PackNames()) != 2 {
				t.Fatalf("PackNames = %v; want two", m.PackNames())
			}
			ids := gittest.Objects(t, dir)
			if m.Count() != len(ids) {
				t.Errorf("Count = %d; want %d", m.Count(), len(ids))
			}
			for _, h := range ids {
				id, _ := oid.ParseHex(f, h)
				pi, off, ok := m.Find(id)
				if !ok {
					t.Fatalf("Find(%s) failed", id)
				}
				x, err := OpenIndex(filepath.Join(packDir, m.PackNames()[pi]), f)
				if err != nil {
					t.Fatal(err)
				}
				i, found := x.Find(id)
				if !found || x.Offset(i) != off {
					t.Errorf("Find(%s) = pack %d offset %d; its index says %v, %d", id, pi, off, found, x.Offset(i))
				}
				x.Close()
			}
		})
	}
}
