package e2enet

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLoad starts 200 clones of the test repository at once over
// git://, then over HTTP, and prints the figures: clones per second,
// and the peak memory and number of gotd's processes. Every clone must
// succeed, be fsck-clean and have the server's references; afterwards
// the daemon must be back to its idle processes. No figure is asserted.
func TestLoad(t *testing.T) {
	n := 200
	if testing.Short() {
		n = 20
	}
	s := start(t, options{})
	want := refs(t, filepath.Join(s.dir, "test.git"))
	for _, role := range []string{"listen", "notify", "sshd", "gitd", "httpd"} {
		s.waitRole(role, 0)
	}
	idle := len(descendants(s.daemon.Process.Pid))
	for _, c := range []struct{ name, url string }{
		{"git", s.gitURL("test")},
		{"http", s.httpURL("", "test")},
	} {
		base := s.clientDir("load-" + c.name)
		stop := make(chan struct{})
		peak := make(chan [2]int)
		go func() { peak <- sample(s.daemon.Process.Pid, stop) }()
		begin := time.Now()
		errs := make([]error, n)
		outs := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				outs[i], errs[i] = s.git(base, nil, "clone", "-q", "--bare", c.url, fmt.Sprintf("c%d.git", i))
			}()
		}
		wg.Wait()
		wall := time.Since(begin)
		close(stop)
		p := <-peak
		for i, err := range errs {
			if err != nil {
				t.Fatalf("%s clone %d: %v\n%s", c.name, i, err, outs[i])
			}
		}
		line := fmt.Sprintf("load %s: %d concurrent clones in %v, %.1f clones/s, gotd peak %d processes, %.1f MiB RSS in all",
			c.name, n, wall.Round(time.Millisecond), float64(n)/wall.Seconds(), p[1], float64(p[0])/1024)
		t.Log(line)
		fmt.Println(line)
		// Checked after the measurement, four at a time.
		sem := make(chan struct{}, 4)
		for i := range n {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				dir := filepath.Join(base, fmt.Sprintf("c%d.git", i))
				fsck(t, dir)
				if got := refs(t, dir); got != want {
					t.Errorf("%s clone %d refs:\n%s\nwant:\n%s", c.name, i, got, want)
				}
			}()
		}
		wg.Wait()
		os.RemoveAll(base)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := len(descendants(s.daemon.Process.Pid))
		if left == idle {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d gotd processes after the load, %d before", left, idle)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sample polls the memory of root's process tree every 20 ms until
// stop closes, and returns the peak total RSS in KiB and the peak
// number of processes.
func sample(root int, stop chan struct{}) [2]int {
	var peak [2]int
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		pids := descendants(root)
		rss := 0
		for _, pid := range append(pids, root) {
			rss += vmRSS(pid)
		}
		peak[0], peak[1] = max(peak[0], rss), max(peak[1], len(pids)+1)
		select {
		case <-stop:
			return peak
		case <-tick.C:
		}
	}
}

// descendants lists the processes below root.
func descendants(root int) []int {
	parents := map[int][]int{}
	for _, pid := range pids() {
		if ppid, ok := parentOf(pid); ok {
			parents[ppid] = append(parents[ppid], pid)
		}
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		for _, c := range parents[p] {
			out = append(out, c)
			walk(c)
		}
	}
	walk(root)
	return out
}

// pids lists the processes of the machine.
func pids() []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		if pid, err := strconv.Atoi(ent.Name()); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// parentOf is the parent of a live (not zombie) process.
func parentOf(pid int) (int, bool) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil || strings.Contains(string(status), "\nState:\tZ") {
		return 0, false
	}
	_, after, ok := strings.Cut(string(status), "\nPPid:\t")
	if !ok {
		return 0, false
	}
	ppid, err := strconv.Atoi(strings.SplitN(after, "\n", 2)[0])
	return ppid, err == nil
}

// vmRSS is a process's resident memory in KiB.
func vmRSS(pid int) int {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	_, after, ok := strings.Cut(string(status), "\nVmRSS:")
	if !ok {
		return 0
	}
	f := strings.Fields(after)
	if len(f) == 0 {
		return 0
	}
	kb, _ := strconv.Atoi(f[0])
	return kb
}
