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

// TestSlide checks that Slide keeps a diff valid and as short, on
// random texts of few distinct lines (many ways to align them), and
// that it places an added function where C Git's diff does.
func TestSlide(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	words := []string{"}\n", "\n", "\tx++\n", "func f() {\n", "\treturn\n"}
	text := func() []byte {
		var b []byte
		for range r.IntN(40) {
			b = append(b, words[r.IntN(len(words))]...)
		}
		return b
	}
	for range 2000 {
		var tb Table
		a, b := tb.Lines(text()), tb.Lines(text())
		hs, err := Diff(a.IDs, b.IDs, 200)
		if err != nil {
			t.Fatal(err)
		}
		slid := Slide(a, b, hs)
		var got []int
		pos, edits, want := 0, 0, 0
		for _, h := range hs {
			want += h.N + h.M
		}
		for _, h := range slid {
			if h.I < pos {
				t.Fatalf("Slide: hunks %v out of order", slid)
			}
			got = append(append(got, a.IDs[pos:h.I]...), b.IDs[h.J:h.J+h.M]...)
			pos, edits = h.End(), edits+h.N+h.M
		}
		got = append(got, a.IDs[pos:]...)
		if !slices.Equal(got, b.IDs) || edits != want {
			t.Fatalf("Slide(%v) = %v: gives %v with %d edits; want %v with %d", hs, slid, got, edits, b.IDs, want)
		}
	}
	var tb Table
	a := tb.Lines([]byte("x\n\ty\n}\n"))
	b := tb.Lines([]byte("x\n\ty\n}\n\ty\n}\n"))
	hs, _ := Diff(a.IDs, b.IDs, 100)
	// git diff --no-index -U0 shows @@ -2,0 +3,2 @@: "}\n\ty\n" added
	// after line 2, where Myers' diff alone adds "\ty\n}\n" after line 3.
	if !slices.Equal(hs, []Hunk{{I: 3, N: 0, J: 3, M: 2}}) {
		t.Errorf("Diff: %v; the test expects the change after line 3", hs)
	}
	if got, want := Slide(a, b, hs), []Hunk{{I: 2, N: 0, J: 2, M: 2}}; !slices.Equal(got, want) {
		t.Errorf("Slide: %v; want %v, as C Git", got, want)
	}
}
