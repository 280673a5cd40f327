package e2enet

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestCleanupLeakedSecret: a file pushed by mistake and forced away is
// kept by gotadmin cleanup -a while the server's reflog reaches it, and
// removed once the reflog is expired; the repository stays whole and
// clones still work.
func TestCleanupLeakedSecret(t *testing.T) {
	t.Parallel() // long and not timed: runs beside the other such tests, after the timed ones
	s := start(t, options{})
	src := filepath.Join(s.dir, "test.git")
	httpURL := s.httpURL(rwAccount+":"+strings.ReplaceAll(password, " ", "%20"), "test")
	work := s.clientDir("work")
	s.mustGit(work, nil, "clone", "-q", s.gitURL("test"), "w")
	w := filepath.Join(work, "w")
	os.WriteFile(filepath.Join(w, "secret.txt"), []byte("api-key=0123456789abcdef\n"), 0o644)
	s.mustGit(w, nil, "add", "secret.txt")
	s.mustGit(w, nil, "commit", "-q", "-m", "oops")
	blob := strings.TrimSpace(s.mustGit(w, nil, "rev-parse", "HEAD:secret.txt"))
	s.mustGit(w, nil, "push", "-q", httpURL, "HEAD:main")
	s.mustGit(w, nil, "reset", "-q", "--hard", "HEAD~1")
	s.mustGit(w, nil, "push", "-q", "--force", httpURL, "HEAD:main")

	gotadmin := filepath.Join(s.bin, "gotadmin")
	has := func() bool {
		_, err := exec.Command("git", "--git-dir", src, "-c", "safe.directory=*", "cat-file", "-e", blob).CombinedOutput()
		return err == nil
	}
	run(t, gotadmin, "cleanup", "-a", "-q", "-r", src)
	if !has() {
		t.Fatalf("cleanup -a removed %s while the server's reflog reaches it", blob)
	}
	fsck(t, src)
	run(t, "git", "--git-dir", src, "reflog", "expire", "--expire=all", "--all")
	run(t, gotadmin, "cleanup", "-a", "-q", "-r", src)
	if has() {
		t.Fatalf("cleanup -a kept %s", blob)
	}
	fsck(t, src)
	clone := s.clientDir("clone")
	s.mustGit(clone, nil, "clone", "-q", "--mirror", s.gitURL("test"), "c")
	fsck(t, filepath.Join(clone, "c"))
	if out, err := s.git(filepath.Join(clone, "c"), nil, "cat-file", "-e", blob); err == nil {
		t.Errorf("a clone after cleanup has %s: %s", blob, out)
	}
}

// TestCleanupWhileServing runs pushes (fast-forwards, branches created
// and deleted, commits pushed on a branch deleted at once), clones and
// fetches against gotd while gotadmin cleanup -a and pack -a run on the
// repository, for a fixed number of rounds; before each cleanup the
// reflogs of the deleted throwaway branches are removed, as an operator
// purging them would, so that cleanup removes objects while fetches may
// be sending them. No fetch or push may fail, the repository must pass
// fsck after every round, every acknowledged push's commit on main must
// be there, and the throwaway commits must be gone at the end.
func TestCleanupWhileServing(t *testing.T) {
	t.Parallel() // long and not timed: runs beside the other such tests, after the timed ones
	const rounds = 4
	const pushesPerRound = 3
	s := start(t, options{})
	src := filepath.Join(s.dir, "test.git")
	httpURL := s.httpURL(rwAccount+":"+strings.ReplaceAll(password, " ", "%20"), "test")
	gotadmin := filepath.Join(s.bin, "gotadmin")
	work := s.clientDir("pusher")
	s.mustGit(work, nil, "clone", "-q", s.gitURL("test"), "w")
	w := filepath.Join(work, "w")

	var acked, thrown []string
	var ackedMu sync.Mutex
	pushed := func(id string) bool {
		ackedMu.Lock()
		defer ackedMu.Unlock()
		for _, a := range append(acked, thrown...) {
			if a == id {
				return true
			}
		}
		return false
	}
	purgeLogs := func() {
		logs, _ := filepath.Glob(filepath.Join(src, "logs", "refs", "heads", "junk-*"))
		for _, l := range logs {
			os.Remove(l)
		}
	}
	removed := 0
	for round := 0; round < rounds; round++ {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var mu sync.Mutex
		var failures []string
		fail := func(format string, args ...any) {
			mu.Lock()
			failures = append(failures, fmt.Sprintf(format, args...))
			mu.Unlock()
		}
		// Fetchers: clones and fetches over git:// until the pushes end.
		fetches, raced := 0, 0
		for f := 0; f < 2; f++ {
			wg.Add(1)
			go func(f int) {
				defer wg.Done()
				n, r := s.raceFetches(ctx, fmt.Sprintf("fetch-%d-%d", round, f), 20, pushed, fail)
				mu.Lock()
				fetches, raced = fetches+n, raced+r
				mu.Unlock()
			}(f)
		}
		// Upkeep: cleanup -a, then pack -a, again and again.
		cleanups, busy := 0, 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 6 && ctx.Err() == nil; n++ {
				args := []string{"cleanup", "-a", "-r", src}
				if n%2 == 1 {
					args = []string{"pack", "-a", "-q", "-r", src}
				} else {
					purgeLogs()
				}
				out, err := exec.Command(gotadmin, args...).CombinedOutput()
				mu.Lock()
				switch {
				case err == nil:
					cleanups++
					for _, line := range strings.Split(string(out), "\n") {
						var k int
						if _, err := fmt.Sscanf(line, "removed %d unreachable objects", &k); err == nil {
							removed += k
						}
					}
				case strings.Contains(string(out), "kept changing"):
					busy++
				default:
					failures = append(failures, fmt.Sprintf("gotadmin %s: %v\n%s", args[0], err, out))
				}
				mu.Unlock()
			}
		}()
		// The pusher, in this goroutine.
		for p := 0; p < pushesPerRound; p++ {
			name := fmt.Sprintf("r%dp%d", round, p)
			os.WriteFile(filepath.Join(w, name+".txt"), []byte(name+"\n"), 0o644)
			s.mustGit(w, nil, "add", ".")
			s.mustGit(w, nil, "commit", "-q", "-m", name)
			id := strings.TrimSpace(s.mustGit(w, nil, "rev-parse", "HEAD"))
			if out, err := s.git(w, nil, "push", "-q", httpURL, "HEAD:main", "HEAD:refs/heads/"+name); err != nil {
				fail("push %s: %v\n%s", name, err, out)
				continue
			}
			ackedMu.Lock()
			acked = append(acked, id)
			ackedMu.Unlock()

			// A throwaway commit, pushed and deleted at once.
			junkFile := filepath.Join(work, name+".junk")
			os.WriteFile(junkFile, []byte("throwaway "+name+"\n"), 0o644)
			jblob := strings.TrimSpace(s.mustGit(w, nil, "hash-object", "-w", junkFile))
			jtree := strings.TrimSpace(mktree(t, w, "100644 blob "+jblob+"\tjunk.txt\n"))
			jcommit := strings.TrimSpace(s.mustGit(w, nil, "commit-tree", jtree, "-p", id, "-m", "junk "+name))
			ackedMu.Lock()
			thrown = append(thrown, jcommit)
			ackedMu.Unlock()
			if out, err := s.git(w, nil, "push", "-q", httpURL, jcommit+":refs/heads/junk-"+name); err != nil {
				fail("push junk-%s: %v\n%s", name, err, out)
			} else if out, err := s.git(w, nil, "push", "-q", httpURL, ":refs/heads/junk-"+name); err != nil {
				fail("delete junk-%s: %v\n%s", name, err, out)
			}
			if p > 0 {
				prev := fmt.Sprintf("r%dp%d", round, p-1)
				if out, err := s.git(w, nil, "push", "-q", httpURL, ":refs/heads/"+prev); err != nil {
					fail("delete %s: %v\n%s", prev, err, out)
				}
			}
		}
		cancel()
		wg.Wait()
		for _, f := range failures {
			t.Errorf("round %d: %s", round, f)
		}
		fsck(t, src)
		for _, id := range acked {
			if _, err := exec.Command("git", "--git-dir", src, "-c", "safe.directory=*", "cat-file", "-e", id+"^{commit}").CombinedOutput(); err != nil {
				t.Errorf("round %d: acknowledged commit %s is gone", round, id)
			}
		}
		t.Logf("round %d: %d fetches (%d raced a branch deletion), %d upkeep runs, %d refused as busy; %d unreachable objects removed so far", round, fetches, raced, cleanups, busy, removed)
		if t.Failed() {
			return
		}
	}
	purgeLogs()
	run(t, gotadmin, "cleanup", "-a", "-q", "-r", src)
	fsck(t, src)
	if packs, _ := filepath.Glob(filepath.Join(src, "objects", "pack", "pack-*.pack")); len(packs) != 1 {
		t.Errorf("packs after a quiet cleanup: %d; want 1", len(packs))
	}
	for _, id := range thrown {
		if _, err := exec.Command("git", "--git-dir", src, "-c", "safe.directory=*", "cat-file", "-e", id).CombinedOutput(); err == nil {
			t.Errorf("throwaway commit %s survived cleanup -a", id)
		}
	}
	if removed == 0 {
		t.Errorf("no cleanup during the rounds removed anything: the test did not race removal with fetches")
	}
}

// mktree writes a tree from its ls-tree listing with git mktree in dir.
func mktree(t *testing.T, dir, listing string) string {
	t.Helper()
	cmd := exec.Command("git", "mktree")
	cmd.Dir = dir
	cmd.Env = safeEnv(t)
	cmd.Stdin = strings.NewReader(listing)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git mktree: %v", err)
	}
	return string(out)
}

// raceFetches mirrors repository test over git:// into the client
// directory name, then fetches from it with --prune up to n times, until
// ctx ends, and returns how many fetches worked and how many raced. A
// fetch refused with "not our ref ID" where moved(ID) raced another
// client: the listing showed a branch that a push moved or deleted
// before the fetch asked for its commit, which upkeep, moving no
// reference, cannot cause. Any other failure goes to fail and ends the
// fetches.
func (s *server) raceFetches(ctx context.Context, name string, n int, moved func(id string) bool, fail func(format string, args ...any)) (fetches, raced int) {
	dir := s.clientDir(name)
	if out, err := s.git(dir, nil, "clone", "-q", "--mirror", s.gitURL("test"), "m"); err != nil {
		fail("clone: %v\n%s", err, out)
		return 0, 0
	}
	for range n {
		if ctx.Err() != nil {
			break
		}
		out, err := s.git(filepath.Join(dir, "m"), nil, "fetch", "-q", "--prune", s.gitURL("test"), "+refs/*:refs/*")
		if _, id, ok := strings.Cut(out, "not our ref "); err != nil && ok && len(id) >= 40 && moved(id[:40]) {
			raced++
			continue
		}
		if err != nil {
			fail("fetch: %v\n%s", err, out)
			break
		}
		fetches++
	}
	return fetches, raced
}
