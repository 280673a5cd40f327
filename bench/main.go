// Command bench measures gotd against C Git on the same machine in the
// same run (make bench). It takes a repository (-repo) or generates
// one, serves it over git:// with gotd and with `git daemon` in
// alternation, drives the real git client through each scenario, and
// prints per scenario and server the medians of several runs: client
// wall time, the server's CPU time (user+system of all its processes,
// from the kernel's accounting of the reaped process tree, start-up of
// an idle server subtracted), the peak memory of all the server's
// processes together, the bytes received, and gotd's ratios to C Git.
// "load held" clones the repository while one address holds idle
// connections to the git:// port and another floods it with oversized
// requests (-held, -loadclones), and prints how many clones worked,
// their p50 and p99 times against the unloaded p99, and the server's
// peak memory. "pages" serves the repository's web pages from gotd
// and from Debian's cgit (one CGI process per page behind a loopback
// web server, its cache off) and prints each page's CPU side by side,
// then -visitors loading every page at once.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

var (
	repoFlag = flag.String("repo", "", "bare repository to serve (default: generate one)")
	runs     = flag.Int("runs", 3, "runs of each scenario per server; medians are printed")
	commits  = flag.Int("commits", 3000, "commits of the generated repository")
	clients  = flag.Int("clients", 0, "clones at once in the concurrent scenario (default 10 with -repo, whose clients alone may need gigabytes, 50 for the generated repository)")
	held     = flag.Int("held", 1000, "idle connections held from one address in the load held scenario")
	loadN    = flag.Int("loadclones", 40, "legitimate clones in the load held scenario, unloaded and loaded")
	keep     = flag.Bool("keep", false, "keep the work directory")
	only     = flag.String("only", "", "run only the scenarios whose names match this regular expression")
)

func main() {
	flag.Parse()
	log.SetFlags(0)
	if *cgiHost != "" {
		serveCGI(*cgiHost, *cgiConfig)
		return
	}
	if *clients == 0 {
		*clients = 50
		if *repoFlag != "" {
			*clients = 10
		}
	}
	pick, err := regexp.Compile(*only)
	check(err)
	work, err := os.MkdirTemp("", "gotd-bench-")
	check(err)
	os.Chmod(work, 0o755)
	if !*keep {
		defer os.RemoveAll(work)
	}
	cleanup = func() {
		if !*keep {
			os.RemoveAll(work)
		}
	}
	bin := build(filepath.Join(work, "bin"), "gotd", "gotctl")

	src := *repoFlag
	if src == "" {
		src = filepath.Join(work, "generated.git")
		generate(src, *commits)
	}
	// The repack scenario needs no server and runs first.
	if pick.MatchString("repack") {
		printRepack(work, src)
		if *only == "repack" {
			return
		}
	}
	// So does the pushes scenario, which makes its own repository.
	if pick.MatchString("pushes") {
		printPushes(work, bin)
		if *only == "pushes" {
			return
		}
	}
	// The mirror scenarios need neither gotd nor the repositories the
	// others serve: run alone (-only mirror), they are all there is.
	if mirrorOnly(pick.MatchString) {
		fmt.Printf("repository: %s\n", src)
		printMirror(work, src, pick.MatchString)
		return
	}
	r := prepare(filepath.Join(work, "repos"), src)
	exec.Command("chmod", "-R", "a+rX", work).Run()
	objects := strings.TrimSpace(git(r.path("bitmap"), "rev-list", "--objects", "--all", "--count"))
	fmt.Printf("repository: %s, %s objects\n\n", src, objects)

	printMirror(work, src, pick.MatchString)
	servers := []*server{newGotd(work, bin, r.dir, served), newGitDaemon(r.dir)}
	fmt.Printf("%-26s %-10s %9s %9s %10s %12s %22s\n", "scenario", "server", "wall", "cpu", "peak mem", "bytes", "gotd/C Git cpu rss wall")
	for _, sc := range scenarios(r, work) {
		if !pick.MatchString(sc.name) {
			continue
		}
		var res []result
		for _, s := range servers {
			res = append(res, median(s, sc, *runs))
		}
		for i, x := range res {
			ratio := ""
			if i == 0 {
				c := res[1]
				ratio = fmt.Sprintf("%6.2fx %5.2fx %5.2fx", div(x.cpu.Seconds(), c.cpu.Seconds()), div(float64(x.rss), float64(c.rss)), div(x.wall.Seconds(), c.wall.Seconds()))
			}
			fmt.Printf("%-26s %-10s %9s %9s %8.1fMB %12d %22s\n", sc.name, servers[i].name,
				x.wall.Round(time.Millisecond), x.cpu.Round(time.Millisecond), float64(x.rss)/1024, x.bytes, ratio)
			if x.failures > 0 {
				fmt.Printf("%-26s %-10s %d failed\n", "", servers[i].name, x.failures)
			}
		}
	}
	if pick.MatchString("rebase") {
		printRebase(servers[0], r, work)
	}
	if pick.MatchString("load held") {
		printLoadHeld(servers, work, *loadN, *held)
	}
	if pick.MatchString("pages") {
		printPages(servers[0], r, work)
	}
	if pick.MatchString("fast-export") || pick.MatchString("fast-import") {
		printFastIO(work, src, pick.MatchString)
	}
	// Connections per second: sequential ls-remote.
	if !pick.MatchString("ls-remote") {
		return
	}
	fmt.Println()
	gotd, cgit := servers[0], servers[1]
	base := lsRemoteRate(cgit, cgit.url("bitmap"), nil, 100)
	rate := lsRemoteRate(gotd, gotd.url("bitmap"), nil, 100)
	fmt.Printf("%-26s %-10s %9.1f connections/s\n", "ls-remote over git://", cgit.name, base)
	fmt.Printf("%-26s %-10s %9.1f connections/s %6.2fx\n", "ls-remote over git://", gotd.name, rate, div(rate, base))
	if gotd.sshURL != nil {
		rate := lsRemoteRate(gotd, gotd.sshURL("bitmap"), gotd.sshEnv, 100)
		fmt.Printf("%-26s %-10s %9.1f connections/s %6.2fx\n", "ls-remote over SSH", gotd.name, rate, div(rate, base))
	}
}

// scenario is one measured client action.
type scenario struct {
	name string
	// before prepares a run (not measured) and returns the client's
	// directory.
	before func(s *server) string
	// client is the measured action; it returns how many of its
	// clients failed.
	client func(s *server, dir string) int
	// bytes is what was transferred.
	bytes func(dir string) int64
	// repeat, when above 1, runs before and client that many times on
	// one server start, and the run's figures are per client action:
	// an action of a few milliseconds would otherwise be measured
	// against the noise of the server's own start and stop.
	repeat int
}

// smallRepeat is how many times a small action runs per server start.
const smallRepeat = 10

// repeated makes sc run smallRepeat times per server start.
func repeated(sc scenario) scenario {
	sc.repeat = smallRepeat
	return sc
}

// scenarios are the benchmark's measured actions on r.
func scenarios(r *repos, work string) []scenario {
	dest := filepath.Join(work, "client")
	clean := func(*server) string {
		check(os.RemoveAll(dest))
		return dest
	}
	cloned := func(dir string) int64 { return newBytes(dir, nil) }
	// clone runs args (from "git", to "clone" and its options) and
	// the repository's URL.
	clone := func(name, repo string, args ...string) scenario {
		return scenario{name: name, before: clean, bytes: cloned,
			client: func(s *server, dir string) int {
				git("", append(args, "-q", "--bare", s.url(repo), dir)...)
				return 0
			},
		}
	}
	var before map[string]int64
	// fetch updates a copy of a client repository from fetch.git.
	fetch := func(name, from string) scenario {
		return scenario{name: name,
			before: func(*server) string {
				check(os.RemoveAll(dest))
				git("", "clone", "-q", "--bare", r.path(from), dest)
				before = packsOf(dest)
				return dest
			},
			client: func(s *server, dir string) int {
				git(dir, "-c", "fetch.unpackLimit=1", "fetch", "-q", s.url("fetch"), "+refs/heads/*:refs/heads/*")
				if got := strings.TrimSpace(git(dir, "rev-parse", r.branch)); got != r.tips[newCommits-1] {
					fatalf("%s: %s is %s after the fetch, want %s", name, r.branch, got, r.tips[newCommits-1])
				}
				return 0
			},
			bytes: func(dir string) int64 { return newBytes(dir, before) },
		}
	}
	// push sends refspecs from a client repository to a fresh copy of
	// a served one.
	push := func(name, client, target, from string, refspecs ...string) scenario {
		return scenario{name: name,
			before: func(s *server) string {
				dir := r.fresh(target, from, s.user)
				before = packsOf(dir)
				return dir
			},
			client: func(s *server, dir string) int {
				git(r.path(client), append([]string{"push", "-q", s.pushURL(target)}, refspecs...)...)
				return 0
			},
			bytes: func(dir string) int64 { return newBytes(dir, before) },
		}
	}
	return []scenario{
		clone("clone v0, bitmap", "bitmap", "-c", "protocol.version=0", "clone"),
		clone("clone v2, bitmap", "bitmap", "-c", "protocol.version=2", "clone"),
		clone("clone v0, no bitmap", "nobitmap", "-c", "protocol.version=0", "clone"),
		clone("clone v2, no bitmap", "nobitmap", "-c", "protocol.version=2", "clone"),
		clone("clone of one branch", "nobitmap", "clone", "--single-branch"),
		clone("shallow clone --depth 1", "nobitmap", "clone", "--depth", "1"),
		clone("partial clone blob:none", "nobitmap", "clone", "--filter=blob:none"),
		repeated(fetch("fetch of 1 commit", "client-99")),
		repeated(fetch("fetch of 100 commits", "client-0")),
		push("push of the whole history", "bitmap", "push-empty", "", "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"),
		repeated(push("push of 1 commit", "fetch", "push-one", "bitmap", r.tips[0]+":"+r.branch)),
		{
			name:   fmt.Sprintf("%d clones at once", *clients),
			before: clean,
			client: func(s *server, dir string) int {
				var wg sync.WaitGroup
				var mu sync.Mutex
				failed := 0
				for i := range *clients {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if !gitIn("", nil, "clone", "-q", "--bare", s.url("bitmap"), filepath.Join(dir, fmt.Sprint(i))).try() {
							mu.Lock()
							failed++
							mu.Unlock()
						}
					}()
				}
				wg.Wait()
				return failed
			},
			bytes: func(dir string) int64 {
				var n int64
				for i := range *clients {
					n += newBytes(filepath.Join(dir, fmt.Sprint(i)), nil)
				}
				return n
			},
		},
	}
}

// cleanup removes the work directory unless it is kept.
var cleanup = func() {}

// running holds the servers started and not stopped yet: a run that
// stops on an error stops them too, where it used to leave a gotd or a
// git daemon serving a removed directory.
var running = struct {
	sync.Mutex
	cmds map[*exec.Cmd]bool
}{cmds: make(map[*exec.Cmd]bool)}

// startServer starts cmd, a server that runs until stopServer.
func startServer(cmd *exec.Cmd) {
	// Its own process group, so that what it forks stops with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	check(cmd.Start())
	running.Lock()
	running.cmds[cmd] = true
	running.Unlock()
}

// stopServer marks cmd, started by startServer and now stopped, as
// stopped.
func stopServer(cmd *exec.Cmd) {
	running.Lock()
	delete(running.cmds, cmd)
	running.Unlock()
}

// killServers stops the servers still running: SIGTERM to each group,
// then SIGKILL to those still there after 5 s.
func killServers() {
	running.Lock()
	defer running.Unlock()
	for cmd := range running.cmds {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(5 * time.Second)
	for cmd := range running.cmds {
		for time.Now().Before(deadline) && syscall.Kill(cmd.Process.Pid, 0) == nil {
			time.Sleep(50 * time.Millisecond)
		}
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}

func fatalf(format string, args ...any) {
	killServers()
	cleanup()
	log.Fatalf(format, args...)
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
	fatalf("nothing listens on port %d", port)
}

func div(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func check(err error) {
	if err != nil {
		fatalf("%v", err)
	}
}
