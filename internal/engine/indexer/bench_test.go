package indexer

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/gittest"
)

// benchPack generates a repository of about 60k objects, repacks it with
// deltas and returns the repository and the pack.
//
// GOTD_INDEXER_REPO names a repository to reuse (generated if missing),
// to save the generation time across runs.
func benchPack(b testing.TB) (dir string, p []byte) {
	b.Helper()
	if dir = os.Getenv("GOTD_INDEXER_REPO"); dir != "" {
		if packs, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "*.pack")); len(packs) == 1 {
			return dir, readFile(b, packs[0])
		}
		gittest.Git(b, "", "-c", "init.defaultBranch=main", "init", "-q", "--bare", dir)
	} else {
		dir = gittest.InitBare(b, "sha1")
	}
	gittest.Generate(b, dir, gittest.History{Commits: 8000, Branches: 4, Files: 40})
	gittest.Git(b, dir, "repack", "-adq")
	packs, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "*.pack"))
	if len(packs) != 1 {
		b.Fatalf("got %d packs; want 1", len(packs))
	}
	return dir, readFile(b, packs[0])
}

// BenchmarkIndex measures Index with one and two threads against git
// index-pack (with one and two threads) on the same pack:
//
//	go test -run='^$' -bench=Index -benchtime=3x ./internal/engine/indexer
func BenchmarkIndex(b *testing.B) {
	dir, p := benchPack(b)
	count := uint32(p[8])<<24 | uint32(p[9])<<16 | uint32(p[10])<<8 | uint32(p[11])
	b.Logf("pack: %d objects, %d bytes", count, len(p))
	for _, threads := range []int{1, 2} {
		b.Run("gotd/threads="+itoa(threads), func(b *testing.B) {
			b.SetBytes(int64(len(p)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				out := b.TempDir()
				if _, err := Index(context.Background(), bytes.NewReader(p), Options{Format: oid.SHA1, Dir: out, Threads: threads, WriteRev: true}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("git/threads="+itoa(threads), func(b *testing.B) {
			b.SetBytes(int64(len(p)))
			for i := 0; i < b.N; i++ {
				out := b.TempDir()
				cmd := exec.Command("git", "index-pack", "--stdin", "--rev-index", "--threads="+itoa(threads), "--fsck-objects")
				cmd.Dir = dir
				cmd.Env = append(gittest.Env(b), "GIT_OBJECT_DIRECTORY="+out)
				os.MkdirAll(filepath.Join(out, "pack"), 0o755)
				cmd.Stdin = bytes.NewReader(p)
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("git index-pack: %v: %s", err, out)
				}
			}
		})
	}
}

// TestIndexScaling reports the time to index a generated pack of about
// 60k objects with one and two threads, and git index-pack's time on the
// same pack (best of three each). It asserts nothing about time (see
// DESIGN.md, Tests) and runs only when GOTD_INDEXER_SCALING is set.
func TestIndexScaling(t *testing.T) {
	if testing.Short() || os.Getenv("GOTD_INDEXER_SCALING") == "" {
		t.Skip("set GOTD_INDEXER_SCALING=1 to measure")
	}
	dir, p := benchPack(t)
	count := uint32(p[8])<<24 | uint32(p[9])<<16 | uint32(p[10])<<8 | uint32(p[11])
	t.Logf("pack: %d objects, %d bytes, %d CPUs", count, len(p), runtime.NumCPU())
	best := func(run func()) time.Duration {
		var d time.Duration
		for i := 0; i < 3; i++ {
			start := time.Now()
			run()
			if e := time.Since(start); i == 0 || e < d {
				d = e
			}
		}
		return d
	}
	for _, threads := range []int{1, 2} {
		for _, fsck := range []bool{false, true} {
			opts := Options{Format: oid.SHA1, Threads: threads, WriteRev: true}
			gitArgs := []string{"index-pack", "--stdin", "--rev-index", "--threads=" + itoa(threads)}
			if fsck {
				opts.Check = func(typ object.Type, id oid.ID, data []byte) error {
					return object.Check(oid.SHA1, typ, data)
				}
				gitArgs = append(gitArgs, "--strict")
			}
			ours := best(func() {
				opts.Dir = t.TempDir()
				if _, err := Index(context.Background(), bytes.NewReader(p), opts); err != nil {
					t.Fatal(err)
				}
			})
			theirs := best(func() {
				out := t.TempDir()
				os.MkdirAll(filepath.Join(out, "pack"), 0o755)
				cmd := exec.Command("git", gitArgs...)
				cmd.Dir = dir
				cmd.Env = append(gittest.Env(t), "GIT_OBJECT_DIRECTORY="+out)
				cmd.Stdin = bytes.NewReader(p)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("git index-pack: %v: %s", err, out)
				}
			})
			t.Logf("threads=%d fsck=%v: gotd %v, git index-pack %v (ratio %.2f)", threads, fsck, ours, theirs, float64(ours)/float64(theirs))
		}
	}
}

func itoa(n int) string { return string(rune('0' + n)) }
