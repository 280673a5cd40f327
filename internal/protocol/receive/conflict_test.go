package receive

import (
	"path/filepath"
	"testing"
)

// TestPushNameConflict: a push whose only update creates a reference
// in the way of an existing one ("refs/heads/main/x" beside
// "refs/heads/main") fails before its pack is installed; the
// repository is left as it was.
func TestPushNameConflict(t *testing.T) {
	f := newFixture(t, "2", "sha1", false)
	f.commit(t, "a.txt", "a\n")
	main := f.ref(t, "refs/heads/main")
	packs := snapshot(t, filepath.Join(f.server, "objects", "pack"))
	stderr, err := f.push(t, nil, "origin", "HEAD:refs/heads/main/x")
	if err == nil {
		t.Fatalf("push of refs/heads/main/x beside refs/heads/main accepted:\n%s", stderr)
	}
	r := f.lastResult(t)
	if r.Commands["refs/heads/main/x"] != ngUpdate || r.Pack {
		t.Errorf("served %+v; want %q and no pack", r, ngUpdate)
	}
	if got := snapshot(t, filepath.Join(f.server, "objects", "pack")); got != packs {
		t.Errorf("the failed push installed a pack:\n%s", diffLines(packs, got))
	}
	f.wantRef(t, "refs/heads/main", main)
	f.verify(t)
}
