package indexer

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
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
	// best runs run three times and returns the shortest wall time and
	// the CPU time (user+system) of that run; run returns the CPU time it
	// used in child processes, if any.
	best := func(run func() time.Duration) (wall, cpu time.Duration) {
		for i := 0; i < 3; i++ {
			before := selfCPU()
			start := time.Now()
			child := run()
			w, c := time.Since(start), selfCPU()-before+child
			if i == 0 || w < wall {
				wall, cpu = w, c
			}
		}
		return wall, cpu
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
			ours, oursCPU := best(func() time.Duration {
				opts.Dir = t.TempDir()
				if _, err := Index(context.Background(), bytes.NewReader(p), opts); err != nil {
					t.Fatal(err)
				}
				return 0
			})
			theirs, theirsCPU := best(func() time.Duration {
				out := t.TempDir()
				os.MkdirAll(filepath.Join(out, "pack"), 0o755)
				cmd := exec.Command("git", gitArgs...)
				cmd.Dir = dir
				cmd.Env = append(gittest.Env(t), "GIT_OBJECT_DIRECTORY="+out)
				cmd.Stdin = bytes.NewReader(p)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("git index-pack: %v: %s", err, out)
				}
				return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
			})
			t.Logf("threads=%d fsck=%-5v: gotd %v (cpu %v), git index-pack %v (cpu %v): wall ratio %.2f",
				threads, fsck, ours.Round(time.Millisecond), oursCPU.Round(time.Millisecond),
				theirs.Round(time.Millisecond), theirsCPU.Round(time.Millisecond), float64(ours)/float64(theirs))
		}
	}
}

// selfCPU returns the CPU time this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func itoa(n int) string { return string(rune('0' + n)) }
