package packer

import (
	"bytes"
	"testing"

	"gotd/internal/git/pack"
)

// FuzzComputeDelta checks that every delta ComputeDelta returns turns
// the base into the target under pack.ApplyDelta, the reader packs are
// decoded with, and that it respects the size limit.
func FuzzComputeDelta(f *testing.F) {
	f.Add([]byte(""), []byte(""), 100)
	f.Add([]byte("0123456789abcdef0123456789abcdef"), []byte("xx0123456789abcdef0123456789abcdefyy"), 100)
	f.Add(bytes.Repeat([]byte("a"), 300), bytes.Repeat([]byte("a"), 200), 50)
	f.Add(bytes.Repeat([]byte("abcdefghijklmnopq"), 40), bytes.Repeat([]byte("abcdefghijklmnop"), 40), 1000)
	f.Fuzz(func(t *testing.T, base, target []byte, maxDelta int) {
		if maxDelta < 0 {
			maxDelta = -maxDelta
		}
		maxDelta %= 4 * (len(target) + 32)
		d, ok := ComputeDelta(nil, base, target, maxDelta)
		if !ok {
			if len(d) != 0 {
				t.Fatalf("got %d bytes with false; want none", len(d))
			}
			return
		}
		if len(d) > maxDelta {
			t.Fatalf("got %d-byte delta; want at most %d", len(d), maxDelta)
		}
		got, err := pack.ApplyDelta(nil, base, d, uint64(len(target)))
		if err != nil {
			t.Fatalf("ApplyDelta: %v", err)
		}
		if !bytes.Equal(got, target) {
			t.Fatalf("got %q after applying; want %q", got, target)
		}
	})
}
