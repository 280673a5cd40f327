package e2enet

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gotd/internal/engine/upkeep"
	"gotd/internal/git/repo"
)

// Bounds of the hostile-load test (issue 18). Every attack is a small
// form of one the issue measured; each is bounded in connections and
// time, and the whole test takes about a minute.
const (
	hostileBudgetKiB = 256 << 10 // for every gotd process, VmRSS and VmHWM
	hostileSample    = 50 * time.Millisecond
	hostileSettle    = 20 * time.Second // for gotd to be back to idle
	// The pace of the test's configuration: short, so that the
	// timing attacks end within seconds.
	hostileRequestTimeout = 6 * time.Second
	hostileDeadline       = 20 * time.Second
	hostileRateBytes      = 1024
	hostileRateInterval   = 2 * time.Second
	// Held connections: as many per front-end as it keeps open (twice
	// its 1024 clients), from one address, and on the unix socket.
	hostileHeldPerPort = 2100
	hostileUnixIdle    = 1000
	hostileListenLimit = 100 // threads of listen while the unix socket is flooded
	hostileFloodLines  = 1 << 20
	hostileBigBlob     = 8 << 20 // on branch "big", for the slow reader
	hostileDeltaResult = 384 << 20
	hostileGzipResult  = 256 << 20
	// hostileRefusal bounds the wait for a flood's refusal.
	hostileRefusal = 10 * time.Second
)

// The test's addresses: legitimate clients use git's default source
// address on loopback; the attacks come from others.
var (
	holderIP  = net.ParseIP("127.0.0.2") // holds connections before the handshake
	flooderIP = net.ParseIP("127.0.0.3") // floods requests, trickles, reads slowly
)

// outcome is one legitimate operation's result.
type outcome struct {
	what       string
	begin, end time.Time
	err        error
	out        string
}

type outcomes struct {
	mu   sync.Mutex
	list []outcome
}

func (o *outcomes) add(x outcome) {
	o.mu.Lock()
	o.list = append(o.list, x)
	o.mu.Unlock()
}

func (o *outcomes) all() []outcome {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.list)
}

// sample is the state of gotd's processes at one time.
type sample struct {
	at            time.Time
	maxKiB        int    // the largest VmRSS or VmHWM of any process
	maxWho        string // which process, "pid=role"
	listenThreads int
	alive         bool // the parent is running
}

type sampler struct {
	mu      sync.Mutex
	samples []sample
	// seen is when each process was first sampled: the peak a
	// process reached (VmHWM) is counted in the windows from then
	// on, for a process of its own: a long-lived one may have
	// reached it earlier.
	seen map[int]time.Time
}

// run samples root and its descendants every hostileSample until ctx
// ends.
func (sp *sampler) run(ctx context.Context, root int) {
	for ctx.Err() == nil {
		smp := sample{at: time.Now(), alive: syscall.Kill(root, 0) == nil}
		for _, pid := range gotdProcs(root) {
			st := procStatus(pid)
			if st == nil {
				continue
			}
			who := roleNames([]int{pid})
			if sp.seen[pid].IsZero() {
				sp.seen[pid] = smp.at
			}
			kib := st["VmRSS"]
			if perClient(who) {
				kib = max(kib, st["VmHWM"])
			}
			if kib > smp.maxKiB {
				smp.maxKiB, smp.maxWho = kib, who
			}
			if strings.Contains(who, "gotd: listen") {
				smp.listenThreads = st["Threads"]
			}
		}
		sp.mu.Lock()
		sp.samples = append(sp.samples, smp)
		sp.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(hostileSample):
		}
	}
}

// perClient reports whether a process, named by roleNames, serves one
// client: its peak (VmHWM) is that client's doing.
func perClient(who string) bool {
	for _, role := range []string{"auth", "session_read", "session_write", "repo_write"} {
		if strings.Contains(who, "gotd: "+role+`"`) {
			return true
		}
	}
	return false
}

// window returns the samples taken from begin to end.
func (sp *sampler) window(begin, end time.Time) []sample {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	var out []sample
	for _, s := range sp.samples {
		if !s.at.Before(begin) && !s.at.After(end) {
			out = append(out, s)
		}
	}
	return out
}

// procStatus reads the numeric fields of /proc/PID/status (kB values
// in KiB); nil if the process is gone.
func procStatus(pid int) map[string]int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil
	}
	m := map[string]int{}
	for line := range strings.Lines(string(data)) {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		if f := strings.Fields(v); len(f) > 0 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				m[k] = n
			}
		}
	}
	return m
}

// dialFrom connects to 127.0.0.1:port from the address ip; rcvbuf, if
// not 0, sets the socket's receive buffer before it connects.
func dialFrom(ip net.IP, port int, rcvbuf int) (*net.TCPConn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 5 * time.Second}
	if rcvbuf > 0 {
		d.Control = func(_, _ string, c syscall.RawConn) error {
			return c.Control(func(fd uintptr) {
				syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			})
		}
	}
	c, err := d.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// gitRequest is the request packet of git:// for repository test.
func gitRequest(service string, v2 bool) string {
	s := service + " /test\x00host=127.0.0.1\x00"
	if v2 {
		s += "\x00version=2\x00"
	}
	return pktLine(s)
}

// readSection reads pkt-lines from r up to the next flush and returns
// their payloads.
func readSection(r *bufio.Reader) ([]string, error) {
	var out []string
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return out, err
		}
		n, err := strconv.ParseUint(string(hdr[:]), 16, 16)
		if err != nil {
			return out, fmt.Errorf("bad pkt-line %q", hdr)
		}
		if n < 4 {
			if n == 0 {
				return out, nil
			}
			continue
		}
		p := make([]byte, n-4)
		if _, err := io.ReadFull(r, p); err != nil {
			return out, err
		}
		out = append(out, string(p))
	}
}

// TestHostileLoad runs small forms of the attacks of issue 18 against
// one gotd, one after the other, while legitimate clones run in a loop
// from another address over git://, HTTP and SSH, and pushes race v0
// HTTP fetches. Each attack is a subtest that fails if a legitimate
// clone failed while it ran, if a gotd process went over its memory
// budget (VmRSS or VmHWM over 256 MiB), if the daemon died, or for what
// the attack itself must not achieve; at the end no process, quarantine
// or lock file may be left behind.
func TestHostileLoad(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	if lim.Cur < 3*hostileHeldPerPort+1000 {
		t.Fatalf("descriptor limit %d: the test needs %d", lim.Cur, 3*hostileHeldPerPort+1000)
	}
	s := start(t, options{extraConn: fmt.Sprintf("\trequest timeout %ds\n\trequest deadline %ds\n\tminimum rate %d per %ds\n\tbody limit 1G\n",
		int(hostileRequestTimeout/time.Second), int(hostileDeadline/time.Second), hostileRateBytes, int(hostileRateInterval/time.Second))})
	test := filepath.Join(s.dir, "test.git")
	env := append(safeEnv(t), "GIT_TERMINAL_PROMPT=0", "GIT_SSL_CAINFO="+s.certFile)
	bigTip := addBigBranch(t, s, env)
	mainTip := strings.TrimSpace(run(t, "git", "--git-dir", test, "rev-parse", "main"))
	for _, role := range []string{"listen", "notify", "sshd", "gitd", "httpd"} {
		s.waitRole(role, 0)
	}
	s.warmUp()
	root := s.daemon.Process.Pid
	idle := gotdProcs(root)

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	sp := &sampler{seen: map[int]time.Time{}}
	var bg sync.WaitGroup
	bg.Go(func() { sp.run(ctx, root) })
	legit, v0 := &outcomes{}, &outcomes{}
	bg.Go(func() { legitLoop(ctx, s, env, legit) })
	bg.Go(func() { pushLoop(ctx, s, env, v0) })
	// The deadline attack lasts longer than the others: it runs
	// meanwhile, and is judged at the end.
	deadlineErr := make(chan error, 1)
	go func() { deadlineErr <- longConversation(s) }()

	// part runs one attack and judges what happened while it ran.
	part := func(name string, attack func(t *testing.T)) {
		t.Run(name, func(t *testing.T) {
			begin := time.Now()
			attack(t)
			end := time.Now()
			time.Sleep(2 * hostileSample)
			judge(t, begin, end, sp, legit)
		})
	}

	part("unix-idle", func(t *testing.T) {
		// Connections to the unix socket that send nothing: listen
		// must not spend a thread on each (at 10,000 the runtime
		// died, and the daemon with it).
		var conns []net.Conn
		for range hostileUnixIdle {
			c, err := net.Dial("unixpacket", s.socket)
			if err != nil {
				if len(conns) == 0 {
					t.Fatalf("the unix socket: %v", err)
				}
				break // refused once over a limit: as good as closed
			}
			conns = append(conns, c)
		}
		time.Sleep(3 * time.Second)
		for _, c := range conns {
			c.Close()
		}
		most := 0
		for _, smp := range sp.window(time.Now().Add(-4*time.Second), time.Now()) {
			most = max(most, smp.listenThreads)
		}
		t.Logf("%d idle connections to the unix socket: listen ran up to %d threads", len(conns), most)
		if most > hostileListenLimit {
			t.Errorf("listen ran %d threads for %d idle connections; want at most %d", most, len(conns), hostileListenLimit)
		}
	})

	part("preauth-idle", func(t *testing.T) {
		// One address holds as many connections before the handshake
		// as each front-end keeps open, opening new ones as the server
		// closes them; clones from another address must still work,
		// and the log must not say it once a connection.
		logBefore := strings.Count(s.log.String(), "\n")
		hctx, hstop := context.WithTimeout(ctx, 6*time.Second)
		defer hstop()
		var opened sync.WaitGroup
		var attempts, refused int64
		var mu sync.Mutex
		for _, port := range []int{s.gitPort, s.sshPort, s.httpPort} {
			opened.Go(func() {
				holdConnections(hctx, port, hostileHeldPerPort, &mu, &attempts, &refused)
			})
		}
		time.Sleep(2 * time.Second)
		probe(s, env, legit, "during preauth-idle")
		opened.Wait()
		lines := strings.Count(s.log.String(), "\n") - logBefore
		t.Logf("%d connections opened from %s, %d refused at connect; the log gained %d lines", attempts, holderIP, refused, lines)
		if int64(lines) > attempts/4 {
			t.Errorf("the log gained %d lines for %d connections: want it in summary", lines, attempts)
		}
	})

	part("idle-after-request", func(t *testing.T) {
		// Anonymous clients that send their request line and then
		// nothing, four per address from ten addresses: each holds a
		// session until the request timeout, not longer.
		var wg sync.WaitGroup
		var mu sync.Mutex
		var late []string
		for a := range 10 {
			for range 4 {
				wg.Go(func() {
					ip := net.IPv4(127, 0, 1, byte(a+1))
					c, err := dialFrom(ip, s.gitPort, 0)
					if err != nil {
						return
					}
					defer c.Close()
					begin := time.Now()
					c.Write([]byte(gitRequest("git-upload-pack", true)))
					c.SetReadDeadline(time.Now().Add(hostileRequestTimeout + 10*time.Second))
					_, err = io.Copy(io.Discard, c)
					// The session starts some time after the request
					// line (40 at once, on a loaded machine): give it
					// that time, less than the request deadline.
					if took := time.Since(begin); err != nil || took > 2*hostileRequestTimeout+3*time.Second {
						mu.Lock()
						late = append(late, fmt.Sprintf("%v: %v", took.Round(time.Millisecond), err))
						mu.Unlock()
					}
				})
			}
		}
		wg.Wait()
		if len(late) > 0 {
			t.Errorf("%d idle sessions outlived the request timeout (%v) by far: %v", len(late), hostileRequestTimeout, late[:min(len(late), 5)])
		}
	})

	part("ref-prefix-flood", func(t *testing.T) {
		var body bytes.Buffer
		body.WriteString(pktLine("command=ls-refs\n") + "0001")
		flood(t, s, "ls-refs", &body, func(i int) string { return pktLine(fmt.Sprintf("ref-prefix refs/heads/%08x\n", i)) })
	})

	part("haves-flood", func(t *testing.T) {
		var body bytes.Buffer
		body.WriteString(pktLine("command=fetch\n") + "0001" + pktLine("want "+mainTip+"\n"))
		var id [20]byte
		flood(t, s, "fetch", &body, func(int) string {
			rand.Read(id[:])
			return pktLine("have " + hex.EncodeToString(id[:]) + "\n")
		})
	})

	part("gzip-bomb", func(t *testing.T) {
		// A small gzip body that expands to many ref-prefix lines,
		// within the default body limit.
		var member bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&member, gzip.BestCompression)
		line := pktLine("ref-prefix refs/x\n")
		chunk := strings.Repeat(line, (8<<20)/len(line))
		zw.Write([]byte(chunk))
		zw.Close()
		var first bytes.Buffer
		zw, _ = gzip.NewWriterLevel(&first, gzip.BestCompression)
		zw.Write([]byte(pktLine("command=ls-refs\n") + "0001" + chunk))
		zw.Close()
		body := bytes.NewBuffer(first.Bytes())
		for range hostileGzipResult/len(chunk) - 1 {
			body.Write(member.Bytes())
		}
		t.Logf("gzip body of %d bytes expanding to about %d MiB", body.Len(), hostileGzipResult>>20)
		req, _ := http.NewRequest("POST", s.httpURL("", "test")+"/git-upload-pack", body)
		req.Header.Set("Content-Type", "application/x-git-upload-pack-request")
		req.Header.Set("Content-Encoding", "gzip")
		req.Header.Set("Git-Protocol", "version=2")
		begin := time.Now()
		resp, err := (&http.Client{Timeout: hostileRefusal, Transport: fromTransport(flooderIP)}).Do(req)
		if err != nil {
			t.Errorf("gzip bomb: %v after %v; want it refused for its size", err, time.Since(begin).Round(time.Millisecond))
			return
		}
		answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		resp.Body.Close()
		took := time.Since(begin)
		t.Logf("gzip bomb: status %d after %v, %q", resp.StatusCode, took.Round(time.Millisecond), answer[:min(len(answer), 120)])
		if resp.StatusCode != http.StatusOK {
			// Refused by the front-end: an HTTP error is the refusal.
			if resp.StatusCode != http.StatusRequestEntityTooLarge && resp.StatusCode != http.StatusBadRequest {
				t.Errorf("gzip bomb: status %d; want 413 or 400, or an ERR", resp.StatusCode)
			}
			return
		}
		checkRefusal(t, "gzip bomb", string(answer), took)
	})

	part("delta-bomb", func(t *testing.T) {
		// A pushed pack of a few KB holding one delta whose result is
		// hundreds of MB.
		pack := deltaBomb(hostileDeltaResult)
		body := pktLine(fmt.Sprintf("%s %s refs/heads/bomb\x00report-status ofs-delta\n", strings.Repeat("0", 40), mainTip)) + "0000" + string(pack)
		req, _ := http.NewRequest("POST", s.httpURL(rwAccount+":"+token, "test")+"/git-receive-pack", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-git-receive-pack-request")
		resp, err := (&http.Client{Timeout: 90 * time.Second, Transport: fromTransport(flooderIP)}).Do(req)
		if err != nil {
			t.Logf("delta bomb: %v", err)
			return
		}
		answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		resp.Body.Close()
		t.Logf("delta bomb of %d bytes: status %d, %q", len(pack), resp.StatusCode, answer)
		if bytes.Contains(answer, []byte("unpack ok")) {
			t.Errorf("a delta of %d MiB was accepted", hostileDeltaResult>>20)
		}
	})

	part("trickle-request", func(t *testing.T) {
		// A client that sends its request a byte at a time, well
		// under the minimum rate: cut within an interval or two, and
		// told why.
		c, err := dialFrom(flooderIP, s.gitPort, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte(gitRequest("git-upload-pack", true)))
		br := bufio.NewReader(c)
		if _, err := readSection(br); err != nil {
			t.Fatalf("advertisement: %v", err)
		}
		request := pktLine("command=ls-refs\n") + "0001" + strings.Repeat(pktLine("ref-prefix refs/heads/\n"), 20) + "0000"
		begin := time.Now()
		go func() {
			for i := range len(request) {
				if _, err := c.Write([]byte{request[i]}); err != nil {
					return
				}
				time.Sleep(250 * time.Millisecond)
			}
		}()
		c.SetReadDeadline(time.Now().Add(time.Minute))
		answer, err := io.ReadAll(br)
		took := time.Since(begin)
		t.Logf("trickled request: cut after %v with %q (%v)", took.Round(time.Millisecond), answer, err)
		if took > 4*hostileRateInterval {
			t.Errorf("a client sending 4 bytes a second was served for %v; want it cut within %v", took, 4*hostileRateInterval)
		}
		if !bytes.Contains(answer, []byte("ERR transfer too slow")) {
			t.Errorf("answer %q; want an ERR saying the transfer is too slow", answer)
		}
	})

	part("slow-reader", func(t *testing.T) {
		// A client that asks for a large pack and reads it a few
		// bytes at a time, through a small receive buffer:
		// session_read must let go of it within an interval or two.
		c, err := dialFrom(flooderIP, s.gitPort, 4096)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte(gitRequest("git-upload-pack", true)))
		br := bufio.NewReaderSize(c, 64)
		if _, err := readSection(br); err != nil {
			t.Fatalf("advertisement: %v", err)
		}
		c.Write([]byte(pktLine("command=fetch\n") + "0001" + pktLine("no-progress\n") + pktLine("want "+bigTip+"\n") + pktLine("done\n") + "0000"))
		begin := time.Now()
		buf := make([]byte, 64)
		got := 0
		// The kernel's buffers let bytes go in bursts: give the server
		// a few intervals to see how slow the client is.
		for time.Since(begin) < 5*hostileRateInterval {
			c.SetReadDeadline(time.Now().Add(time.Second))
			n, err := br.Read(buf)
			got += n
			if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		// Whatever the server sent before it let go is still in the
		// buffers: read it all now, fast.
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		rest, err := io.Copy(io.Discard, br)
		total := int64(got) + rest
		t.Logf("slow reader: %d bytes slowly, %d fast, then %v", got, rest, err)
		if total >= hostileBigBlob {
			t.Errorf("a client reading 256 bytes a second was sent the whole pack (%d bytes); want it cut", total)
		}
	})

	part("slow-reader-http", func(t *testing.T) {
		// The same over HTTP, by a client that reads nothing at all:
		// once session_read has let go, httpd must too, and not stay
		// blocked writing to the client.
		c, err := dialFrom(flooderIP, s.httpPort, 4096)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		body := pktLine("command=fetch\n") + "0001" + pktLine("no-progress\n") + pktLine("want "+bigTip+"\n") + pktLine("done\n") + "0000"
		fmt.Fprintf(c, "POST /test/git-upload-pack HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-git-upload-pack-request\r\n"+
			"Git-Protocol: version=2\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		begin := time.Now()
		local := c.LocalAddr().(*net.TCPAddr)
		for {
			st := tcpState(s.httpPort, local)
			if st != "ESTABLISHED" {
				t.Logf("the server's end of the connection is %s after %v", st, time.Since(begin).Round(time.Millisecond))
				break
			}
			if time.Since(begin) > 5*hostileRateInterval+15*time.Second {
				t.Errorf("httpd still holds a client that reads nothing after %v", time.Since(begin).Round(time.Millisecond))
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
	})

	part("deadline", func(t *testing.T) {
		// A client that keeps asking, fast enough, within one
		// connection: ended at the request deadline.
		select {
		case err := <-deadlineErr:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(2 * hostileDeadline):
			t.Errorf("a conversation went on past twice the request deadline (%v)", hostileDeadline)
		}
	})

	stop()
	bg.Wait()
	end := time.Now()

	t.Run("legit-clones", func(t *testing.T) {
		var times []time.Duration
		failed := 0
		for _, o := range legit.all() {
			if o.err != nil {
				if failed++; failed <= 5 {
					t.Errorf("%s at %v: %v\n%s", o.what, o.begin.Format("15:04:05.000"), o.err, o.out)
				}
				continue
			}
			times = append(times, o.end.Sub(o.begin))
		}
		slices.Sort(times)
		if len(times) == 0 {
			t.Fatalf("no legitimate clone succeeded (%d failed)", failed)
		}
		t.Logf("legitimate clones: %d ok, %d failed; p50 %v, p99 %v", len(times), failed,
			times[len(times)/2].Round(time.Millisecond), times[len(times)*99/100].Round(time.Millisecond))
	})

	t.Run("v0-http-fetch-during-push", func(t *testing.T) {
		// A push landing between a v0 HTTP fetch's advertisement and
		// its request must not fail the fetch (C Git's http-backend
		// accepts wants reachable from the references).
		failed, ok := 0, 0
		for _, o := range v0.all() {
			if o.err == nil {
				ok++
				continue
			}
			if failed++; failed <= 3 {
				t.Errorf("%s at %v: %v\n%s", o.what, o.begin.Format("15:04:05.000"), o.err, o.out)
			}
		}
		t.Logf("pushes and v0 HTTP fetches: %d ok, %d failed", ok, failed)
	})

	t.Run("leftovers", func(t *testing.T) {
		// Back to the idle processes, the same ones (none died and was
		// started again); no quarantine or lock file in the
		// repository.
		deadline := time.Now().Add(hostileSettle)
		for {
			now := gotdProcs(root)
			if slices.Equal(now, idle) {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%v after the attacks: gotd processes %s;\nidle: %s", hostileSettle, roleNames(now), roleNames(idle))
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		var left []string
		filepath.WalkDir(test, func(p string, d os.DirEntry, err error) error {
			// Upkeep's lock is a file kept for flock(2), never a leftover.
			if err == nil && d.Name() != upkeep.LockFile && d.Name() != repo.PruneLockFile && (strings.HasSuffix(p, ".lock") || strings.HasPrefix(d.Name(), "incoming-") || strings.HasPrefix(d.Name(), "tmp_")) {
				left = append(left, p)
			}
			return nil
		})
		if len(left) > 0 {
			t.Errorf("left in the repository: %v", left)
		}
	})

	t.Run("daemon-alive", func(t *testing.T) {
		if syscall.Kill(root, 0) != nil || s.daemon.ProcessState != nil {
			t.Fatalf("the daemon is gone")
		}
		for _, smp := range sp.window(time.Time{}, end) {
			if !smp.alive {
				t.Fatalf("the daemon was gone at %v", smp.at.Format("15:04:05.000"))
			}
		}
		out, err := loadGit(env, s.dir, "ls-remote", s.gitURL("test"))
		if err != nil {
			t.Fatalf("ls-remote after the attacks: %v\n%s", err, out)
		}
	})
	if t.Failed() {
		t.Logf("the daemon's warnings and errors:\n%s", logProblems(s.log.String()))
	}
}

// judge fails t for what happened from begin to end: a legitimate
// clone that failed, a gotd process over its budget, the daemon gone.
func judge(t *testing.T, begin, end time.Time, sp *sampler, legit *outcomes) {
	t.Helper()
	failed := 0
	for _, o := range legit.all() {
		if o.err == nil || o.end.Before(begin) || o.begin.After(end) {
			continue
		}
		if failed++; failed <= 3 {
			t.Errorf("legitimate %s failed meanwhile: %v\n%s", o.what, o.err, o.out)
		}
	}
	peak, who := 0, ""
	for _, smp := range sp.window(begin, end.Add(time.Second)) {
		if !smp.alive {
			t.Errorf("the daemon died at %v", smp.at.Format("15:04:05.000"))
			return
		}
		if smp.maxKiB > peak {
			peak, who = smp.maxKiB, smp.maxWho
		}
	}
	t.Logf("peak of a gotd process: %.1f MiB (%s)", mib(peak), who)
	if peak > hostileBudgetKiB {
		t.Errorf("%s reached %.1f MiB; the budget is %.0f MiB", who, mib(peak), mib(hostileBudgetKiB))
	}
}

// legitLoop clones branch main of "test" over git://, HTTP and SSH in
// turn, one at a time, until ctx ends.
func legitLoop(ctx context.Context, s *server, env []string, o *outcomes) {
	base := filepath.Join(s.dir, "clients", "legit")
	os.MkdirAll(base, 0o755)
	for i := 0; ctx.Err() == nil; i++ {
		probeOne(s, env, o, base, i, "")
	}
}

// probe runs one legitimate clone over each transport.
func probe(s *server, env []string, o *outcomes, note string) {
	base := filepath.Join(s.dir, "clients", "probe")
	os.MkdirAll(base, 0o755)
	for i := range 3 {
		probeOne(s, env, o, base, i, note)
	}
}

func probeOne(s *server, env []string, o *outcomes, base string, i int, note string) {
	url, what, e := s.gitURL("test"), "git:// clone", env
	switch i % 3 {
	case 1:
		url, what = s.httpURL("", "test"), "HTTP clone"
	case 2:
		url, what = s.sshURL(rwAccount, "test"), "SSH clone"
		e = append(slices.Clone(env), "GIT_SSH_COMMAND="+s.sshCommand(s.writerKey))
	}
	if note != "" {
		what += " " + note
	}
	dir := filepath.Join(base, fmt.Sprintf("c%d.git", i))
	os.RemoveAll(dir)
	begin := time.Now()
	out, err := loadGit(e, "", "clone", "-q", "--bare", "--single-branch", "--branch", "main", url, dir)
	o.add(outcome{what: what, begin: begin, end: time.Now(), err: err, out: out})
	os.RemoveAll(dir)
}

// pushLoop pushes a commit to main over HTTP, and meanwhile fetches
// main with protocol v0 over HTTP, until ctx ends.
func pushLoop(ctx context.Context, s *server, env []string, o *outcomes) {
	work := filepath.Join(s.dir, "clients", "pusher")
	fetcher := filepath.Join(s.dir, "clients", "v0fetch.git")
	pushURL := s.httpURL(rwAccount+":"+token, "test")
	if out, err := loadGit(env, "", "clone", "-q", pushURL, work); err != nil {
		o.add(outcome{what: "pusher's clone", begin: time.Now(), end: time.Now(), err: err, out: out})
		return
	}
	loadGit(env, "", "init", "-q", "--bare", fetcher)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			begin := time.Now()
			out, err := loadGit(env, work, "-c", "user.name=p", "-c", "user.email=p@example.org", "commit", "-q", "--allow-empty", "-m", fmt.Sprintf("push %d", i))
			if err == nil {
				out, err = loadGit(env, work, "push", "-q", pushURL, "HEAD:main")
			}
			o.add(outcome{what: "push", begin: begin, end: time.Now(), err: err, out: out})
			time.Sleep(200 * time.Millisecond)
		}
	})
	for ctx.Err() == nil {
		begin := time.Now()
		out, err := loadGit(env, fetcher, "-c", "protocol.version=0", "fetch", "-q", s.httpURL("", "test"), "+refs/heads/main:refs/heads/main")
		o.add(outcome{what: "v0 HTTP fetch", begin: begin, end: time.Now(), err: err, out: out})
	}
	wg.Wait()
}

// holdConnections keeps n connections from holderIP to port open,
// sending nothing, opening a new one for each the server closes, until
// ctx ends.
func holdConnections(ctx context.Context, port, n int, mu *sync.Mutex, attempts, refused *int64) {
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case sem <- struct{}{}:
		}
		c, err := dialFrom(holderIP, port, 0)
		mu.Lock()
		*attempts++
		if err != nil {
			*refused++
		}
		mu.Unlock()
		if err != nil {
			<-sem
			time.Sleep(10 * time.Millisecond)
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			defer c.Close()
			dl, _ := ctx.Deadline()
			c.SetReadDeadline(dl)
			io.Copy(io.Discard, c)
		})
	}
}

// flood sends body, then hostileFloodLines lines made by line, then a
// flush, over git:// v2 from flooderIP, and logs the answer.
func flood(t *testing.T, s *server, what string, body *bytes.Buffer, line func(int) string) {
	c, err := dialFrom(flooderIP, s.gitPort, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte(gitRequest("git-upload-pack", true)))
	br := bufio.NewReader(c)
	if _, err := readSection(br); err != nil {
		t.Fatalf("advertisement: %v", err)
	}
	begin := time.Now()
	c.SetDeadline(begin.Add(hostileRefusal))
	sent := make(chan error, 1)
	go func() {
		w := bufio.NewWriterSize(c, 256<<10)
		w.Write(body.Bytes())
		for i := range hostileFloodLines {
			if _, err := w.WriteString(line(i)); err != nil {
				sent <- err
				return
			}
		}
		w.WriteString("0000")
		sent <- w.Flush()
	}()
	answer, _ := io.ReadAll(io.LimitReader(br, 64<<20))
	took := time.Since(begin)
	c.Close()
	err = <-sent
	t.Logf("%s flood of %d lines: %d bytes answered in %v (%q), sending: %v", what, hostileFloodLines, len(answer), took.Round(time.Millisecond), answer[:min(len(answer), 80)], err)
	checkRefusal(t, what+" flood", string(answer), took)
}

// checkRefusal fails t unless answer, which took the time took, is the
// server refusing a request over its size limits: an ERR, sent before
// hostileRefusal, and not one about time (the request deadline or the
// minimum rate would end the flood too, later).
func checkRefusal(t *testing.T, what, answer string, took time.Duration) {
	t.Helper()
	_, errMsg, isErr := strings.Cut(answer, "ERR ")
	switch {
	case !isErr:
		t.Errorf("%s: answered %q after %v; want an ERR refusing it for its size", what, answer[:min(len(answer), 80)], took.Round(time.Millisecond))
	case strings.Contains(errMsg, "deadline") || strings.Contains(errMsg, "too slow") || strings.Contains(errMsg, "timeout"):
		t.Errorf("%s: ended by %q after %v; want it refused for its size", what, strings.TrimSpace(errMsg), took.Round(time.Millisecond))
	case took >= hostileRefusal:
		t.Errorf("%s: refused after %v; want within %v", what, took.Round(time.Millisecond), hostileRefusal)
	}
}

// longConversation asks for the references over one git:// v2
// connection, again and again, faster than the minimum rate requires,
// and returns an error unless the server ends it at about the request
// deadline.
func longConversation(s *server) error {
	c, err := dialFrom(flooderIP, s.gitPort, 0)
	if err != nil {
		return err
	}
	defer c.Close()
	begin := time.Now()
	c.Write([]byte(gitRequest("git-upload-pack", true)))
	br := bufio.NewReader(c)
	if _, err := readSection(br); err != nil {
		return fmt.Errorf("advertisement: %v", err)
	}
	request := []byte(pktLine("command=ls-refs\n") + "0001" + pktLine("ref-prefix refs/heads/main\n") + "0000")
	for time.Since(begin) < 2*hostileDeadline {
		c.SetDeadline(time.Now().Add(hostileDeadline))
		if _, err := c.Write(request); err != nil {
			break
		}
		lines, err := readSection(br)
		if err != nil {
			break
		}
		if len(lines) > 0 && strings.HasPrefix(lines[0], "ERR ") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	took := time.Since(begin)
	if took < hostileDeadline-time.Second || took > hostileDeadline+5*time.Second {
		return fmt.Errorf("a busy conversation ended after %v; want about the request deadline, %v", took.Round(time.Millisecond), hostileDeadline)
	}
	return nil
}

// fromTransport is an HTTP transport whose connections come from ip.
func fromTransport(ip net.IP) *http.Transport {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 5 * time.Second}
	return &http.Transport{DialContext: d.DialContext, DisableCompression: true}
}

// addBigBranch commits a random blob of hostileBigBlob bytes on branch
// "big" of the test repository and returns the commit.
func addBigBranch(t *testing.T, s *server, env []string) string {
	test := filepath.Join(s.dir, "test.git")
	blob := make([]byte, hostileBigBlob)
	rand.Read(blob)
	file := filepath.Join(s.dir, "big.bin")
	if err := os.WriteFile(file, blob, 0o644); err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(run(t, "git", "--git-dir", test, "hash-object", "-w", file))
	cmd := execGit(env, test, strings.NewReader("100644 blob "+id+"\tbig.bin\n"), "mktree")
	tree, err := cmd.Output()
	if err != nil {
		t.Fatalf("mktree: %v", err)
	}
	commit := strings.TrimSpace(run(t, "git", "--git-dir", test, "-c", "user.name=b", "-c", "user.email=b@example.org", "commit-tree", "-m", "big", strings.TrimSpace(string(tree))))
	run(t, "git", "--git-dir", test, "update-ref", "refs/heads/big", commit)
	if os.Geteuid() == 0 {
		run(t, "chown", "-R", rootDaemon, test)
	}
	os.Remove(file)
	return commit
}

// deltaBomb is a pack of a 64 KiB blob and one delta against it whose
// result is size bytes: copies of the whole blob, one byte each.
func deltaBomb(size int) []byte {
	base := make([]byte, 1<<16)
	rand.Read(base)
	var delta bytes.Buffer
	putVarint(&delta, len(base))
	putVarint(&delta, size)
	for range size / len(base) {
		delta.WriteByte(0x80) // copy from offset 0, size 0x10000
	}
	var pack bytes.Buffer
	pack.WriteString("PACK")
	binary.Write(&pack, binary.BigEndian, uint32(2))
	binary.Write(&pack, binary.BigEndian, uint32(2))
	baseOff := pack.Len()
	putEntryHeader(&pack, 3, len(base))
	deflate(&pack, base)
	deltaOff := pack.Len()
	putEntryHeader(&pack, 6, delta.Len())
	// The offset back to the base, in the pack's own encoding.
	off := deltaOff - baseOff
	enc := []byte{byte(off & 0x7f)}
	for off >>= 7; off > 0; off >>= 7 {
		off--
		enc = append([]byte{byte(0x80 | off&0x7f)}, enc...)
	}
	pack.Write(enc)
	deflate(&pack, delta.Bytes())
	sum := sha1.Sum(pack.Bytes())
	pack.Write(sum[:])
	return pack.Bytes()
}

func putVarint(b *bytes.Buffer, n int) {
	for n >= 0x80 {
		b.WriteByte(byte(n&0x7f) | 0x80)
		n >>= 7
	}
	b.WriteByte(byte(n))
}

func putEntryHeader(b *bytes.Buffer, typ, size int) {
	c := byte(typ<<4) | byte(size&0x0f)
	size >>= 4
	for size > 0 {
		b.WriteByte(c | 0x80)
		c = byte(size & 0x7f)
		size >>= 7
	}
	b.WriteByte(c)
}

func deflate(b *bytes.Buffer, data []byte) {
	zw := zlib.NewWriter(b)
	zw.Write(data)
	zw.Close()
}

// execGit is a git command on gitDir with env and stdin.
func execGit(env []string, gitDir string, stdin io.Reader, args ...string) *exec.Cmd {
	cmd := exec.Command("git", append([]string{"--git-dir", gitDir}, args...)...)
	cmd.Env, cmd.Stdin = env, stdin
	return cmd
}

// tcpState is the state (/proc/net/tcp) of the server's end of the
// connection from client to 127.0.0.1:port: "ESTABLISHED", "FIN_WAIT1"
// and so on, "gone" when there is none.
func tcpState(port int, client *net.TCPAddr) string {
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return "unknown"
	}
	addr := func(ip net.IP, port int) string {
		v4 := ip.To4()
		return fmt.Sprintf("%02X%02X%02X%02X:%04X", v4[3], v4[2], v4[1], v4[0], port)
	}
	local, remote := addr(net.IPv4(127, 0, 0, 1), port), addr(client.IP, client.Port)
	states := map[string]string{"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1", "05": "FIN_WAIT2",
		"06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING"}
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		if len(f) > 3 && f[1] == local && f[2] == remote {
			return states[f[3]]
		}
	}
	return "gone"
}
