package inflate

import (
	"hash/adler32"
	"testing"
)

// TestAdler32 checks the SWAR Adler-32 against hash/adler32 on every
// length up to a few blocks, on bytes of 0xff (the largest lane sums),
// and across a chunk boundary.
func TestAdler32(t *testing.T) {
	for _, fill := range []func(i int) byte{
		func(i int) byte { return byte(i*7 + i>>8) },
		func(int) byte { return 0xff },
		func(int) byte { return 0 },
	} {
		p := make([]byte, 300)
		for i := range p {
			p[i] = fill(i)
		}
		for n := range len(p) + 1 {
			if got, want := adler(p[:n]), adler32.Checksum(p[:n]); got != want {
				t.Fatalf("len %d: got %08x; want %08x", n, got, want)
			}
		}
	}
	big := make([]byte, adlerChunk+1000)
	for i := range big {
		big[i] = 0xff - byte(i%3)
	}
	if got, want := adler(big), adler32.Checksum(big); got != want {
		t.Fatalf("len %d: got %08x; want %08x", len(big), got, want)
	}
}

func BenchmarkAdler32(b *testing.B) {
	p := make([]byte, 64<<10)
	for i := range p {
		p[i] = byte(i * 13)
	}
	b.Run("swar", func(b *testing.B) {
		b.SetBytes(int64(len(p)))
		for b.Loop() {
			adler(p)
		}
	})
	b.Run("hash/adler32", func(b *testing.B) {
		b.SetBytes(int64(len(p)))
		for b.Loop() {
			adler32.Checksum(p)
		}
	})
}
