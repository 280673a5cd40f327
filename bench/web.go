package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
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
		check(cmd.Start())
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

func getPage(s *server, path string) (int64, bool) {
	resp, err := pageClient.Get(s.web + path)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	return n, err == nil && resp.StatusCode == http.StatusOK
}

// printPages serves the pages from gotd and from cgit and prints, per
// page, the server CPU per page (the median of runs, each of
// smallRepeat requests on one server start), the page's size and the
// ratio; then visitors at once, each loading every page.
func printPages(gotd *server, r *repos, work string) {
	if _, err := os.Stat(cgitCGI); err != nil {
		fmt.Printf("\npages: skipped, %s is not installed (Debian's cgit)\n", cgitCGI)
		return
	}
	cg := newCgit(work, r.dir)
	ps := pages(r)
	fmt.Printf("\n%-26s %-10s %9s %9s %10s %12s %22s\n", "page (git.git: -repo)", "server", "wall", "cpu", "peak mem", "bytes", "gotd/cgit cpu rss wall")
	for _, p := range ps {
		var res []result
		for _, s := range []*server{gotd, cg} {
			path := p.gotd
			if s == cg {
				path = p.cgit
			}
			var size int64
			sc := repeated(scenario{name: p.name,
				before: func(*server) string { return "" },
				client: func(s *server, _ string) int {
					n, ok := getPage(s, path)
					size = n
					if !ok {
						return 1
					}
					return 0
				},
				bytes: func(string) int64 { return size },
			})
			res = append(res, median(s, sc, *runs))
		}
		for i, x := range res {
			name, ratio := gotd.name, ""
			if i == 0 {
				c := res[1]
				ratio = fmt.Sprintf("%6.2fx %5.2fx %5.2fx", div(x.cpu.Seconds(), c.cpu.Seconds()), div(float64(x.rss), float64(c.rss)), div(x.wall.Seconds(), c.wall.Seconds()))
			} else {
				name = cg.name
			}
			fmt.Printf("%-26s %-10s %9s %9s %8.1fMB %12d %22s\n", p.name, name,
				x.wall.Round(time.Millisecond), x.cpu.Round(time.Millisecond), float64(x.rss)/1024, x.bytes, ratio)
			if x.failures > 0 {
				fmt.Printf("%-26s %-10s %d failed\n", "", name, x.failures)
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
				for range *visitors {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for _, p := range ps {
							path := p.gotd
							if s == cg {
								path = p.cgit
							}
							if _, ok := getPage(s, path); !ok {
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
