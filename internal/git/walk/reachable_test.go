package walk

import (
	"context"
	"strings"
	"testing"

	"gotd/internal/git/oid"
	"gotd/internal/git/walk/walktest"
	"gotd/internal/gittest"
)

// TestReachable checks Reachable on commits, a blob and a missing id,
// from the main line and from a side branch.
func TestReachable(t *testing.T) {
	dir := gittest.InitBare(t, "sha1")
	gittest.Generate(t, dir, gittest.History{Commits: 30, Files: 6})
	git := func(in string, args ...string) string {
		return strings.TrimSpace(gittest.GitInput(t, dir, []byte(in), args...))
	}
	id := func(s string) oid.ID {
		v, err := oid.ParseHexAny(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	main := git("", "rev-parse", "main")
	old := git("", "rev-parse", "main~20")
	oldBlob := git("", "rev-parse", "main~20:"+strings.Fields(git("", "ls-tree", "--name-only", "-r", "main~20"))[0])
	side := git("", "commit-tree", git("", "rev-parse", "main~5^{tree}"), "-p", "main~5", "-m", "side")
	sideBlob := git("side only\n", "hash-object", "-w", "--stdin")
	sideTop := git("", "commit-tree", git("100644 blob "+sideBlob+"\tf\n", "mktree"), "-p", side, "-m", "side top")
	w := &Walker{Store: walktest.LoadStore(t, dir, oid.SHA1), Format: oid.SHA1}
	missing := strings.Repeat("ab", 20)
	ids := []oid.ID{id(main), id(old), id(oldBlob), id(side), id(sideTop), id(sideBlob), id(missing)}
	got, err := w.Reachable(context.Background(), []oid.ID{id(main)}, ids)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{main: true, old: true, oldBlob: true}
	for _, x := range ids {
		if got[x] != want[x.String()] {
			t.Errorf("%v reachable: %v, want %v", x, got[x], want[x.String()])
		}
	}
	got, err = w.Reachable(context.Background(), []oid.ID{id(sideTop)}, ids)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range ids {
		if w := x.String() != missing && x.String() != main; got[x] != w {
			t.Errorf("from the side: %v reachable: %v, want %v", x, got[x], w)
		}
	}
}
