package receive

import (
	"os"
	"path/filepath"
	"testing"

	"gotd/internal/gittest"
)

// TestRemoveDeadQuarantines: gotd's quarantines that nobody holds any
// more (their push's processes died, the parent with them) are
// removed at start; held ones and C Git's stay (issue 19: 1.3 MB of
// objects/incoming-* left after a parent crash).
func TestRemoveDeadQuarantines(t *testing.T) {
	objects := filepath.Join(gittest.InitBare(t, "sha1"), "objects")
	dead, hold, err := NewQuarantine(objects)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dead, "tmp_pack_1"), []byte("PACK"), 0o444); err != nil {
		t.Fatal(err)
	}
	hold.Close() // as its holders' death would
	live, hold, err := NewQuarantine(objects)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	// A second holder (session_write) keeps it when the first goes.
	hold2, err := HoldQuarantine(live)
	if err != nil {
		t.Fatal(err)
	}
	git := filepath.Join(objects, "incoming-Ab12Cd") // C Git's tmp_objdir
	if err := os.Mkdir(git, 0o777); err != nil {
		t.Fatal(err)
	}
	n, err := RemoveDeadQuarantines(objects)
	if n != 1 || err != nil {
		t.Errorf("RemoveDeadQuarantines = %d, %v; want 1, nil", n, err)
	}
	hold.Close()
	if n, err := RemoveDeadQuarantines(objects); n != 0 || err != nil {
		t.Errorf("RemoveDeadQuarantines with a holder left = %d, %v; want 0, nil", n, err)
	}
	hold2.Close()
	for dir, want := range map[string]bool{dead: false, live: true, git: true} {
		if _, err := os.Stat(dir); (err == nil) != want {
			t.Errorf("%s: exists %v; want %v", filepath.Base(dir), err == nil, want)
		}
	}
}
