package inflate

import (
	"bytes"
	"compress/zlib"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	kzlib "github.com/klauspost/compress/zlib"
)

// reference decodes src with compress/zlib: the content (on failure,
// what came before it), the bytes of src the stream took, and whether
// it decoded.
func reference(src []byte) ([]byte, int, bool) {
	br := bytes.NewReader(src) // an io.ByteReader: flate reads no further than the stream
	zr, err := zlib.NewReader(br)
	if err != nil {
		return nil, 0, false
	}
	data, err := io.ReadAll(io.LimitReader(zr, 64<<20))
	if err != nil {
		return data, 0, false
	}
	return data, len(src) - br.Len(), true
}

// compressible returns n bytes of text-like data from seed.
func compressible(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	words := []string{"tree ", "parent ", "100644 ", "blob", "\x00", "Makefile", "README", "git", "the ", "and ", "\n", "func ", "return "}
	var b bytes.Buffer
	for b.Len() < n {
		if rng.IntN(8) == 0 {
			b.WriteByte(byte(rng.Uint32()))
			continue
		}
		b.WriteString(words[rng.IntN(len(words))])
	}
	return b.Bytes()[:n]
}

func random(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// deflated returns data as a zlib stream written at level (stdlib's
// writer, or klauspost's with k).
func deflated(t testing.TB, data []byte, level int, k bool) []byte {
	var buf bytes.Buffer
	var w io.WriteCloser
	var err error
	if k {
		w, err = kzlib.NewWriterLevel(&buf, level)
	} else {
		w, err = zlib.NewWriterLevel(&buf, level)
	}
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	w.Close()
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	var d Decoder
	levels := []int{zlib.NoCompression, zlib.BestSpeed, zlib.DefaultCompression, zlib.BestCompression, zlib.HuffmanOnly}
	sizes := []int{0, 1, 2, 7, 8, 9, 100, 258, 259, 1000, 4096, 32768, 32769, 100000, 1 << 20}
	for _, size := range sizes {
		for gen, data := range [][]byte{compressible(uint64(size), size), random(uint64(size), size), bytes.Repeat([]byte{'a'}, size)} {
			for _, level := range levels {
				for _, k := range []bool{false, true} {
					z := deflated(t, data, level, k)
					src := append(bytes.Clone(z), "trailing bytes"...)
					got, n, err := d.Inflate(nil, src, len(data))
					if err != nil || !bytes.Equal(got, data) || n != len(z) {
						t.Fatalf("size %d gen %d level %d klauspost %v: n %d of %d, err %v, equal %v", size, gen, level, k, n, len(z), err, bytes.Equal(got, data))
					}
					// Into a buffer large enough: no allocation, same array.
					buf := make([]byte, 3, size+10)
					got, _, err = d.Inflate(buf, z, len(data))
					if err != nil || !bytes.Equal(got, data) || (size > 0 && &got[0] != &buf[:1][0]) {
						t.Fatalf("size %d: into a buffer: err %v", size, err)
					}
					if size > 0 {
						if _, _, err := d.Inflate(nil, z, len(data)-1); !errors.Is(err, ErrSize) {
							t.Fatalf("size %d level %d: one byte short: %v, want ErrSize", size, level, err)
						}
					}
					if _, _, err := d.Inflate(nil, z, len(data)+1); !errors.Is(err, ErrSize) {
						t.Fatalf("size %d level %d: one byte long: %v, want ErrSize", size, level, err)
					}
				}
			}
		}
	}
}

// TestMatches covers copies of every distance below 9 and lengths up to
// 258, overlapping and not, and the longest distance.
func TestMatches(t *testing.T) {
	var d Decoder
	for dist := 1; dist <= 9; dist++ {
		for _, length := range []int{3, 4, 7, 8, 9, 15, 16, 17, 100, 257, 258} {
			data := append(random(uint64(dist), dist), bytes.Repeat(random(uint64(dist), dist), length/dist+1)[:length]...)
			data = append(data, 'x')
			z := deflated(t, data, zlib.BestCompression, false)
			if got, _, err := d.Inflate(nil, z, len(data)); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("distance %d length %d: %v", dist, length, err)
			}
		}
	}
	far := random(9, 40000)
	data := append(bytes.Clone(far), far[:300]...)
	data = append(data, random(10, 32768-40000+32768)...)
	data = append(data, far[40000-32768:40000-32768+100]...)
	z := deflated(t, data, zlib.BestCompression, false)
	if got, _, err := d.Inflate(nil, z, len(data)); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("far matches: %v", err)
	}
}

func TestErrors(t *testing.T) {
	var d Decoder
	data := compressible(1, 5000)
	for _, level := range []int{zlib.NoCompression, zlib.BestSpeed, zlib.BestCompression} {
		z := deflated(t, data, level, false)
		for i := range len(z) {
			if _, _, err := d.Inflate(nil, z[:i], len(data)); !errors.Is(err, ErrShort) {
				t.Fatalf("level %d: truncated to %d of %d bytes: %v, want ErrShort", level, i, len(z), err)
			}
		}
		bad := bytes.Clone(z)
		bad[len(bad)-1] ^= 1
		if _, _, err := d.Inflate(nil, bad, len(data)); !errors.Is(err, ErrChecksum) {
			t.Fatalf("level %d: checksum flipped: %v", level, err)
		}
	}
	z := deflated(t, data, zlib.BestCompression, false)
	for _, c := range []struct {
		name string
		src  []byte
	}{
		{"method", append([]byte{0x77, 0x01}, z[2:]...)},
		{"header check", append([]byte{0x78, 0x9d}, z[2:]...)},
		{"window", append([]byte{0x88, 0x98}, z[2:]...)},
		{"dictionary", append([]byte{0x78, 0xbb, 0, 0, 0, 1}, z[2:]...)},
		{"block type 3", []byte{0x78, 0x9c, 0x07, 0, 0, 0, 0, 0, 0}},
		{"stored length", []byte{0x78, 0x01, 0x01, 0x05, 0x00, 0xfa, 0xfe, 'h', 'e', 'l', 'l', 'o', 0, 0, 0, 0}},
		{"distance too far", []byte{0x78, 0x01, 0x03, 0x02, 0x00, 0, 0, 0, 0, 0}},
	} {
		if _, _, err := d.Inflate(nil, c.src, len(data)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", c.name, err)
		}
	}
	if _, _, err := d.Inflate(nil, z, -1); !errors.Is(err, ErrSize) {
		t.Errorf("negative size: %v", err)
	}
}

// TestAllocs checks that a decoder reused allocates nothing when given
// a buffer large enough.
func TestAllocs(t *testing.T) {
	var d Decoder
	data := compressible(3, 3000)
	z := deflated(t, data, zlib.DefaultCompression, false)
	buf := make([]byte, len(data))
	allocs := testing.AllocsPerRun(100, func() {
		if _, _, err := d.Inflate(buf, z, len(data)); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per call, want 0", allocs)
	}
}

// check compares Inflate on src with compress/zlib's decoding.
func check(t *testing.T, d *Decoder, src []byte) {
	want, wantN, ok := reference(src)
	if !ok {
		// Refused at any size, the sizes near what compress/zlib
		// got out before it failed the likeliest to slip through.
		for size := max(len(want)-2, 0); size <= len(want)+2; size++ {
			if _, _, err := d.Inflate(nil, src, size); err == nil {
				t.Fatalf("accepted at size %d what compress/zlib refuses: %x", size, src)
			}
		}
		return
	}
	if len(src) >= 2 && src[1]&0x20 != 0 {
		return // a preset dictionary: refused here, compress/zlib takes an empty one
	}
	got, n, err := d.Inflate(nil, src, len(want))
	if err != nil || n != wantN || !bytes.Equal(got, want) {
		t.Fatalf("compress/zlib decodes %d bytes taking %d; got %v, %d bytes taking %d: %x", len(want), wantN, err, len(got), n, src)
	}
	if len(want) > 0 {
		if _, _, err := d.Inflate(nil, src, len(want)-1); err == nil {
			t.Fatalf("accepted a size one short")
		}
	}
	if _, _, err := d.Inflate(nil, src, len(want)+1); err == nil {
		t.Fatalf("accepted a size one long")
	}
}

func FuzzInflate(f *testing.F) {
	f.Add([]byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01}, uint16(0), byte(0))
	for i, level := range []int{0, 1, 6, 9, -2} {
		f.Add(compressible(uint64(i), 300), uint16(level+2), byte(0))
		f.Add(random(uint64(i), 100), uint16(level+2), byte(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, mode uint16, flip byte) {
		var d Decoder
		// data as it is, and as what a writer makes of it, flipped.
		check(t, &d, data)
		level := int(mode%6) - 2 // HuffmanOnly to BestSpeed..., then 0..3
		if level == -1 {
			level = 9
		}
		z := deflated(t, data, level, mode&0x100 != 0)
		check(t, &d, z)
		if len(z) > 0 {
			bad := bytes.Clone(z)
			i := int(mode>>9) % len(bad)
			bad[i] ^= flip
			check(t, &d, bad)
			check(t, &d, z[:i])
		}
	})
}
