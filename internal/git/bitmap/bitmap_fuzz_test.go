package bitmap

import (
	"bytes"
	"fmt"
	"math/rand"
	"testing"

	"gotd/internal/git/oid"
)

// FuzzDecodeEWAH checks that whatever DecodeEWAH accepts has no bit at
// or past maxBits, spans the bytes it reports, and survives a round trip
// through AppendEWAH.
func FuzzDecodeEWAH(f *testing.F) {
	var b Bitmap
	for i := 0; i < 3000; i += 3 {
		b.Set(i)
	}
	for i := 5000; i < 7000; i++ {
		b.Set(i)
	}
	f.Add(AppendEWAH(nil, b), uint16(8000))
	f.Add(appendEWAH(nil, b, true), uint16(7000))
	f.Add(AppendEWAH(nil, Bitmap{}), uint16(0))
	f.Add(ewah(64, 0, marker(1, 1<<32-1, 0)), uint16(64))
	f.Add(ewah(64, 0, marker(0, 0, 1<<31-1), 1), uint16(64))
	f.Add(ewah(128, 1, marker(1, 1, 1), 5), uint16(128))
	f.Fuzz(func(t *testing.T, data []byte, max uint16) {
		maxBits := int(max)
		got, n, err := DecodeEWAH(data, maxBits)
		if err != nil {
			return
		}
		if n > len(data) || n < ewahHeaderSize+ewahTrailerSize {
			t.Fatalf("DecodeEWAH consumed %d of %d bytes", n, len(data))
		}
		if got.Len() > maxBits {
			t.Fatalf("decoded bit %d past maxBits %d", got.Len()-1, maxBits)
		}
		if len(got.words) > (maxBits+63)/64 {
			t.Fatalf("decoded %d words for %d bits", len(got.words), maxBits)
		}
		for _, word := range []bool{false, true} {
			enc := appendEWAH(nil, got, word)
			again, m, err := DecodeEWAH(enc, maxBits)
			if err != nil || m != len(enc) || !again.Equal(got) {
				t.Fatalf("round trip of %d bits: %d of %d bytes, %v, equal %v", got.Count(), m, len(enc), err, again.Equal(got))
			}
		}
	})
}

// fuzzPack is an IndexLookup of fuzzCount synthetic objects whose pack
// order is a fixed permutation of their index order.
type fuzzPack struct{ sum []byte }

const fuzzCount = 200

func fuzzID(i int) oid.ID {
	var b [20]byte
	b[0], b[1] = byte(i>>8), byte(i)
	return oid.MustFromBytes(oid.SHA1, b[:])
}

func (p fuzzPack) Count() int       { return fuzzCount }
func (p fuzzPack) Checksum() []byte { return p.sum }
func (p fuzzPack) IDAtIndex(i int) (oid.ID, error) {
	if i < 0 || i >= fuzzCount {
		return oid.ID{}, fmt.Errorf("index position %d out of range", i)
	}
	return fuzzID(i), nil
}
func (p fuzzPack) PackPos(id oid.ID) (int, bool) {
	b := id.Bytes()
	i := int(b[0])<<8 | int(b[1])
	if i >= fuzzCount || id != fuzzID(i) {
		return 0, false
	}
	return i * 7 % fuzzCount, true
}
func (p fuzzPack) IndexAtPackPos(pos int) (int, error) {
	for i := 0; i < fuzzCount; i++ {
		if i*7%fuzzCount == pos {
			return i, nil
		}
	}
	return 0, fmt.Errorf("pack position %d out of range", pos)
}

// fuzzBitmapFile writes a valid .bitmap for fuzzPack.
func fuzzBitmapFile(tb testing.TB, hashes, table bool, xor int) []byte {
	rng := rand.New(rand.NewSource(int64(xor)))
	p := fuzzPack{sum: bytes.Repeat([]byte{0xab}, 20)}
	o := &WriteOptions{Pack: p, LookupTable: table, XORWindow: xor}
	for pos := 0; pos < fuzzCount; pos++ {
		o.Types[pos%4].Set(pos)
	}
	if hashes {
		o.NameHashes = make([]uint32, fuzzCount)
		for i := range o.NameHashes {
			o.NameHashes[i] = rng.Uint32()
		}
	}
	var entries []Entry
	for i := 0; i < 12; i++ {
		c := fuzzID(i * 12) // index positions divisible by 4 map to commits
		var b Bitmap
		for k := 0; k < 60+i*5; k++ {
			b.Set(rng.Intn(fuzzCount))
		}
		entries = append(entries, Entry{Commit: c, Bitmap: b})
	}
	var buf bytes.Buffer
	if err := Write(&buf, oid.SHA1, o, entries); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzParse feeds arbitrary bytes to the .bitmap parser. Whatever it
// accepts must give, for every stored commit, a bitmap within the pack
// and naming the commit itself, and must write back to a file that
// parses to the same bitmaps.
func FuzzParse(f *testing.F) {
	f.Add(fuzzBitmapFile(f, false, false, 0))
	f.Add(fuzzBitmapFile(f, true, true, 0))
	f.Add(fuzzBitmapFile(f, true, true, 5))
	f.Add(fuzzBitmapFile(f, false, true, 3))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 32 {
			return
		}
		p := fuzzPack{sum: data[12:32]}
		x, err := Parse(data, oid.SHA1, p)
		if err != nil {
			return
		}
		var entries []Entry
		x.Commits(func(id oid.ID) bool {
			b, ok := x.Bitmap(id)
			if !ok {
				t.Fatalf("Bitmap(%v) missing for a listed commit", id)
			}
			if b.Len() > fuzzCount {
				t.Fatalf("Bitmap(%v) has bit %d past %d", id, b.Len()-1, fuzzCount)
			}
			entries = append(entries, Entry{Commit: id, Bitmap: b.Clone()})
			return true
		})
		o := &WriteOptions{Pack: p}
		for i := range o.Types {
			o.Types[i] = x.types[i]
		}
		var buf bytes.Buffer
		if err := Write(&buf, oid.SHA1, o, entries); err != nil {
			t.Fatalf("Write of what Parse accepted: %v", err)
		}
		y, err := Parse(buf.Bytes(), oid.SHA1, p)
		if err != nil {
			t.Fatalf("Parse of the rewritten file: %v", err)
		}
		for _, e := range entries {
			if b, ok := y.Bitmap(e.Commit); !ok || !b.Equal(e.Bitmap) {
				t.Fatalf("%v: rewritten bitmap differs", e.Commit)
			}
		}
	})
}
