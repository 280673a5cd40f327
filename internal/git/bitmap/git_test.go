package bitmap_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"gotd/internal/git/bitmap"
	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/walk"
	"gotd/internal/git/walk/walktest"
	"gotd/internal/gittest"
)

// reachable returns the pack positions of what git rev-list --objects
// lists for args.
func reachable(t *testing.T, dir string, f oid.Format, p *walktest.Pack, args ...string) bitmap.Bitmap {
	t.Helper()
	out := gittest.Git(t, dir, append([]string{"rev-list", "--objects"}, args...)...)
	var b bitmap.Bitmap
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		id, err := oid.ParseHex(f, strings.Fields(line)[0])
		if err != nil {
			t.Fatal(err)
		}
		pos, ok := p.PackPos(id)
		if !ok {
			t.Fatalf("%v not in the pack", id)
		}
		b.Set(pos)
	}
	return b
}

func newRepo(t *testing.T, format string) (string, oid.Format) {
	t.Helper()
	dir := gittest.InitBare(t, format)
	gittest.Generate(t, dir, gittest.History{Commits: 150, Branches: 3, Files: 16})
	f, _ := oid.ParseFormat(format)
	return dir, f
}

func TestReadWhatGitWrote(t *testing.T) {
	for _, format := range []string{"sha1", "sha256"} {
		for _, tc := range []struct{ hashCache, lookupTable bool }{
			{false, false}, {true, false}, {false, true}, {true, true},
		} {
			t.Run(fmt.Sprintf("%s/hash=%v/table=%v", format, tc.hashCache, tc.lookupTable), func(t *testing.T) {
				dir, f := newRepo(t, format)
				gittest.Git(t, dir, "-c", fmt.Sprintf("pack.writeBitmapHashCache=%v", tc.hashCache),
					"-c", fmt.Sprintf("pack.writeBitmapLookupTable=%v", tc.lookupTable), "repack", "-adbq")
				p := walktest.LoadPack(t, dir, f, nil)
				x, err := bitmap.Open(p.Base+".bitmap", f, p)
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				defer x.Close()
				if x.HasNameHashes() != tc.hashCache {
					t.Errorf("HasNameHashes() = %v; want %v", x.HasNameHashes(), tc.hashCache)
				}
				checkIndex(t, dir, f, p, x)
			})
		}
	}
}

// checkIndex compares every bitmap of x with git rev-list and the type
// bitmaps with git cat-file.
func checkIndex(t *testing.T, dir string, f oid.Format, p *walktest.Pack, x *bitmap.Index) {
	t.Helper()
	if x.Len() == 0 {
		t.Fatalf("no commit bitmaps")
	}
	var commits []oid.ID
	x.Commits(func(id oid.ID) bool { commits = append(commits, id); return true })
	if len(commits) != x.Len() {
		t.Errorf("Commits listed %d; Len() = %d", len(commits), x.Len())
	}
	for _, c := range commits {
		got, ok := x.Bitmap(c)
		if !ok {
			t.Errorf("Bitmap(%v): none", c)
			continue
		}
		want := reachable(t, dir, f, p, c.String())
		if !got.Equal(want) {
			t.Errorf("Bitmap(%v): %d objects; git rev-list --objects lists %d (%d in common)",
				c, got.Count(), want.Count(), and(got, want).Count())
		}
	}
	out := gittest.Git(t, dir, "cat-file", "--batch-all-objects", "--batch-check=%(objectname) %(objecttype)")
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		fs := strings.Fields(line)
		id, _ := oid.ParseHex(f, fs[0])
		typ, _ := object.ParseType([]byte(fs[1]))
		pos, ok := p.PackPos(id)
		if !ok {
			continue
		}
		n++
		if got := x.TypeAt(pos); got != typ {
			t.Errorf("TypeAt(%d) for %v = %v; want %v", pos, id, got, typ)
		}
		if !x.TypeBitmap(typ).Has(pos) {
			t.Errorf("TypeBitmap(%v) lacks %v", typ, id)
		}
	}
	if n != p.Count() {
		t.Errorf("git cat-file lists %d objects of the pack; pack has %d", n, p.Count())
	}
	if _, ok := x.Bitmap(oid.Zero(f)); ok {
		t.Errorf("Bitmap(zero id) found")
	}
}

func and(a, b bitmap.Bitmap) bitmap.Bitmap {
	c := a.Clone()
	c.And(b)
	return c
}

// TestWriteForGit writes bitmaps for a pack C Git wrote and lets C Git
// check them against its own walk.
func TestWriteForGit(t *testing.T) {
	for _, format := range []string{"sha1", "sha256"} {
		for _, tc := range []struct {
			name   string
			hashes bool
			table  bool
			xor    int
		}{
			{"plain", false, false, 0},
			{"hashes", true, false, 0},
			{"table+xor", false, true, 10},
			{"all", true, true, 10},
		} {
			t.Run(format+"/"+tc.name, func(t *testing.T) {
				dir, f := newRepo(t, format)
				gittest.Git(t, dir, "repack", "-adq")
				p := walktest.LoadPack(t, dir, f, nil)
				store := walktest.LoadStore(t, dir, f)
				w := &walk.Walker{Store: store, Format: f}
				var tips []oid.ID
				for _, line := range strings.Split(strings.TrimSpace(gittest.Git(t, dir, "for-each-ref", "--format=%(objectname) %(refname)")), "\n") {
					fs := strings.Fields(line)
					id, _ := oid.ParseHex(f, fs[0])
					tips = append(tips, id)
				}
				bms, err := w.BuildBitmaps(context.Background(), tips, p)
				if err != nil {
					t.Fatalf("BuildBitmaps: %v", err)
				}
				o := &bitmap.WriteOptions{Pack: p, Types: bms.Types, LookupTable: tc.table, XORWindow: tc.xor}
				if tc.hashes {
					o.NameHashes = bms.NameHashes
				}
				var buf bytes.Buffer
				if err := bitmap.Write(&buf, f, o, bms.Entries); err != nil {
					t.Fatalf("Write: %v", err)
				}
				if err := os.WriteFile(p.Base+".bitmap", buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				t.Logf("%d entries, %d bytes", len(bms.Entries), buf.Len())

				// Our reader agrees with what was written and with git.
				x, err := bitmap.Parse(buf.Bytes(), f, p)
				if err != nil {
					t.Fatalf("Parse of our own file: %v", err)
				}
				for _, e := range bms.Entries {
					if got, ok := x.Bitmap(e.Commit); !ok || !got.Equal(e.Bitmap) {
						t.Errorf("entry %v reads back as %d bits; wrote %d", e.Commit, got.Count(), e.Bitmap.Count())
					}
				}
				checkIndex(t, dir, f, p, x)

				// C Git verifies each tip's bitmap against its own walk.
				for _, name := range []string{"refs/heads/main", "refs/heads/topic1", "refs/tags/v1.0^{commit}"} {
					cmd := exec.Command("git", "rev-list", "--test-bitmap", name)
					cmd.Dir, cmd.Env = dir, gittest.Env(t)
					out, err := cmd.CombinedOutput()
					if err != nil || !bytes.Contains(out, []byte("OK!")) {
						t.Errorf("git rev-list --test-bitmap %s: %v\n%s", name, err, out)
					}
				}
				want := strings.TrimSpace(gittest.Git(t, dir, "rev-list", "--count", "--objects", "--all"))
				got := strings.TrimSpace(gittest.Git(t, dir, "rev-list", "--use-bitmap-index", "--count", "--objects", "--all"))
				if got != want {
					t.Errorf("git rev-list --use-bitmap-index --count --objects --all = %s; without bitmaps %s", got, want)
				}
			})
		}
	}
}

// TestGitRejectsWrongBitmap shows that the oracle of TestWriteForGit can
// fail: a bitmap missing one object is refused by git rev-list
// --test-bitmap.
func TestGitRejectsWrongBitmap(t *testing.T) {
	dir, f := newRepo(t, "sha1")
	gittest.Git(t, dir, "repack", "-adq")
	p := walktest.LoadPack(t, dir, f, nil)
	w := &walk.Walker{Store: walktest.LoadStore(t, dir, f), Format: f}
	main, _ := oid.ParseHex(f, strings.TrimSpace(gittest.Git(t, dir, "rev-parse", "main")))
	bms, err := w.BuildBitmaps(context.Background(), []oid.ID{main}, p)
	if err != nil {
		t.Fatal(err)
	}
	last := &bms.Entries[len(bms.Entries)-1]
	if last.Commit != main {
		t.Fatalf("last entry is %v; want main %v", last.Commit, main)
	}
	blob := -1
	last.Bitmap.ForEach(func(pos int) bool {
		if bms.Types[2].Has(pos) {
			blob = pos
			return false
		}
		return true
	})
	last.Bitmap.Clear(blob)
	var buf bytes.Buffer
	if err := bitmap.Write(&buf, f, &bitmap.WriteOptions{Pack: p, Types: bms.Types}, bms.Entries); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.Base+".bitmap", buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("git", "rev-list", "--test-bitmap", "main")
	cmd.Dir, cmd.Env = dir, gittest.Env(t)
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("git rev-list --test-bitmap accepted a bitmap missing an object:\n%s", out)
	}
}

// countingStore counts the trees a walk reads.
type countingStore struct {
	*walktest.Store
	trees int
}

func (s *countingStore) ReadObject(id oid.ID) (object.Type, []byte, error) {
	t, data, err := s.Store.ReadObject(id)
	if t == object.Tree {
		s.trees++
	}
	return t, data, err
}

// TestReuseEarlierBitmaps builds the bitmaps of a pack that replaces a
// bitmapped one, with two commits more, twice: from C Git's bitmaps (a
// repository served by C Git before gotadmin pack -a has it), then from
// the bitmaps written that first time. The earlier bitmaps are taken,
// moved to the new positions; the second time, when every commit the
// first selected has a bitmap, only the new commits' trees are read.
// Every bitmap matches git rev-list's walk and passes git rev-list
// --test-bitmap.
func TestReuseEarlierBitmaps(t *testing.T) {
	dir, f := newRepo(t, "sha1")
	gittest.Git(t, dir, "repack", "-adbq")
	for round := range 2 {
		reusing, walked := repackReusing(t, dir, f, round)
		t.Logf("round %d: %d trees read reusing the earlier bitmaps, %d without", round, reusing, walked)
		if round == 1 && reusing*4 > walked {
			t.Errorf("trees read reusing the earlier bitmaps: %d; want at most a quarter of the %d read without them", reusing, walked)
		}
	}
}

// repackReusing adds two commits to main, packs everything into a new
// pack, builds its bitmaps reusing those of the repository's bitmapped
// pack, checks them, writes them and removes the earlier pack. It
// returns how many trees were read building them, and how many without
// the earlier bitmaps.
func repackReusing(t *testing.T, dir string, f oid.Format, round int) (reusing, walked int) {
	t.Helper()
	for i := range 2 {
		c := strings.TrimSpace(gittest.Git(t, dir, "commit-tree", "-p", "main", "-m", fmt.Sprintf("new %d.%d", round, i), "main~5^{tree}"))
		gittest.Git(t, dir, "update-ref", "refs/heads/main", c)
	}
	gittest.Git(t, dir, "-c", "repack.writeBitmaps=false", "repack", "-aq")
	old := walktest.LoadPack(t, dir, f, walktest.HasBitmap)
	p := walktest.LoadPack(t, dir, f, func(idx string) bool { return !walktest.HasBitmap(idx) })
	x, err := bitmap.Open(old.Base+".bitmap", f, old)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer x.Close()
	reused, err := walk.NewReused(x, p)
	if err != nil {
		t.Fatalf("NewReused: %v", err)
	}
	var tips []oid.ID
	for _, line := range strings.Split(strings.TrimSpace(gittest.Git(t, dir, "for-each-ref", "--format=%(objectname)")), "\n") {
		id, _ := oid.ParseHex(f, line)
		tips = append(tips, id)
	}
	store := &countingStore{Store: walktest.LoadStore(t, dir, f)}
	w := &walk.Walker{Store: store, Format: f}
	all, err := w.BuildBitmaps(context.Background(), tips, p)
	if err != nil {
		t.Fatalf("BuildBitmaps: %v", err)
	}
	known := &walk.Known{Types: all.Types, NameHashes: all.NameHashes}
	store.trees = 0
	if _, err := w.BuildBitmapsKnown(context.Background(), tips, p, known, nil); err != nil {
		t.Fatalf("BuildBitmapsKnown: %v", err)
	}
	walked = store.trees
	store.trees = 0
	bms, err := w.BuildBitmapsKnown(context.Background(), tips, p, known, reused)
	if err != nil {
		t.Fatalf("BuildBitmapsKnown reusing: %v", err)
	}
	reusing = store.trees
	selected := make(map[oid.ID]bool)
	for _, e := range bms.Entries {
		selected[e.Commit] = true
		if want := reachable(t, dir, f, p, e.Commit.String()); !e.Bitmap.Equal(want) {
			t.Errorf("bitmap of %v: %d bits; git rev-list --objects lists %d", e.Commit, e.Bitmap.Count(), want.Count())
		}
	}
	x.Commits(func(id oid.ID) bool {
		if !selected[id] {
			t.Errorf("commit %v has an earlier bitmap but none now", id)
		}
		return true
	})
	var buf bytes.Buffer
	if err := bitmap.Write(&buf, f, &bitmap.WriteOptions{Pack: p, Types: bms.Types, NameHashes: bms.NameHashes}, bms.Entries); err != nil {
		t.Fatalf("Write: %v", err)
	}
	for _, ext := range []string{".bitmap", ".pack", ".idx", ".rev"} {
		os.Remove(old.Base + ext)
	}
	if err := os.WriteFile(p.Base+".bitmap", buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("git", "rev-list", "--test-bitmap", "main")
	cmd.Dir, cmd.Env = dir, gittest.Env(t)
	if out, err := cmd.CombinedOutput(); err != nil || !bytes.Contains(out, []byte("OK!")) {
		t.Errorf("git rev-list --test-bitmap main: %v\n%s", err, out)
	}
	return reusing, walked
}
