package inflate

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"

	kzlib "github.com/klauspost/compress/zlib"
)

// The pack benchmarks and TestPack read a real pack named by
// GOTD_INFLATE_PACK (for example git.git's) and skip without it.

// packEntry is one zlib stream in the pack: where it starts and the
// inflated size its entry header declares.
type packEntry struct {
	off, size int
}

var packOnce struct {
	sync.Once
	data    []byte
	entries []packEntry
	total   int64
	err     error
}

// loadPack reads the pack and walks its entries (gitformat-pack(5),
// "Pack file"), using Inflate's n to find each entry's end, so the walk
// itself checks n on every stream.
func loadPack(tb testing.TB) ([]byte, []packEntry) {
	name := os.Getenv("GOTD_INFLATE_PACK")
	if name == "" {
		tb.Skip("GOTD_INFLATE_PACK is not set")
	}
	packOnce.Do(func() {
		data, err := os.ReadFile(name)
		if err != nil {
			packOnce.err = err
			return
		}
		if len(data) < 32 || string(data[:4]) != "PACK" {
			packOnce.err = fmt.Errorf("%s: not a pack", name)
			return
		}
		count := int(binary.BigEndian.Uint32(data[8:]))
		entries := make([]packEntry, 0, count)
		var d Decoder
		var buf []byte
		p := 12
		for range count {
			c := data[p]
			p++
			typ := c >> 4 & 7
			size := int(c & 0xf)
			for shift := 4; c&0x80 != 0; shift += 7 {
				c = data[p]
				p++
				size |= int(c&0x7f) << shift
			}
			switch typ {
			case 6: // ofs-delta: base offset, big-endian base-128 with +1 per continuation
				c = data[p]
				p++
				for c&0x80 != 0 {
					c = data[p]
					p++
				}
			case 7: // ref-delta: base object id
				p += 20
			}
			out, n, err := d.Inflate(buf, data[p:], size)
			if err != nil {
				packOnce.err = fmt.Errorf("entry at %d: %w", p, err)
				return
			}
			buf = out
			entries = append(entries, packEntry{p, size})
			packOnce.total += int64(size)
			p += n
		}
		if len(data)-p != 20 {
			packOnce.err = fmt.Errorf("walk ended at %d; want %d", p, len(data)-20)
			return
		}
		packOnce.data, packOnce.entries = data, entries
	})
	if packOnce.err != nil {
		tb.Fatal(packOnce.err)
	}
	return packOnce.data, packOnce.entries
}

// TestPack checks every stream of the pack against klauspost/compress.
func TestPack(t *testing.T) {
	data, entries := loadPack(t)
	t.Logf("%d entries, %d bytes inflated", len(entries), packOnce.total)
	var d Decoder
	kr := newKlauspost(t, data, entries[0])
	var got, want []byte
	for _, e := range entries {
		var err error
		got, _, err = d.Inflate(got, data[e.off:], e.size)
		if err != nil {
			t.Fatalf("entry at %d: %v", e.off, err)
		}
		want = kr.inflate(t, want, data[e.off:], e.size)
		if !bytes.Equal(got, want) {
			t.Fatalf("entry at %d: content differs from klauspost's", e.off)
		}
	}
}

// klauspost inflates the way the pack readers did before this package:
// one zlib reader, Reset per stream, io.ReadFull into an exactly sized
// buffer, then a read that must see EOF.
type klauspost struct {
	zr io.ReadCloser
	br bytes.Reader
}

func newKlauspost(tb testing.TB, data []byte, e packEntry) *klauspost {
	k := &klauspost{}
	k.br.Reset(data[e.off:])
	zr, err := kzlib.NewReader(&k.br)
	if err != nil {
		tb.Fatal(err)
	}
	k.zr = zr
	return k
}

func (k *klauspost) inflate(tb testing.TB, buf, src []byte, size int) []byte {
	k.br.Reset(src)
	if err := k.zr.(kzlib.Resetter).Reset(&k.br, nil); err != nil {
		tb.Fatal(err)
	}
	if cap(buf) < size {
		buf = make([]byte, size)
	}
	buf = buf[:size]
	if _, err := io.ReadFull(k.zr, buf); err != nil {
		tb.Fatal(err)
	}
	var one [1]byte
	if n, err := k.zr.Read(one[:]); n != 0 || err != io.EOF {
		tb.Fatalf("after %d bytes: got %d, %v; want EOF", size, n, err)
	}
	return buf
}

func benchPack(b *testing.B, keep func(packEntry) bool, klaus bool) {
	data, all := loadPack(b)
	var entries []packEntry
	var total int64
	for _, e := range all {
		if keep(e) {
			entries = append(entries, e)
			total += int64(e.size)
		}
	}
	b.SetBytes(total)
	var d Decoder
	kr := newKlauspost(b, data, entries[0])
	buf := make([]byte, 0, 1<<20)
	b.ResetTimer()
	for b.Loop() {
		for _, e := range entries {
			if klaus {
				buf = kr.inflate(b, buf, data[e.off:], e.size)
				continue
			}
			var err error
			buf, _, err = d.Inflate(buf, data[e.off:], e.size)
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(entries)), "ns/entry")
}

func all(packEntry) bool     { return true }
func small(e packEntry) bool { return e.size < 1024 }
func large(e packEntry) bool { return e.size >= 1024 }

func BenchmarkPackAll(b *testing.B)            { benchPack(b, all, false) }
func BenchmarkPackAllKlauspost(b *testing.B)   { benchPack(b, all, true) }
func BenchmarkPackSmall(b *testing.B)          { benchPack(b, small, false) }
func BenchmarkPackSmallKlauspost(b *testing.B) { benchPack(b, small, true) }
func BenchmarkPackLarge(b *testing.B)          { benchPack(b, large, false) }
func BenchmarkPackLargeKlauspost(b *testing.B) { benchPack(b, large, true) }

// One entry in 16, for quicker runs while tuning.
func sample(e packEntry) bool { return e.off%16 == 0 }

func BenchmarkPackSample(b *testing.B)          { benchPack(b, sample, false) }
func BenchmarkPackSampleKlauspost(b *testing.B) { benchPack(b, sample, true) }
