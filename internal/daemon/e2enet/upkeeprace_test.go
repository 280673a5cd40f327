package e2enet

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestUpkeepRacingPushes: pushers over HTTP move, create and delete
// branches of their own while gotctl upkeep repacks, writes the
// commit-graph and packs the references over and over (and the
// automatic upkeep, whose loose references threshold is 1, starts
// after the first push): no push fails, every value a push was told it
// set is what the repository holds after, deleted branches stay
// deleted, and C Git's fsck and commit-graph verify accept the
// repository.
func TestUpkeepRacingPushes(t *testing.T) {
	t.Parallel() // long and not timed: runs beside the other such tests, after the timed ones
	const pushers, rounds = 3, 6
	s := start(t, options{extraTest: "\tupkeep {\n\t\tloose references 1\n\t}"})
	src := filepath.Join(s.dir, "test.git")
	httpURL := s.httpURL(rwAccount+":"+strings.ReplaceAll(password, " ", "%20"), "test")

	var mu sync.Mutex
	var failures []string
	fail := func(format string, args ...any) {
		mu.Lock()
		failures = append(failures, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	acked := map[string]string{} // branch: value, "" once deleted
	var wg sync.WaitGroup
	for p := range pushers {
		work := s.clientDir(fmt.Sprintf("pusher-%d", p))
		s.mustGit(work, nil, "clone", "-q", s.gitURL("test"), "w")
		w := filepath.Join(work, "w")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				os.WriteFile(filepath.Join(w, fmt.Sprintf("p%d.txt", p)), []byte(fmt.Sprintf("pusher %d round %d\n", p, i)), 0o644)
				if out, err := s.git(w, nil, "commit", "-q", "-a", "-m", fmt.Sprintf("p%d r%d", p, i)); err != nil {
					if out, err = s.git(w, nil, "add", "."); err == nil {
						out, err = s.git(w, nil, "commit", "-q", "-m", fmt.Sprintf("p%d r%d", p, i))
					}
					if err != nil {
						fail("pusher %d: commit: %v\n%s", p, err, out)
						return
					}
				}
				head, err := s.git(w, nil, "rev-parse", "HEAD")
				if err != nil {
					fail("pusher %d: rev-parse: %v", p, err)
					return
				}
				head = strings.TrimSpace(head)
				set := []string{fmt.Sprintf("refs/heads/p%d/a", p), fmt.Sprintf("refs/heads/p%d/b", p), fmt.Sprintf("refs/heads/p%d/r%d", p, i)}
				args := []string{"push", "-q", "--atomic", httpURL}
				for _, ref := range set {
					args = append(args, "HEAD:"+ref)
				}
				del := ""
				if i > 0 {
					del = fmt.Sprintf("refs/heads/p%d/r%d", p, i-1)
					args = append(args, ":"+del)
				}
				if out, err := s.git(w, nil, args...); err != nil {
					fail("pusher %d round %d: push: %v\n%s", p, i, err, out)
					continue
				}
				mu.Lock()
				for _, ref := range set {
					acked[ref] = head
				}
				if del != "" {
					acked[del] = ""
				}
				mu.Unlock()
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	runs := 0
	for stop := false; !stop; {
		select {
		case <-done:
			stop = true
		default:
		}
		out, err := s.gotctl("upkeep", "test")
		switch {
		case err == nil && strings.HasPrefix(out, "done: "):
			runs++
		case strings.Contains(out, "busy"):
		default:
			fail("gotctl upkeep test: %v\n%s", err, out)
		}
	}
	t.Logf("%d gotctl upkeep runs beside %d pushes", runs, pushers*rounds)
	if runs < 2 {
		t.Errorf("only %d upkeep runs raced the pushes", runs)
	}
	for _, f := range failures {
		t.Error(f)
	}

	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(refs(t, src)), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			got[f[1]] = f[0]
		}
	}
	if len(acked) == 0 {
		t.Fatal("no push went through")
	}
	for ref, want := range acked {
		if got[ref] != want {
			t.Errorf("%s: the repository holds %q; the push that set it last was told %q", ref, got[ref], want)
		}
	}
	fsck(t, src)
	// Once more at rest: every reference packed, a commit-graph of
	// every commit.
	if out, err := s.gotctl("upkeep", "test"); err != nil {
		t.Fatalf("gotctl upkeep test: %v\n%s", err, out)
	}
	var loose []string
	filepath.WalkDir(filepath.Join(src, "refs"), func(path string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			loose = append(loose, path)
		}
		return nil
	})
	if len(loose) != 0 {
		t.Errorf("loose references after upkeep at rest: %v", loose)
	}
	if _, err := os.Stat(filepath.Join(src, "objects", "info", "commit-graphs", "commit-graph-chain")); err != nil {
		t.Errorf("no commit-graph after upkeep: %v", err)
	}
	run(t, "git", "--git-dir", src, "commit-graph", "verify")
}
