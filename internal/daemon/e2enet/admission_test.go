package e2enet

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Checks of admission (issue 18): callers that hold connections
// without a request cost listen and the front-ends no thread each, are
// capped per source, and are logged in summary; listen is restarted;
// gotctl stop keeps to its deadline.

// gotshEnv is the environment in which git reaches the daemon's
// socket through gotsh, run as an OpenSSH login shell would run it
// (ssh://gotd/<repo> URLs).
func (s *server) gotshEnv() []string {
	script := filepath.Join(s.dir, "gotsh-as-ssh")
	if _, err := os.Stat(script); err != nil {
		write(s.t, script, fmt.Sprintf("#!/bin/sh\nGOTD_UNIX_SOCKET='%s' exec '%s' -c \"$2\"\n", s.socket, filepath.Join(s.bin, "gotsh")), 0o755)
	}
	return []string{"GIT_SSH=" + script, "GIT_SSH_VARIANT=simple"}
}

// threads is the number of threads of process pid.
func threads(t testing.TB, pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	t.Fatalf("no thread count for %d", pid)
	return 0
}

// dialSocket opens n connections to the daemon's socket that send
// nothing; they are closed when the test ends.
func (s *server) dialSocket(n int) []int {
	s.t.Helper()
	fds := make([]int, 0, n)
	s.t.Cleanup(func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	})
	for range n {
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			s.t.Fatal(err)
		}
		if err := unix.Connect(fd, &unix.SockaddrUnix{Name: s.socket}); err != nil {
			unix.Close(fd)
			s.t.Fatalf("connection %d of %d: %v", len(fds)+1, n, err)
		}
		fds = append(fds, fd)
	}
	return fds
}

// socketClosed tells whether the daemon has closed fd (its end reads
// the end of the connection within wait).
func socketClosed(fd int, wait time.Duration) bool {
	p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	if n, _ := unix.Poll(p, int(wait/time.Millisecond)); n == 0 {
		return false
	}
	var b [64]byte
	n, _, err := unix.Recvfrom(fd, b[:], unix.MSG_DONTWAIT)
	return n == 0 && err == nil || err == unix.ECONNRESET
}

// openFDs is the number of descriptors process pid has open.
func openFDCount(pid int) int {
	e, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(e)
}

// countLines is the number of lines of log that hold s.
func countLines(log, s string) int {
	n := 0
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

// TestSocketFlood holds 3,000 connections to the unix socket that send
// nothing: listen waits for them in the poller, with a few threads
// (before, one blocked thread each: 10,000 ended the daemon), closes at
// once those over the total cap (the user holds them all, far more than
// its share) and logs them in summary, and the daemon serves gotctl and
// a clone through gotsh meanwhile.
func TestSocketFlood(t *testing.T) {
	// maxThreads is many more than listen needs (a few) and many fewer
	// than it had (one per caller).
	const held, over, maxThreads = 3000, 50, 32
	s := start(t, options{extraConn: "limit pending 3000\n\tlimit pending user 100", extraTest: "permit ro " + currentUser(t)})
	listen := s.waitRole("listen", 0)
	idle, idleRSS := threads(t, listen), vmRSS(listen)
	base := openFDCount(listen)

	began := time.Now()
	fds := s.dialSocket(held)
	deadline := time.Now().Add(5 * time.Second)
	for openFDCount(listen) < base+held {
		if time.Now().After(deadline) {
			t.Fatalf("listen holds %d descriptors; want %d and more", openFDCount(listen), base+held)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("%d callers held in %v; listen's threads: %d idle, %d now; its memory: %d KiB idle, %d KiB now",
		held, time.Since(began).Round(time.Millisecond), idle, threads(t, listen), idleRSS, vmRSS(listen))
	if n := threads(t, listen); n > maxThreads {
		t.Errorf("listen has %d threads with %d callers waiting; want at most %d", n, held, maxThreads)
	}
	for i, fd := range fds[:100] {
		if socketClosed(fd, 0) {
			t.Fatalf("caller %d under the caps: got closed; want held", i)
		}
	}
	extra := s.dialSocket(over)
	for i, fd := range extra {
		if !socketClosed(fd, 2*time.Second) {
			t.Fatalf("caller %d over the cap: got held; want closed at once", held+i)
		}
	}

	// With places free again, the socket serves.
	for _, fd := range fds[:10] {
		unix.Close(fd)
	}
	fds = fds[10:]
	// listen learns of the closed places as it polls them: until then
	// a new caller from the same uid is still over the cap.
	var out string
	var err error
	for try := 0; try < 50; try++ {
		if out, err = s.gotctl("info"); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil || !strings.Contains(out, "gotd PID") {
		t.Errorf("gotctl info during the flood: %v\n%s", err, out)
	}
	dir := s.clientDir("flood")
	cloneStart := time.Now()
	s.mustGit(dir, s.gotshEnv(), "clone", "-q", "--bare", "ssh://gotd/test", "r.git")
	t.Logf("clone through gotsh during the flood: %v", time.Since(cloneStart).Round(time.Millisecond))
	fsck(t, filepath.Join(dir, "r.git"))
	if n := threads(t, listen); n > maxThreads {
		t.Errorf("listen has %d threads after the clone; want at most %d", n, maxThreads)
	}
	if p := children(t, s.daemon.Process.Pid)["listen"]; len(p) != 1 || p[0] != listen {
		t.Errorf("listen processes %v; want the same one, %d", p, listen)
	}
	if n := countLines(s.log.String(), "too many pending connections from one source"); n < 1 || n > 2 {
		t.Errorf("%d log lines of refusals for %d callers over the cap; want 1 or 2 (a summary)", n, over)
	}
}

// holdTCP opens n connections from the loopback address from to port
// that send nothing; they are closed when the test ends.
func holdTCP(t *testing.T, from string, port, n int) []net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	var cs []net.Conn
	t.Cleanup(func() {
		for _, c := range cs {
			c.Close()
		}
	})
	for range n {
		c, err := d.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatalf("connection %d to port %d: %v", len(cs)+1, port, err)
		}
		cs = append(cs, c)
	}
	return cs
}

// closedConns counts the connections the server has closed within a
// short wait: each read to its end (an SSH server sends its version
// first) without blocking. (Reads with a deadline, one goroutine per
// connection, counted closed connections as open on a loaded machine:
// a goroutine run after its deadline fails before it reads.)
func closedConns(cs []net.Conn) int {
	time.Sleep(300 * time.Millisecond)
	n := 0
	buf := make([]byte, 4096)
	for _, c := range cs {
		if isClosed(c, buf) {
			n++
		}
	}
	return n
}

// isClosed reads what c holds without waiting: it is closed if the
// reads reach the end of input or a reset, open if one would block.
func isClosed(c net.Conn, buf []byte) bool {
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return true
	}
	closed := false
	err = rc.Read(func(fd uintptr) bool {
		for {
			n, _, err := unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
			switch {
			case err == unix.EINTR:
				continue
			case err == unix.EAGAIN:
				return true
			case err != nil || n == 0:
				closed = true
				return true
			}
		}
	})
	return closed || err != nil
}

// TestPendingPerAddress holds 2,100 idle connections from 127.0.0.2
// to each front-end, more than its 64 pending places (and the 2,048
// open connections a front-end allows): each keeps 64, closes the rest
// at once and logs them in summary (before, the limit counted only
// after the request line: 2,060 idle sockets from one address locked
// everyone out, with a log line each). Clients from other addresses
// then take the places of 127.0.0.2's oldest, since it holds more than
// its share of 16, and are served: HTTP connections kept alive between
// requests, a flood of connections that close at once (logged in
// summary too), and clones over every front-end.
func TestPendingPerAddress(t *testing.T) {
	const perAddress, total, n = 16, 64, 2100
	s := start(t, options{extraConn: fmt.Sprintf("limit pending %d\n\tlimit pending address %d\n\thandshake timeout 30", total, perAddress)})
	var httpHeld []net.Conn
	for _, fe := range []struct {
		role string
		port int
	}{{"gitd", s.gitPort}, {"sshd", s.sshPort}, {"httpd", s.httpPort}} {
		cs := holdTCP(t, "127.0.0.2", fe.port, n)
		time.Sleep(200 * time.Millisecond)
		if got := closedConns(cs); got != n-total {
			t.Errorf("%s: %d of %d idle connections from one address closed; want %d (all but the places)", fe.role, got, n, n-total)
		}
		httpHeld = cs
	}
	// HTTP connections kept alive after a request are pending again:
	// those of 127.0.0.4 stay open, each in the place of one of
	// 127.0.0.2's, which holds more than its share. (A connection is
	// counted again only once the server has written its answer.)
	before := closedConns(httpHeld)
	served := 0
	var kept []net.Conn
	for range perAddress + 4 {
		c := holdTCP(t, "127.0.0.4", s.httpPort, 1)[0]
		fmt.Fprintf(c, "GET /nothing/here HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		served++
		if br.Buffered() == 0 {
			kept = append(kept, c)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if open := len(kept) - closedConns(kept); served != perAddress+4 || open != len(kept) {
		t.Errorf("%d of %d HTTP connections from another address served, %d of %d kept open after their request; want all", served, perAddress+4, open, len(kept))
	}
	if evicted := closedConns(httpHeld) - before; evicted < len(kept) {
		t.Errorf("%d of 127.0.0.2's idle connections closed for %d kept alive from another address; want at least as many", evicted, len(kept))
	}

	// Connections closed after their request give their place back:
	// more of them than the cap, one after the other, are all served.
	for i := range 2 * perAddress {
		c := holdTCP(t, "127.0.0.5", s.httpPort, 1)[0]
		fmt.Fprintf(c, "GET /nothing/here HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("HTTP connection %d closed after its request: %v", i, err)
		}
		resp.Body.Close()
		io.Copy(io.Discard, c) // until the server has closed it
		c.Close()
	}

	// A flood of connections that close at once, from a third address:
	// each is a bad request or a failed handshake, logged in summary.
	const flood = 500
	for _, port := range []int{s.gitPort, s.sshPort, s.httpPort} {
		for _, c := range holdTCP(t, "127.0.0.3", port, flood) {
			c.Close()
		}
	}
	env := []string{"GIT_SSH_COMMAND=" + s.sshCommand(s.readerKey)}
	for _, url := range []string{s.gitURL("test"), s.httpURL("", "test"), s.sshURL(roAccount, "test")} {
		dir := s.clientDir("other-address")
		start := time.Now()
		s.mustGit(dir, env, "clone", "-q", "--bare", url, "r.git")
		fsck(t, filepath.Join(dir, "r.git"))
		t.Logf("clone of %s from another address: %v", url, time.Since(start).Round(time.Millisecond))
		os.RemoveAll(dir)
	}
	log := s.log.String()
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "too many pending connections from one source") {
			t.Log(line)
		}
	}
	if got := countLines(log, "too many pending connections from one source"); got < 3 || got > 12 {
		t.Errorf("%d log lines of refusals and evictions for more than %d connections; want 3 to 12 (a summary per front-end and interval)", got, 3*(n-total))
	}
	for _, addr := range []string{"127.0.0.2", "127.0.0.3"} {
		if got := countLines(log, addr); got > 15 {
			t.Errorf("%d log lines name %s; want at most 15:\n%s", got, addr, log)
		}
	}
}

// TestListenRestart kills listen with SIGKILL while a client of the
// socket is connected: the parent starts it again (before, the daemon
// ended), the client goes on and still counts against its user's
// limit, and the socket and the front-ends serve.
func TestListenRestart(t *testing.T) {
	me := currentUser(t)
	s := start(t, options{extraConn: "limit user " + me + " 1", extraTest: "permit ro " + me})
	old := s.waitRole("listen", 0)

	// A client of the socket, waiting in its session.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	held := exec.CommandContext(ctx, filepath.Join(s.bin, "gotsh"), "-c", "git-upload-pack 'test'")
	held.Env = append(os.Environ(), "GOTD_UNIX_SOCKET="+s.socket)
	stdin, err := held.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := held.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := held.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := stdout.Read(make([]byte, 4)); err != nil {
		t.Fatalf("no advertisement for the held client: %v", err)
	}

	syscall.Kill(old, syscall.SIGKILL)
	s.waitRole("listen", old)
	if s.daemon.ProcessState != nil {
		t.Fatalf("the daemon exited with listen")
	}
	if out, err := s.gotctl("info"); err != nil || !strings.Contains(out, "number of connected clients: 1") {
		t.Errorf("gotctl info after the restart: %v; want the held client still connected\n%s", err, out)
	}
	dir := s.clientDir("listen-restart")
	env := s.gotshEnv()
	if out, err := s.git(dir, env, "ls-remote", "ssh://gotd/test"); err == nil || !strings.Contains(out, "too many connections from this user") {
		t.Errorf("second client of a user with limit 1: %v; want refused for the user's limit\n%s", err, out)
	}
	stdin.Close()
	io.Copy(io.Discard, stdout)
	held.Wait()

	// The held client's place is free once the parent says it is gone.
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := s.git(dir, env, "clone", "-q", "--bare", "ssh://gotd/test", "r.git")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("clone through gotsh after the restart: %v\n%s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	fsck(t, filepath.Join(dir, "r.git"))
	for _, url := range []string{s.gitURL("test"), s.httpURL("", "test")} {
		d := s.clientDir("listen-restart-net")
		s.mustGit(d, nil, "clone", "-q", "--bare", url, "r.git")
		os.RemoveAll(d)
	}
	if !strings.Contains(s.log.String(), "listen exited: starting it again") {
		t.Errorf("the log does not say listen was started again")
	}
}

// TestStopDeadline runs gotctl stop while a git:// client trickles a
// byte at a time: the daemon waits for it until the shutdown timeout,
// then ends it and exits (before, gotctl stop waited as long as the
// client did).
func TestStopDeadline(t *testing.T) {
	const timeout = 2 * time.Second
	s := start(t, options{extraConn: "shutdown timeout 2"})
	c := holdTCP(t, "127.0.0.1", s.gitPort, 1)[0]
	req := "git-upload-pack /test\x00host=127.0.0.1\x00"
	fmt.Fprintf(c, "%04x%s", len(req)+4, req)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		// A want line, a byte at a time.
		for _, b := range []byte("0032want 0123456789012345678901234567890123456789\n") {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			if _, err := c.Write([]byte{b}); err != nil {
				return
			}
		}
	}()
	go io.Copy(io.Discard, c)
	waitInfo(t, s, "number of connected clients: 1")

	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(s.bin, "gotctl"), "-f", s.socket, "stop").CombinedOutput()
	took := time.Since(began)
	t.Logf("gotctl stop with a trickling client took %v", took.Round(time.Millisecond))
	if err != nil {
		t.Fatalf("gotctl stop: %v after %v\n%s", err, took.Round(time.Millisecond), out)
	}
	// The client is given the timeout, then SIGTERM (SIGKILL 5 s on).
	if took < timeout || took > timeout+10*time.Second {
		t.Errorf("gotctl stop took %v; want between %v and %v", took.Round(time.Millisecond), timeout, timeout+10*time.Second)
	}
	done := make(chan error, 1)
	go func() { done <- s.daemon.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the daemon did not exit after gotctl stop")
	}
	if !strings.Contains(s.log.String(), "shutdown timeout: ending the clients still connected") {
		t.Errorf("the log does not say the remaining clients were ended")
	}
}
