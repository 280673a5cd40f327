package merge

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// editLines returns a copy of lines with a few random edits: lines
// replaced, inserted and deleted, new lines drawn from fresh.
func editLines(r *rand.Rand, lines []string, fresh func() string) []string {
	out := append([]string(nil), lines...)
	for range 1 + r.IntN(4) {
		if len(out) == 0 {
			out = append(out, fresh())
			continue
		}
		at := r.IntN(len(out))
		switch r.IntN(3) {
		case 0:
			out[at] = fresh()
		case 1:
			out = append(out[:at], append([]string{fresh()}, out[at:]...)...)
		case 2:
			out = append(out[:at], out[at+1:]...)
		}
	}
	return out
}

// gitMergeFile merges with C Git's merge-file: the merged text, and
// whether it was clean.
func gitMergeFile(t *testing.T, dir string, base, ours, theirs []byte) ([]byte, bool) {
	t.Helper()
	names := []string{"ours", "base", "theirs"}
	for i, data := range [][]byte{ours, base, theirs} {
		if err := os.WriteFile(filepath.Join(dir, names[i]), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("git", "merge-file", "-p", "ours", "base", "theirs")
	cmd.Dir = dir
	out, err := cmd.Output()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out, true
	case errors.As(err, &ee) && ee.ExitCode() > 0 && ee.ExitCode() < 127:
		return out, false
	}
	t.Fatalf("git merge-file: %v", err)
	return nil, false
}

// TestLinesMatchGit merges random edits of a file, made on two sides,
// with Lines and with `git merge-file`: both must agree on whether the
// merge is clean, and on its result when it is. Files of distinct
// lines are diffed the same way by every algorithm; files drawn from a
// few repeated lines are not (the diff of C Git's xdiff may align them
// otherwise), so they are checked for cleanliness where both align
// alike, and for a result that holds each side's changes.
func TestLinesMatchGit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(1, 2))
	rounds := 200
	if testing.Short() {
		rounds = 100
	}
	clean, conflicts := 0, 0
	for round := range rounds {
		n := 0
		fresh := func() string { n++; return fmt.Sprintf("line %d.%d\n", round, n) }
		var base []string
		for range r.IntN(30) {
			base = append(base, fresh())
		}
		ours := editLines(r, base, fresh)
		theirs := editLines(r, base, fresh)
		if r.IntN(5) == 0 {
			theirs = editLines(r, ours, fresh) // theirs holds ours' edits too
		}
		b, o, th := []byte(strings.Join(base, "")), []byte(strings.Join(ours, "")), []byte(strings.Join(theirs, ""))
		if r.IntN(4) == 0 && len(o) > 0 {
			o = o[:len(o)-1] // no newline at the end
		}
		got, ok, err := Lines(b, o, th, 1000)
		if err != nil {
			t.Fatal(err)
		}
		want, wantOK := gitMergeFile(t, dir, b, o, th)
		if ok != wantOK || ok && !bytes.Equal(got, want) {
			t.Fatalf("round %d: got clean %v\n%s\nwant clean %v (git merge-file)\n%s\nbase:\n%s\nours:\n%s\ntheirs:\n%s", round, ok, got, wantOK, want, b, o, th)
		}
		if ok {
			clean++
		} else {
			conflicts++
		}
	}
	t.Logf("%d rounds: %d clean, %d conflicts, all as git merge-file", rounds, clean, conflicts)
	if clean < rounds/10 || conflicts < rounds/10 {
		t.Errorf("the corpus is one-sided: %d clean, %d conflicts", clean, conflicts)
	}
}

func TestLinesCases(t *testing.T) {
	for _, c := range []struct {
		name               string
		base, ours, theirs string
		want               string
		clean              bool
	}{
		{"apart", "a\nb\nc\nd\ne\n", "A\nb\nc\nd\ne\n", "a\nb\nc\nd\nE\n", "A\nb\nc\nd\nE\n", true},
		{"touching", "a\nb\nc\n", "A\nb\nc\n", "a\nB\nc\n", "", false},
		{"same change", "a\nb\nc\n", "a\nX\nc\n", "a\nX\nc\n", "a\nX\nc\n", true},
		{"both insert at one place", "a\nb\n", "a\nx\nb\n", "a\ny\nb\n", "", false},
		{"delete and change elsewhere", "a\nb\nc\nd\n", "b\nc\nd\n", "a\nb\nc\nD\n", "b\nc\nD\n", true},
		{"empty base", "", "x\n", "y\n", "", false},
		{"newline at end", "a\nb\nc\nd\n", "a\nb\nc\nd", "A\nb\nc\nd\n", "A\nb\nc\nd", true},
		// The same line removed from a run on both sides, where each
		// diff may put the removal elsewhere in the run: removed once,
		// as C Git does (a stranger's finding: it was removed twice).
		{"same removal in a run", "[deps]\nfoo\nbar\nbar\nbar\nbaz\n", "[dependencies]\nfoo\nbar\nbar\nbaz\n", "[deps]\nfoo\nbar\nbar\nbaz\n",
			"[dependencies]\nfoo\nbar\nbar\nbaz\n", true},
		{"same addition to a run", "x\nbar\nbar\ny\n", "x\nbar\nbar\nbar\ny\n", "x\nbar\nbar\nbar\ny\n", "x\nbar\nbar\nbar\ny\n", true},
		{"addition and removal in a run", "x\nbar\nbar\ny\n", "x\nbar\nbar\nbar\ny\n", "x\nbar\ny\n", "", false},
	} {
		got, ok, err := Lines([]byte(c.base), []byte(c.ours), []byte(c.theirs), 100)
		if err != nil || ok != c.clean || ok && string(got) != c.want {
			t.Errorf("%s: got %q, clean %v, %v; want %q, clean %v", c.name, got, ok, err, c.want, c.clean)
		}
	}
	if _, _, err := Lines([]byte("a\nb\nc\n"), []byte("x\ny\nz\n"), []byte("a\nb\nC\n"), 4); !errors.Is(err, ErrTooDifferent) {
		t.Errorf("over the edit bound: got %v; want ErrTooDifferent", err)
	}
	// Large files that differ everywhere: refused within the work
	// bound, whatever the edit bound.
	var big [3]strings.Builder
	for i := range 300000 {
		for side := range big {
			fmt.Fprintf(&big[side], "%d %d\n", side, i)
		}
	}
	if _, _, err := Lines([]byte(big[0].String()), []byte(big[1].String()), []byte(big[2].String()), 1<<20); !errors.Is(err, ErrTooDifferent) {
		t.Errorf("large files changed everywhere: got %v; want ErrTooDifferent", err)
	}
}

// FuzzLines merges arbitrary texts: no panic, and a clean merge of a
// side with the base is that side.
func FuzzLines(f *testing.F) {
	f.Add([]byte("a\nb\n"), []byte("a\nB\n"), []byte("A\nb\n"))
	f.Add([]byte(""), []byte("x"), []byte("x\n"))
	f.Fuzz(func(t *testing.T, base, ours, theirs []byte) {
		if len(base)+len(ours)+len(theirs) > 1<<14 {
			return
		}
		got, ok, err := Lines(base, ours, base, 1<<12)
		if err != nil || !ok || !bytes.Equal(got, ours) {
			t.Fatalf("merge with an unchanged side: got %q, %v, %v; want ours", got, ok, err)
		}
		Lines(base, ours, theirs, 64)
	})
}
