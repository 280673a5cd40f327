package upkeep

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"gotd/internal/git/oid"
	"gotd/internal/git/repo"
	"gotd/internal/gittest"
)

func open(t *testing.T, dir string) *repo.Repo {
	t.Helper()
	r, err := repo.Open(dir, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func has(t *testing.T, dir, id string) bool {
	_, err := gittest.Run(t, dir, nil, "cat-file", "-e", id)
	return err == nil
}

// TestQuarantineKeepsBases: a push in flight whose pack names an
// unreachable, old commit as parent keeps it, with All too, while other
// unreachable objects go; with All, Repack refuses to remove anything
// while a push of C Git's (which takes no prune lock) lasts.
func TestQuarantineKeepsBases(t *testing.T) {
	dir := gittest.InitBare(t, "sha1")
	gittest.Generate(t, dir, gittest.History{Commits: 5})
	tree := strings.TrimSpace(gittest.Git(t, dir, "rev-parse", "main^{tree}"))
	base := strings.TrimSpace(gittest.Git(t, dir, "commit-tree", tree, "-p", "main", "-m", "unreachable base"))
	child := strings.TrimSpace(gittest.Git(t, dir, "commit-tree", tree, "-p", base, "-m", "pushed"))
	junk := strings.TrimSpace(gittest.GitInput(t, dir, []byte("junk\n"), "hash-object", "-w", "--stdin"))
	q := filepath.Join(dir, "objects", "incoming-gotd-test")
	if err := os.Mkdir(q, 0o755); err != nil {
		t.Fatal(err)
	}
	// The push's process holds its quarantine, as receive does.
	hold, err := os.Open(q)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	if err := unix.Flock(int(hold.Fd()), unix.LOCK_SH); err != nil {
		t.Fatal(err)
	}
	gittest.GitInput(t, dir, []byte(child+"\n"), "pack-objects", "-q", filepath.Join(q, "pack"))
	if err := os.Remove(filepath.Join(dir, "objects", child[:2], child[2:])); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-30 * 24 * time.Hour)
	if err := os.Chtimes(filepath.Join(dir, "objects", base[:2], base[2:]), old, old); err != nil {
		t.Fatal(err)
	}

	cgit := filepath.Join(dir, "objects", "incoming-cgit")
	if err := os.Mkdir(cgit, 0o755); err != nil {
		t.Fatal(err)
	}
	_, err = Repack(context.Background(), open(t, dir), Options{All: true, Settle: 200 * time.Millisecond})
	if !errors.Is(err, ErrBusy) {
		t.Errorf("Repack with All during a push of C Git's: %v; want ErrBusy", err)
	}
	if !has(t, dir, base) || !has(t, dir, junk) {
		t.Fatalf("Repack with All removed objects during a push of C Git's")
	}
	os.Remove(cgit)
	if _, err := Repack(context.Background(), open(t, dir), Options{All: true, Settle: 200 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if !has(t, dir, base) {
		t.Fatalf("Repack with All removed %s, the base of a push in flight", base)
	}
	if has(t, dir, junk) {
		t.Errorf("Repack with All kept %s, which nothing reaches", junk)
	}
	rep, err := Repack(context.Background(), open(t, dir), Options{PruneLoose: true, Settle: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if !has(t, dir, base) {
		t.Fatalf("Repack removed %s, the base of a push in flight", base)
	}
	for _, id := range rep.Pruned {
		if id.String() == base {
			t.Errorf("report lists %s as pruned", base)
		}
	}
	gittest.Git(t, dir, "fsck", "--full", "--strict", "--no-dangling")

	// The push's process died: its quarantine is left, unheld, and
	// counts for nothing; the base goes.
	hold.Close()
	if _, err := Repack(context.Background(), open(t, dir), Options{All: true}); err != nil {
		t.Fatal(err)
	}
	if has(t, dir, base) {
		t.Errorf("Repack with All kept unreachable objects once the push was over")
	}
	gittest.Git(t, dir, "fsck", "--full", "--strict", "--no-dangling")
}

// TestReaderKeepsOpenPacks: a reader that opened the repository before
// Repack removed its packs still reads every object afterwards.
func TestReaderKeepsOpenPacks(t *testing.T) {
	dir := gittest.InitBare(t, "sha1")
	gittest.Generate(t, dir, gittest.History{Commits: 20, Branches: 2, Files: 8})
	reader := open(t, dir)
	ids := gittest.Objects(t, dir)
	if _, err := Repack(context.Background(), open(t, dir), Options{}); err != nil {
		t.Fatal(err)
	}
	packs, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "pack-*.pack"))
	if len(packs) != 1 {
		t.Fatalf("packs: %v; want one", packs)
	}
	for _, h := range ids {
		id, err := oid.ParseHex(reader.Format, h)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := reader.ReadObject(id); err != nil {
			t.Errorf("reader opened before the repack: %v", err)
		}
	}
	// Again: the new pack holds the same objects and is kept.
	rep, err := Repack(context.Background(), open(t, dir), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(rep.Pack); err != nil {
		t.Errorf("second repack: %v", err)
	}
	gittest.Git(t, dir, "fsck", "--full", "--strict")
}

// TestStaleFilesOfCGit: a multi-pack-index (with its bitmap) and a
// commit-graph C Git wrote, which name what Repack removes, are
// removed, and objects/info/packs is rewritten, so that C Git's checks
// pass and a dumb-HTTP client finds the new pack.
func TestStaleFilesOfCGit(t *testing.T) {
	dir := gittest.InitBare(t, "sha1")
	gittest.Generate(t, dir, gittest.History{Commits: 10, Branches: 2})
	gittest.Git(t, dir, "repack", "-adq")
	gittest.Git(t, dir, "commit-graph", "write", "--reachable")
	gittest.Git(t, dir, "multi-pack-index", "write", "--bitmap")
	gittest.Git(t, dir, "update-server-info")
	topic := strings.TrimSpace(gittest.Git(t, dir, "rev-parse", "topic1"))
	gittest.Git(t, dir, "update-ref", "-d", "refs/heads/topic1")

	rep, err := Repack(context.Background(), open(t, dir), Options{All: true, PruneLoose: true})
	if err != nil {
		t.Fatal(err)
	}
	if has(t, dir, topic) {
		t.Errorf("Repack with All kept %s", topic)
	}
	gittest.Git(t, dir, "fsck", "--full", "--strict", "--no-dangling")
	gittest.Git(t, dir, "commit-graph", "verify")
	gittest.Git(t, dir, "multi-pack-index", "verify")
	if bms, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "*.bitmap")); len(bms) != 1 {
		t.Errorf("bitmaps: %v; want one", bms)
	}
	info, _ := os.ReadFile(filepath.Join(dir, "objects", "info", "packs"))
	if want := "P " + filepath.Base(rep.Pack) + "\n\n"; string(info) != want {
		t.Errorf("objects/info/packs: %q; want %q", info, want)
	}
}

// TestOneAtATime: while one process holds the upkeep lock, Repack
// refuses with ErrRunning and changes nothing; a dry run still reports.
func TestOneAtATime(t *testing.T) {
	dir := gittest.InitBare(t, "sha1")
	gittest.Generate(t, dir, gittest.History{Commits: 5})
	f, err := os.OpenFile(filepath.Join(dir, LockFile), os.O_RDONLY|os.O_CREATE, 0o444)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	before, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "*"))
	if _, err := Repack(context.Background(), open(t, dir), Options{}); !errors.Is(err, ErrRunning) {
		t.Errorf("Repack while another runs: %v; want ErrRunning", err)
	}
	after, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "*"))
	if strings.Join(after, " ") != strings.Join(before, " ") {
		t.Errorf("pack directory changed: %v; was %v", after, before)
	}
	if _, err := Repack(context.Background(), open(t, dir), Options{DryRun: true}); err != nil {
		t.Errorf("dry run while another runs: %v", err)
	}
	f.Close()
	if _, err := Repack(context.Background(), open(t, dir), Options{}); err != nil {
		t.Errorf("Repack once the lock is free: %v", err)
	}
}

// TestRepackBitmapForGit: Repack three times, from C Git's bitmapped
// pack and then from its own, with commits pushed in between (loose) and
// a branch deleted: each time one pack remains whose bitmap C Git's
// rev-list --test-bitmap accepts for every branch and whose bitmap
// counts what a walk counts, and git verify-pack accepts the pack.
func TestRepackBitmapForGit(t *testing.T) {
	dir := gittest.InitBare(t, "sha1")
	gittest.Generate(t, dir, gittest.History{Commits: 120, Branches: 3, Files: 12})
	gittest.Git(t, dir, "repack", "-adbq")
	for round := range 3 {
		tree := strings.TrimSpace(gittest.Git(t, dir, "rev-parse", "main~3^{tree}"))
		c := strings.TrimSpace(gittest.Git(t, dir, "commit-tree", tree, "-p", "main", "-m", "pushed"))
		gittest.Git(t, dir, "update-ref", "refs/heads/main", c)
		if round == 1 {
			gittest.Git(t, dir, "update-ref", "-d", "refs/heads/topic1")
		}
		if _, err := Repack(context.Background(), open(t, dir), Options{}); err != nil {
			t.Fatalf("round %d: Repack: %v", round, err)
		}
		packs, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "pack-*.pack"))
		bitmaps, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "pack-*.bitmap"))
		if len(packs) != 1 || len(bitmaps) != 1 {
			t.Fatalf("round %d: packs %v, bitmaps %v; want one of each", round, packs, bitmaps)
		}
		gittest.Git(t, dir, "verify-pack", strings.TrimSuffix(packs[0], ".pack")+".idx")
		for _, ref := range strings.Fields(gittest.Git(t, dir, "for-each-ref", "--format=%(refname)", "refs/heads")) {
			if _, err := gittest.Run(t, dir, nil, "rev-list", "--test-bitmap", ref); err != nil {
				t.Errorf("round %d: git rev-list --test-bitmap %s: %v", round, ref, err)
			}
		}
		want := gittest.Git(t, dir, "rev-list", "--count", "--objects", "--all")
		if got := gittest.Git(t, dir, "rev-list", "--use-bitmap-index", "--count", "--objects", "--all"); got != want {
			t.Errorf("round %d: objects counted with the bitmap %s; without %s", round, got, want)
		}
	}
}

// TestStaleWriterLocks: the commit-graph's and the multi-pack-index's
// lock files left by a writer that died an hour ago are removed by the
// next run, which then writes the commit-graph; a young one is left to
// its writer.
func TestStaleWriterLocks(t *testing.T) {
	dir := gittest.InitBare(t, "sha1")
	gittest.Generate(t, dir, gittest.History{Commits: 5})
	graphs := filepath.Join(dir, "objects", "info", "commit-graphs")
	if err := os.MkdirAll(graphs, 0o755); err != nil {
		t.Fatal(err)
	}
	locks := []string{filepath.Join(graphs, "commit-graph-chain.lock"), filepath.Join(dir, "objects", "pack", "multi-pack-index.lock")}
	for _, l := range locks {
		if err := os.WriteFile(l, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Young: left alone, and the commit-graph is not written.
	Repack(context.Background(), open(t, dir), Options{})
	for _, l := range locks {
		if _, err := os.Stat(l); err != nil {
			t.Errorf("young lock %s removed: %v", l, err)
		}
	}
	if _, err := os.Stat(filepath.Join(graphs, "commit-graph-chain")); err == nil {
		t.Fatal("commit-graph written under another writer's lock")
	}
	old := time.Now().Add(-2 * staleLockAge)
	for _, l := range locks {
		if err := os.Chtimes(l, old, old); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Repack(context.Background(), open(t, dir), Options{}); err != nil {
		t.Fatalf("Repack after a dead writer: %v", err)
	}
	for _, l := range locks {
		if _, err := os.Stat(l); err == nil {
			t.Errorf("stale lock %s left", l)
		}
	}
	if _, err := os.Stat(filepath.Join(graphs, "commit-graph-chain")); err != nil {
		t.Errorf("no commit-graph after the stale lock went: %v", err)
	}
	gittest.Git(t, dir, "commit-graph", "verify")
}
