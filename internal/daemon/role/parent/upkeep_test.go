package parent

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestLooseRefs: the loose references are counted in every directory
// under refs, lock files and hidden files left out, and the count stops
// at the limit.
func TestLooseRefs(t *testing.T) {
	dir := t.TempDir()
	write := func(name string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 30 {
		write(fmt.Sprintf("refs/heads/a/b%d", i))
		write(fmt.Sprintf("refs/tags/v%d", i))
	}
	write("refs/heads/main.lock")
	write("refs/heads/.hidden")
	write("packed-refs")
	for _, tc := range []struct{ limit, want int }{{100, 60}, {61, 60}, {51, 51}, {1, 1}} {
		if got := looseRefs(dir, tc.limit); got != tc.want {
			t.Errorf("looseRefs(limit %d) = %d; want %d", tc.limit, got, tc.want)
		}
	}
}
