package packer

import (
	"context"
	"io"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"gotd/internal/gittest"
)

// TestPackSizeVsGit compares the pack written with new deltas (every
// object loose) with the one `git pack-objects` writes for the same
// object list, window and depth.
func TestPackSizeVsGit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a repository of a few thousand objects")
	}
	for _, format := range []string{"sha1", "sha256"} {
		t.Run(format, func(t *testing.T) {
			f := formatOf(format)
			dir := newRepo(t, format, gittest.History{Commits: 500, Branches: 5, Files: 60}, true)
			list := gittest.Git(t, dir, "rev-list", "--objects", "--all")
			gitPack := gittest.GitInput(t, dir, []byte(list), "pack-objects", "--stdout", "-q", "--window=10", "--depth=50")
			objs := listObjects(t, dir, f, "--all")
			src := newTestSource(t, dir, f)
			start := time.Now()
			data := writePack(t, src, objs, Options{Format: f, OfsDelta: true, ReuseDeltas: true})
			elapsed := time.Since(start)
			ratio := float64(len(data)) / float64(len(gitPack))
			t.Logf("%d objects: got %d bytes in %v; git pack-objects %d bytes; ratio %.3f", len(objs), len(data), elapsed, len(gitPack), ratio)
			if ratio > 1.10 {
				t.Errorf("got a pack %.1f%% larger than git's; want at most 10%%", 100*(ratio-1))
			}
			receive(t, format, dir, "", data, false)
		})
	}
}

// BenchmarkWriteReuse writes every object of a fully packed repository,
// which copies every entry from the stored pack.
func BenchmarkWriteReuse(b *testing.B) {
	dir := newRepo(b, "sha1", gittest.History{Commits: 2000, Branches: 5, Files: 100}, false)
	gittest.Git(b, dir, "repack", "-q", "-adf")
	objs := listObjects(b, dir, formatOf("sha1"), "--all")
	src := newTestSource(b, dir, formatOf("sha1"))
	opts := Options{Format: formatOf("sha1"), OfsDelta: true, ReuseDeltas: true}
	b.SetBytes(src.packs[0].Size())
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Write(context.Background(), io.Discard, src, objs, opts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(objs)), "objects")
}

// TestReuseCPUVsGit logs the CPU time of Write with full reuse of a
// fully packed repository next to that of `git pack-objects --stdout`
// for the same object list. It asserts nothing about time; it is a
// figure to compare.
func TestReuseCPUVsGit(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement")
	}
	dir := newRepo(t, "sha1", gittest.History{Commits: 2000, Branches: 5, Files: 100}, false)
	gittest.Git(t, dir, "repack", "-q", "-adf")
	list := gittest.Git(t, dir, "rev-list", "--objects", "--all")
	objs := listObjects(t, dir, formatOf("sha1"), "--all")
	src := newTestSource(t, dir, formatOf("sha1"))
	opts := Options{Format: formatOf("sha1"), OfsDelta: true, ReuseDeltas: true}

	const runs = 5
	var gitCPU time.Duration
	for range runs {
		cmd := exec.Command("git", "pack-objects", "--stdout", "-q", "--delta-base-offset")
		cmd.Dir = dir
		cmd.Env = gittest.Env(t)
		cmd.Stdin = strings.NewReader(list)
		cmd.Stdout = io.Discard
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		gitCPU += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	runtime.GC()
	before := cpuTime(t)
	for range runs {
		if _, err := Write(context.Background(), io.Discard, src, objs, opts); err != nil {
			t.Fatal(err)
		}
	}
	ours := cpuTime(t) - before
	t.Logf("%d objects, %d-byte pack: Write %v CPU per run, git pack-objects %v (process total)",
		len(objs), src.packs[0].Size(), ours/runs, gitCPU/runs)
}

func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
