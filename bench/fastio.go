package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// The "fast-export" and "fast-import" scenarios time the repository's
// history written as a fast-import stream, and that stream read back
// into an empty repository, by gotadmin and by C Git, each a lone
// process on the same input: wall time, CPU (user+system) and peak RSS
// from the kernel's accounting of the reaped process.

// toolRun is one measured run of a command.
type toolRun struct {
	wall, cpu time.Duration
	rss       int64 // KiB
}

// runTool runs name with args in dir, standard input from in (if not
// ""), standard output to out (if not "", else discarded).
func runTool(dir, in, out, name string, args ...string) toolRun {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = gitEnv()
	if in != "" {
		f, err := os.Open(in)
		check(err)
		defer f.Close()
		cmd.Stdin = f
	}
	if out != "" {
		f, err := os.Create(out)
		check(err)
		defer f.Close()
		cmd.Stdout = f
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		fatalf("%s %v: %v\n%s", name, args, err, stderr.String())
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return toolRun{wall: time.Since(start), cpu: cpuOf(cmd), rss: ru.Maxrss}
}

// medianRun runs f n times and returns the median of each figure.
func medianRun(n int, f func() toolRun) toolRun {
	var rs []toolRun
	for range n {
		rs = append(rs, f())
	}
	pick := func(get func(toolRun) int64) int64 {
		v := make([]int64, len(rs))
		for i, r := range rs {
			v[i] = get(r)
		}
		sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
		return v[len(v)/2]
	}
	return toolRun{
		wall: time.Duration(pick(func(r toolRun) int64 { return int64(r.wall) })),
		cpu:  time.Duration(pick(func(r toolRun) int64 { return int64(r.cpu) })),
		rss:  pick(func(r toolRun) int64 { return r.rss }),
	}
}

// printFastIO runs the fast-export and fast-import scenarios on src,
// those pick matches.
func printFastIO(work, src string, pick func(string) bool) {
	gotadmin := buildGotadmin(work)
	dir := filepath.Join(work, "fastio")
	check(os.MkdirAll(dir, 0o755))
	defer os.RemoveAll(dir)
	stream := filepath.Join(dir, "stream")
	// C Git's exporter needs to be told to keep encodings and
	// signatures, and to drop tags of trees, which it cannot write.
	gitExport := []string{"fast-export", "--all", "--signed-tags=verbatim", "--reencode=no", "--tag-of-filtered-object=drop"}
	fmt.Println()
	fmt.Printf("%-26s %-10s %9s %9s %10s %22s\n", "scenario", "tool", "wall", "cpu", "peak mem", "gotd/C Git cpu rss wall")
	line := func(name string, g, c toolRun) {
		fmt.Printf("%-26s %-10s %9s %9s %8.1fMB\n", name, "git", c.wall.Round(time.Millisecond), c.cpu.Round(time.Millisecond), float64(c.rss)/1024)
		fmt.Printf("%-26s %-10s %9s %9s %8.1fMB %6.2fx %5.2fx %5.2fx\n", name, "gotadmin", g.wall.Round(time.Millisecond), g.cpu.Round(time.Millisecond), float64(g.rss)/1024,
			div(g.cpu.Seconds(), c.cpu.Seconds()), div(float64(g.rss), float64(c.rss)), div(g.wall.Seconds(), c.wall.Seconds()))
	}
	if pick("fast-export") {
		c := medianRun(*runs, func() toolRun { return runTool(src, "", os.DevNull, "git", gitExport...) })
		g := medianRun(*runs, func() toolRun { return runTool("", "", os.DevNull, gotadmin, "fast-export", "-q", "-r", src) })
		line("fast-export", g, c)
	}
	if pick("fast-import") {
		// Both import the stream C Git's exporter writes.
		runTool(src, "", stream, "git", gitExport...)
		var want string
		c := medianRun(*runs, func() toolRun {
			dst := filepath.Join(dir, "git.git")
			check(os.RemoveAll(dst))
			git("", "init", "-q", "--bare", dst)
			r := runTool(dst, stream, "", "git", "fast-import", "--quiet")
			want = git(dst, "for-each-ref")
			return r
		})
		g := medianRun(*runs, func() toolRun {
			dst := filepath.Join(dir, "gotadmin.git")
			check(os.RemoveAll(dst))
			git("", "init", "-q", "--bare", dst)
			r := runTool("", stream, "", gotadmin, "fast-import", "-q", "-r", dst)
			if got := git(dst, "for-each-ref"); got != want {
				fatalf("fast-import: gotadmin's references differ from git fast-import's")
			}
			return r
		})
		line("fast-import", g, c)
	}
}
