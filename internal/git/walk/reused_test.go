package walk

import (
	"math/rand"
	"testing"

	"gotd/internal/git/bitmap"
)

// TestReusedMove checks that Reused moves bitmaps to the new pack's
// positions the same a run at a time as a bit at a time, for mappings
// that keep the order in long runs (a repack of the same objects plus a
// few), that lose objects, and that shuffle them (bit at a time only).
func TestReusedMove(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	const n = 5000
	shifted := make([]int32, n) // 7 new objects first, then the old ones
	for i := range shifted {
		shifted[i] = int32(i + 7)
	}
	spliced := make([]int32, n) // two runs swapped, three objects gone
	for i := range spliced {
		switch {
		case i < 3000:
			spliced[i] = int32(i + 2000)
		default:
			spliced[i] = int32(i - 3000)
		}
	}
	spliced[10], spliced[2500], spliced[4999] = -1, -1, -1
	shuffled := make([]int32, n)
	for i, p := range rng.Perm(n) {
		shuffled[i] = int32(p)
	}
	for _, tc := range []struct {
		name string
		to   []int32
		runs bool
	}{
		{"shifted", shifted, true},
		{"spliced", spliced, true},
		{"shuffled", shuffled, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := &Reused{to: tc.to}
			u.findRuns()
			if got := u.runs != nil; got != tc.runs {
				t.Fatalf("moved by runs: got %v; want %v (%d runs)", got, tc.runs, len(u.runs))
			}
			slow := &Reused{to: tc.to}
			for round := 0; round < 200; round++ {
				b := bitmap.New(n)
				density := 1 + rng.Intn(20)
				for i := 0; i < n; i++ {
					if rng.Intn(density) == 0 {
						b.Set(i)
					}
				}
				if round%2 == 0 { // clear of the lost objects
					for i, p := range tc.to {
						if p < 0 {
							b.Clear(i)
						}
					}
				}
				want, wantOK := slow.move(b)
				got, gotOK := u.move(b)
				if gotOK != wantOK || gotOK && !got.Equal(want) {
					t.Fatalf("round %d: got ok %v, %d bits; want ok %v, %d bits", round, gotOK, got.Count(), wantOK, want.Count())
				}
				if wantOK && want.Count() != b.Count() {
					t.Fatalf("round %d: moved %d bits; want %d", round, want.Count(), b.Count())
				}
			}
		})
	}
}
