package web

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// patchText writes hunks as a patch of file f.
func patchText(hunks []hunk) string {
	var b strings.Builder
	b.WriteString("--- a/f\n+++ b/f\n")
	for _, h := range hunks {
		b.WriteString(h.Header + "\n")
		for _, l := range h.Lines {
			if l.Kind == '\\' {
				b.WriteString("\\ " + l.Text + "\n")
				continue
			}
			b.WriteString(string(l.Kind) + l.Text + "\n")
		}
	}
	return b.String()
}

// TestUnifiedApplies checks the diffs of random edits with C Git: git
// apply takes each patch (headers, counts, context and the missing
// newline marker) and turns the old file into the new one, and the
// counts are git diff --numstat's.
func TestUnifiedApplies(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"a", "b", "c", "d", "e", "f", ""}
	gen := func(n int) []byte {
		var b strings.Builder
		for range n {
			b.WriteString(words[rng.IntN(len(words))] + "\n")
		}
		return []byte(b.String())
	}
	dir := t.TempDir()
	for i := range 60 {
		old := gen(rng.IntN(40))
		new := append([]byte(nil), old...)
		// A few edits: lines inserted, removed, replaced.
		lines := strings.SplitAfter(string(new), "\n")
		for range rng.IntN(6) + 1 {
			j := rng.IntN(len(lines) + 1)
			switch rng.IntN(3) {
			case 0:
				lines = append(lines[:j], append([]string{string(gen(rng.IntN(3) + 1))}, lines[j:]...)...)
			case 1:
				if j < len(lines) {
					lines = append(lines[:j], lines[j+1:]...)
				}
			case 2:
				if j < len(lines) {
					lines[j] = "x" + lines[j]
				}
			}
		}
		new = []byte(strings.Join(lines, ""))
		if i%5 == 0 && len(new) > 0 {
			new = new[:len(new)-1] // no newline at the end
		}
		if i%7 == 0 && len(old) > 0 {
			old = old[:len(old)-1]
		}
		hunks, added, removed, ok := unified(old, new, maxEdits)
		if !ok {
			t.Fatalf("case %d: no diff", i)
		}
		f := filepath.Join(dir, "f")
		os.WriteFile(f, old, 0o644)
		os.WriteFile(filepath.Join(dir, "new"), new, 0o644)
		os.WriteFile(filepath.Join(dir, "p.diff"), []byte(patchText(hunks)), 0o644)
		if string(old) != string(new) {
			cmd := exec.Command("git", "apply", "--unidiff-zero", "p.diff")
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				d := exec.Command("diff", "-u", "f", "new")
				d.Dir = dir
				dout, _ := d.CombinedOutput()
				t.Fatalf("case %d: git apply: %v\n%s\npatch:\n%s\ndiff -u:\n%s", i, err, out, patchText(hunks), dout)
			}
			got, _ := os.ReadFile(f)
			if string(got) != string(new) {
				t.Fatalf("case %d: the patch makes %q, want %q\npatch:\n%s", i, got, new, patchText(hunks))
			}
		} else if len(hunks) != 0 {
			t.Errorf("case %d: hunks for equal files", i)
		}
		os.WriteFile(f, old, 0o644)
		cmd := exec.Command("git", "diff", "--no-index", "--numstat", "f", "new")
		cmd.Dir = dir
		out, _ := cmd.Output()
		want := ""
		if len(out) > 0 {
			want = strings.Fields(string(out))[0] + " " + strings.Fields(string(out))[1]
		} else {
			want = "0 0"
		}
		if got := fmt.Sprintf("%d %d", added, removed); got != want {
			t.Errorf("case %d: added, removed = %s; git diff --numstat says %s", i, got, want)
		}
	}
}

// TestUnifiedBound checks that a diff past maxEdits is given up.
func TestUnifiedBound(t *testing.T) {
	var a, b strings.Builder
	for i := range 3000 {
		fmt.Fprintf(&a, "a%d\n", i)
		fmt.Fprintf(&b, "b%d\n", i)
	}
	if _, _, _, ok := unified([]byte(a.String()), []byte(b.String()), 100); ok {
		t.Errorf("a diff of 6000 edits within 100: got ok")
	}
	if _, added, removed, ok := unified([]byte(a.String()), []byte(b.String()), 6000); !ok || added != 3000 || removed != 3000 {
		t.Errorf("got %d, %d, %v; want 3000, 3000, true", added, removed, ok)
	}
}
