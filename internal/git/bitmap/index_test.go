package bitmap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"testing"

	"gotd/internal/git/oid"
	"gotd/internal/git/walk/walktest"
	"gotd/internal/gittest"
)

// layout locates the parts of a .bitmap file.
type layout struct {
	types   [4][2]int // start, end of each type bitmap
	entries [][2]int  // start of each entry, start of its EWAH
	ewahEnd []int
	table   int // start of the lookup table, or -1
	hashes  int // start of the name-hash cache, or -1
}

func locate(t *testing.T, data []byte, hs, count int) layout {
	t.Helper()
	var l layout
	pos := 12 + hs
	for i := range l.types {
		info, err := scanEWAH(data[pos:], count)
		if err != nil {
			t.Fatal(err)
		}
		l.types[i] = [2]int{pos, pos + info.n}
		pos += info.n
	}
	n := int(binary.BigEndian.Uint32(data[8:]))
	for i := 0; i < n; i++ {
		info, err := scanEWAH(data[pos+6:], count)
		if err != nil {
			t.Fatal(err)
		}
		l.entries = append(l.entries, [2]int{pos, pos + 6})
		l.ewahEnd = append(l.ewahEnd, pos+6+info.n)
		pos += 6 + info.n
	}
	l.table, l.hashes = -1, -1
	flags := binary.BigEndian.Uint16(data[6:])
	if flags&FlagLookupTable != 0 {
		l.table = pos
		pos += n * tripletSize
	}
	if flags&FlagHashCache != 0 {
		l.hashes = pos
	}
	return l
}

// gitBitmap has C Git write a bitmap with both extensions.
func gitBitmap(t *testing.T, format string) (*walktest.Pack, []byte, oid.Format) {
	t.Helper()
	dir := gittest.InitBare(t, format)
	gittest.Generate(t, dir, gittest.History{Commits: 120, Branches: 3, Files: 12})
	gittest.Git(t, dir, "-c", "pack.writeBitmapHashCache=true", "-c", "pack.writeBitmapLookupTable=true", "repack", "-adbq")
	f, _ := oid.ParseFormat(format)
	p := walktest.LoadPack(t, dir, f, nil)
	data, err := os.ReadFile(p.Base + ".bitmap")
	if err != nil {
		t.Fatal(err)
	}
	return p, data, f
}

// TestReencodeMatchesGit decodes the EWAH bitmaps C Git wrote and checks
// that AppendEWAH gives back the same bytes. Entries stored XORed with
// another are left out: C Git pads those to the longer operand's size.
func TestReencodeMatchesGit(t *testing.T) {
	p, data, f := gitBitmap(t, "sha1")
	l := locate(t, data, f.Size(), p.Count())
	spans := l.types[:]
	for i, e := range l.entries {
		if data[e[0]+4] == 0 {
			spans = append(spans, [2]int{e[1], l.ewahEnd[i]})
		}
	}
	if len(spans) < 5 {
		t.Fatalf("only %d bitmaps to compare", len(spans))
	}
	for i, s := range spans {
		b, n, err := DecodeEWAH(data[s[0]:], p.Count())
		if err != nil || n != s[1]-s[0] {
			t.Fatalf("bitmap %d: DecodeEWAH = %d bytes, %v", i, n, err)
		}
		got, want := AppendEWAH(nil, b), data[s[0]:s[1]]
		if i >= len(l.types) {
			got = appendEWAH(nil, b, true) // commit bitmaps count whole words
		}
		if !bytes.Equal(got, want) {
			t.Errorf("bitmap %d: re-encoded\n%x\nC Git wrote\n%x", i, got, want)
		}
	}
}

func TestParseMalformed(t *testing.T) {
	p, orig, f := gitBitmap(t, "sha1")
	hs := f.Size()
	count := p.Count()
	l := locate(t, orig, hs, count)
	if len(l.entries) < 3 || l.table < 0 || l.hashes < 0 {
		t.Fatalf("test bitmap lacks entries or extensions: %+v", l)
	}
	if _, err := Parse(orig, f, p); err != nil {
		t.Fatalf("Parse of the intact file: %v", err)
	}
	put32 := func(b []byte, off int, v uint32) { binary.BigEndian.PutUint32(b[off:], v) }
	// A blob's index position, for an entry naming a non-commit.
	blobIndex := -1
	for i := 0; i < count && blobIndex < 0; i++ {
		id, _ := p.IDAtIndex(i)
		if pos, _ := p.PackPos(id); !mustParse(t, orig, f, p).types[0].Has(pos) {
			blobIndex = i
		}
	}
	// An entry with an XOR base, for the lookup-table cases.
	xorEntry := -1
	for i, e := range l.entries {
		if orig[e[0]+4] != 0 {
			xorEntry = i
			break
		}
	}
	for _, tc := range []struct {
		name   string
		mutate func(b []byte) []byte
	}{
		{"empty", func(b []byte) []byte { return b[:0] }},
		{"header only", func(b []byte) []byte { return b[:12+hs] }},
		{"signature", func(b []byte) []byte { b[0] = 'X'; return b }},
		{"version", func(b []byte) []byte { b[5] = 2; return b }},
		{"not full DAG", func(b []byte) []byte { b[7] &^= FlagFullDAG; return b }},
		{"unknown flag", func(b []byte) []byte { b[7] |= 0x20; return b }},
		{"hash cache flag without cache", func(b []byte) []byte {
			b[7] &^= FlagLookupTable
			return b[:l.table]
		}},
		{"no hash cache flag", func(b []byte) []byte { b[7] &^= FlagHashCache; return b }},
		{"no table flag", func(b []byte) []byte { b[7] &^= FlagLookupTable; return b }},
		{"pack checksum", func(b []byte) []byte { b[12] ^= 1; return b }},
		{"entry count huge", func(b []byte) []byte { put32(b, 8, 0xffffffff); return b }},
		{"entry count one more", func(b []byte) []byte { put32(b, 8, uint32(len(l.entries)+1)); return b }},
		{"entry count one less", func(b []byte) []byte { put32(b, 8, uint32(len(l.entries)-1)); return b }},
		{"truncated", func(b []byte) []byte { return b[:len(b)-hs-1] }},
		{"trailing garbage", func(b []byte) []byte {
			return append(b[:len(b)-hs], append([]byte{0, 0, 0, 0}, b[len(b)-hs:]...)...)
		}},
		{"type bitmap bit past count", func(b []byte) []byte {
			// Make the blob bitmap a run of ones over every word.
			s := l.types[2]
			enc := ewah(uint32(count+64), 0, marker(1, uint64(count+64)/64+1, 0))
			return append(append(append([]byte(nil), b[:s[0]]...), enc...), b[s[1]:]...)
		}},
		{"types overlap", func(b []byte) []byte {
			s, c := l.types[2], l.types[0]
			return append(append(append([]byte(nil), b[:s[0]]...), b[c[0]:c[1]]...), b[s[1]:]...)
		}},
		{"entry index position", func(b []byte) []byte { put32(b, l.entries[0][0], uint32(count)); return b }},
		{"entry names a blob", func(b []byte) []byte { put32(b, l.entries[0][0], uint32(blobIndex)); return b }},
		{"entry twice", func(b []byte) []byte {
			copy(b[l.entries[1][0]:l.entries[1][0]+4], b[l.entries[0][0]:])
			return b
		}},
		{"xor before first", func(b []byte) []byte { b[l.entries[0][0]+4] = 1; return b }},
		{"xor past limit", func(b []byte) []byte { b[l.entries[len(l.entries)-1][0]+4] = MaxXOROffset + 1; return b }},
		{"entry ewah overruns", func(b []byte) []byte { put32(b, l.entries[0][1]+4, 1<<20); return b }},
		{"table out of order", func(b []byte) []byte {
			r0, r1 := b[l.table:l.table+tripletSize], b[l.table+tripletSize:l.table+2*tripletSize]
			tmp := append([]byte(nil), r0...)
			copy(r0, r1)
			copy(r1, tmp)
			return b
		}},
		{"table offset", func(b []byte) []byte {
			binary.BigEndian.PutUint64(b[l.table+4:], binary.BigEndian.Uint64(b[l.table+4:])+1)
			return b
		}},
		{"table offset huge", func(b []byte) []byte { binary.BigEndian.PutUint64(b[l.table+4:], 1<<63); return b }},
		{"table xor row", func(b []byte) []byte {
			for r := 0; r < len(l.entries); r++ {
				off := l.table + r*tripletSize + 12
				if binary.BigEndian.Uint32(b[off:]) == noXORRow {
					put32(b, off, 0)
					return b
				}
			}
			t.Fatal("no entry without xor")
			return b
		}},
		{"table xor row missing", func(b []byte) []byte {
			if xorEntry < 0 {
				t.Skip("C Git stored no XOR entry")
			}
			ipos := binary.BigEndian.Uint32(b[l.entries[xorEntry][0]:])
			for r := 0; r < len(l.entries); r++ {
				if binary.BigEndian.Uint32(b[l.table+r*tripletSize:]) == ipos {
					put32(b, l.table+r*tripletSize+12, noXORRow)
				}
			}
			return b
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.mutate(bytes.Clone(orig))
			x, err := Parse(b, f, p)
			if err == nil {
				t.Fatalf("Parse succeeded with %d entries; want an error", x.Len())
			}
			if len(b) > 0 && tc.name != "pack checksum" && !errors.Is(err, ErrCorrupt) {
				t.Errorf("got %v; want an error wrapping ErrCorrupt", err)
			}
		})
	}
}

func mustParse(t *testing.T, data []byte, f oid.Format, p IndexLookup) *Index {
	t.Helper()
	x, err := Parse(data, f, p)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// TestXORChain checks that bitmaps stored as XOR chains resolve, from the
// cache and without it.
func TestXORChain(t *testing.T) {
	p, data, f := gitBitmap(t, "sha1")
	x := mustParse(t, data, f, p)
	fresh := func() *Index { return mustParse(t, data, f, p) }
	var ids []oid.ID
	x.Commits(func(id oid.ID) bool { ids = append(ids, id); return true })
	// Resolve newest first with one Index (no cache help), then oldest
	// first with another (cache hits on bases), and compare.
	a := fresh()
	for i := len(ids) - 1; i >= 0; i-- {
		ba, _ := a.Bitmap(ids[i])
		bx, _ := x.Bitmap(ids[i])
		if !ba.Equal(bx) {
			t.Errorf("%v: bitmaps differ with the resolution order", ids[i])
		}
	}
	for _, id := range ids {
		b1, _ := x.Bitmap(id)
		b2, _ := fresh().Bitmap(id)
		if !b1.Equal(b2) {
			t.Errorf("%v: cached bitmap differs", id)
		}
	}
}

// TestConcurrentBitmap resolves bitmaps from several goroutines at once
// (run with -race).
func TestConcurrentBitmap(t *testing.T) {
	p, data, f := gitBitmap(t, "sha1")
	x := mustParse(t, data, f, p)
	var ids []oid.ID
	x.Commits(func(id oid.ID) bool { ids = append(ids, id); return true })
	want := make([]int, len(ids))
	for i, id := range ids {
		b, _ := mustParse(t, data, f, p).Bitmap(id)
		want[i] = b.Count()
	}
	done := make(chan error)
	for g := 0; g < 4; g++ {
		go func(g int) {
			for k := 0; k < 50; k++ {
				i := (g*7 + k) % len(ids)
				if b, ok := x.Bitmap(ids[i]); !ok || b.Count() != want[i] {
					done <- errors.New("wrong bitmap under concurrency")
					return
				}
			}
			done <- nil
		}(g)
	}
	for g := 0; g < 4; g++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
