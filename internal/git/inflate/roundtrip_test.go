package inflate

import (
	"bytes"
	stdzlib "compress/zlib"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	kzlib "github.com/klauspost/compress/zlib"
)

// testData returns n bytes of the given kind: random bytes, or text-like
// data that compresses with many matches of all distances.
func testData(kind string, n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	switch kind {
	case "random":
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
	case "text":
		words := []string{"tree ", "commit ", "100644 ", "blob ", "author ", "the ", "\n", "parent ", "a", "bb", "ccc"}
		for i := 0; i < n; {
			if i > 64 && rng.IntN(4) == 0 {
				// Repeat an earlier run, at any distance the window allows.
				d := 1 + rng.IntN(min(i, 32768))
				l := 3 + rng.IntN(300)
				for j := 0; j < l && i < n; j++ {
					b[i] = b[i-d]
					i++
				}
				continue
			}
			w := words[rng.IntN(len(words))]
			i += copy(b[i:], w)
		}
	case "runs":
		for i := 0; i < n; {
			c := byte(rng.Uint32())
			l := rng.IntN(600)
			for j := 0; j < l && i < n; j++ {
				b[i] = c
				i++
			}
		}
	}
	return b
}

// compress writes data as a zlib stream at level, with compress/zlib's
// writer or, with klauspost, klauspost/compress's: the two that write
// the objects of packs gotd and Git make.
func compress(t testing.TB, data []byte, level int, klauspost bool) []byte {
	var buf bytes.Buffer
	var w io.WriteCloser
	var err error
	if klauspost {
		w, err = kzlib.NewWriterLevel(&buf, level)
	} else {
		w, err = stdzlib.NewWriterLevel(&buf, level)
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
	sizes := []int{0, 1, 2, 3, 7, 8, 9, 100, 300, 1000, 4096, 65536, 100000, 1 << 18}
	levels := []int{0, 1, 6, 9, -2} // -2 is HuffmanOnly in both packages
	for _, kind := range []string{"random", "text", "runs"} {
		for _, n := range sizes {
			data := testData(kind, n, uint64(n))
			for _, level := range levels {
				for wi, k := range []bool{false, true} {
					z := compress(t, data, level, k)
					name := fmt.Sprintf("%s/%d/level%d/writer%d", kind, n, level, wi)
					// Trailing bytes must be ignored and not counted.
					src := append(append([]byte(nil), z...), "trailing garbage"...)
					got, n2, err := d.Inflate(nil, src, len(data))
					if err != nil {
						t.Fatalf("%s: Inflate: %v", name, err)
					}
					if !bytes.Equal(got, data) {
						t.Fatalf("%s: content differs", name)
					}
					if n2 != len(z) {
						t.Fatalf("%s: n = %d; want %d", name, n2, len(z))
					}
					// Exactly the stream: the end of src is reached in the careful path.
					got, n2, err = d.Inflate(got, z, len(data))
					if err != nil || !bytes.Equal(got, data) || n2 != len(z) {
						t.Fatalf("%s: without trailing bytes: err %v, n %d", name, err, n2)
					}
					if _, _, err := d.Inflate(nil, z, len(data)+1); !errors.Is(err, ErrSize) {
						t.Fatalf("%s: size+1: got %v; want ErrSize", name, err)
					}
					if len(data) > 0 {
						if _, _, err := d.Inflate(nil, z, len(data)-1); !errors.Is(err, ErrSize) {
							t.Fatalf("%s: size-1: got %v; want ErrSize", name, err)
						}
					}
				}
			}
		}
	}
}

// TestTruncatedLong cuts long multi-block streams at spread positions and
// near their ends: every cut must be ErrShort, as compress/zlib agrees.
func TestTruncatedLong(t *testing.T) {
	var d Decoder
	data := testData("text", 300000, 7)
	for _, level := range []int{1, 6, -2} {
		for wi, k := range []bool{false, true} {
			z := compress(t, data, level, k)
			var cuts []int
			for i := 1; i < 60; i++ {
				cuts = append(cuts, len(z)*i/60)
			}
			for i := 1; i <= 40; i++ {
				cuts = append(cuts, len(z)-i)
			}
			for _, cut := range cuts {
				if err := compare(t, &d, z[:cut], len(data)); err != ErrShort {
					t.Fatalf("level %d writer %d cut at %d of %d: compress/zlib says %v", level, wi, cut, len(z), err)
				}
			}
		}
	}
}
