package pack

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gotd/internal/git/oid"
	"gotd/internal/gittest"
)

// multiPackRepo returns a repository with three packs that share some
// objects, and a multi-pack-index over them written by git with the
// given extra arguments.
func multiPackRepo(t testing.TB, format string, args ...string) (string, oid.Format) {
	t.Helper()
	dir, f := generated(t, format)
	list := gittest.Git(t, dir, "rev-list", "--objects", "main~20")
	gittest.GitInput(t, dir, []byte(list), "pack-objects", "-q", filepath.Join(dir, "objects", "pack", "pack"))
	gittest.Git(t, dir, "repack", "-q", "-d") // the loose objects
	packs, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "*.pack"))
	if len(packs) != 3 {
		t.Fatalf("packs = %v; want 3", packs)
	}
	gittest.Git(t, dir, append([]string{"multi-pack-index", "write"}, args...)...)
	return dir, f
}

func TestMidxMatchesGit(t *testing.T) {
	for _, format := range formats {
		for _, args := range [][]string{nil, {"--bitmap"}} {
			t.Run(format+strings.Join(args, ""), func(t *testing.T) {
				t.Parallel()
				dir, f := multiPackRepo(t, format, args...)
				packDir := filepath.Join(dir, "objects", "pack")
				m, err := OpenMultiPackIndex(packDir, f)
				if err != nil {
					t.Fatalf("OpenMultiPackIndex: %v", err)
				}
				defer m.Close()
				if err := m.Verify(); err != nil {
					t.Errorf("Verify: %v", err)
				}
				idxs, _ := filepath.Glob(filepath.Join(packDir, "*.idx"))
				for i := range idxs {
					idxs[i] = filepath.Base(idxs[i])
				}
				if got := m.PackNames(); !slices.Equal(got, idxs) {
					t.Fatalf("PackNames() = %v; want %v", got, idxs)
				}
				// Every object of every pack is found, in a pack that has
				// it at that offset.
				where := map[oid.ID]map[int]uint64{}
				for pn, name := range idxs {
					for _, e := range showIndex(t, f, filepath.Join(packDir, name)) {
						if where[e.ID] == nil {
							where[e.ID] = map[int]uint64{}
						}
						where[e.ID][pn] = e.Offset
					}
				}
				if m.Count() != len(where) {
					t.Errorf("Count() = %d; want %d", m.Count(), len(where))
				}
				for id, in := range where {
					pn, off, ok := m.Find(id)
					if !ok {
						t.Fatalf("Find(%s) found nothing", id)
					}
					if want, has := in[pn]; !has || want != off {
						t.Fatalf("Find(%s) = pack %d offset %d; the object is at %v", id, pn, off, in)
					}
				}
				for i := 0; i < m.Count(); i++ {
					if _, ok := where[m.ID(i)]; !ok {
						t.Fatalf("ID(%d) = %s, which no pack has", i, m.ID(i))
					}
				}
				if _, _, ok := m.Find(oid.Zero(f)); ok {
					t.Errorf("Find(null) succeeded")
				}
			})
		}
	}
	if _, err := OpenMultiPackIndex(t.TempDir(), oid.SHA1); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenMultiPackIndex(empty dir) err = %v; want ErrNotExist", err)
	}
}

// midxObject is one object of a multi-pack-index built by buildMidx.
type midxObject struct {
	id   oid.ID
	pack uint32
	off  uint64
}

// buildMidx writes a multi-pack-index as gitformat-pack(5) describes,
// with offsets above 2^32 in a LOFF chunk (when large is set) and
// 32-bit offsets with the high bit set otherwise.
func buildMidx(f oid.Format, names []string, objs []midxObject, large bool) []byte {
	slices.SortFunc(objs, func(a, b midxObject) int { return a.id.Compare(b.id) })
	var pnam, oidf, oidl, ooff, loff []byte
	for _, n := range names {
		pnam = append(append(pnam, n...), 0)
	}
	for len(pnam)%4 != 0 {
		pnam = append(pnam, 0)
	}
	var counts [256]uint32
	for _, o := range objs {
		counts[o.id.Bytes()[0]]++
	}
	var total uint32
	for _, c := range counts {
		total += c
		oidf = appendBE32(oidf, total)
	}
	for _, o := range objs {
		oidl = append(oidl, o.id.Bytes()...)
		ooff = appendBE32(ooff, o.pack)
		if large && o.off > 0x7fffffff {
			ooff = appendBE32(ooff, largeOffsetFlag|uint32(len(loff)/8))
			loff = appendBE64(loff, o.off)
		} else {
			ooff = appendBE32(ooff, uint32(o.off))
		}
	}
	type chunk struct {
		id   string
		data []byte
	}
	chunks := []chunk{{"PNAM", pnam}, {"OIDF", oidf}, {"OIDL", oidl}, {"OOFF", ooff}}
	if large {
		chunks = append(chunks, chunk{"LOFF", loff})
	}
	b := append([]byte("MIDX"), 1, byte(f.FormatID()), byte(len(chunks)), 0)
	b = appendBE32(b, uint32(len(names)))
	off := uint64(midxHeaderSize + 12*(len(chunks)+1))
	for _, c := range chunks {
		b = appendBE64(append(b, c.id...), off)
		off += uint64(len(c.data))
	}
	b = appendBE64(append(b, 0, 0, 0, 0), off)
	for _, c := range chunks {
		b = append(b, c.data...)
	}
	h := checksumHash(f)
	h.Write(b)
	return h.Sum(b)
}

// TestMultiPackIndexOffsets reads 64-bit offsets from a LOFF chunk, and
// 32-bit offsets with the high bit set where there is no LOFF chunk (a
// pack between 2 and 4 GiB), as git does.
func TestMultiPackIndexOffsets(t *testing.T) {
	f := oid.SHA1
	offsets := []uint64{12, 0x7fffffff, 0x80000000, 0xfffffff0}
	var objs []midxObject
	for i, off := range offsets {
		objs = append(objs, midxObject{fakeID(f, i), uint32(i % 2), off})
	}
	names := []string{"pack-a.idx", "pack-b.idx"}
	for _, large := range []bool{false, true} {
		all := slices.Clone(objs)
		if large {
			all = append(all, midxObject{fakeID(f, 10), 1, 1 << 40}, midxObject{fakeID(f, 11), 0, 1<<32 + 1})
		}
		m, err := ParseMultiPackIndex(buildMidx(f, names, slices.Clone(all), large), f)
		if err != nil {
			t.Fatalf("large %v: ParseMultiPackIndex: %v", large, err)
		}
		if err := m.Verify(); err != nil {
			t.Errorf("large %v: Verify: %v", large, err)
		}
		for _, o := range all {
			pn, off, ok := m.Find(o.id)
			if !ok || pn != int(o.pack) || off != o.off {
				t.Errorf("large %v: Find(%s) = %d, %d, %v; want %d, %d", large, o.id, pn, off, ok, o.pack, o.off)
			}
		}
	}
}

// chunkAt returns the offset of the chunk table row for id in a
// multi-pack-index.
func chunkRow(t *testing.T, data []byte, id string) int {
	t.Helper()
	for i := 0; i < int(data[6]); i++ {
		row := midxHeaderSize + 12*i
		if string(data[row:row+4]) == id {
			return row
		}
	}
	t.Fatalf("no chunk %s", id)
	return 0
}

func TestParseMultiPackIndexMalformed(t *testing.T) {
	dir, f := multiPackRepo(t, "sha1", "--bitmap")
	good, err := os.ReadFile(filepath.Join(dir, "objects", "pack", "multi-pack-index"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseMultiPackIndex(good, f); err != nil {
		t.Fatalf("ParseMultiPackIndex(git's file): %v", err)
	}
	chunkStart := func(id string) int { return int(be64(good[chunkRow(t, good, id)+4:])) }
	mod := func(at int, b ...byte) []byte {
		d := slices.Clone(good)
		copy(d[at:], b)
		return d
	}
	nchunks := int(good[6])
	pnam := chunkStart("PNAM")
	oidf := chunkStart("OIDF")
	ooff := chunkStart("OOFF")
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"header only", good[:midxHeaderSize]},
		{"no trailer", good[:len(good)-f.Size()-1]},
		{"bad magic", mod(0, 'M', 'I', 'D', 'Y')},
		{"version 2", mod(4, 2)},
		{"sha256 hash id", mod(5, 2)},
		{"hash id 0", mod(5, 0)},
		{"255 chunks", mod(6, 255)},
		{"fewer chunks", mod(6, byte(nchunks-1))},
		{"a base file", mod(7, 1)},
		{"more packs than names", mod(8, appendBE32(nil, 4)...)},
		{"fewer packs than names", mod(8, appendBE32(nil, 2)...)},
		{"pack count huge", mod(8, 0xff, 0xff, 0xff, 0xff)},
		{"chunk inside the table", mod(chunkRow(t, good, "OIDF")+4, appendBE64(nil, 12)...)},
		{"chunk past the trailer", mod(chunkRow(t, good, "OOFF")+4, appendBE64(nil, uint64(len(good)))...)},
		{"chunk offsets decrease", mod(chunkRow(t, good, "OIDL")+4, appendBE64(nil, uint64(oidf-4))...)},
		{"duplicate chunk", mod(chunkRow(t, good, "OIDL"), 'O', 'I', 'D', 'F')},
		{"zero chunk id", mod(chunkRow(t, good, "OIDL"), 0, 0, 0, 0)},
		{"missing OIDF", mod(chunkRow(t, good, "OIDF"), 'X', 'X', 'X', 'X')},
		{"missing PNAM", mod(chunkRow(t, good, "PNAM"), 'X', 'X', 'X', 'X')},
		{"missing OOFF", mod(chunkRow(t, good, "OOFF"), 'X', 'X', 'X', 'X')},
		{"unterminated table", mod(midxHeaderSize+12*nchunks, 'L', 'O', 'F', 'F')},
		{"pack name with a slash", mod(pnam, '/')},
		{"pack name with dot-dot", mod(pnam, '.', '.', '/')},
		{"pack name not .idx", mod(pnam+strings.IndexByte(string(good[pnam:]), 0)-1, 'k')},
		{"pack names unsorted", mod(pnam+5, 'z')},
		{"fan-out decreases", mod(oidf+4*10, 0xff, 0xff, 0xff, 0xff)},
		{"fan-out count wrong", mod(oidf+4*255, 0, 0, 0, 1)},
		{"pack number out of range", mod(ooff, 0, 0, 0, 3)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseMultiPackIndex(tc.data, f)
			if err == nil {
				t.Fatalf("ParseMultiPackIndex succeeded with %d objects; want an error", m.Count())
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("err = %v; want ErrCorrupt", err)
			}
		})
	}
	if _, err := ParseMultiPackIndex(good, oid.SHA256); err == nil {
		t.Errorf("ParseMultiPackIndex(sha1 file as sha256) succeeded")
	}

	// A LOFF reference past the table.
	objs := []midxObject{{fakeID(f, 1), 0, 1 << 40}}
	b := buildMidx(f, []string{"pack-a.idx"}, objs, true)
	ref := bytes.Index(b, appendBE32(nil, largeOffsetFlag))
	b[ref+3] = 1
	if _, err := ParseMultiPackIndex(b, f); !errors.Is(err, ErrCorrupt) {
		t.Errorf("LOFF reference out of range: err = %v; want ErrCorrupt", err)
	}

	// Ids out of order parse, but Verify rejects them.
	swapped := slices.Clone(good)
	oidl := chunkStart("OIDL")
	hs := f.Size()
	a, c := slices.Clone(swapped[oidl:oidl+hs]), slices.Clone(swapped[oidl+hs:oidl+2*hs])
	copy(swapped[oidl:], c)
	copy(swapped[oidl+hs:], a)
	h := checksumHash(f)
	h.Write(swapped[:len(swapped)-hs])
	copy(swapped[len(swapped)-hs:], h.Sum(nil))
	m, err := ParseMultiPackIndex(swapped, f)
	if err != nil {
		t.Fatalf("ParseMultiPackIndex(swapped ids): %v", err)
	}
	if err := m.Verify(); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Verify(swapped ids) = %v; want ErrCorrupt", err)
	}
	flipped := mod(len(good)-1, good[len(good)-1]^1)
	if m, err := ParseMultiPackIndex(flipped, f); err != nil || m.Verify() == nil {
		t.Errorf("Verify accepts a bad checksum (parse err %v)", err)
	}
}
