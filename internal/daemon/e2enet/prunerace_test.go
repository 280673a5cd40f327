package e2enet

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/sha1"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// prunePause is how long the test build of gotadmin holds cleanup
// between its last reachability walk and its removal of files
// ($GOTD_TEST_PRUNE_PAUSE): the window the raw pushes aim at.
const prunePause = 600 * time.Millisecond

var buildPauseOnce struct {
	sync.Once
	dir string
	err error
	out []byte
}

// buildPauseGotadmin builds gotadmin with the gotdtest tag, whose
// cleanup pauses as $GOTD_TEST_PRUNE_PAUSE says, once per test binary.
func buildPauseGotadmin(t testing.TB) string {
	buildPauseOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gotd-e2enet-pausebin-")
		if err != nil {
			buildPauseOnce.err = err
			return
		}
		buildPauseOnce.dir = dir
		os.Chmod(dir, 0o755)
		cmd := exec.Command("go", "build", "-tags", "gotdtest", "-o", dir+"/", "gotd/cmd/gotadmin")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		buildPauseOnce.out, buildPauseOnce.err = cmd.CombinedOutput()
	})
	if buildPauseOnce.err != nil {
		t.Fatalf("build: %v\n%s", buildPauseOnce.err, buildPauseOnce.out)
	}
	return filepath.Join(buildPauseOnce.dir, "gotadmin")
}

// rawPush pushes a pack that holds only commit to ref over smart HTTP,
// as a client does that leaves out the parent because a reference it
// saw reached it, and returns the report-status line about ref ("ok
// <ref>" or "ng <ref> <reason>").
func rawPush(ctx context.Context, url, commit, ref string, pack []byte) (string, error) {
	line := fmt.Sprintf("%s %s %s\x00report-status agent=prunerace\n", strings.Repeat("0", 40), commit, ref)
	body := append([]byte(fmt.Sprintf("%04x%s0000", len(line)+4, line)), pack...)
	req, err := http.NewRequestWithContext(ctx, "POST", url+"/git-receive-pack", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.SetBasicAuth(rwAccount, password)
	req.Header.Set("Content-Type", "application/x-git-receive-pack-request")
	// A connection of its own: a POST sent on a kept-alive connection
	// the server was closing fails with EOF, and Go's client does not
	// send a POST again (CI saw "Post …: EOF" once).
	req.Close = true
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %s: %q", resp.Status, out)
	}
	for rest := out; len(rest) >= 4; {
		var n int
		if _, err := fmt.Sscanf(string(rest[:4]), "%04x", &n); err != nil || n > len(rest) {
			break
		}
		if n < 4 {
			rest = rest[4:]
			continue
		}
		pkt := strings.TrimSuffix(string(rest[4:n]), "\n")
		if strings.HasPrefix(pkt, "ok "+ref) || strings.HasPrefix(pkt, "ng "+ref+" ") {
			return pkt, nil
		}
		rest = rest[n:]
	}
	return "", fmt.Errorf("no status of %s in %q", ref, out)
}

// rawCommits makes, in the repository w, n commits on main (each adds
// a file of its own) and a child of each with the same tree, and
// returns them with, for each child, a pack that holds it alone.
func rawCommits(t *testing.T, w, main string, round, n int) (bases, children []string, packs [][]byte) {
	t.Helper()
	var in strings.Builder
	data := func(s string) { fmt.Fprintf(&in, "data %d\n%s\n", len(s), s) }
	for k := 0; k < n; k++ {
		name := fmt.Sprintf("base-%d-%d", round, k)
		fmt.Fprintf(&in, "blob\nmark :%d\n", 3*k+1)
		data(name + "\n")
		fmt.Fprintf(&in, "commit refs/prunerace/%s\nmark :%d\ncommitter T <t@example.com> %d +0000\n", name, 3*k+2, 1700000000+k)
		data(name)
		fmt.Fprintf(&in, "from %s\nM 100644 :%d %s.txt\n", main, 3*k+1, name)
		fmt.Fprintf(&in, "commit refs/prunerace/raw-%d-%d\nmark :%d\ncommitter T <t@example.com> %d +0000\n", round, k, 3*k+3, 1700000000+k)
		data(fmt.Sprintf("raw %d %d", round, k))
		fmt.Fprintf(&in, "from :%d\n", 3*k+2)
	}
	marks := filepath.Join(t.TempDir(), "marks")
	cmd := exec.Command("git", "fast-import", "--quiet", "--export-marks="+marks)
	cmd.Dir, cmd.Env, cmd.Stdin = w, safeEnv(t), strings.NewReader(in.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git fast-import: %v\n%s", err, out)
	}
	b, err := os.ReadFile(marks)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if m, id, ok := strings.Cut(l, " "); ok {
			ids[m] = id
		}
	}
	var batch strings.Builder
	for k := 0; k < n; k++ {
		bases = append(bases, ids[fmt.Sprintf(":%d", 3*k+2)])
		children = append(children, ids[fmt.Sprintf(":%d", 3*k+3)])
		batch.WriteString(children[k] + "\n")
	}
	cmd = exec.Command("git", "cat-file", "--batch")
	cmd.Dir, cmd.Env, cmd.Stdin = w, safeEnv(t), strings.NewReader(batch.String())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git cat-file --batch: %v", err)
	}
	for k := 0; k < n; k++ {
		var id, typ string
		var size int
		nl := bytes.IndexByte(out, '\n')
		if _, err := fmt.Sscanf(string(out[:nl]), "%s %s %d", &id, &typ, &size); err != nil || typ != "commit" {
			t.Fatalf("git cat-file --batch: %q", out[:nl])
		}
		packs = append(packs, onePack(out[nl+1:nl+1+size]))
		out = out[nl+1+size+1:]
	}
	return bases, children, packs
}

// onePack is a pack of version 2 that holds one commit.
func onePack(content []byte) []byte {
	var p bytes.Buffer
	p.WriteString("PACK\x00\x00\x00\x02\x00\x00\x00\x01")
	size := len(content)
	c := byte(1<<4 | size&0x0f) // type 1, commit
	for size >>= 4; size > 0; size >>= 7 {
		p.WriteByte(c | 0x80)
		c = byte(size & 0x7f)
	}
	p.WriteByte(c)
	z := zlib.NewWriter(&p)
	z.Write(content)
	z.Close()
	sum := sha1.Sum(p.Bytes())
	p.Write(sum[:])
	return p.Bytes()
}

// TestPruneRace runs, for a fixed number of rounds against gotd,
// pushes of every kind (new commits on main, a forced push, a branch
// created and deleted, an old commit no reference reaches pushed again
// from a client that has it), fetches and clones, gotctl upkeep and
// gotadmin cleanup -a all together. gotadmin is a test build whose
// cleanup pauses between its last walk and its removal, and beside it
// a client pushes, one after another, commits whose parents are
// commits of the repository that nothing reaches any more (bases
// pushed and deleted before the round), sending only the commit: the
// pushes that land in that window are those the prune lock must make
// wait. No push or fetch of a real client may fail, a raw push may
// only be refused because its parent was removed, C Git's fsck --full
// --strict must pass after every round, every reference must hold
// what the last acknowledged push gave it, and every raw push
// acknowledged must have its parent.
func TestPruneRace(t *testing.T) {
	const (
		rounds = 3
		bases  = 12 // raw pushes per round, one base each
	)
	began := time.Now()
	s := start(t, options{})
	gotadmin := buildPauseGotadmin(t)
	t.Logf("gotd started and gotadmin built in %v", time.Since(began).Round(time.Millisecond))
	src := filepath.Join(s.dir, "test.git")
	userinfo := rwAccount + ":" + strings.ReplaceAll(password, " ", "%20")
	httpURL := s.httpURL(userinfo, "test")
	rawURL := s.httpURL("", "test")
	work := s.clientDir("pusher")
	s.mustGit(work, nil, "clone", "-q", s.gitURL("test"), "w")
	w := filepath.Join(work, "w")
	gitW := func(args ...string) string { return strings.TrimSpace(s.mustGit(w, nil, args...)) }
	has := func(id string) bool {
		_, err := exec.Command("git", "--git-dir", src, "-c", "safe.directory=*", "cat-file", "-e", id).CombinedOutput()
		return err == nil
	}
	commitFile := func(parent, name, content string) string {
		f := filepath.Join(work, name)
		write(t, f, content, 0o644)
		blob := gitW("hash-object", "-w", f)
		tree := strings.TrimSpace(mktree(t, w, "100644 blob "+blob+"\t"+name+"\n"))
		return gitW("commit-tree", tree, "-p", parent, "-m", name)
	}

	want := map[string]string{} // reference -> value the last acknowledged push gave it ("" deleted)
	var moved []string          // commits pushed and then moved away from or deleted
	deletedOld := ""            // a commit of a branch deleted in an earlier round
	var totals struct{ acked, refused, cleanups, upkeeps, busy int }
	for round := 0; round < rounds; round++ {
		roundStart := time.Now()
		// The round's bases: pushed, deleted, their reflogs removed as
		// an operator purging them would: unreachable for the cleanup.
		main := gitW("rev-parse", "origin/main")
		base, child, packs := rawCommits(t, w, main, round, bases)
		pushArgs := []string{"push", "-q", httpURL}
		delArgs := []string{"push", "-q", httpURL}
		for k := range base {
			ref := fmt.Sprintf("refs/heads/base-%d-%d", round, k)
			pushArgs = append(pushArgs, base[k]+":"+ref)
			delArgs = append(delArgs, ":"+ref)
		}
		s.mustGit(w, nil, pushArgs...)
		s.mustGit(w, nil, delArgs...)
		logs, _ := filepath.Glob(filepath.Join(src, "logs", "refs", "heads", "base-*"))
		for _, l := range logs {
			os.Remove(l)
		}

		setup := time.Since(roundStart)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var mu sync.Mutex
		var failures []string
		fail := func(format string, args ...any) {
			mu.Lock()
			failures = append(failures, fmt.Sprintf(format, args...))
			mu.Unlock()
		}
		wasMoved := func(id string) bool {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range moved {
				if m == id {
					return true
				}
			}
			return false
		}

		// Fetchers: a clone, then fetches over git:// until the round ends.
		for f := 0; f < 2; f++ {
			wg.Add(1)
			go func(f int) {
				defer wg.Done()
				s.raceFetches(ctx, fmt.Sprintf("race-fetch-%d-%d", round, f), 30, wasMoved, fail)
			}(f)
		}

		// Upkeep: gotctl upkeep, then cleanup -a with its pause (the one
		// the raw pushes aim at), then more of both while the client
		// pushes; another run holding the repository is waited for.
		cleanupStarted := make(chan struct{})
		cleanupDone := make(chan struct{})
		clientDone := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 6; n++ {
				if n > 1 {
					select {
					case <-clientDone:
						return
					default:
					}
				}
				if n%2 == 0 {
					if out, err := s.gotctl("upkeep", "test"); err != nil && !strings.Contains(out, "busy") && !strings.Contains(out, "running") {
						fail("gotctl upkeep: %v\n%s", err, out)
					} else {
						mu.Lock()
						totals.upkeeps++
						mu.Unlock()
					}
					continue
				}
				for try := 0; ; try++ {
					cmd := exec.Command(gotadmin, "cleanup", "-a", "-q", "-r", src)
					cmd.Env = append(os.Environ(), "GOTD_TEST_PRUNE_PAUSE="+prunePause.String())
					if n == 1 && try == 0 {
						close(cleanupStarted)
					}
					out, err := cmd.CombinedOutput()
					mu.Lock()
					switch {
					case err == nil:
						totals.cleanups++
					case strings.Contains(string(out), "is running") && try < 50:
						totals.busy++
						mu.Unlock()
						time.Sleep(100 * time.Millisecond)
						continue
					default:
						failures = append(failures, fmt.Sprintf("gotadmin cleanup -a: %v\n%s", err, out))
					}
					mu.Unlock()
					break
				}
				if n == 1 {
					close(cleanupDone)
				}
			}
		}()

		// Raw pushes, one base each, spread over the cleanup.
		rawOK := make([]bool, bases)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-cleanupStarted
			for k := 0; k < bases; k++ {
				ref := fmt.Sprintf("refs/heads/raw-%d-%d", round, k)
				pctx, pcancel := context.WithTimeout(context.Background(), gitTimeout)
				status, err := rawPush(pctx, rawURL, child[k], ref, packs[k])
				pcancel()
				switch {
				case err != nil:
					fail("raw push %s: %v", ref, err)
				case status == "ok "+ref:
					rawOK[k] = true
				case status == "ng "+ref+" missing necessary objects":
					// Its parent was removed before it was checked.
				default:
					fail("raw push %s: %s", ref, status)
				}
				select {
				case <-cleanupDone:
				case <-time.After(prunePause / 8):
				}
			}
		}()

		// A client's pushes, in this goroutine: main moves on, a branch
		// is forced, one is created and deleted, and a commit of a
		// branch deleted in an earlier round is pushed again.
		type push struct {
			ref, id string
			force   bool
		}
		next := commitFile(main, fmt.Sprintf("main-%d", round), fmt.Sprintf("main %d\n", round))
		forced := commitFile(main, fmt.Sprintf("forced-%d", round), fmt.Sprintf("forced %d\n", round))
		del := commitFile(main, fmt.Sprintf("del-%d", round), fmt.Sprintf("del %d\n", round))
		steps := []push{
			{"refs/heads/main", next, false},
			{"refs/heads/forced", forced, true},
			{fmt.Sprintf("refs/heads/del-%d", round), del, false},
		}
		if deletedOld != "" {
			steps = append(steps, push{fmt.Sprintf("refs/heads/reuse-%d", round), deletedOld, false})
		}
		steps = append(steps, push{fmt.Sprintf("refs/heads/del-%d", round), "", false})
		t1 := time.Now()
		for _, p := range steps {
			args := []string{"push", "-q", httpURL}
			if p.force {
				args = append(args, "--force")
			}
			args = append(args, p.id+":"+p.ref)
			if p.id == "" {
				args[len(args)-1] = ":" + p.ref
			}
			if out, err := s.git(w, nil, args...); err != nil {
				fail("push %s: %v\n%s", args[len(args)-1], err, out)
				continue
			}
			mu.Lock()
			if old := want[p.ref]; old != "" && old != p.id {
				moved = append(moved, old)
			}
			want[p.ref] = p.id
			mu.Unlock()
		}
		s.mustGit(w, nil, "fetch", "-q", "origin", "main")
		deletedOld = del
		t.Logf("round %d: the client's pushes took %v", round, time.Since(t1).Round(time.Millisecond))
		close(clientDone)
		cancel()
		wg.Wait()
		for _, f := range failures {
			t.Errorf("round %d: %s", round, f)
		}
		fsck(t, src)
		acked, refused := 0, 0
		for k := 0; k < bases; k++ {
			ref := fmt.Sprintf("refs/heads/raw-%d-%d", round, k)
			if rawOK[k] {
				acked++
				want[ref] = child[k]
				if !has(base[k]) {
					t.Errorf("round %d: raw push to %s acknowledged, its parent %s removed", round, ref, base[k])
				}
			} else {
				refused++
			}
		}
		got := map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(refs(t, src)), "\n") {
			if id, name, ok := strings.Cut(l, " "); ok {
				got[name] = id
			}
		}
		for ref, id := range want {
			if got[ref] != id {
				t.Errorf("round %d: %s is %q; the last acknowledged push made it %q", round, ref, got[ref], id)
			}
		}
		totals.acked += acked
		totals.refused += refused
		t.Logf("round %d (%v, set-up %v): raw pushes %d acknowledged, %d refused for a removed parent", round,
			time.Since(roundStart).Round(time.Millisecond), setup.Round(time.Millisecond), acked, refused)
		if t.Failed() {
			return
		}
	}
	t.Logf("%d rounds: %d cleanups (%d waits for another run), %d gotctl upkeep runs; raw pushes %d acknowledged, %d refused",
		rounds, totals.cleanups, totals.busy, totals.upkeeps, totals.acked, totals.refused)
	if totals.cleanups < rounds+1 {
		t.Errorf("%d cleanups ran in %d rounds", totals.cleanups, rounds)
	}
	if totals.refused == 0 {
		t.Errorf("no raw push came after a removal: the pushes did not race the cleanup")
	}
}
