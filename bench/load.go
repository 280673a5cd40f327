package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"
)

// The "load held" scenario: legitimate clones from 127.0.0.1 while one
// address (127.0.0.2) holds idle connections to the server's git://
// port and another (127.0.0.3) floods it with oversized requests.
var (
	holderAddr  = net.ParseIP("127.0.0.2")
	flooderAddr = net.ParseIP("127.0.0.3")
)

// Bounds of the flood: each request is a v2 ls-refs with this many
// ref-prefix lines, floodConns at a time.
const (
	floodLines = 200000
	floodConns = 4
	cloneConc  = 4 // legitimate clones at once
)

// holdRate bounds the holder's reconnections (connections opened
// after the first held ones) per second. The attacker shares this
// machine's CPU with the clients and the server: redialing at once
// after each close, it spent CPU that a remote attacker spends on its
// own machine. The server's own cost of the attack is printed apart.
const holdRate = 200

// loadResult is what one server did under held load.
type loadResult struct {
	ok, failed       int
	p50, p99         time.Duration
	unloadedP99      time.Duration
	rss              int // KiB, peak of the server's processes together
	held, heldClosed int // connections opened by the holder, and closed by the server
	floods           int // flood requests sent
	// CPU of the unloaded and of the loaded clones' phase: the
	// server's processes, the git clients, and the bench itself (the
	// attackers and the memory sampler).
	unloaded, loaded phaseCPU
}

// phaseCPU is the CPU time spent during one phase of the scenario.
type phaseCPU struct {
	wall, server, clients, bench time.Duration
}

// cpuMark is the CPU spent so far by the server's process tree (root),
// by the bench's reaped children (the git clients: the server is
// reaped only when it stops) and by the bench itself.
type cpuMark struct {
	at                     time.Time
	server, clients, bench time.Duration
}

func markCPU(root int) cpuMark {
	var self, kids syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	return cpuMark{
		at:      time.Now(),
		server:  treeCPU(root),
		clients: time.Duration(kids.Utime.Nano() + kids.Stime.Nano()),
		bench:   time.Duration(self.Utime.Nano() + self.Stime.Nano()),
	}
}

// since is the CPU spent from m0 to m.
func (m cpuMark) since(m0 cpuMark) phaseCPU {
	return phaseCPU{wall: m.at.Sub(m0.at), server: m.server - m0.server, clients: m.clients - m0.clients, bench: m.bench - m0.bench}
}

// loadHeld runs n clones of repo against s unloaded, then again while
// held idle connections from one address and request floods from
// another run, and returns the figures of the loaded clones.
func loadHeld(s *server, repo, work string, n, held int) loadResult {
	cmd := s.start()
	defer s.stop(cmd)
	var r loadResult
	base := filepath.Join(work, "load")
	pid := cmd.Process.Pid
	m0 := markCPU(pid)
	times, _ := clones(s, repo, base, n)
	r.unloadedP99 = percentile(times, 99)
	r.unloaded = markCPU(pid).since(m0)

	ctx, cancel := context.WithCancel(context.Background())
	stopSampling := make(chan struct{})
	peak := make(chan int)
	go func() { peak <- sampleRSS(cmd.Process.Pid, stopSampling) }()
	u, err := url.Parse(s.url(repo))
	check(err)
	addr := u.Host
	flood := floodRequest("/" + repo)
	m0 = markCPU(pid)
	var wg sync.WaitGroup
	var mu sync.Mutex
	wg.Add(1)
	go func() {
		defer wg.Done()
		o, c := hold(ctx, addr, held)
		mu.Lock()
		r.held, r.heldClosed = o, c
		mu.Unlock()
	}()
	for range floodConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := floodLoop(ctx, addr, flood)
			mu.Lock()
			r.floods += k
			mu.Unlock()
		}()
	}
	time.Sleep(2 * time.Second) // the connections are held, the floods running
	times, r.failed = clones(s, repo, base, n)
	r.loaded = markCPU(pid).since(m0)
	cancel()
	close(stopSampling)
	r.rss = <-peak
	wg.Wait()
	r.ok = len(times)
	r.p50, r.p99 = percentile(times, 50), percentile(times, 99)
	return r
}

// clones runs n clones of repo from s, cloneConc at a time, and returns
// the times of those that worked and how many failed.
func clones(s *server, repo, base string, n int) ([]time.Duration, int) {
	check(os.RemoveAll(base))
	check(os.MkdirAll(base, 0o755))
	defer os.RemoveAll(base)
	next := make(chan int)
	var mu sync.Mutex
	var times []time.Duration
	failed := 0
	var wg sync.WaitGroup
	for range cloneConc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				begin := time.Now()
				ok := gitIn("", nil, "clone", "-q", "--bare", s.url(repo), filepath.Join(base, fmt.Sprint(i))).try()
				took := time.Since(begin)
				mu.Lock()
				if ok {
					times = append(times, took)
				} else {
					failed++
				}
				mu.Unlock()
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return times, failed
}

// percentile is the p-th percentile of times (0 for none).
func percentile(times []time.Duration, p int) time.Duration {
	if len(times) == 0 {
		return 0
	}
	t := append([]time.Duration(nil), times...)
	sort.Slice(t, func(i, j int) bool { return t[i] < t[j] })
	return t[min(len(t)-1, len(t)*p/100)]
}

// hold keeps n connections from holderAddr to addr open, sending
// nothing, opening a new one for each the server closes (at most
// holdRate a second past the first n), until ctx ends; it returns how
// many it opened and how many the server closed.
func hold(ctx context.Context, addr string, n int) (opened, closed int) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: holderAddr}, Timeout: 2 * time.Second}
	pace := time.NewTicker(time.Second / holdRate)
	defer pace.Stop()
	sem := make(chan struct{}, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return opened, closed
		case sem <- struct{}{}:
		}
		if opened >= n {
			select {
			case <-ctx.Done():
				return opened, closed
			case <-pace.C:
			}
		}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			<-sem
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		mu.Lock()
		opened++
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			done := make(chan struct{})
			go func() {
				select {
				case <-ctx.Done():
					c.Close()
				case <-done:
				}
			}()
			io.Copy(io.Discard, c)
			close(done)
			c.Close()
			if ctx.Err() == nil {
				mu.Lock()
				closed++
				mu.Unlock()
			}
		}()
	}
}

// floodRequest is a v2 ls-refs request for path with floodLines
// ref-prefix lines, made once: formatting it for each request cost the
// bench more CPU than sending it.
func floodRequest(path string) []byte {
	var b bytes.Buffer
	b.WriteString(pkt("git-upload-pack " + path + "\x00host=127.0.0.1\x00\x00version=2\x00"))
	b.WriteString(pkt("command=ls-refs\n") + "0001")
	for i := range floodLines {
		b.WriteString(pkt(fmt.Sprintf("ref-prefix refs/heads/%08x\n", i)))
	}
	b.WriteString("0000")
	return b.Bytes()
}

// floodLoop sends req from flooderAddr to the git:// server at addr,
// one connection each, until ctx ends, and returns how many it began
// to send.
func floodLoop(ctx context.Context, addr string, req []byte) int {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: flooderAddr}, Timeout: 2 * time.Second}
	sent := 0
	for ctx.Err() == nil {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		go func() {
			<-ctx.Done()
			c.Close()
		}()
		// A server that refuses the request before its end resets
		// the connection: the write fails, the request counts.
		if n, _ := c.Write(req); n > 0 {
			sent++
		}
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		io.Copy(io.Discard, c)
		c.Close()
	}
	return sent
}

// pkt frames s as a pkt-line.
func pkt(s string) string { return fmt.Sprintf("%04x%s", len(s)+4, s) }

// printLoadHeld runs the scenario on each server and prints a line
// each, with gotd's ratios to C Git, and the CPU spent in the unloaded
// and the loaded phase by the server, the git clients and the bench
// (attackers and memory sampler): on one machine the attackers' CPU is
// taken from the clients, as a remote attacker's would not be, and the
// server's cost of the attack is its CPU loaded less unloaded.
func printLoadHeld(servers []*server, work string, n, held int) {
	fmt.Println()
	name := fmt.Sprintf("load held (%d clones)", n)
	fmt.Printf("%-26s %-10s %8s %9s %9s %13s %10s %9s %s\n", name, "server", "ok", "p50", "p99", "p99 unloaded", "peak mem", "srv cpu", "held/closed, floods")
	var res []loadResult
	for _, s := range servers {
		res = append(res, loadHeld(s, "bitmap", work, n, held))
	}
	for i, r := range res {
		ratio := ""
		if i == 0 && len(res) > 1 {
			c := res[1]
			ratio = fmt.Sprintf("  gotd/C Git: p99 %.2fx, mem %.2fx, srv cpu %.2fx", div(r.p99.Seconds(), c.p99.Seconds()), div(float64(r.rss), float64(c.rss)),
				div(r.loaded.server.Seconds(), c.loaded.server.Seconds()))
		}
		fmt.Printf("%-26s %-10s %4d/%-3d %9s %9s %13s %8.1fMB %9s %d/%d, %d%s\n", "", servers[i].name, r.ok, r.ok+r.failed,
			r.p50.Round(time.Millisecond), r.p99.Round(time.Millisecond), r.unloadedP99.Round(time.Millisecond),
			float64(r.rss)/1024, r.loaded.server.Round(100*time.Millisecond), r.held, r.heldClosed, r.floods, ratio)
	}
	fmt.Printf("%-26s %-10s %9s %9s %9s %9s   (CPU: holder reconnects paced to %d/s, flood request made once)\n", "", "phase", "wall", "server", "clients", "bench", holdRate)
	for i, r := range res {
		for _, p := range []struct {
			name string
			c    phaseCPU
		}{{"unloaded", r.unloaded}, {"loaded", r.loaded}} {
			d := func(t time.Duration) time.Duration { return t.Round(100 * time.Millisecond) }
			fmt.Printf("%-26s %-10s %9s %9s %9s %9s\n", servers[i].name, p.name, d(p.c.wall), d(p.c.server), d(p.c.clients), d(p.c.bench))
		}
	}
}
