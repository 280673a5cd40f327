package e2enet

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestUpkeepAfterPushes: each push of one commit adds a pack; once a
// push leaves more than the repository's "packs" threshold, gotd starts
// its upkeep process on its own, which leaves fewer packs, and again
// within the interval when later pushes take the packs past the
// threshold once more (a geometric repack only), while fetches run
// beside it without one failing; git fsck stays clean, the pushed
// commits are all there, gotctl upkeep runs it at once (one pack left)
// and gotctl info shows the outcome.
func TestUpkeepAfterPushes(t *testing.T) {
	t.Parallel() // long and not timed: runs beside the other such tests, after the timed ones
	const pushes = 8
	s := start(t, options{extraTest: "\tupkeep {\n\t\tpacks 4\n\t\tinterval 1h\n\t}"})
	src := filepath.Join(s.dir, "test.git")
	httpURL := s.httpURL(rwAccount+":"+strings.ReplaceAll(password, " ", "%20"), "test")
	packs := func() int {
		l, _ := filepath.Glob(filepath.Join(src, "objects", "pack", "*.pack"))
		return len(l)
	}
	// The repository's one pack, far larger than a push's: the
	// geometric repack after pushes leaves it alone.
	first, _ := filepath.Glob(filepath.Join(src, "objects", "pack", "*.pack"))
	if len(first) != 1 {
		t.Fatalf("got packs %v to start with; want one", first)
	}
	work := s.clientDir("pusher")
	s.mustGit(work, nil, "clone", "-q", s.gitURL("test"), "w")
	w := filepath.Join(work, "w")

	// Fetchers: a clone, then fetches over git:// until the pushes and
	// upkeep runs are over (bounded).
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	fetches := 0
	for f := 0; f < 2; f++ {
		wg.Add(1)
		go func(f int) {
			defer wg.Done()
			dir := s.clientDir(fmt.Sprintf("fetch-%d", f))
			if out, err := s.git(dir, nil, "clone", "-q", "--mirror", s.gitURL("test"), "m"); err != nil {
				mu.Lock()
				failures = append(failures, fmt.Sprintf("clone: %v\n%s", err, out))
				mu.Unlock()
				return
			}
			for n := 0; n < 500; n++ {
				select {
				case <-stop:
					return
				default:
				}
				out, err := s.git(filepath.Join(dir, "m"), nil, "fetch", "-q", s.gitURL("test"), "+refs/*:refs/*")
				mu.Lock()
				fetches++
				if err != nil {
					failures = append(failures, fmt.Sprintf("fetch: %v\n%s", err, out))
				}
				mu.Unlock()
			}
		}(f)
	}

	// On every way out, the fetchers stop before the test's directory
	// goes.
	stopFetches := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopFetches()

	var pushed []string
	for i := 0; i < pushes; i++ {
		os.WriteFile(filepath.Join(w, fmt.Sprintf("f%d.txt", i)), []byte(fmt.Sprintf("push %d\n", i)), 0o644)
		s.mustGit(w, nil, "add", ".")
		s.mustGit(w, nil, "commit", "-q", "-m", fmt.Sprintf("push %d", i))
		s.mustGit(w, nil, "push", "-q", httpURL, "HEAD:main")
		pushed = append(pushed, strings.TrimSpace(s.mustGit(w, nil, "rev-parse", "HEAD")))
		s.waitUpkeepIdle(t, "test")
	}
	// The 4th push left 5 packs and started upkeep, which left 2; the
	// 7th left 5 again and started a geometric run within the
	// interval.
	if n := strings.Count(s.log.String(), "starting upkeep"); n != 2 {
		t.Errorf("got %d upkeep runs after %d pushes; want 2 (the second within the interval)", n, pushes)
	}
	for _, l := range strings.Split(s.log.String(), "\n") {
		if strings.Contains(l, "upkeep") {
			t.Log(l)
		}
	}
	after := packs()
	t.Logf("%d pushes: %d packs after the automatic upkeep", pushes, after)
	if _, err := os.Stat(first[0]); err != nil {
		t.Errorf("the automatic upkeep, geometric, removed the largest pack: %v", err)
	}
	if after > 4 {
		t.Errorf("got %d packs after %d pushes and upkeep; want no more than the threshold, 4", after, pushes)
	}
	fsck(t, src)

	// gotctl upkeep: at once, whatever the thresholds and the interval.
	out, err := s.gotctl("upkeep", "test")
	if err != nil || !strings.HasPrefix(out, "done: ") {
		t.Fatalf("gotctl upkeep test: %v\n%s", err, out)
	}
	if n := packs(); n != 1 {
		t.Errorf("got %d packs after gotctl upkeep; want 1", n)
	}
	// A file pushed and forced away, its server reflog expired:
	// unreachable, but younger than the grace period, so it stays.
	os.WriteFile(filepath.Join(w, "secret.txt"), []byte("api-key=0123456789abcdef\n"), 0o644)
	s.mustGit(w, nil, "add", "secret.txt")
	s.mustGit(w, nil, "commit", "-q", "-m", "oops")
	blob := strings.TrimSpace(s.mustGit(w, nil, "rev-parse", "HEAD:secret.txt"))
	s.mustGit(w, nil, "push", "-q", httpURL, "HEAD:main")
	s.mustGit(w, nil, "reset", "-q", "--hard", "HEAD~1")
	s.mustGit(w, nil, "push", "-q", "--force", httpURL, "HEAD:main")
	run(t, "git", "--git-dir", src, "reflog", "expire", "--expire=all", "--all")
	out, err = s.gotctl("upkeep", "test")
	if err != nil || !strings.Contains(out, "0 unreachable objects removed, 3 kept for their grace period") {
		t.Errorf("gotctl upkeep test after a forced push: %v\n%s; want the commit, tree and blob kept", err, out)
	}
	run(t, "git", "--git-dir", src, "cat-file", "-e", blob)
	if out, err := s.gotctl("upkeep", "nosuchrepo"); err == nil || !strings.Contains(out, "no such repository") {
		t.Errorf("gotctl upkeep nosuchrepo: %v\n%s; want refused: no such repository", err, out)
	}
	stopFetches()
	fsck(t, src)
	for _, id := range pushed {
		run(t, "git", "--git-dir", src, "cat-file", "-e", id+"^{commit}")
	}
	if info, err := s.gotctl("info"); err != nil || !strings.Contains(info, `upkeep "test": `) || !strings.Contains(info, " done: ") {
		t.Errorf("gotctl info: %v\n%s; want the last upkeep run of \"test\"", err, info)
	}
	t.Logf("%d fetches beside the upkeep runs", fetches)
	if len(failures) > 0 {
		t.Errorf("%d fetches failed beside upkeep; the first:\n%s", len(failures), failures[0])
	}
	if fetches == 0 {
		t.Error("no fetch ran beside upkeep")
	}
}

// TestUpkeepOff: the global upkeep settings apply to every repository
// but one that says "upkeep off": pushes past the threshold start
// upkeep on "empty", none on "test".
func TestUpkeepOff(t *testing.T) {
	t.Parallel() // long and not timed: runs beside the other such tests, after the timed ones
	s := start(t, options{extraTop: "upkeep {\n\tpacks 1\n}", extraTest: "\tupkeep off"})
	auth := rwAccount + ":" + strings.ReplaceAll(password, " ", "%20")
	for _, name := range []string{"test", "empty"} {
		work := s.clientDir(name)
		s.mustGit(work, nil, "clone", "-q", s.gitURL(name), "w")
		w := filepath.Join(work, "w")
		for i := 0; i < 3; i++ {
			os.WriteFile(filepath.Join(w, fmt.Sprintf("f%d.txt", i)), []byte(fmt.Sprintf("%s %d\n", name, i)), 0o644)
			s.mustGit(w, nil, "add", ".")
			s.mustGit(w, nil, "commit", "-q", "-m", fmt.Sprint(i))
			s.mustGit(w, nil, "push", "-q", s.httpURL(auth, name), "HEAD:main")
		}
	}
	s.waitLog("upkeep done", 0)
	// The parent decides at the end of each push, before it answers
	// gotctl after it: by now it has decided for every push.
	if _, err := s.gotctl("info"); err != nil {
		t.Fatal(err)
	}
	log := s.log.String()
	ranOn := func(name string) bool {
		for _, l := range strings.Split(log, "\n") {
			if strings.Contains(l, "upkeep") && strings.Contains(l, " repo="+name+" ") {
				return true
			}
		}
		return false
	}
	if ranOn("test") {
		t.Errorf("upkeep ran on \"test\", whose upkeep is off")
	}
	if !ranOn("empty") {
		t.Errorf("upkeep did not start on \"empty\" past its threshold")
	}
	fsck(t, filepath.Join(s.dir, "empty.git"))
}

// waitUpkeepIdle waits until gotctl info shows no upkeep running on
// repository name (at most a minute).
func (s *server) waitUpkeepIdle(t *testing.T, name string) {
	t.Helper()
	running := fmt.Sprintf("upkeep %q: running", name)
	for range 600 {
		info, err := s.gotctl("info")
		if err == nil && !strings.Contains(info, running) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("upkeep of %s still running after a minute", name)
}
