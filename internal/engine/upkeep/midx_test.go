package upkeep

import (
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gotd/internal/git/bitmap"
	"gotd/internal/git/oid"
	"gotd/internal/git/pack"
	"gotd/internal/git/walk"
	"gotd/internal/gittest"
)

// TestGeometricMultiPackIndex: a geometric run that leaves the large
// bitmapped pack and the rolled one writes a multi-pack-index over both,
// which C Git verifies and gotd reads every object through, with a
// bitmap that replaces the large pack's and that C Git checks for every
// branch; a run with nothing to roll after another push takes the new
// pack in, its bitmap built on the last one's; a full repack down to
// one pack removes it.
func TestGeometricMultiPackIndex(t *testing.T) {
	for _, format := range []string{"sha1", "sha256"} {
		t.Run(format, func(t *testing.T) { testGeometricMultiPackIndex(t, format) })
	}
}

func testGeometricMultiPackIndex(t *testing.T, format string) {
	ctx := context.Background()
	f, _ := oid.ParseFormat(format)
	dir := gittest.InitBare(t, format)
	gittest.Generate(t, dir, gittest.History{Commits: 150, Branches: 2})
	gittest.Git(t, dir, "repack", "-adbq")
	// A branch tip when the bitmap was written: it has a bitmap.
	tip := strings.TrimSpace(gittest.Git(t, dir, "rev-parse", "main"))
	push := func(n int) {
		t.Helper()
		for i := range n {
			blob := strings.TrimSpace(gittest.GitInput(t, dir, []byte("pushed "+strconv.Itoa(i)+"\n"), "hash-object", "-w", "--stdin"))
			tree := strings.TrimSpace(gittest.GitInput(t, dir, []byte("100644 blob "+blob+"\tpushed.txt\n"), "mktree"))
			c := strings.TrimSpace(gittest.Git(t, dir, "commit-tree", tree, "-p", "main", "-m", "pushed"))
			gittest.Git(t, dir, "update-ref", "refs/heads/main", c)
			gittest.Git(t, dir, "repack", "-dq") // one pack per push
		}
	}
	packNames := func() []string {
		paths, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "pack-*.pack"))
		var names []string
		for _, p := range paths {
			names = append(names, strings.TrimSuffix(filepath.Base(p), ".pack")+".idx")
		}
		return names
	}
	check := func(step string) {
		t.Helper()
		m, err := pack.OpenMultiPackIndex(filepath.Join(dir, "objects", "pack"), f)
		if err != nil {
			t.Fatalf("%s: no multi-pack-index: %v", step, err)
		}
		if got, want := m.PackNames(), packNames(); !slices.Equal(got, want) {
			t.Errorf("%s: multi-pack-index names %v; the packs are %v", step, got, want)
		}
		// Its bitmap, the only one: C Git reads it for every tip.
		bms, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "*.bitmap"))
		if want := filepath.Join(dir, "objects", "pack", "multi-pack-index-"+hex.EncodeToString(m.Checksum())+".bitmap"); !slices.Equal(bms, []string{want}) {
			t.Errorf("%s: bitmaps %v; want only %s", step, bms, filepath.Base(want))
		}
		// Its name-hashes: those of the paths the pushed blobs have.
		lk, err := walk.MidxLookup(m)
		if err != nil {
			t.Fatal(err)
		}
		x, err := bitmap.Open(bms[0], f, lk)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(gittest.Git(t, dir, "rev-list", "--objects", "--all"), "\n") {
			fl := strings.Fields(l)
			if len(fl) != 2 || fl[1] != "pushed.txt" {
				continue
			}
			id, _ := oid.ParseHex(f, fl[0])
			pos, ok := lk.PackPos(id)
			if !ok {
				t.Fatalf("%s: %s not in the multi-pack-index", step, fl[0])
			}
			if h, ok := x.NameHashAtPackPos(pos); !ok || h != pack.NameHash([]byte(fl[1])) {
				t.Errorf("%s: name-hash of %s %s: %x, %v; want %x", step, fl[1], fl[0], h, ok, pack.NameHash([]byte(fl[1])))
			}
		}
		x.Close()
		m.Close()
		for _, tip := range strings.Fields(gittest.Git(t, dir, "for-each-ref", "--format=%(objectname)", "refs/heads/")) {
			gittest.Git(t, dir, "rev-list", "--test-bitmap", tip)
		}
		gittest.Git(t, dir, "multi-pack-index", "verify")
		gittest.Git(t, dir, "fsck", "--full", "--strict", "--no-dangling")
		gittest.Git(t, dir, "rev-list", "--test-bitmap", tip)
		want := gittest.Git(t, dir, "rev-list", "--count", "--objects", "--all")
		if got := gittest.Git(t, dir, "rev-list", "--use-bitmap-index", "--count", "--objects", "--all"); got != want {
			t.Errorf("%s: objects counted with the bitmap %s; without %s", step, got, want)
		}
		r := open(t, dir)
		for _, h := range strings.Fields(gittest.Git(t, dir, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)")) {
			id, _ := oid.ParseHex(f, h)
			if _, _, err := r.ReadObject(id); err != nil {
				t.Fatalf("%s: read %s: %v", step, h, err)
			}
		}
	}

	push(3)
	rep, err := Geometric(ctx, open(t, dir), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(packNames()) != 2 || !rep.MultiPackIndex {
		t.Fatalf("after Geometric: packs %v, multi-pack-index written %v; want 2 packs and one", packNames(), rep.MultiPackIndex)
	}
	check("geometric")

	push(1)
	rep, err = Geometric(ctx, open(t, dir), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Pack != "" || !rep.MultiPackIndex {
		t.Errorf("nothing to roll: wrote %q, multi-pack-index written %v; want no pack and a new multi-pack-index", rep.Pack, rep.MultiPackIndex)
	}
	check("after a push")
	rep, err = Geometric(ctx, open(t, dir), Options{})
	if err != nil || rep.MultiPackIndex {
		t.Errorf("a run with nothing new: %v, multi-pack-index written %v; want it left as it is", err, rep.MultiPackIndex)
	}

	if _, err := Repack(ctx, open(t, dir), Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "objects", "pack", "multi-pack-index")); !os.IsNotExist(err) {
		t.Errorf("multi-pack-index after a full repack down to one pack: %v; want none", err)
	}
	gittest.Git(t, dir, "fsck", "--full", "--strict", "--no-dangling")
}
