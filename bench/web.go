package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cgi"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// cgitCGI is Debian's cgit; the page scenarios are skipped without it.
const cgitCGI = "/usr/lib/cgit/cgit.cgi"

var (
	cgiHost   = flag.String("cgi-host", "", "internal: serve cgit over CGI on this loopback address (the page scenarios' web server)")
	cgiConfig = flag.String("cgi-config", "", "internal: the cgitrc of -cgi-host")
	visitors  = flag.Int("visitors", 50, "visitors at once in the pages scenario")
	// The pages' CPU is sampled: each sample is requests in a row for
	// pageSample, the CPU they cost divided by their number.
	pageSamples = flag.Int("page-samples", 7, "samples of each page's CPU")
	pageSample  = flag.Duration("page-sample", time.Second, "the requests of one sample of a page's CPU")
)

// serveCGI is the web server in front of cgit: one CGI process per
// page, as cgit is commonly deployed, its cache off. It runs as a
// process of its own so that the server's CPU is this process's and
// its reaped children's, as for the Git servers.
func serveCGI(addr, config string) {
	h := &cgi.Handler{Path: cgitCGI, Root: "/", Env: []string{"CGIT_CONFIG=" + config}}
	srv := &http.Server{Addr: addr, Handler: h}
	go func() {
		// Stopped by a line on standard input, so that the parent
		// reaps it (and its children's CPU) on a clean exit.
		bufio.NewReader(os.Stdin).ReadString('\n')
		srv.Close()
	}()
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		fatalf("cgi host: %v", err)
	}
}

// newCgit is cgit behind a loopback web server serving repository
// "bitmap" of dir.
func newCgit(work, dir string) *server {
	port := freePort()
	rc := filepath.Join(work, "cgitrc")
	conf := fmt.Sprintf("cache-size=0\nenable-blame=1\nmax-commit-count=50\nvirtual-root=/\nrepo.url=bitmap\nrepo.path=%s\n", filepath.Join(dir, "bitmap.git"))
	check(os.WriteFile(rc, []byte(conf), 0o644))
	self, err := os.Executable()
	check(err)
	s := &server{name: "cgit", user: currentUser()}
	var stdin io.WriteCloser
	s.start = func() *exec.Cmd {
		cmd := exec.Command(self, "-cgi-host", fmt.Sprintf("127.0.0.1:%d", port), "-cgi-config", rc)
		cmd.Stderr = os.Stderr
		stdin, err = cmd.StdinPipe()
		check(err)
		startServer(cmd)
		waitPort(port)
		return cmd
	}
	s.stop = func(cmd *exec.Cmd) {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Signal(syscall.SIGKILL)
			<-done
		}
		stopServer(cmd)
	}
	s.web = fmt.Sprintf("http://127.0.0.1:%d", port)
	return s
}

// page is one page of the pages scenarios, its path on each server.
type page struct {
	name       string
	gotd, cgit string
}

// pages picks the measured pages of the repository served as "bitmap":
// its summary, a log page of 50 commits, the newest commit that is not
// a merge with its diff, the root tree, the file nearest 100 KB, blame
// of the text file nearest 1,000 lines, and the branch's Atom feed.
func pages(r *repos) []page {
	repo := r.path("bitmap")
	branch := strings.TrimPrefix(r.branch, "refs/heads/")
	head := strings.TrimSpace(git(repo, "rev-parse", r.branch))
	commit := strings.TrimSpace(git(repo, "rev-list", "--no-merges", "-n", "1", r.branch))
	type file struct {
		path string
		size int
	}
	var files []file
	for _, line := range strings.Split(git(repo, "ls-tree", "-r", "-l", head), "\n") {
		meta, path, ok := strings.Cut(line, "\t")
		f := strings.Fields(meta)
		if !ok || len(f) != 4 || f[1] != "blob" {
			continue
		}
		n, err := strconv.Atoi(f[3])
		if err == nil {
			files = append(files, file{path, n})
		}
	}
	near := func(size int) func(i, j int) bool {
		return func(i, j int) bool { return abs(files[i].size-size) < abs(files[j].size-size) }
	}
	sort.Slice(files, near(100<<10))
	blob, blobSize := files[0].path, files[0].size
	// A text file of about 1,000 lines is some 20 to 60 KB.
	sort.Slice(files, near(35<<10))
	blame, best := "", -1
	for _, f := range files[:min(len(files), 40)] {
		text := git(repo, "cat-file", "blob", head+":"+f.path)
		if strings.IndexByte(text, 0) >= 0 {
			continue
		}
		if n := strings.Count(text, "\n"); best < 0 || abs(n-1000) < abs(best-1000) {
			blame, best = f.path, n
		}
	}
	esc := func(p string) string {
		segs := strings.Split(p, "/")
		for i, s := range segs {
			segs[i] = url.PathEscape(s)
		}
		return strings.Join(segs, "/")
	}
	return []page{
		{"summary", "/bitmap/", "/bitmap/"},
		{"log, 50 commits", "/bitmap/log/" + url.PathEscape(branch), "/bitmap/log/?h=" + url.QueryEscape(branch)},
		{"commit with diff", "/bitmap/commit/" + commit, "/bitmap/commit/?id=" + commit},
		{"root tree", "/bitmap/tree/" + head, "/bitmap/tree/?id=" + head},
		{fmt.Sprintf("blob of %d KB", blobSize>>10), "/bitmap/blob/" + head + "/" + esc(blob), "/bitmap/tree/" + esc(blob) + "?id=" + head},
		{fmt.Sprintf("blame of %d lines", best), "/bitmap/blame/" + head + "/" + esc(blame), "/bitmap/blame/" + esc(blame) + "?id=" + head},
		{"Atom feed", "/bitmap/atom/" + url.PathEscape(branch), "/bitmap/atom/?h=" + url.QueryEscape(branch)},
	}
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// pageClient fetches path from s; any status but 200 is a failure.
var pageClient = &http.Client{Timeout: 5 * time.Minute}

func getPage(s *server, path string) (int64, bool) { return getPageWith(pageClient, s, path) }

// visitorClient is the client of visitor i, whose connections leave
// from an address of its own on loopback (127.0.0.10 and on), as
// visitors' do: gotd bounds the pages of one address at once.
func visitorClient(i int) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, byte((10+i)>>8), byte(10+i))}}
	return &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{DialContext: d.DialContext}}
}

func getPageWith(c *http.Client, s *server, path string) (int64, bool) {
	resp, err := c.Get(s.web + path)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	return n, err == nil && resp.StatusCode == http.StatusOK
}

// printPages serves the pages from gotd and from cgit and prints, per
// page, the CPU that serving it costs (pageFigures: the median of
// samples, and their spread), the page's size and the ratio; then
// visitors at once, each loading every page.
func printPages(gotd *server, r *repos, work string) {
	if _, err := os.Stat(cgitCGI); err != nil {
		fmt.Printf("\npages: skipped, %s is not installed (Debian's cgit)\n", cgitCGI)
		return
	}
	cg := newCgit(work, r.dir)
	ps := pages(r)
	figs := [][]pageFigure{pageFigures(gotd, ps, false), pageFigures(cg, ps, true)}
	fmt.Printf("\nCPU per page: the median of %d samples of %v of requests in a row each, and the samples' spread (min-max);\n", *pageSamples, *pageSample)
	fmt.Printf("gotd: its web process's CPU (/proc/PID/stat); cgit: its CGI processes' (the children its web server reaped).\n")
	fmt.Printf("%-26s %-6s %11s %14s %8s %12s %8s\n", "page (git.git: -repo)", "server", "cpu/page", "spread", "wall", "bytes", "gotd/cgit")
	for i, p := range ps {
		for j, s := range []*server{gotd, cg} {
			f := figs[j][i]
			ratio := ""
			if j == 0 {
				ratio = fmt.Sprintf("%7.2fx", div(f.cpu.Seconds(), figs[1][i].cpu.Seconds()))
			}
			fmt.Printf("%-26s %-6s %11s %14s %8s %12d %8s\n", p.name, s.name, f.cpu.Round(10*time.Microsecond),
				fmt.Sprintf("%s-%s", f.min.Round(100*time.Microsecond), f.max.Round(100*time.Microsecond)), f.wall.Round(100*time.Microsecond), f.bytes, ratio)
			if f.failures > 0 {
				fmt.Printf("%-26s %-6s %d failed\n", "", s.name, f.failures)
			}
		}
	}
	for _, s := range []*server{gotd, cg} {
		sc := scenario{name: "visitors",
			before: func(*server) string { return "" },
			client: func(s *server, _ string) int {
				var wg sync.WaitGroup
				var mu sync.Mutex
				failed := 0
				for i := range *visitors {
					c := visitorClient(i)
					wg.Add(1)
					go func() {
						defer wg.Done()
						for _, p := range ps {
							path := p.gotd
							if s == cg {
								path = p.cgit
							}
							if _, ok := getPageWith(c, s, path); !ok {
								mu.Lock()
								failed++
								mu.Unlock()
							}
						}
					}()
				}
				wg.Wait()
				return failed
			},
			bytes: func(string) int64 { return 0 },
		}
		x := run(s, sc)
		fmt.Printf("%-26s %-10s %9s %9s %8.1fMB %12s %d of %d pages failed\n", fmt.Sprintf("%d visitors at once", *visitors), s.name,
			x.wall.Round(time.Millisecond), x.cpu.Round(time.Millisecond), float64(x.rss)/1024, "", x.failures, *visitors*len(ps))
	}
}

// pageFigure is what pageFigures measured of one page.
type pageFigure struct {
	cpu, min, max time.Duration // per page: the samples' median, least and most
	wall          time.Duration // per page, the median sample's
	bytes         int64
	failures      int
}

// pageFigures measures the CPU each page of ps costs server s, started
// once for all: after two requests that warm it up, *pageSamples
// samples of requests in a row for *pageSample each. The CPU counted
// is that of the processes that make the pages, read from /proc before
// and after each sample: gotd's web process (the anonymous visitors'),
// and for cgit (cgi) the CGI processes its web server has reaped. It
// leaves out what both spend around the page (gotd's httpd and parent
// relaying the request, cgit's web server starting a process): the
// pages' own cost, compared.
func pageFigures(s *server, ps []page, cgi bool) []pageFigure {
	cmd := s.start()
	defer s.stop(cmd)
	root := cmd.Process.Pid
	var out []pageFigure
	for _, p := range ps {
		path := p.gotd
		if cgi {
			path = p.cgit
		}
		var f pageFigure
		for range 2 {
			f.bytes, _ = getPage(s, path)
		}
		type sample struct{ cpu, wall time.Duration }
		var samples []sample
		for range *pageSamples {
			t0 := pageTicks(root, cgi)
			begin := time.Now()
			n := 0
			for n == 0 || time.Since(begin) < *pageSample {
				if _, ok := getPage(s, path); !ok {
					f.failures++
				}
				n++
			}
			wall := time.Since(begin)
			t1 := pageTicks(root, cgi)
			samples = append(samples, sample{time.Duration(t1-t0) * clockTick / time.Duration(n), wall / time.Duration(n)})
		}
		sort.Slice(samples, func(i, j int) bool { return samples[i].cpu < samples[j].cpu })
		mid := samples[len(samples)/2]
		f.cpu, f.wall, f.min, f.max = mid.cpu, mid.wall, samples[0].cpu, samples[len(samples)-1].cpu
		out = append(out, f)
	}
	return out
}

// clockTick is the unit of /proc/PID/stat's times (USER_HZ, 100 on
// Linux).
const clockTick = 10 * time.Millisecond

// pageTicks is the CPU, in clock ticks, spent so far making pages by
// the server whose process is root: for gotd the web process among its
// descendants (started with "-T web"), for cgit (cgi) the children its
// web server reaped.
func pageTicks(root int, cgi bool) int64 {
	if cgi {
		f := statFields(root)
		return atoi64(f, 13) + atoi64(f, 14) // cutime, cstime
	}
	for _, pid := range tree(root) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.Contains(string(b), "\x00-T\x00web\x00") {
			f := statFields(pid)
			return atoi64(f, 11) + atoi64(f, 12) // utime, stime
		}
	}
	fatalf("pages: gotd has no web process")
	return 0
}

// statFields are the fields of /proc/PID/stat after the command's
// name: the state (field 3 of proc(5)) first.
func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	check(err)
	i := strings.LastIndexByte(string(b), ')')
	return strings.Fields(string(b[i+1:]))
}

func atoi64(f []string, i int) int64 {
	if i >= len(f) {
		return 0
	}
	n, _ := strconv.ParseInt(f[i], 10, 64)
	return n
}
