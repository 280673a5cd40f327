package pack

import (
	"errors"
	"path/filepath"
	"testing"

	"gotd/internal/git/oid"
)

// FuzzParseMultiPackIndex parses arbitrary multi-pack-index files.
// Whatever it accepts must name valid pack files, give every object a
// pack number in range, and, when the ids are ordered, find every id
// where Object says it is.
func FuzzParseMultiPackIndex(f *testing.F) {
	for _, format := range formats {
		fo, _ := oid.ParseFormat(format)
		data := readSeed(f, format+".midx")
		f.Add(data, fo == oid.SHA256)
		objs := []midxObject{{fakeID(fo, 1), 0, 1 << 40}, {fakeID(fo, 2), 1, 0x80000000}, {fakeID(fo, 3), 1, 12}}
		f.Add(buildMidx(fo, []string{"pack-a.idx", "pack-b.idx"}, objs, true), fo == oid.SHA256)
		f.Add(buildMidx(fo, []string{"pack-a.idx", "pack-b.idx"}, objs[1:], false), fo == oid.SHA256)
	}
	f.Fuzz(func(t *testing.T, data []byte, sha256 bool) {
		fo := oid.SHA1
		if sha256 {
			fo = oid.SHA256
		}
		m, err := ParseMultiPackIndex(data, fo)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("ParseMultiPackIndex err = %v; want ErrCorrupt", err)
			}
			return
		}
		names := m.PackNames()
		for i, name := range names {
			if !validPackIndexName(name) || filepath.Base(name) != name {
				t.Fatalf("pack name %q accepted", name)
			}
			if i > 0 && names[i-1] >= name {
				t.Fatalf("pack names %q, %q out of order", names[i-1], name)
			}
		}
		if uint64(m.Count())*uint64(fo.Size()+8) > uint64(len(data)) {
			t.Fatalf("Count() = %d does not fit %d bytes", m.Count(), len(data))
		}
		for i := 0; i < m.Count(); i++ {
			if pn, _ := m.Object(i); pn < 0 || pn >= len(names) {
				t.Fatalf("Object(%d) names pack %d of %d", i, pn, len(names))
			}
		}
		for pos := 0; m.HasReverse() && pos < m.Count(); pos++ {
			if i, err := m.IndexAtPseudoPos(pos); err == nil && (i < 0 || i >= m.Count()) {
				t.Fatalf("IndexAtPseudoPos(%d) = %d of %d", pos, i, m.Count())
			} else if err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("IndexAtPseudoPos(%d) err = %v; want ErrCorrupt", pos, err)
			}
		}
		if m.checkOrder() != nil {
			return
		}
		for i := 0; i < m.Count(); i++ {
			wantPack, wantOff := m.Object(i)
			pn, off, ok := m.Find(m.ID(i))
			if !ok || pn != wantPack || off != wantOff {
				t.Fatalf("Find(ID(%d)) = %d, %d, %v; want %d, %d", i, pn, off, ok, wantPack, wantOff)
			}
		}
	})
}
