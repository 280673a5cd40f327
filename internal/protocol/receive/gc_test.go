package receive

import (
	"runtime/debug"
	"testing"
)

// TestGCForPack: the collector's target drops to LargePackGCPercent only
// for a pack of LargePack objects or more (a small pack's heap is
// within the collector's floor, where a lower target only collects
// more often), and the target found is restored afterwards.
func TestGCForPack(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	for _, tc := range []struct {
		count uint32
		want  int
	}{
		{0, 100},
		{LargePack - 1, 100},
		{LargePack, LargePackGCPercent},
		{1 << 20, LargePackGCPercent},
	} {
		packObjects, restore := GCForPack()
		packObjects(tc.count)
		got := debug.SetGCPercent(100)
		debug.SetGCPercent(got)
		restore()
		if got != tc.want {
			t.Errorf("a pack of %d objects: got a target of %d%%; want %d%%", tc.count, got, tc.want)
		}
		if after := debug.SetGCPercent(100); after != 100 {
			t.Errorf("a pack of %d objects: got %d%% restored; want 100%%", tc.count, after)
		}
	}
}
