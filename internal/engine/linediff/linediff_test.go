package linediff

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// lcs is the length of a longest common subsequence, by dynamic
// programming: the oracle of a shortest edit script's size.
func lcs(a, b []int) int {
	prev, cur := make([]int, len(b)+1), make([]int, len(b)+1)
	for i := range a {
		for j := range b {
			switch {
			case a[i] == b[j]:
				cur[j+1] = prev[j] + 1
			default:
				cur[j+1] = max(prev[j+1], cur[j])
			}
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// TestDiff checks on random sequences that the hunks, applied to a,
// give b, are in order and apart, and are a shortest edit script.
func TestDiff(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		a, b := make([]int, r.IntN(30)), make([]int, r.IntN(30))
		for i := range a {
			a[i] = r.IntN(5)
		}
		for i := range b {
			b[i] = r.IntN(5)
		}
		hs, err := Diff(a, b, 100)
		if err != nil {
			t.Fatalf("Diff(%v, %v): %v", a, b, err)
		}
		var got []int
		pos, edits := 0, 0
		for k, h := range hs {
			if h.I < pos || k > 0 && h.I == pos || h.N+h.M == 0 {
				t.Fatalf("Diff(%v, %v): hunks %v out of order, touching or empty", a, b, hs)
			}
			got = append(append(got, a[pos:h.I]...), b[h.J:h.J+h.M]...)
			pos, edits = h.End(), edits+h.N+h.M
		}
		got = append(got, a[pos:]...)
		if !slices.Equal(got, b) {
			t.Fatalf("Diff(%v, %v) = %v gives %v", a, b, hs, got)
		}
		if want := len(a) + len(b) - 2*lcs(a, b); edits != want {
			t.Fatalf("Diff(%v, %v): %d edits; want %d", a, b, edits, want)
		}
	}
	if _, err := Diff([]int{1, 2, 3}, []int{4, 5, 6}, 4); err != ErrTooDifferent {
		t.Errorf("over the edit bound: %v; want ErrTooDifferent", err)
	}
}

// TestLines splits texts, a last line without newline apart.
func TestLines(t *testing.T) {
	var tb Table
	x, y := tb.Lines([]byte("a\nb\nb")), tb.Lines([]byte("b\nb\n"))
	if x.Len() != 3 || string(x.Line(2)) != "b" || x.IDs[1] == x.IDs[2] || y.IDs[0] != x.IDs[1] || y.IDs[1] != y.IDs[0] {
		t.Errorf("lines: %+v %+v", x, y)
	}
	if got := string(x.Append(nil, 1, 3)); got != "b\nb" {
		t.Errorf("Append: %q", got)
	}
}
