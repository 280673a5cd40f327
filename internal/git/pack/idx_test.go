package pack

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gotd/internal/git/oid"
	"gotd/internal/gittest"
)

// TestWriteIndexMatchesGit rebuilds the .idx and .rev of C Git's packs
// from the entries git show-index lists and compares them byte for byte.
func TestWriteIndexMatchesGit(t *testing.T) {
	for _, format := range formats {
		for _, repack := range [][]string{
			{"repack", "-q", "-adf"},
			{"-c", "repack.useDeltaBaseOffset=false", "repack", "-q", "-adf"},
		} {
			t.Run(format+"/"+strings.Join(repack, " "), func(t *testing.T) {
				t.Parallel()
				dir, f := generated(t, format)
				gittest.Git(t, dir, repack...)
				path := onePack(t, dir)
				gittest.Git(t, dir, "index-pack", "--rev-index", path)
				base := strings.TrimSuffix(path, ".pack")
				wantIdx, _ := os.ReadFile(base + ".idx")
				wantRev, _ := os.ReadFile(base + ".rev")
				ents := showIndex(t, f, base+".idx")
				rand.New(rand.NewPCG(1, 2)).Shuffle(len(ents), func(i, j int) { ents[i], ents[j] = ents[j], ents[i] })
				packSum := wantIdx[len(wantIdx)-2*f.Size() : len(wantIdx)-f.Size()]

				var buf bytes.Buffer
				sum, err := WriteIndex(&buf, f, ents, packSum)
				if err != nil {
					t.Fatalf("WriteIndex: %v", err)
				}
				if !bytes.Equal(buf.Bytes(), wantIdx) {
					t.Errorf("WriteIndex wrote %d bytes differing from git's %d", buf.Len(), len(wantIdx))
				}
				if !bytes.Equal(sum, wantIdx[len(wantIdx)-f.Size():]) {
					t.Errorf("WriteIndex returned checksum %x; want %x", sum, wantIdx[len(wantIdx)-f.Size():])
				}
				if !slices.IsSortedFunc(ents, func(a, b IndexEntry) int { return a.ID.Compare(b.ID) }) {
					t.Errorf("WriteIndex left the entries unsorted")
				}

				buf.Reset()
				sum, err = WriteRev(&buf, f, ents, packSum)
				if err != nil {
					t.Fatalf("WriteRev: %v", err)
				}
				if !bytes.Equal(buf.Bytes(), wantRev) {
					t.Errorf("WriteRev wrote %d bytes differing from git's %d", buf.Len(), len(wantRev))
				}
				if !bytes.Equal(sum, wantRev[len(wantRev)-f.Size():]) {
					t.Errorf("WriteRev returned checksum %x; want %x", sum, wantRev[len(wantRev)-f.Size():])
				}

				// The 64-bit offset table, on a small pack: git writes
				// every offset above the given limit there.
				for _, limit := range []uint64{0, 0x40, 0x400} {
					out := filepath.Join(t.TempDir(), "x.idx")
					gittest.Git(t, dir, "index-pack", "--index-version=2,0x"+strconv.FormatUint(limit, 16), "-o", out, path)
					want, _ := os.ReadFile(out)
					buf.Reset()
					if _, err := writeIndex(&buf, f, ents, packSum, limit); err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(buf.Bytes(), want) {
						t.Errorf("writeIndex with limit %#x differs from git index-pack --index-version=2,%#x", limit, limit)
					}
					x, err := ParseIndex(want, f)
					if err != nil {
						t.Fatalf("ParseIndex(git's index with limit %#x): %v", limit, err)
					}
					if limit < 0x400 && len(x.large) == 0 {
						t.Errorf("git's index with limit %#x has no 64-bit offsets", limit)
					}
					for i, e := range ents {
						if x.ID(i) != e.ID || x.Offset(i) != e.Offset || x.CRC32(i) != e.CRC32 {
							t.Fatalf("limit %#x: entry %d = %s %d; want %s %d", limit, i, x.ID(i), x.Offset(i), e.ID, e.Offset)
						}
					}
					if err := x.Verify(); err != nil {
						t.Errorf("Verify(git's index with limit %#x) = %v", limit, err)
					}
				}
			})
		}
	}
}

// fakeID returns a deterministic id of format f for n.
func fakeID(f oid.Format, n int) oid.ID {
	sum := sha256.Sum256([]byte{byte(n), byte(n >> 8), byte(n >> 16), 'x'})
	return oid.MustFromBytes(f, sum[:f.Size()])
}

// TestWriteIndexLargeOffsets writes offsets beyond 2^31 and 2^32, as a
// pack of several GiB has, and reads them back with ParseIndex and with
// git show-index.
func TestWriteIndexLargeOffsets(t *testing.T) {
	offsets := []uint64{12, 0x7fffffff, 0x80000000, 0xffffffff, 1 << 32, 1<<40 + 3, 1<<62 + 5, 4096}
	for _, format := range formats {
		f, _ := oid.ParseFormat(format)
		var ents []IndexEntry
		for i, off := range offsets {
			ents = append(ents, IndexEntry{ID: fakeID(f, i), Offset: off, CRC32: uint32(i) * 0x01010101})
		}
		packSum := bytes.Repeat([]byte{0xab}, f.Size())
		var buf bytes.Buffer
		if _, err := WriteIndex(&buf, f, ents, packSum); err != nil {
			t.Fatal(err)
		}
		x, err := ParseIndex(buf.Bytes(), f)
		if err != nil {
			t.Fatalf("ParseIndex: %v", err)
		}
		if err := x.Verify(); err != nil {
			t.Errorf("Verify: %v", err)
		}
		// Five offsets are above 2^31-1; the table holds them in id order.
		if got := len(x.large) / 8; got != 5 {
			t.Errorf("%s: 64-bit table has %d entries; want 5", format, got)
		}
		var large []uint64
		for i, e := range ents {
			if x.ID(i) != e.ID || x.Offset(i) != e.Offset || x.CRC32(i) != e.CRC32 {
				t.Errorf("%s: entry %d = %s %d %x; want %s %d %x", format, i, x.ID(i), x.Offset(i), x.CRC32(i), e.ID, e.Offset, e.CRC32)
			}
			if e.Offset > maxSmallOffset {
				large = append(large, e.Offset)
			}
		}
		for k, off := range large {
			if got := be64(x.large[8*k:]); got != off {
				t.Errorf("%s: 64-bit slot %d = %d; want %d", format, k, got, off)
			}
		}
		if !bytes.Equal(x.PackChecksum(), packSum) {
			t.Errorf("PackChecksum() = %x; want %x", x.PackChecksum(), packSum)
		}
		got := showIndex(t, f, writeTemp(t, buf.Bytes()))
		if !slices.Equal(got, ents) {
			t.Errorf("%s: git show-index reads %v; want %v", format, got, ents)
		}
	}
}

func writeTemp(t *testing.T, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestWriteIndexErrors(t *testing.T) {
	f := oid.SHA1
	sum := make([]byte, f.Size())
	dup := []IndexEntry{{ID: fakeID(f, 1), Offset: 12}, {ID: fakeID(f, 1), Offset: 40}}
	other := []IndexEntry{{ID: fakeID(oid.SHA256, 1), Offset: 12}}
	for _, tc := range []struct {
		name string
		f    oid.Format
		ents []IndexEntry
		sum  []byte
	}{
		{"duplicate id", f, dup, sum},
		{"id of another format", f, other, sum},
		{"short pack checksum", f, nil, sum[:19]},
		{"invalid format", 0, nil, sum},
	} {
		if _, err := WriteIndex(&bytes.Buffer{}, tc.f, tc.ents, tc.sum); err == nil {
			t.Errorf("WriteIndex(%s) succeeded; want an error", tc.name)
		}
	}
	sameOffset := []IndexEntry{{ID: fakeID(f, 1), Offset: 12}, {ID: fakeID(f, 2), Offset: 12}}
	slices.SortFunc(sameOffset, func(a, b IndexEntry) int { return a.ID.Compare(b.ID) })
	if _, err := WriteRev(&bytes.Buffer{}, f, sameOffset, sum); err == nil {
		t.Errorf("WriteRev(two objects at one offset) succeeded")
	}
	unsorted := []IndexEntry{sameOffset[1], sameOffset[0]}
	unsorted[0].Offset = 40
	if _, err := WriteRev(&bytes.Buffer{}, f, unsorted, sum); err == nil {
		t.Errorf("WriteRev(unsorted entries) succeeded")
	}
	if _, err := WriteIndex(failWriter{}, f, []IndexEntry{{ID: fakeID(f, 1), Offset: 12}}, sum); err == nil {
		t.Errorf("WriteIndex to a failing writer succeeded")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// smallIndex returns an index of format f with a 64-bit offset, and its
// entries in index order.
func smallIndex(t testing.TB, f oid.Format) ([]byte, []IndexEntry) {
	t.Helper()
	ents := []IndexEntry{
		{ID: fakeID(f, 1), Offset: 12, CRC32: 1},
		{ID: fakeID(f, 2), Offset: 1 << 33, CRC32: 2},
		{ID: fakeID(f, 3), Offset: 300, CRC32: 3},
	}
	var buf bytes.Buffer
	if _, err := WriteIndex(&buf, f, ents, bytes.Repeat([]byte{7}, f.Size())); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), ents
}

func TestParseIndexMalformed(t *testing.T) {
	f := oid.SHA1
	good, ents := smallIndex(t, f)
	mod := func(fn func(b []byte) []byte) []byte { return fn(slices.Clone(good)) }
	put32 := func(at int, v uint32) []byte {
		return mod(func(b []byte) []byte { copy(b[at:], appendBE32(nil, v)); return b })
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"magic only", good[:4]},
		{"header only", good[:idxHeaderSize]},
		{"no checksums", good[:idxHeaderSize+fanoutSize]},
		{"one byte short", good[:len(good)-1]},
		{"four bytes short", good[:len(good)-4]},
		{"four bytes extra", append(slices.Clone(good), 0, 0, 0, 0)},
		{"bad magic", put32(0, 0xff744f64)},
		{"version 1", put32(4, 1)},
		{"version 3", put32(4, 3)},
		{"fan-out decreases", put32(idxHeaderSize+4*10, 0xff)},
		{"fan-out count huge", put32(idxHeaderSize+4*255, 0xffffffff)},
		{"fan-out count one more", put32(idxHeaderSize+4*255, uint32(len(ents)+1))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x, err := ParseIndex(tc.data, f)
			if err == nil {
				t.Fatalf("ParseIndex succeeded with %d objects; want an error", x.Count())
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("ParseIndex err = %v; want ErrCorrupt", err)
			}
		})
	}
	if _, err := ParseIndex(good, oid.SHA256); err == nil {
		t.Errorf("ParseIndex(sha1 index as sha256) succeeded")
	}
	if _, err := ParseIndex(good, 0); err == nil {
		t.Errorf("ParseIndex(invalid format) succeeded")
	}
	if _, err := OpenIndex(filepath.Join(t.TempDir(), "none.idx"), f); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenIndex(missing) err = %v; want ErrNotExist", err)
	}
}

// TestIndexLargeOffsets checks the 64-bit offset table, which
// ParseIndex leaves to Verify so that opening a large index reads only
// its header: a reference out of the table reads as BadOffset, never
// past the file, and Verify refuses the index.
func TestIndexLargeOffsets(t *testing.T) {
	f := oid.SHA1
	good, ents := smallIndex(t, f)
	offs := idxHeaderSize + fanoutSize + len(ents)*(f.Size()+4)
	large := -1
	for i, e := range ents {
		if e.Offset > maxSmallOffset {
			large = i
		}
	}
	rehash := func(b []byte) []byte {
		h := checksumHash(f)
		h.Write(b[:len(b)-f.Size()])
		copy(b[len(b)-f.Size():], h.Sum(nil))
		return b
	}
	put32 := func(at int, v uint32) []byte {
		b := slices.Clone(good)
		copy(b[at:], appendBE32(nil, v))
		return rehash(b)
	}
	// An extra slot goes before the two checksums.
	tail := len(good) - 2*f.Size()
	extra := rehash(slices.Concat(good[:tail], make([]byte, 8), good[tail:]))
	for _, tc := range []struct {
		name string
		data []byte
		bad  int // entry whose offset reads as BadOffset, or -1
	}{
		{"unreferenced 64-bit slot", extra, -1},
		{"64-bit reference out of range", put32(offs+4*large, largeOffsetFlag|1), large},
		{"small offset made 64-bit", put32(offs, largeOffsetFlag|0), -1},
		{"64-bit reference cleared", put32(offs+4*large, 5), -1},
	} {
		x, err := ParseIndex(tc.data, f)
		if err != nil {
			t.Fatalf("%s: ParseIndex: %v", tc.name, err)
		}
		for i := range x.Count() {
			if got := x.Offset(i); (got == BadOffset) != (i == tc.bad) {
				t.Errorf("%s: Offset(%d) = %d", tc.name, i, got)
			}
		}
		if err := x.Verify(); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Verify() = %v; want ErrCorrupt", tc.name, err)
		}
	}
}

// TestIndexVerify checks what ParseIndex leaves to Verify: the checksum,
// the order of the ids and the fan-out's counts.
func TestIndexVerify(t *testing.T) {
	f := oid.SHA256
	good, _ := smallIndex(t, f)
	rehash := func(b []byte) []byte {
		h := checksumHash(f)
		h.Write(b[:len(b)-f.Size()])
		copy(b[len(b)-f.Size():], h.Sum(nil))
		return b
	}
	ids := idxHeaderSize + fanoutSize
	swapped := slices.Clone(good)
	a, b := swapped[ids:ids+f.Size()], swapped[ids+f.Size():ids+2*f.Size()]
	tmp := slices.Clone(a)
	copy(a, b)
	copy(b, tmp)
	fanout := slices.Clone(good)
	// Move one id's count to the byte before it.
	first := int(good[ids])
	if first > 0 {
		copy(fanout[idxHeaderSize+4*(first-1):], appendBE32(nil, 1))
	} else {
		copy(fanout[idxHeaderSize+4*first:], appendBE32(nil, 0))
	}
	flipped := slices.Clone(good)
	flipped[ids] ^= 1
	for _, tc := range []struct {
		name string
		data []byte
		ok   bool
	}{
		{"good", good, true},
		{"flipped id", flipped, false},
		{"ids swapped", rehash(swapped), false},
		{"fan-out miscounts", rehash(fanout), false},
	} {
		x, err := ParseIndex(tc.data, f)
		if err != nil {
			t.Fatalf("%s: ParseIndex: %v", tc.name, err)
		}
		if err := x.Verify(); (err == nil) != tc.ok {
			t.Errorf("%s: Verify() = %v; want ok %v", tc.name, err, tc.ok)
		}
	}
}

func TestIndexFindNoAlloc(t *testing.T) {
	data, ents := smallIndex(t, oid.SHA1)
	x, err := ParseIndex(data, oid.SHA1)
	if err != nil {
		t.Fatal(err)
	}
	id := ents[1].ID
	missing := fakeID(oid.SHA1, 99)
	allocs := testing.AllocsPerRun(100, func() {
		x.Find(id)
		x.Find(missing)
		x.Offset(1)
	})
	if allocs != 0 {
		t.Errorf("Find allocates %v times per call; want 0", allocs)
	}
	if _, ok := x.Find(fakeID(oid.SHA256, 1)); ok {
		t.Errorf("Find(sha256 id) in a sha1 index succeeded")
	}
}

// TestSearchIDs checks the guessed-window search against every member
// and non-member of large ranges: evenly spread ids, where the window
// is usually right, and ids crowded at one end, where it is wrong.
func TestSearchIDs(t *testing.T) {
	const hs = 20
	rng := rand.New(rand.NewPCG(1, 2))
	for _, crowd := range []bool{false, true} {
		for _, n := range []int{1, 63, 64, 65, 1000, 5000} {
			keys := make([][]byte, 0, 2*n)
			for range 2 * n {
				k := make([]byte, hs)
				for i := range k {
					k[i] = byte(rng.Uint32())
				}
				k[0] = 0x5a // one fan-out range
				if crowd {
					k[1], k[2] = 0xff, 0xff
				}
				keys = append(keys, k)
			}
			slices.SortFunc(keys, bytes.Compare)
			keys = slices.CompactFunc(keys, bytes.Equal)
			// Every other key is a member.
			var ids []byte
			for i := 0; i < len(keys); i += 2 {
				ids = append(ids, keys[i]...)
			}
			m := len(ids) / hs
			for i, k := range keys {
				pos, ok := searchIDs(ids, hs, 0, m, k)
				if member := i%2 == 0; ok != member || ok && pos != i/2 {
					t.Fatalf("crowd %v n %d: key %d: got %d, %v; want member %v at %d", crowd, n, i, pos, ok, member, i/2)
				}
			}
		}
	}
}
