package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// result is one run's figures.
type result struct {
	wall, cpu time.Duration
	rss       int   // KiB, all the server's processes together
	bytes     int64 // what the client received, or the server stored
	failures  int
}

// cpuOf is the CPU time of a reaped process and its reaped descendants.
func cpuOf(cmd *exec.Cmd) time.Duration {
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// run runs a scenario once against s: its preparation, then a fresh
// server, the measured client, and the server's stop.
func run(s *server, sc scenario) result {
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
	dir := sc.before(s)
	cmd := s.start()
	stop := make(chan struct{})
	peak := make(chan int)
	go func() { peak <- sampleRSS(cmd.Process.Pid, stop) }()
	n := max(sc.repeat, 1)
	var wall time.Duration
	failures := 0
	for i := range n {
		if i > 0 {
			dir = sc.before(s) // the server keeps running
		}
		begin := time.Now()
		failures += sc.client(s, dir)
		wall += time.Since(begin)
	}
	close(stop)
	rss := <-peak
	s.stop(cmd)
	cpu := max(cpuOf(cmd)-s.idle, 0) / time.Duration(n)
	return result{wall: wall / time.Duration(n), cpu: cpu, rss: rss, bytes: sc.bytes(dir), failures: failures}
}

// median runs a scenario n times and returns the median of each
// figure, and the failures of all runs.
func median(s *server, sc scenario, n int) result {
	var rs []result
	for range n {
		rs = append(rs, run(s, sc))
	}
	return medianOf(rs)
}

// medianOf is the median of each figure of rs, and their failures.
func medianOf(rs []result) result {
	failures := 0
	for _, r := range rs {
		failures += r.failures
	}
	mid := func(key func(r result) int64) int64 {
		v := make([]int64, len(rs))
		for i, r := range rs {
			v[i] = key(r)
		}
		sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
		return v[len(v)/2]
	}
	return result{
		wall:     time.Duration(mid(func(r result) int64 { return int64(r.wall) })),
		cpu:      time.Duration(mid(func(r result) int64 { return int64(r.cpu) })),
		rss:      int(mid(func(r result) int64 { return int64(r.rss) })),
		bytes:    mid(func(r result) int64 { return r.bytes }),
		failures: failures,
	}
}

// sampleRSS sums the memory of root's process tree every 10 ms until
// stop closes, and returns the peak in KiB. Each process counts its
// proportional set size (PSS: resident pages, those shared with other
// processes divided among them), so that the sum is the memory the
// tree really holds: the code of a binary that several processes run
// (gotd's roles; git daemon, upload-pack and pack-objects) is counted
// once, not once per process. Where the kernel has no PSS, resident
// memory (VmRSS) is summed.
func sampleRSS(root int, stop chan struct{}) int {
	peak := 0
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		total := 0
		for _, pid := range tree(root) {
			if pss, ok := pssOf(pid); ok {
				total += pss
			} else {
				total += statusField(pid, "VmRSS:")
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

// tree lists root and its descendants (Linux /proc; empty elsewhere).
func tree(root int) []int {
	kids := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid := statusField(pid, "PPid:")
		kids[ppid] = append(kids[ppid], pid)
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, kids[out[i]]...)
	}
	return out
}

// pssOf reads a process's proportional set size in KiB.
func pssOf(pid int) (int, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, false
	}
	_, after, ok := bytes.Cut(b, []byte("\nPss:"))
	if !ok {
		return 0, false
	}
	f := strings.Fields(string(after))
	if len(f) == 0 {
		return 0, false
	}
	n, err := strconv.Atoi(f[0])
	return n, err == nil
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

// lsRemoteRate runs n ls-remote commands one after the other against
// url and returns connections per second.
func lsRemoteRate(s *server, url string, env []string, n int) float64 {
	cmd := s.start()
	defer s.stop(cmd)
	begin := time.Now()
	for range n {
		gitIn("", env, "ls-remote", url).run()
	}
	return float64(n) / time.Since(begin).Seconds()
}

// treeCPU is the CPU time (user and system) spent by root and its
// descendants, the reaped ones included, from /proc/PID/stat (Linux; 0
// elsewhere). A process reaped between the listing and the reading of
// its parent may be missed or counted twice: an error of one process.
func treeCPU(root int) time.Duration {
	var ticks int64
	for _, pid := range tree(root) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// Fields after the command's name, which may hold spaces:
		// state is the first, utime, stime, cutime, cstime the 12th
		// to the 15th.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 15 {
			continue
		}
		for _, s := range f[11:15] {
			n, _ := strconv.ParseInt(s, 10, 64)
			ticks += n
		}
	}
	// /proc counts in USER_HZ, 100 a second on Linux.
	return time.Duration(ticks) * (time.Second / 100)
}
