package bitmap

import (
	"bytes"
	"encoding/binary"
	"math/rand"
	"testing"
)

// ewah builds an EWAH encoding from its parts.
func ewah(bitSize uint32, rlw uint32, words ...uint64) []byte {
	b := binary.BigEndian.AppendUint32(nil, bitSize)
	b = binary.BigEndian.AppendUint32(b, uint32(len(words)))
	for _, w := range words {
		b = binary.BigEndian.AppendUint64(b, w)
	}
	return binary.BigEndian.AppendUint32(b, rlw)
}

// marker builds a marker word.
func marker(bit uint64, run, lits uint64) uint64 { return bit | run<<1 | lits<<33 }

func TestBitmapOps(t *testing.T) {
	var a, b Bitmap
	for _, i := range []int{0, 1, 63, 64, 200, 1000} {
		a.Set(i)
	}
	for _, i := range []int{1, 64, 65, 5000} {
		b.Set(i)
	}
	for _, tc := range []struct {
		name string
		op   func() Bitmap
		want []int
	}{
		{"or", func() Bitmap { c := a.Clone(); c.Or(b); return c }, []int{0, 1, 63, 64, 65, 200, 1000, 5000}},
		{"and", func() Bitmap { c := a.Clone(); c.And(b); return c }, []int{1, 64}},
		{"andnot", func() Bitmap { c := a.Clone(); c.AndNot(b); return c }, []int{0, 63, 200, 1000}},
		{"xor", func() Bitmap { c := a.Clone(); c.Xor(b); return c }, []int{0, 63, 65, 200, 1000, 5000}},
		{"clear", func() Bitmap { c := a.Clone(); c.Clear(63); c.Clear(99999); c.Clear(-1); return c }, []int{0, 1, 64, 200, 1000}},
	} {
		c := tc.op()
		var got []int
		c.ForEach(func(i int) bool { got = append(got, i); return true })
		if !equalInts(got, tc.want) {
			t.Errorf("%s: got %v; want %v", tc.name, got, tc.want)
		}
		if c.Count() != len(tc.want) {
			t.Errorf("%s: Count() = %d; want %d", tc.name, c.Count(), len(tc.want))
		}
		if c.Len() != tc.want[len(tc.want)-1]+1 {
			t.Errorf("%s: Len() = %d; want %d", tc.name, c.Len(), tc.want[len(tc.want)-1]+1)
		}
		for _, i := range tc.want {
			if !c.Has(i) {
				t.Errorf("%s: Has(%d) = false", tc.name, i)
			}
		}
	}
	if a.Has(-1) || a.Has(1<<20) || a.Has(2) {
		t.Errorf("Has reports bits never set")
	}
	n := 0
	a.ForEach(func(int) bool { n++; return n < 2 })
	if n != 2 {
		t.Errorf("ForEach went on after false: %d calls", n)
	}
	if !a.Equal(a.Clone()) || a.Equal(b) {
		t.Errorf("Equal is wrong")
	}
	var longer Bitmap
	longer.Or(a)
	longer.Set(1 << 16)
	longer.Clear(1 << 16)
	if !longer.Equal(a) || !a.Equal(longer) {
		t.Errorf("Equal differs on trailing zero words")
	}
}

// TestBitmapFirst: HasFirst against a bit by bit check, and ClearFirst
// leaving exactly the bits from n on, across word boundaries.
func TestBitmapFirst(t *testing.T) {
	for _, size := range []int{0, 1, 63, 64, 65, 130, 200} {
		var full Bitmap
		for i := range size {
			full.Set(i)
		}
		holed := full.Clone()
		holed.Clear(size / 2)
		for n := 0; n <= size+65; n++ {
			for _, b := range []Bitmap{full, holed} {
				want := true
				for i := range n {
					want = want && b.Has(i)
				}
				if got := b.HasFirst(n); got != want {
					t.Errorf("size %d, %d set: HasFirst(%d) = %v; want %v", size, b.Count(), n, got, want)
				}
				c := b.Clone()
				c.ClearFirst(n)
				for i := range size + 64 {
					if got, want := c.Has(i), i >= n && b.Has(i); got != want {
						t.Errorf("size %d: after ClearFirst(%d), Has(%d) = %v; want %v", size, n, i, got, want)
					}
				}
			}
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestEWAHRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, tc := range []struct {
		name string
		make func() Bitmap
	}{
		{"empty", func() Bitmap { return Bitmap{} }},
		{"bit 0", func() Bitmap { var b Bitmap; b.Set(0); return b }},
		{"bit 63", func() Bitmap { var b Bitmap; b.Set(63); return b }},
		{"bit 64", func() Bitmap { var b Bitmap; b.Set(64); return b }},
		{"sparse", func() Bitmap {
			var b Bitmap
			for i := 0; i < 100; i++ {
				b.Set(rng.Intn(100000))
			}
			return b
		}},
		{"dense", func() Bitmap {
			var b Bitmap
			for i := 0; i < 5000; i++ {
				if rng.Intn(3) > 0 {
					b.Set(i)
				}
			}
			return b
		}},
		{"runs of ones", func() Bitmap {
			var b Bitmap
			for i := 0; i < 64*50; i++ {
				b.Set(i)
			}
			for i := 64 * 60; i < 64*70+5; i++ {
				b.Set(i)
			}
			b.Set(64*100 + 3)
			return b
		}},
	} {
		b := tc.make()
		enc := AppendEWAH([]byte("prefix"), b)
		if !bytes.HasPrefix(enc, []byte("prefix")) {
			t.Fatalf("%s: AppendEWAH lost the prefix", tc.name)
		}
		enc = enc[len("prefix"):]
		max := b.Len() + 10
		got, n, err := DecodeEWAH(append(enc, "trailing"...), max)
		if err != nil || n != len(enc) {
			t.Errorf("%s: DecodeEWAH = %d bytes, %v; want %d, nil", tc.name, n, err, len(enc))
			continue
		}
		if !got.Equal(b) {
			t.Errorf("%s: decoded %d bits; encoded %d", tc.name, got.Count(), b.Count())
		}
		if b.Len() > 0 {
			if _, _, err := DecodeEWAH(enc, b.Len()-1); err == nil {
				t.Errorf("%s: DecodeEWAH with maxBits %d below the highest bit succeeded", tc.name, b.Len()-1)
			}
		}
	}
}

func TestEWAHMalformed(t *testing.T) {
	for _, tc := range []struct {
		name    string
		data    []byte
		maxBits int
	}{
		{"empty", nil, 64},
		{"short header", []byte{0, 0, 0, 1, 0, 0}, 64},
		{"no trailer", ewah(64, 0, marker(0, 0, 1), 1)[:8+16], 64},
		{"word count overruns", ewah(64, 0, marker(1, 1, 0))[:8+4], 64},
		{"huge word count", append([]byte{0, 0, 0, 64, 0xff, 0xff, 0xff, 0xff}, make([]byte, 12)...), 64},
		{"bit size too big", ewah(1<<20, 0, marker(0, 0, 0)), 64},
		{"literals overrun", ewah(64, 0, marker(0, 0, 2), 1), 128},
		{"literal count max", ewah(64, 0, marker(0, 0, 1<<31-1), 1), 1 << 30},
		{"run past max", ewah(64, 0, marker(1, 3, 0)), 128},
		{"zero run past max", ewah(64, 0, marker(0, 1<<32-1, 1), 1), 1 << 20},
		{"bit past max in literal", ewah(64, 0, marker(0, 0, 1), 1<<10), 10},
		{"bit past max in run", ewah(64, 0, marker(1, 1, 0)), 63},
		{"marker position", ewah(64, 5, marker(0, 0, 1), 1), 64},
	} {
		if b, n, err := DecodeEWAH(tc.data, tc.maxBits); err == nil {
			t.Errorf("%s: DecodeEWAH = %d bits, %d bytes; want an error", tc.name, b.Count(), n)
		}
	}
	// Valid edge cases.
	for _, tc := range []struct {
		name    string
		data    []byte
		maxBits int
		count   int
	}{
		{"empty marker", ewah(0, 0, 0), 0, 0},
		{"no words", ewah(0, 0), 0, 0},
		{"exact run", ewah(128, 0, marker(1, 2, 0)), 128, 128},
		{"rounded size", ewah(128, 0, marker(0, 0, 2), 1, 1), 65, 2},
		{"two markers", ewah(256, 2, marker(1, 1, 1), 3, marker(0, 1, 1), 1<<63), 256, 64 + 2 + 1},
	} {
		b, _, err := DecodeEWAH(tc.data, tc.maxBits)
		if err != nil || b.Count() != tc.count {
			t.Errorf("%s: DecodeEWAH = %d bits, %v; want %d, nil", tc.name, b.Count(), err, tc.count)
		}
	}
}

func TestAppendEWAHAllocs(t *testing.T) {
	var b Bitmap
	for i := 0; i < 10000; i += 7 {
		b.Set(i)
	}
	buf := make([]byte, 0, 1<<16)
	if n := testing.AllocsPerRun(10, func() { buf = AppendEWAH(buf[:0], b) }); n != 0 {
		t.Errorf("AppendEWAH into a large enough buffer: %v allocations; want 0", n)
	}
}

// TestOrRange checks OrRange and Intersects against bit-by-bit
// versions on random bitmaps and ranges, word-aligned or not.
func TestOrRange(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for round := 0; round < 2000; round++ {
		nbits := 1 + rng.Intn(300)
		var src Bitmap
		for i := 0; i < nbits; i++ {
			if rng.Intn(3) == 0 {
				src.Set(i)
			}
		}
		from, n, to := rng.Intn(nbits+10), rng.Intn(200), rng.Intn(300)
		dst := New(rng.Intn(400))
		for i := 0; i < 50; i++ {
			dst.Set(rng.Intn(400))
		}
		want := dst.Clone()
		for k := 0; k < n; k++ {
			if src.Has(from + k) {
				want.Set(to + k)
			}
		}
		got := dst.Clone()
		got.OrRange(src, from, n, to)
		if !got.Equal(want) {
			t.Fatalf("OrRange(from %d, n %d, to %d) of %d bits: got %v; want %v", from, n, to, nbits, got.words, want.words)
		}
		common := false
		src.ForEach(func(i int) bool { common = dst.Has(i); return !common })
		if got := src.Intersects(dst); got != common {
			t.Fatalf("Intersects: got %v; want %v", got, common)
		}
	}
}
