package e2enet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// TestClaimedIdentity runs a gitd that claims the writer's account for
// every client, as a gitd taken over would: the parent refuses its
// clients (git:// establishes no account), logs it once per client,
// and the other front-ends go on.
func TestClaimedIdentity(t *testing.T) {
	t.Setenv("GOTD_TEST_GITD_ACCOUNT", rwAccount)
	s := start(t, options{testBuild: true})
	dir := s.clientDir("claim")
	for _, repo := range []string{"private", "test"} {
		out, err := s.git(dir, nil, "ls-remote", s.gitURL(repo))
		if err == nil {
			t.Fatalf("git:// claiming %s read %s:\n%s", rwAccount, repo, out)
		}
		if !strings.Contains(out, "permission denied") {
			t.Errorf("%s: got %q; want permission denied", repo, out)
		}
	}
	// The parent logs the refusal as the client hears of it: under
	// load the line may come a little after.
	s.waitLog("identity refused", 1)
	if got := strings.Count(s.log.String(), "identity refused"); got != 2 {
		t.Errorf("%d log lines of refused identities; want 2 (one per client)", got)
	}
	s.mustGit(dir, nil, "ls-remote", s.httpURL(rwAccount+":"+token, "private"))
	s.mustGit(dir, []string{"GIT_SSH_COMMAND=" + s.sshCommand(s.writerKey)}, "ls-remote", s.sshURL(rwAccount, "private"))
}

// TestAuthFailures sends wrong passwords from 127.0.0.2 until its
// failures are refused without a verification (no auth process
// started), while 127.0.0.1 still authenticates.
func TestAuthFailures(t *testing.T) {
	s := start(t, options{debug: true}) // auth processes are logged as they start
	get := func(from, user, secret string) int {
		t.Helper()
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
		c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, s.httpURL("", "private")+"/info/refs?service=git-upload-pack", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth(user, secret)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("from %s: %v", from, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	verifiers := func() int { return strings.Count(s.log.String(), "msg=started role=parent child=auth") }
	const burst = 10 // parent.failureBurst
	for i := 0; i < burst; i++ {
		user := rwAccount
		if i%2 == 1 {
			user = "ghost" // no such account: failures count the same
		}
		if got := get("127.0.0.2", user, "wrong"); got != http.StatusUnauthorized {
			t.Fatalf("failure %d: status %d; want 401", i, got)
		}
	}
	if got := verifiers(); got != burst {
		t.Errorf("%d auth processes for %d failures; want one each", got, burst)
	}
	for _, secret := range []string{"wrong", password} {
		if got := get("127.0.0.2", rwAccount, secret); got != http.StatusTooManyRequests {
			t.Errorf("over the limit, with %q: status %d; want 429", secret, got)
		}
	}
	if got := verifiers(); got != burst {
		t.Errorf("%d auth processes after the limit; want still %d: refused without verification", got, burst)
	}
	if got := get("127.0.0.1", rwAccount, password); got != http.StatusOK {
		t.Errorf("from another address: status %d; want 200", got)
	}
	if got := get("127.0.0.1", rwAccount, token); got != http.StatusOK {
		t.Errorf("from another address, token: status %d; want 200", got)
	}
	if !strings.Contains(s.log.String(), "too many failures") {
		t.Error("no log line of the failures refused")
	}
}

// TestAuthCost times failed HTTP authentications of an unknown account,
// a token-only account and a password account (bcrypt's default cost):
// each is one comparison at that cost, so their medians are close; it
// was 64.6 ms, 0.8 ms and 2.3 ms. Each sample comes from an address of
// its own, below the failure limit.
func TestAuthCost(t *testing.T) {
	if testing.Short() {
		t.Skip("times bcrypt at its default cost")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte("another password"), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("bot token"))
	s := start(t, options{
		extraTop:     "account bot {\n}\naccount slow {\n}",
		extraSecrets: fmt.Sprintf("token bot sha256:%s\npassword slow '%s'\n", hex.EncodeToString(sum[:]), hash),
	})
	const samples = 15
	kinds := []string{"ghost", "bot", "slow"}
	times := map[string][]time.Duration{}
	for i := 0; i < samples; i++ {
		from := fmt.Sprintf("127.0.1.%d", i+1)
		for _, user := range kinds {
			d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
			c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
			req, err := http.NewRequest(http.MethodGet, s.httpURL("", "private")+"/info/refs?service=git-upload-pack", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.SetBasicAuth(user, "wrong")
			t0 := time.Now()
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			times[user] = append(times[user], time.Since(t0))
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("%s from %s: status %d; want 401", user, from, resp.StatusCode)
			}
		}
	}
	median := map[string]time.Duration{}
	for _, user := range kinds {
		ts := times[user]
		slices.Sort(ts)
		median[user] = ts[len(ts)/2]
	}
	t.Logf("medians of %d: unknown %v, token-only %v, password %v", samples, median["ghost"], median["bot"], median["slow"])
	lo, hi := slices.Min(slices.Collect(maps.Values(median))), slices.Max(slices.Collect(maps.Values(median)))
	if hi > 3*lo {
		t.Errorf("medians differ by more than 3x: %v", median)
	}
}

// TestAuthConcurrency sends wrong passwords of an account at bcrypt's
// default cost from 8 threads (an address each, below the failure
// limit): at most half the CPUs verify at once, the others wait their
// turn, and every request is answered 401, or 503 when it waited longer
// than auth's time limit (on a loaded machine).
func TestAuthConcurrency(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("another password"), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	s := start(t, options{
		debug:        true, // the parent logs each verification as it starts
		extraTop:     "account slow {\n}",
		extraConn:    "limit user slow 64", // httpd admits every request
		extraSecrets: fmt.Sprintf("password slow '%s'\n", hash),
	})
	const threads, each = 8, 4
	codes := make(chan int, threads*each)
	var wg sync.WaitGroup
	for i := 0; i < threads; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(fmt.Sprintf("127.0.3.%d", i+1))}, Timeout: 5 * time.Second}
			c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
			for j := 0; j < each; j++ {
				req, _ := http.NewRequest(http.MethodGet, s.httpURL("", "private")+"/info/refs?service=git-upload-pack", nil)
				req.SetBasicAuth("slow", "wrong")
				resp, err := c.Do(req)
				if err != nil {
					codes <- 0
					continue
				}
				resp.Body.Close()
				codes <- resp.StatusCode
			}
		}()
	}
	wg.Wait()
	close(codes)
	failed := 0
	for code := range codes {
		switch code {
		case http.StatusUnauthorized:
			failed++
		case http.StatusServiceUnavailable:
		default:
			t.Errorf("status %d; want 401 or 503", code)
		}
	}
	if failed == 0 {
		t.Error("no request was verified")
	}
	bound := max(1, runtime.NumCPU()/2) // parent.maxVerifying
	most, waited, n := 0, false, 0
	for _, line := range strings.Split(s.log.String(), "\n") {
		if !strings.Contains(line, "msg=verifying") {
			continue
		}
		n++
		var running, waiting int
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "running="); ok {
				running, _ = strconv.Atoi(v)
			}
			if v, ok := strings.CutPrefix(f, "waiting="); ok {
				waiting, _ = strconv.Atoi(v)
			}
		}
		most = max(most, running)
		waited = waited || waiting > 0
	}
	if n < failed {
		t.Errorf("%d verifications for %d failures", n, failed)
	}
	t.Logf("%d requests: %d verified, %d verifications started, at most %d at once", threads*each, failed, n, most)
	if most > bound {
		t.Errorf("%d verifications at once; want at most %d", most, bound)
	}
	if !waited {
		t.Error("no client waited for a verifier: the test did not load the server")
	}
}

// TestAccountLockout: wrong passwords sent in an account's name from
// other addresses do not take that account's places, so that its real
// client is served meanwhile (issue 19: 73 addresses sending wrong
// passwords for alice kept the real alice out with 503, since a claim
// counted as the account's before its secret was checked).
func TestAccountLockout(t *testing.T) {
	s := start(t, options{extraConn: "limit user " + rwAccount + " 2"})
	get := func(from, secret string) (int, error) {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
		c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
		req, err := http.NewRequest(http.MethodGet, s.httpURL("", "private")+"/info/refs?service=git-upload-pack", nil)
		if err != nil {
			return 0, err
		}
		req.SetBasicAuth(rwAccount, secret)
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	// The real client's secret is checked once (and remembered).
	if code, err := get("127.0.0.1", password); code != http.StatusOK {
		t.Fatalf("before: status %d, %v; want 200", code, err)
	}
	// Eight addresses, two requests at a time each, wrong passwords,
	// for a few seconds.
	stop := time.Now().Add(4 * time.Second)
	var wg sync.WaitGroup
	var sent atomic.Int64
	for i := range 8 {
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(stop) {
					get(fmt.Sprintf("127.0.5.%d", i+1), "wrong")
					sent.Add(1)
				}
			}()
		}
	}
	time.Sleep(500 * time.Millisecond)
	refused := 0
	for range 6 {
		code, err := get("127.0.0.1", password)
		if code != http.StatusOK {
			refused++
			t.Logf("real client: status %d, %v", code, err)
		}
		time.Sleep(300 * time.Millisecond)
	}
	wg.Wait()
	if refused > 0 {
		t.Errorf("the real client was refused %d of 6 times while %d wrong passwords were sent in its name; want 0", refused, sent.Load())
	}
}
