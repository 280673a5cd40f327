package treediff

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotd/internal/gittest"
)

// TestLineCountsMatchGit compares with `git diff --numstat --no-index`
// on edits of a text file: insertions, deletions, changes, a last line
// without a newline, emptied and created files.
func TestLineCountsMatchGit(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	base := make([]string, 200)
	for i := range base {
		base[i] = fmt.Sprintf("line %d %d\n", i, rng.IntN(5))
	}
	cases := map[string][2]string{
		"same":        {strings.Join(base, ""), strings.Join(base, "")},
		"created":     {"", strings.Join(base, "")},
		"emptied":     {strings.Join(base, ""), ""},
		"no newline":  {"a\nb\nc", "a\nb\nc\n"},
		"append":      {"a\n", "a\nb\nc\n"},
		"interleaved": {"a\nb\nc\nd\ne\n", "a\nx\nc\ny\ne\nz\n"},
	}
	for i := range 12 {
		lines := append([]string(nil), base...)
		for range 1 + rng.IntN(20) {
			p := rng.IntN(len(lines))
			switch rng.IntN(3) {
			case 0:
				lines = append(lines[:p], lines[p+1:]...)
			case 1:
				lines = append(lines[:p], append([]string{fmt.Sprintf("new %d\n", rng.IntN(1000))}, lines[p:]...)...)
			default:
				lines[p] = fmt.Sprintf("changed %d\n", rng.IntN(1000))
			}
		}
		cases[fmt.Sprintf("random %d", i)] = [2]string{strings.Join(base, ""), strings.Join(lines, "")}
	}
	dir := t.TempDir()
	for name, c := range cases {
		a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
		os.WriteFile(a, []byte(c[0]), 0o644)
		os.WriteFile(b, []byte(c[1]), 0o644)
		out, _ := gittest.Run(t, dir, nil, "diff", "--no-index", "--numstat", "a", "b")
		want := "0 0"
		if f := strings.Fields(out); len(f) >= 2 {
			want = f[0] + " " + f[1]
		}
		added, removed, ok := LineCounts([]byte(c[0]), []byte(c[1]), 10000)
		if got := fmt.Sprintf("%d %d", added, removed); !ok || got != want {
			t.Errorf("%s: %s (ok %v); git diff --numstat says %s", name, got, ok, want)
		}
	}
	if _, _, ok := LineCounts([]byte("a\nb\nc\n"), []byte("x\ny\nz\n"), 3); ok {
		t.Error("a diff of 6 edits found within 3")
	}
	// C Git looks for a NUL only in the first 8,000 bytes.
	late := append([]byte(strings.Repeat("a", binaryProbe)), 0)
	if !IsBinary([]byte("a\x00b")) || IsBinary([]byte("text\n")) || IsBinary(late) {
		t.Error("IsBinary wrong")
	}
}
