package main

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The "mirror" scenarios time the client side of a pull mirror against
// C Git's, all fetching from C Git's git daemon on loopback, from an
// upstream that is a copy of the -repo repository (its packs linked,
// never written): the initial mirror (against git clone --mirror), a
// sync bringing 1 and one bringing 100 new commits, and one bringing
// nothing (against git fetch --prune in the mirror C Git made).
//
// Each is measured twice on gotd's side. "gotadmin" runs the engine a
// sync runs (remote.Fetch: the same negotiation, indexer, object
// checks and connectivity check) as one process, whose CPU the kernel
// accounts for when it is reaped, as it does for git and its children;
// the peak memory of either is that of its process tree, sampled every
// 10 ms (proportional set size). "gotd roles" is gotd itself syncing a
// repository configured with mirror from, on gotctl sync (the initial
// mirror is the sync gotd starts with, timed from gotd's start): the
// CPU of the processes a sync starts (fetch and session_write, reaped
// by gotd's parent, whose own CPU in the meantime is counted too), and
// the peak of their memory together, sampled the same way (a sync of a
// few milliseconds may be missed).

// mirrorScenarios are the names of the mirror scenarios.
var mirrorScenarios = []string{"mirror initial", "mirror sync 1 commit", "mirror sync 100 commits", "mirror sync nothing new"}

// printMirror runs the mirror scenarios that pick matches on a copy of
// the repository src.
func printMirror(work, src string, pick func(string) bool) {
	picked := false
	for _, name := range mirrorScenarios {
		picked = picked || pick(name)
	}
	if !picked {
		return
	}
	bin := build(filepath.Join(work, "bin-mirror"), "gotadmin", "gotd", "gotctl")
	gotadmin := filepath.Join(bin, "gotadmin")
	dir := filepath.Join(work, "mirror")
	check(os.MkdirAll(dir, 0o755))
	defer os.RemoveAll(dir)
	// The upstream: a local clone of src, whose packs are hard links
	// (git never writes a pack in place), that gains commits.
	up := filepath.Join(dir, "up.git")
	git("", "clone", "-q", "--bare", src, up)
	branch := strings.TrimSpace(git(up, "symbolic-ref", "HEAD"))
	gd := newGitDaemon(dir)
	daemon := gd.start()
	defer gd.stop(daemon)
	url := gd.url("up")
	gitMirror, gotMirror := filepath.Join(dir, "git.git"), filepath.Join(dir, "gotadmin.git")
	gd2 := newMirrorGotd(work, bin, filepath.Join(dir, "gotd.git"), url)

	fmt.Println()
	fmt.Printf("%-26s %-10s %9s %9s %10s %22s\n", "scenario", "tool", "wall", "cpu", "peak mem", "gotd/C Git cpu rss wall")
	line := func(name string, g, d, c toolRun) {
		fmt.Printf("%-26s %-10s %9s %9s %8.1fMB\n", name, "git", c.wall.Round(time.Millisecond), c.cpu.Round(time.Millisecond), float64(c.rss)/1024)
		for _, x := range []struct {
			tool string
			r    toolRun
		}{{"gotadmin", g}, {"gotd roles", d}} {
			fmt.Printf("%-26s %-10s %9s %9s %8.1fMB %6.2fx %5.2fx %5.2fx\n", name, x.tool, x.r.wall.Round(time.Millisecond), x.r.cpu.Round(time.Millisecond), float64(x.r.rss)/1024,
				div(x.r.cpu.Seconds(), c.cpu.Seconds()), div(float64(x.r.rss), float64(c.rss)), div(x.r.wall.Seconds(), c.wall.Seconds()))
		}
	}
	same := func(what string) {
		refs := func(d string) string {
			return git(d, "for-each-ref", "--format=%(objectname) %(refname)", "refs/heads", "refs/tags")
		}
		want := refs(up)
		for _, m := range []string{gitMirror, gotMirror, gd2.repo} {
			if refs(m) != want {
				fatalf("%s: the references of %s differ from the upstream's", what, m)
			}
		}
	}
	initial := func() (toolRun, toolRun, toolRun) {
		check(os.RemoveAll(gitMirror))
		check(os.RemoveAll(gotMirror))
		c := runSampled(dir, "git", "clone", "-q", "--mirror", url, gitMirror)
		g := runSampled(dir, gotadmin, "clone", "-q", url, gotMirror)
		return g, gd2.initial(), c
	}
	g, d, c := medianTriple(*runs, initial)
	same("mirror initial")
	if pick("mirror initial") {
		line("mirror initial", g, d, c)
	}
	// The syncs: gotd runs throughout, its sync measured on gotctl
	// sync.
	gd2.start()
	defer gd2.stop()
	gd2.gotctl("sync", "mirror") // the sync at start
	gd2.settle()
	gd2.quiesce()
	// C Git's mirror in its steady state, as served repositories are
	// (repos.fresh): without a commit-graph, the automatic maintenance
	// after its first fetch writes one for the whole history, 1.5 s of
	// CPU on git.git in the figure of a 1-commit sync.
	git(gitMirror, "commit-graph", "write", "--reachable", "--split", "--no-progress")
	sync := func() (toolRun, toolRun, toolRun) {
		c := runSampled(gitMirror, "git", "fetch", "-q", "--prune", "origin")
		g := runSampled("", gotadmin, "fetch", "-q", "-r", gotMirror)
		return g, gd2.sync(), c
	}
	seq := 0
	for _, n := range []int{1, 100} {
		name := fmt.Sprintf("mirror sync %d commit", n)
		if n > 1 {
			name += "s"
		}
		if !pick(name) {
			continue
		}
		g, d, c := medianTriple(*runs, func() (toolRun, toolRun, toolRun) {
			seq++
			grow(up, branch, n, seq)
			return sync()
		})
		same(name)
		line(name, g, d, c)
	}
	if pick("mirror sync nothing new") {
		g, d, c := medianTriple(*runs, sync)
		same("mirror sync nothing new")
		line("mirror sync nothing new", g, d, c)
	}
}

// grow adds n commits to branch of the repository up, each changing a
// file of growing content (new blobs and trees, which deltas can
// express), in one fast-import run; seq makes each run's commits new.
func grow(up, branch string, n, seq int) {
	var in bytes.Buffer
	rng := rand.New(rand.NewSource(int64(seq)))
	var lines []string
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&in, "commit %s\ncommitter Bench <bench@example.com> %d +0000\n", branch, 1800000000+seq*10000+i*60)
		msg := fmt.Sprintf("bench %d.%d", seq, i)
		fmt.Fprintf(&in, "data %d\n%s\n", len(msg), msg)
		if i == 1 {
			fmt.Fprintf(&in, "from %s^0\n", branch)
		}
		lines = append(lines, fmt.Sprintf("line %d.%d: %x", seq, i, rng.Int63()))
		body := strings.Join(lines, "\n") + "\n"
		fmt.Fprintf(&in, "M 644 inline bench/mirror-%d.txt\ndata %d\n%s\n", i%7, len(body), body)
	}
	fmt.Fprintf(&in, "done\n")
	gitIn(up, nil, "fast-import", "--quiet", "--done").stdin(in.Bytes())
}

// medianTriple runs f n times and returns the medians of each of its
// three runs' figures.
func medianTriple(n int, f func() (toolRun, toolRun, toolRun)) (toolRun, toolRun, toolRun) {
	var gs, ds, cs []toolRun
	for range n {
		g, d, c := f()
		gs, ds, cs = append(gs, g), append(ds, d), append(cs, c)
	}
	of := func(rs []toolRun) toolRun {
		i := 0
		return medianRun(len(rs), func() toolRun { i++; return rs[i-1] })
	}
	return of(gs), of(ds), of(cs)
}

// mirrorOnly reports whether pick leaves no scenario but the mirror
// ones: then the repositories the other scenarios need are not made.
func mirrorOnly(pick func(string) bool) bool {
	// The names of the scenarios, which need no repository to be
	// listed.
	scs := scenarios(&repos{tips: make([]string, newCommits)}, "")
	for _, sc := range scs {
		if pick(sc.name) {
			return false
		}
	}
	for _, name := range []string{"repack", "rebase", "load held", "fast-export", "fast-import", "ls-remote", "pages"} {
		if pick(name) {
			return false
		}
	}
	return true
}

// runSampled runs name with args in dir and returns its wall time,
// the CPU of it and its children, and the peak of their proportional
// set size summed, sampled every 10 ms. (The kernel's peak RSS of a
// reaped child is no use for small runs: the child starts as a vfork
// of the benchmark, whose own peak it inherits.)
func runSampled(dir, name string, args ...string) toolRun {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = gitEnv()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	begin := time.Now()
	check(cmd.Start())
	stop := make(chan struct{})
	peak := make(chan int)
	go func() { peak <- sampleRSS(cmd.Process.Pid, stop) }()
	err := cmd.Wait()
	wall := time.Since(begin)
	close(stop)
	rss := <-peak
	if err != nil {
		fatalf("%s %v: %v\n%s", name, args, err, stderr.String())
	}
	return toolRun{wall: wall, cpu: cpuOf(cmd), rss: int64(rss)}
}

// mirrorGotd is a gotd whose one repository is a pull mirror.
type mirrorGotd struct {
	bin, conf, sock, repo string
	cmd                   *exec.Cmd
}

// newMirrorGotd configures a gotd that mirrors url into repo.
func newMirrorGotd(work, bin, repo, url string) *mirrorGotd {
	user := currentUser()
	if os.Geteuid() == 0 {
		user = "nobody"
	}
	m := &mirrorGotd{bin: bin, conf: filepath.Join(work, "gotd-mirror.conf"), sock: filepath.Join(work, "gotd-mirror.sock"), repo: repo}
	conf := fmt.Sprintf("listen on %q\nuser %s\nlisten git on 127.0.0.1 port %d\nrepository \"mirror\" {\n\tpath %q\n\tpermit ro anonymous\n\tmirror from %q every 24h\n}\n",
		m.sock, user, freePort(), repo, url)
	check(os.WriteFile(m.conf, []byte(conf), 0o644))
	m.fresh()
	if out, err := exec.Command(filepath.Join(bin, "gotd"), "-n", "-f", m.conf).CombinedOutput(); err != nil {
		fatalf("gotd -n: %v\n%s", err, out)
	}
	return m
}

// fresh makes the mirror an empty repository owned by gotd's user.
func (m *mirrorGotd) fresh() {
	check(os.RemoveAll(m.repo))
	git("", "init", "-q", "--bare", "-b", "main", m.repo)
	if os.Geteuid() == 0 {
		check(exec.Command("chown", "-R", "nobody", m.repo).Run())
	}
}

func (m *mirrorGotd) start() {
	m.cmd = exec.Command(filepath.Join(m.bin, "gotd"), "-d", "-f", m.conf)
	startServer(m.cmd)
}

func (m *mirrorGotd) stop() {
	exec.Command(filepath.Join(m.bin, "gotctl"), "-f", m.sock, "stop").Run()
	m.cmd.Wait()
	stopServer(m.cmd)
}

// initial mirrors into an empty repository: the sync gotd starts with.
func (m *mirrorGotd) initial() toolRun {
	m.fresh()
	m.start()
	defer m.stop()
	return m.measure()
}

// sync has the running gotd sync its mirror.
func (m *mirrorGotd) sync() toolRun { return m.measure() }

// measure runs gotctl sync and returns its wall time, the CPU gotd's
// processes spent meanwhile, and the peak memory of the sync's own.
func (m *mirrorGotd) measure() toolRun {
	before := cpuTicks(m.cmd.Process.Pid)
	stop := make(chan struct{})
	peak := make(chan int)
	go func() { peak <- sampleRoles(m.cmd.Process.Pid, stop) }()
	begin := time.Now()
	m.gotctl("sync", "mirror")
	wall := time.Since(begin)
	m.settle()
	close(stop)
	rss := <-peak
	after := cpuTicks(m.cmd.Process.Pid)
	m.quiesce()
	return toolRun{wall: wall, cpu: time.Duration(after-before) * 10 * time.Millisecond, rss: int64(rss)}
}

func (m *mirrorGotd) gotctl(args ...string) {
	for range 200 {
		out, err := exec.Command(filepath.Join(m.bin, "gotctl"), append([]string{"-f", m.sock}, args...)...).CombinedOutput()
		if err == nil {
			return
		}
		if !strings.Contains(string(out), "connect") && !strings.Contains(string(out), "no such file") {
			fatalf("gotctl %v: %v\n%s", args, err, out)
		}
		time.Sleep(20 * time.Millisecond) // gotd is starting
	}
	fatalf("gotctl %v: gotd does not answer", args)
}

// settle waits until gotd's parent has reaped the sync's processes, so
// that their CPU is in its children's times.
func (m *mirrorGotd) settle() {
	for range 500 {
		if len(syncRoles(m.cmd.Process.Pid)) == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	fatalf("the sync's processes do not end")
}

// quiesce waits until any upkeep run a sync started (after the initial
// mirror: packing its references and writing a commit-graph) has ended,
// after the sync's measurement: C Git's fetch detaches its maintenance
// likewise. The parent starts upkeep once it has reaped the sync's
// processes: quiet is believed after five looks in a row.
func (m *mirrorGotd) quiesce() {
	quiet := 0
	for range 6000 {
		if !upkeepRunning(m.cmd.Process.Pid) {
			if quiet++; quiet == 5 {
				return
			}
		} else {
			quiet = 0
		}
		time.Sleep(10 * time.Millisecond)
	}
	fatalf("upkeep does not end")
}

// upkeepRunning reports whether an upkeep process runs in pid's tree.
func upkeepRunning(pid int) bool {
	for _, p := range tree(pid) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		if bytes.HasPrefix(b, []byte("gotd: upkeep")) {
			return true
		}
	}
	return false
}

// syncRoles lists the processes of pid's tree that a sync starts.
func syncRoles(pid int) []int {
	var out []int
	for _, p := range tree(pid) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		if bytes.HasPrefix(b, []byte("gotd: fetch")) || bytes.HasPrefix(b, []byte("gotd: session_write")) {
			out = append(out, p)
		}
	}
	return out
}

// sampleRoles sums the proportional set size of a sync's processes
// every 10 ms until stop closes, and returns the peak in KiB.
func sampleRoles(root int, stop chan struct{}) int {
	peak := 0
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		total := 0
		for _, pid := range syncRoles(root) {
			if pss, ok := pssOf(pid); ok {
				total += pss
			}
		}
		peak = max(peak, total)
		select {
		case <-stop:
			return peak
		case <-tick.C:
		}
	}
}

// cpuTicks is the CPU time, in clock ticks (1/100 s on Linux), of a
// process and of its children it has reaped: utime, stime, cutime and
// cstime of /proc/pid/stat.
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	check(err)
	// The fields after the command name, which may hold spaces, in
	// parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	var n int64
	for _, i := range []int{11, 12, 13, 14} { // fields 14 to 17
		v, err := strconv.ParseInt(f[i], 10, 64)
		check(err)
		n += v
	}
	return n
}
