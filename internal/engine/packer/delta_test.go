package packer

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"gotd/internal/git/pack"
)

// mutate returns a copy of b with n random edits (insertions, deletions,
// replacements of short runs), drawn from r.
func mutate(r *rand.Rand, b []byte, n int) []byte {
	out := append([]byte(nil), b...)
	for range n {
		at := 0
		if len(out) > 0 {
			at = r.IntN(len(out))
		}
		k := 1 + r.IntN(40)
		switch r.IntN(3) {
		case 0:
			ins := make([]byte, k)
			for i := range ins {
				ins[i] = byte('a' + r.IntN(26))
			}
			out = append(out[:at], append(ins, out[at:]...)...)
		case 1:
			out = append(out[:at], out[min(at+k, len(out)):]...)
		default:
			for i := at; i < min(at+k, len(out)); i++ {
				out[i] = byte(r.IntN(256))
			}
		}
	}
	return out
}

func text(r *rand.Rand, lines int) []byte {
	var b bytes.Buffer
	for i := range lines {
		fmt.Fprintf(&b, "line %d: %d the quick brown fox jumps over the lazy dog\n", i, r.IntN(1000))
	}
	return b.Bytes()
}

func TestComputeDelta(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	big := text(r, 5000)
	rnd := make([]byte, 70000)
	for i := range rnd {
		rnd[i] = byte(r.IntN(256))
	}
	tests := []struct {
		name         string
		base, target []byte
		// maxRatio bounds the delta size as a fraction of the target
		// size, proving that matches were found; 0 means no bound.
		maxRatio float64
	}{
		{"empty both", nil, nil, 0},
		{"empty base", nil, []byte("hello world"), 0},
		{"empty target", big, nil, 0},
		{"identical", big, big, 0.01},
		{"short target", []byte("0123456789abcdef0123"), []byte("0123"), 0},
		{"edited text", big, mutate(r, big, 20), 0.05},
		{"appended", big[:1000], append(append([]byte(nil), big[:1000]...), "tail"...), 0.1},
		{"prepended", big[:1000], append([]byte("head"), big[:1000]...), 0.1},
		{"random unrelated", rnd[:5000], rnd[5000:10000], 0},
		{"long copy over 64KiB", rnd, append(append([]byte(nil), rnd...), 'x'), 0.01},
		{"zeros", make([]byte, 100000), make([]byte, 150000), 0.01},
		{"repeated block", bytes.Repeat([]byte("abcdefghijklmnop"), 1000), bytes.Repeat([]byte("abcdefghijklmnop"), 1001), 0.01},
		{"swapped halves", big, append(append([]byte(nil), big[len(big)/2:]...), big[:len(big)/2]...), 0.01},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, ok := ComputeDelta(nil, tt.base, tt.target, 1<<30)
			if !ok {
				t.Fatalf("got no delta; want one under an unbounded limit")
			}
			got, err := pack.ApplyDelta(nil, tt.base, d, 1<<30)
			if err != nil {
				t.Fatalf("ApplyDelta: %v", err)
			}
			if !bytes.Equal(got, tt.target) {
				t.Fatalf("got %d bytes after applying the delta; want the %d-byte target", len(got), len(tt.target))
			}
			if tt.maxRatio > 0 && float64(len(d)) > tt.maxRatio*float64(len(tt.target)) {
				t.Errorf("got delta of %d bytes for a %d-byte target; want at most %.0f", len(d), len(tt.target), tt.maxRatio*float64(len(tt.target)))
			}
			// A limit one byte below the delta's size must make it give up.
			if len(d) > 0 {
				if short, ok := ComputeDelta(nil, tt.base, tt.target, len(d)-1); ok {
					t.Errorf("got a %d-byte delta under a limit of %d; want none", len(short), len(d)-1)
				}
			}
		})
	}
}

func TestDeltaIndexReuse(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var x DeltaIndex
	buf := make([]byte, 0, 1<<16)
	for round := range 20 {
		base := text(r, 50+r.IntN(500))
		x.Reset(base)
		for range 3 {
			target := mutate(r, base, 1+r.IntN(10))
			d, ok := x.Delta(buf[:0], target, len(target))
			if !ok {
				t.Fatalf("round %d: got no delta for a lightly edited target; want one", round)
			}
			got, err := pack.ApplyDelta(nil, base, d, uint64(len(target)))
			if err != nil || !bytes.Equal(got, target) {
				t.Fatalf("round %d: got %q, %v after applying; want the target", round, got[:min(len(got), 40)], err)
			}
		}
	}
}

func TestDeltaPrefixKept(t *testing.T) {
	// dst's existing bytes are kept on success and on failure.
	base := bytes.Repeat([]byte("0123456789abcdef"), 10)
	d, ok := ComputeDelta([]byte("prefix"), base, base, 100)
	if !ok || !bytes.HasPrefix(d, []byte("prefix")) {
		t.Fatalf("got %q, %v; want the prefix kept and a delta", d, ok)
	}
	d, ok = ComputeDelta([]byte("prefix"), base, []byte("completely different content, no match at all"), 5)
	if ok || string(d) != "prefix" {
		t.Fatalf("got %q, %v; want the prefix alone and false", d, ok)
	}
}

func TestDeltaAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	base := text(r, 1000)
	target := mutate(r, base, 10)
	x := NewDeltaIndex(base)
	buf := make([]byte, 0, len(target))
	allocs := testing.AllocsPerRun(10, func() {
		x.Delta(buf[:0], target, len(target))
		x.Reset(base)
	})
	if allocs != 0 {
		t.Errorf("got %v allocations per Delta and Reset; want 0", allocs)
	}
}

func BenchmarkComputeDelta(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	base := text(r, 20000)
	target := mutate(r, base, 50)
	x := NewDeltaIndex(base)
	buf := make([]byte, 0, len(target))
	b.Run("index", func(b *testing.B) {
		b.SetBytes(int64(len(base)))
		for b.Loop() {
			x.Reset(base)
		}
	})
	b.Run("delta", func(b *testing.B) {
		b.SetBytes(int64(len(target)))
		for b.Loop() {
			x.Delta(buf[:0], target, len(target))
		}
	})
	rnd := make([]byte, len(target))
	for i := range rnd {
		rnd[i] = byte(r.IntN(256))
	}
	b.Run("unrelated", func(b *testing.B) {
		b.SetBytes(int64(len(rnd)))
		for b.Loop() {
			x.Delta(buf[:0], rnd, len(rnd)/2)
		}
	})
}
