// Command bench measures gotd against C Git on the same machine in the
// same run (make bench). It takes a repository (-repo) or generates
// one, serves it over git:// with gotd and with `git daemon` in
// alternation, drives the real git client through each scenario, and
// prints per scenario and server the medians of several runs: client
// wall time, the server's CPU time (user+system of all its processes,
// from the kernel's accounting of the reaped process tree, start-up of
// an idle server subtracted), the peak memory of all the server's
// processes together, the bytes received, and gotd's ratios to C Git.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var (
	repoFlag = flag.String("repo", "", "bare repository to serve (default: generate one)")
	runs     = flag.Int("runs", 3, "runs of each scenario per server; medians are printed")
	commits  = flag.Int("commits", 3000, "commits of the generated repository")
	keep     = flag.Bool("keep", false, "keep the work directory")
)

func main() {
	flag.Parse()
	log.SetFlags(0)
	work, err := os.MkdirTemp("", "gotd-bench-")
	check(err)
	os.Chmod(work, 0o755)
	if !*keep {
		defer os.RemoveAll(work)
	}
	bin := filepath.Join(work, "bin")
	build := exec.Command("go", "build", "-o", bin+"/", "./cmd/gotd", "./cmd/gotctl")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	if err != nil {
		log.Fatalf("build: %v\n%s", err, out)
	}

	src := *repoFlag
	if src == "" {
		src = filepath.Join(work, "generated.git")
		generate(src, *commits)
	}
	// Two copies: one with a reachability bitmap, one without.
	repos := filepath.Join(work, "repos")
	for _, c := range []struct{ name, bitmap string }{{"bitmap", "true"}, {"nobitmap", "false"}} {
		dst := filepath.Join(repos, c.name+".git")
		git("", "clone", "-q", "--bare", "--no-local", src, dst)
		// Partial clones need the filter allowed, by both servers.
		git(dst, "config", "uploadpack.allowFilter", "true")
		git(dst, "-c", "repack.writeBitmaps="+c.bitmap, "-c", "pack.writeBitmapHashCache=true", "repack", "-adq")
		if c.bitmap == "false" {
			matches, _ := filepath.Glob(filepath.Join(dst, "objects", "pack", "*.bitmap"))
			for _, m := range matches {
				os.Remove(m)
			}
		}
	}
	exec.Command("chmod", "-R", "a+rX", repos).Run()
	objects := strings.TrimSpace(git(filepath.Join(repos, "bitmap.git"), "rev-list", "--objects", "--all", "--count"))
	fmt.Printf("repository: %s, %s objects\n\n", src, objects)

	servers := []*server{newGotd(work, bin, repos), newGitDaemon(work, repos)}
	scenarios := []scenario{
		{"clone v0, bitmap", "bitmap", []string{"-c", "protocol.version=0", "clone", "-q", "--bare"}},
		{"clone v2, bitmap", "bitmap", []string{"-c", "protocol.version=2", "clone", "-q", "--bare"}},
		{"clone v0, no bitmap", "nobitmap", []string{"-c", "protocol.version=0", "clone", "-q", "--bare"}},
		{"clone v2, no bitmap", "nobitmap", []string{"-c", "protocol.version=2", "clone", "-q", "--bare"}},
		{"clone of one branch", "nobitmap", []string{"clone", "-q", "--bare", "--single-branch", "--branch", "main"}},
		{"shallow clone --depth 1", "nobitmap", []string{"clone", "-q", "--bare", "--depth", "1"}},
		{"partial clone blob:none", "nobitmap", []string{"clone", "-q", "--bare", "--filter=blob:none"}},
	}
	fmt.Printf("%-26s %-10s %9s %9s %10s %12s %22s\n", "scenario", "server", "wall", "cpu", "peak RSS", "bytes", "gotd/C Git cpu rss wall")
	for _, sc := range scenarios {
		var res []result
		for _, s := range servers {
			res = append(res, median(s, sc, *runs, work))
		}
		for i, r := range res {
			ratio := ""
			if i == 0 {
				c := res[1]
				ratio = fmt.Sprintf("%6.2fx %5.2fx %5.2fx", div(r.cpu.Seconds(), c.cpu.Seconds()), div(float64(r.rss), float64(c.rss)), div(r.wall.Seconds(), c.wall.Seconds()))
			}
			fmt.Printf("%-26s %-10s %9s %9s %8.1fMB %12d %22s\n", sc.name, servers[i].name,
				r.wall.Round(time.Millisecond), r.cpu.Round(time.Millisecond), float64(r.rss)/1024, r.bytes, ratio)
		}
	}
	// Connections per second: sequential ls-remote.
	fmt.Println()
	var rates []float64
	for _, s := range servers {
		rates = append(rates, lsRemoteRate(s, 100))
		fmt.Printf("%-26s %-10s %9.1f connections/s\n", "ls-remote over git://", s.name, rates[len(rates)-1])
	}
	fmt.Printf("%-26s %-10s %9.2fx\n", "", "gotd/C Git", div(rates[0], rates[1]))
}

// scenario is one client command against one of the repositories.
type scenario struct {
	name string
	repo string
	args []string // git arguments before the URL
}

// result is one run's figures.
type result struct {
	wall, cpu time.Duration
	rss       int // KiB, all the server's processes together
	bytes     int64
}

// server is a Git server the benchmark starts and stops for each run.
type server struct {
	name  string
	port  int
	start func() *exec.Cmd
	stop  func(*exec.Cmd)
	idle  time.Duration // CPU of starting and stopping with no client
}

// newGotd is gotd serving the repositories over git://.
func newGotd(work, bin, repos string) *server {
	port := freePort()
	user := os.Getenv("USER")
	if os.Geteuid() == 0 {
		user = "nobody"
	} else if user == "" {
		out, _ := exec.Command("id", "-un").Output()
		user = strings.TrimSpace(string(out))
	}
	conf := filepath.Join(work, "gotd.conf")
	sock := filepath.Join(work, "gotd.sock")
	var b strings.Builder
	fmt.Fprintf(&b, "listen on %q\nuser %s\nlisten git on 127.0.0.1 port %d\nconnection limit user anonymous 1024\n", sock, user, port)
	for _, name := range []string{"bitmap", "nobitmap"} {
		fmt.Fprintf(&b, "repository %q {\n\tpath %q\n\tpermit ro anonymous\n}\n", name, filepath.Join(repos, name+".git"))
	}
	check(os.WriteFile(conf, []byte(b.String()), 0o644))
	return &server{name: "gotd", port: port,
		start: func() *exec.Cmd {
			cmd := exec.Command(filepath.Join(bin, "gotd"), "-d", "-f", conf)
			cmd.Stderr = nil
			check(cmd.Start())
			waitPort(port)
			return cmd
		},
		stop: func(cmd *exec.Cmd) {
			exec.Command(filepath.Join(bin, "gotctl"), "-f", sock, "stop").Run()
			cmd.Wait()
		},
	}
}

// newGitDaemon is C Git's git daemon serving the same repositories.
func newGitDaemon(work, repos string) *server {
	port := freePort()
	return &server{name: "git daemon", port: port,
		start: func() *exec.Cmd {
			cmd := exec.Command("git", "daemon", "--export-all", "--reuseaddr", "--base-path="+repos,
				"--listen=127.0.0.1", fmt.Sprintf("--port=%d", port), "--max-connections=1024", repos)
			cmd.Env = append(os.Environ(), "GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=safe.directory", "GIT_CONFIG_VALUE_0=*")
			check(cmd.Start())
			waitPort(port)
			return cmd
		},
		stop: func(cmd *exec.Cmd) {
			time.Sleep(100 * time.Millisecond) // let it reap the finished upload-pack
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		},
	}
}

// cpuOf is the CPU time of a reaped process and its reaped descendants.
func cpuOf(cmd *exec.Cmd) time.Duration {
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// run runs a scenario once against s.
func run(s *server, sc scenario, work string) result {
	if s.idle == 0 {
		var idle []time.Duration
		for range 3 {
			cmd := s.start()
			s.stop(cmd)
			idle = append(idle, cpuOf(cmd))
		}
		sort.Slice(idle, func(i, j int) bool { return idle[i] < idle[j] })
		s.idle = idle[1]
	}
	dest := filepath.Join(work, "clone.git")
	os.RemoveAll(dest)
	cmd := s.start()
	stop := make(chan struct{})
	peak := make(chan int)
	go func() { peak <- sampleRSS(cmd.Process.Pid, stop) }()
	url := fmt.Sprintf("git://127.0.0.1:%d/%s", s.port, sc.repo)
	begin := time.Now()
	git("", append(sc.args, url, dest)...)
	wall := time.Since(begin)
	close(stop)
	rss := <-peak
	s.stop(cmd)
	var size int64
	packs, _ := filepath.Glob(filepath.Join(dest, "objects", "pack", "*.pack"))
	for _, p := range packs {
		if fi, err := os.Stat(p); err == nil {
			size += fi.Size()
		}
	}
	return result{wall: wall, cpu: max(cpuOf(cmd)-s.idle, 0), rss: rss, bytes: size}
}

// median runs a scenario n times and returns the median of each figure.
func median(s *server, sc scenario, n int, work string) result {
	var rs []result
	for range n {
		rs = append(rs, run(s, sc, work))
	}
	mid := func(less func(a, b result) bool) result {
		sorted := append([]result(nil), rs...)
		sort.Slice(sorted, func(i, j int) bool { return less(sorted[i], sorted[j]) })
		return sorted[len(sorted)/2]
	}
	return result{
		wall:  mid(func(a, b result) bool { return a.wall < b.wall }).wall,
		cpu:   mid(func(a, b result) bool { return a.cpu < b.cpu }).cpu,
		rss:   mid(func(a, b result) bool { return a.rss < b.rss }).rss,
		bytes: mid(func(a, b result) bool { return a.bytes < b.bytes }).bytes,
	}
}

// lsRemoteRate runs n ls-remote commands one after the other and
// returns connections per second.
func lsRemoteRate(s *server, n int) float64 {
	cmd := s.start()
	defer s.stop(cmd)
	url := fmt.Sprintf("git://127.0.0.1:%d/bitmap", s.port)
	begin := time.Now()
	for range n {
		git("", "ls-remote", url)
	}
	return float64(n) / time.Since(begin).Seconds()
}

// sampleRSS sums the resident memory of root's process tree every 10
// ms until stop closes, and returns the peak in KiB.
func sampleRSS(root int, stop chan struct{}) int {
	peak := 0
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		total := 0
		for _, pid := range tree(root) {
			total += statusField(pid, "VmRSS:")
		}
		peak = max(peak, total)
		select {
		case <-stop:
			return peak
		case <-tick.C:
		}
	}
}

// tree lists root and its descendants (Linux /proc; empty elsewhere).
func tree(root int) []int {
	kids := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		kids[statusField(pid, "PPid:")] = append(kids[statusField(pid, "PPid:")], pid)
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, kids[out[i]]...)
	}
	return out
}

// statusField reads a number from /proc/pid/status.
func statusField(pid int, field string) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	_, after, ok := bytes.Cut(b, []byte("\n"+field))
	if !ok {
		return 0
	}
	f := strings.Fields(string(after))
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(f[0])
	return n
}

// generate writes a synthetic history with git fast-import: commits
// each changing a few of 400 files, which grow and change so that
// deltas form, and a tag every 100 commits.
func generate(dir string, n int) {
	git("", "init", "-q", "--bare", "-b", "main", dir)
	rng := rand.New(rand.NewSource(1))
	files := make([][]string, 400)
	var in bytes.Buffer
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&in, "commit refs/heads/main\nmark :%d\ncommitter Bench <bench@example.com> %d +0000\n", i, 1700000000+i*60)
		msg := fmt.Sprintf("change %d", i)
		fmt.Fprintf(&in, "data %d\n%s\n", len(msg), msg)
		for range 1 + rng.Intn(4) {
			f := rng.Intn(len(files))
			files[f] = append(files[f], fmt.Sprintf("line %d of commit %d: %x", len(files[f]), i, rng.Int63()))
			if len(files[f]) > 200 {
				files[f] = files[f][50:]
			}
			body := strings.Join(files[f], "\n") + "\n"
			fmt.Fprintf(&in, "M 644 inline dir%d/file%d.txt\ndata %d\n%s\n", f%20, f, len(body), body)
		}
		if i%100 == 0 {
			fmt.Fprintf(&in, "tag v%d\nfrom :%d\ntagger Bench <bench@example.com> %d +0000\ndata 4\ntag\n", i/100, i, 1700000000+i*60)
		}
	}
	cmd := exec.Command("git", "fast-import", "--quiet")
	cmd.Dir = dir
	cmd.Stdin = &in
	out, err := cmd.CombinedOutput()
	if err != nil {
		log.Fatalf("fast-import: %v\n%s", err, out)
	}
}

// git runs git and returns its output; failure ends the benchmark.
func git(dir string, args ...string) string {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=safe.directory", "GIT_CONFIG_VALUE_0=*")
	out, err := cmd.CombinedOutput()
	if err != nil {
		log.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitPort(port int) {
	for range 400 {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	log.Fatalf("nothing listens on port %d", port)
}

func div(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
