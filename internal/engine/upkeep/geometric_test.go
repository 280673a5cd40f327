package upkeep

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"gotd/internal/gittest"
)

func TestSplitGeometric(t *testing.T) {
	for _, tc := range []struct {
		counts []int
		loose  int
		want   []int // counts rolled, smallest first
	}{
		{[]int{1000, 10, 10, 10, 5}, 0, []int{5, 10, 10, 10}},
		{[]int{10, 1000, 5, 10, 10}, 0, []int{5, 10, 10, 10}},
		{[]int{1000, 100, 10}, 0, nil},             // already a progression
		{[]int{1000, 100, 10}, 60, []int{10, 100}}, // 60 loose + 10 + 100 breaks it
		{[]int{1000, 100, 10}, 30, []int{10}},
		{[]int{1000, 10, 10}, 0, []int{10, 10}},
		{[]int{100, 60, 10, 10}, 0, []int{10, 10, 60, 100}}, // 80 rolled: 100 < 160 joins
		{[]int{8, 4, 2, 1}, 0, nil},
		{[]int{8, 4, 2, 1}, 1, []int{1, 2, 4, 8}},
		{[]int{7}, 0, nil},
		{[]int{7}, 5, []int{7}},
		{nil, 5, nil},
		{[]int{5, 5}, 0, []int{5, 5}},
	} {
		var got []int
		for _, i := range splitGeometric(tc.counts, tc.loose) {
			got = append(got, tc.counts[i])
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("splitGeometric(%v, %d) rolls %v; want %v", tc.counts, tc.loose, got, tc.want)
		}
	}
}

// packList writes the objects ids into a pack with C Git and returns
// the pack's path.
func packList(t *testing.T, dir string, ids []string) string {
	t.Helper()
	sum := strings.TrimSpace(gittest.GitInput(t, dir, []byte(strings.Join(ids, "\n")+"\n"), "pack-objects", "-q", filepath.Join(dir, "objects", "pack", "pack")))
	return filepath.Join(dir, "objects", "pack", "pack-"+sum+".pack")
}

// packCounts returns the object count of each pack of dir, by path.
func packCounts(t *testing.T, dir string) map[string]int {
	t.Helper()
	idxs, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "pack-*.idx"))
	out := make(map[string]int)
	for _, idx := range idxs {
		data, err := os.ReadFile(idx)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Count(gittest.GitInput(t, dir, data, "show-index"), "\n")
		out[strings.TrimSuffix(idx, ".idx")+".pack"] = lines
	}
	return out
}

// TestGeometric: packs of 1000, 10, 10, 10 and 5 objects, a .keep pack
// and loose objects, some unreachable: Geometric leaves the 1000 and the
// .keep pack as they are and rolls the rest, loose objects included,
// into one pack; nothing is lost, C Git's fsck and verify-pack accept
// the result, and a second run changes nothing.
func TestGeometric(t *testing.T) {
	dir := gittest.InitBare(t, "sha1")
	// One commit whose tree names 1040 blobs: 1042 objects.
	var b strings.Builder
	b.WriteString("commit refs/heads/main\ncommitter A <a@example.com> 1700000000 +0000\ndata 4\nbig\n")
	for i := range 1040 {
		fmt.Fprintf(&b, "M 100644 inline f%04d\ndata <<EOF\nblob %d\nEOF\n", i, i)
	}
	gittest.GitInput(t, dir, []byte(b.String()), "fast-import", "--quiet")
	imported, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "pack-*"))
	ids := strings.Fields(gittest.Git(t, dir, "rev-list", "--objects", "--no-object-names", "--all"))
	if len(ids) != 1042 {
		t.Fatalf("%d objects; want 1042", len(ids))
	}
	sort.Strings(ids)
	junk := strings.TrimSpace(gittest.GitInput(t, dir, []byte("unreachable, packed\n"), "hash-object", "-w", "--stdin"))
	junkLoose := strings.TrimSpace(gittest.GitInput(t, dir, []byte("unreachable, loose\n"), "hash-object", "-w", "--stdin"))
	big := packList(t, dir, ids[:1000])
	var small []string
	for _, s := range [][]string{ids[1000:1010], ids[1010:1020], ids[1020:1030], append(ids[1030:1034:1034], junk)} {
		small = append(small, packList(t, dir, s))
	}
	keep := packList(t, dir, ids[1034:1040])
	if err := os.WriteFile(strings.TrimSuffix(keep, ".pack")+".keep", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// ids[1040:] are left loose only.
	type obj struct{ typ, data string }
	var lone []obj
	for _, id := range ids[1040:] {
		lone = append(lone, obj{strings.TrimSpace(gittest.Git(t, dir, "cat-file", "-t", id)), gittest.Git(t, dir, "cat-file", "-p", id)})
	}
	for _, f := range imported {
		os.Remove(f)
	}
	for _, o := range lone {
		if o.typ == "tree" {
			gittest.GitInput(t, dir, []byte(o.data), "mktree")
		} else {
			gittest.GitInput(t, dir, []byte(o.data), "hash-object", "-w", "-t", o.typ, "--stdin")
		}
	}
	gittest.Git(t, dir, "prune-packed")
	for _, id := range append(ids[1040:], junkLoose) {
		if _, err := os.Stat(filepath.Join(dir, "objects", id[:2], id[2:])); err != nil {
			t.Fatalf("loose %s: %v", id, err)
		}
	}
	before := packCounts(t, dir)
	if got := []int{before[big], before[small[0]], before[small[1]], before[small[2]], before[small[3]], before[keep]}; !reflect.DeepEqual(got, []int{1000, 10, 10, 10, 5, 6}) {
		t.Fatalf("packs of %v objects; want 1000, 10, 10, 10, 5, 6", got)
	}
	bigInfo, _ := os.Stat(big)

	rep, err := Geometric(context.Background(), open(t, dir), Options{})
	if err != nil {
		t.Fatal(err)
	}
	all := append(append([]string(nil), ids...), junk, junkLoose)
	if out := gittest.GitInput(t, dir, []byte(strings.Join(all, "\n")+"\n"), "cat-file", "--batch-check"); strings.Contains(out, "missing") {
		t.Errorf("objects lost:\n%s", out)
	}
	after := packCounts(t, dir)
	if len(after) != 3 || after[big] != 1000 || after[keep] != 6 || after[rep.Pack] != 10+10+10+5+2+1 {
		t.Fatalf("packs after Geometric %v (new %s); want %s (1000), %s (6) and a new one of 38", after, rep.Pack, big, keep)
	}
	if st, err := os.Stat(big); err != nil || !st.ModTime().Equal(bigInfo.ModTime()) {
		t.Errorf("the largest pack was touched: %v", err)
	}
	sort.Strings(small)
	sort.Strings(rep.RemovedPacks)
	if !reflect.DeepEqual(rep.RemovedPacks, small) {
		t.Errorf("removed %v; want %v", rep.RemovedPacks, small)
	}
	if !reflect.DeepEqual(rep.LeftPacks, []string{big}) || !reflect.DeepEqual(rep.KeptPacks, []string{keep}) {
		t.Errorf("left %v, kept %v; want [%s], [%s]", rep.LeftPacks, rep.KeptPacks, big, keep)
	}
	if rep.RedundantLoose != 3 {
		t.Errorf("%d loose objects removed; want 3", rep.RedundantLoose)
	}
	if loose := gittest.Git(t, dir, "count-objects"); !strings.HasPrefix(loose, "0 objects") {
		t.Errorf("git count-objects: %q; want no loose objects", loose)
	}
	gittest.Git(t, dir, "fsck", "--full", "--strict", "--no-dangling")
	gittest.Git(t, dir, "verify-pack", strings.TrimSuffix(rep.Pack, ".pack")+".idx")

	// The packs form a progression now: nothing to do.
	rep, err = Geometric(context.Background(), open(t, dir), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Pack != "" || len(rep.RemovedPacks) != 0 || !reflect.DeepEqual(packCounts(t, dir), after) {
		t.Errorf("a second run wrote %q and removed %v; want nothing", rep.Pack, rep.RemovedPacks)
	}
}

// TestGeometricWholeBitmap: two packs of about the same size, each
// half of a history, are both rolled; the new pack then holds
// everything and gets a bitmap that C Git's rev-list --test-bitmap
// accepts for every branch and counts with as a walk does.
func TestGeometricWholeBitmap(t *testing.T) {
	dir := gittest.InitBare(t, "sha1")
	gittest.Generate(t, dir, gittest.History{Commits: 60, Branches: 3, Files: 12})
	imported, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "pack-*"))
	ids := strings.Fields(gittest.Git(t, dir, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)"))
	half := len(ids) / 2
	packList(t, dir, ids[:half])
	packList(t, dir, ids[half:])
	for _, f := range imported {
		os.Remove(f)
	}
	rep, err := Geometric(context.Background(), open(t, dir), Options{})
	if err != nil {
		t.Fatal(err)
	}
	packs, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "pack-*.pack"))
	bitmaps, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "pack-*.bitmap"))
	if len(packs) != 1 || len(bitmaps) != 1 || !rep.Bitmap || rep.Objects != len(ids) {
		t.Fatalf("packs %v, bitmaps %v, %d objects of %d; want one pack of all, with its bitmap", packs, bitmaps, rep.Objects, len(ids))
	}
	gittest.Git(t, dir, "fsck", "--full", "--strict")
	gittest.Git(t, dir, "verify-pack", strings.TrimSuffix(packs[0], ".pack")+".idx")
	for _, ref := range strings.Fields(gittest.Git(t, dir, "for-each-ref", "--format=%(refname)", "refs/heads")) {
		if _, err := gittest.Run(t, dir, nil, "rev-list", "--test-bitmap", ref); err != nil {
			t.Errorf("git rev-list --test-bitmap %s: %v", ref, err)
		}
	}
	want := gittest.Git(t, dir, "rev-list", "--count", "--objects", "--all")
	if got := gittest.Git(t, dir, "rev-list", "--use-bitmap-index", "--count", "--objects", "--all"); got != want {
		t.Errorf("objects counted with the bitmap %s; without %s", got, want)
	}
}
