package fastimport

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"gotd/internal/git/repo"
	"gotd/internal/gittest"
)

// TestWideDirectory: a stream putting 100,000 files in one directory of
// one commit (a 3 MB stream) imports in seconds: each path is found by
// name, not by a search of the directory (300,000 files had used three
// minutes of CPU and were not done when killed). The import is bounded
// by a context deadline, which Import honours between the lines of one
// commit.
func TestWideDirectory(t *testing.T) {
	const n = 100000
	var b strings.Builder
	b.WriteString("blob\nmark :1\ndata 2\na\n\ncommit refs/heads/main\ncommitter C <c@example.com> 1700000000 +0000\ndata 4\nwide")
	for i := range n {
		fmt.Fprintf(&b, "M 100644 :1 d/f%07d\n", n-i)
	}
	for i := 0; i < n; i += 10 {
		fmt.Fprintf(&b, "D d/f%07d\n", n-i)
	}
	b.WriteString("\n")
	dir := gittest.InitBare(t, "sha1")
	r, err := repo.Open(dir, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := Import(ctx, r, strings.NewReader(b.String()), Options{}); err != nil {
		t.Fatalf("Import after %v: %v", time.Since(start), err)
	}
	got := strings.Count(gittest.Git(t, dir, "ls-tree", "--name-only", "main:d"), "\n")
	if want := n - n/10; got != want {
		t.Errorf("main:d has %d entries, want %d", got, want)
	}
}
