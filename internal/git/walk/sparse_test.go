package walk

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/walk/walktest"
	"gotd/internal/gittest"
)

// TestSparseEdges: a fetch of one commit that changes one file among
// many directories reads the trees along that file's path, not every
// tree of the commit it has (a budget of 8 trees suffices where the
// edge's tree has 60), lists what git rev-list lists, and offers the
// file's old content as a thin pack's base.
func TestSparseEdges(t *testing.T) {
	dir := gittest.InitBare(t, "sha1")
	var b strings.Builder
	b.WriteString("commit refs/heads/main\nmark :1\ncommitter C <c@example.com> 1000 +0000\ndata 0\n")
	for i := range 60 {
		fmt.Fprintf(&b, "M 100644 inline d%02d/sub/f.txt\ndata 6\nfile%02d\n", i, i)
	}
	b.WriteString("\ncommit refs/heads/main\nmark :2\ncommitter C <c@example.com> 1100 +0000\ndata 0\nfrom :1\n")
	b.WriteString("M 100644 inline d07/sub/f.txt\ndata 8\nchanged\n\n")
	gittest.GitInput(t, dir, []byte(b.String()), "fast-import", "--quiet")
	r := &repo{dir: dir, f: oid.SHA1}
	r.store = walktest.LoadStore(t, dir, r.f)
	w := &Walker{Store: r.store, Format: r.f}
	saved := nearBudget
	t.Cleanup(func() { nearBudget = saved })
	nearBudget = 8

	got := map[string]bool{}
	edges := map[string]bool{}
	spec := Spec{Wants: []oid.ID{r.rev(t, "main")}, Haves: []oid.ID{r.rev(t, "main~1")}, Edges: func(id oid.ID) { edges[id.String()] = true }}
	err := w.ObjectsNear(context.Background(), spec, func(id oid.ID, _ object.Type, _ uint32) error {
		got[id.String()] = true
		return nil
	})
	if err != nil {
		t.Fatalf("ObjectsNear of one commit with a budget of %d trees: %v", nearBudget, err)
	}
	want := r.revList(t, "main", "--not", "main~1")
	for s := range want {
		if !got[s] {
			t.Errorf("%s: rev-list lists it; not listed", s)
		}
	}
	for s := range got {
		if !want[s] {
			t.Errorf("%s listed; rev-list leaves it out", s)
		}
	}
	old := strings.TrimSpace(gittest.Git(t, dir, "rev-parse", "main~1:d07/sub/f.txt"))
	if !edges[old] {
		t.Errorf("the changed file's old content %s is not offered as a base (%d bases)", old, len(edges))
	}
}
