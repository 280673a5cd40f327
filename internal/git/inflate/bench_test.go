package inflate

import (
	"bytes"
	"io"
	"os"
	"testing"

	kzlib "github.com/klauspost/compress/zlib"
)

// packStream is one zlib stream of a pack and its inflated size.
type packStream struct {
	z    []byte
	size int
}

// packStreams returns the zlib streams of the pack GOTD_INFLATE_PACK
// names, found by walking its entries: each ends where Inflate says.
func packStreams(b *testing.B) []packStream {
	path := os.Getenv("GOTD_INFLATE_PACK")
	if path == "" {
		b.Skip("GOTD_INFLATE_PACK names no pack")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	count := int(data[8])<<24 | int(data[9])<<16 | int(data[10])<<8 | int(data[11])
	var d Decoder
	var out []packStream
	off := 12
	for range count {
		c := data[off]
		off++
		typ := c >> 4 & 7
		size := int(c & 15)
		for shift := 4; c&0x80 != 0; shift += 7 {
			c = data[off]
			off++
			size |= int(c&0x7f) << shift
		}
		switch typ {
		case 6:
			for data[off]&0x80 != 0 {
				off++
			}
			off++
		case 7:
			off += 20
		}
		_, n, err := d.Inflate(nil, data[off:], size)
		if err != nil {
			b.Fatalf("entry at %d: %v", off, err)
		}
		out = append(out, packStream{data[off : off+n], size})
		off += n
	}
	return out
}

func BenchmarkPack(b *testing.B) {
	streams := packStreams(b)
	classes := []struct {
		name     string
		min, max int
	}{{"all", 0, 1 << 62}, {"small", 0, 1 << 10}, {"large", 1 << 10, 1 << 62}}
	for _, c := range classes {
		var sel []packStream
		total := 0
		for _, s := range streams {
			if s.size >= c.min && s.size < c.max {
				sel = append(sel, s)
				total += s.size
			}
		}
		buf := make([]byte, 0, 64<<20)
		b.Run(c.name+"/decoder", func(b *testing.B) {
			var d Decoder
			b.SetBytes(int64(total))
			for range b.N {
				for _, s := range sel {
					if _, _, err := d.Inflate(buf, s.z, s.size); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(sel)), "ns/stream")
		})
		b.Run(c.name+"/klauspost", func(b *testing.B) {
			var br bytes.Reader
			br.Reset(sel[0].z)
			zr, err := kzlib.NewReader(&br)
			if err != nil {
				b.Fatal(err)
			}
			var one [1]byte
			b.SetBytes(int64(total))
			for range b.N {
				for _, s := range sel {
					br.Reset(s.z)
					zr.(kzlib.Resetter).Reset(&br, nil)
					if _, err := io.ReadFull(zr, buf[:s.size]); err != nil {
						b.Fatal(err)
					}
					if _, err := zr.Read(one[:]); err != io.EOF {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(sel)), "ns/stream")
		})
	}
}
