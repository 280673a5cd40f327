package refs

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gotd/internal/git/oid"
	"gotd/internal/git/perm"
	"gotd/internal/gittest"
)

// copyRepo copies a repository directory so that C Git can run the same
// transaction on an identical copy.
func copyRepo(t *testing.T, dir string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "copy.git")
	if out, err := exec.Command("cp", "-a", dir, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	return dst
}

// gitTxn runs updates through `git update-ref --stdin` in dir and
// reports whether C Git accepted them.
func gitTxn(t *testing.T, dir string, f oid.Format, updates []Update) error {
	t.Helper()
	var b strings.Builder
	for _, u := range updates {
		old := ""
		if u.Old.Valid() {
			old = " " + u.Old.String()
		}
		if u.New == oid.Zero(f) {
			fmt.Fprintf(&b, "delete %s%s\n", u.Name, old)
		} else {
			fmt.Fprintf(&b, "update %s %s%s\n", u.Name, u.New, old)
		}
	}
	_, err := gittest.Run(t, dir, []byte(b.String()), "update-ref", "--stdin")
	return err
}

func (r *testRepo) c(t testing.TB, i int) oid.ID { return r.id(t, r.commits[i]) }

func (r *testRepo) cur(t testing.TB, name string) oid.ID {
	t.Helper()
	ref, err := r.s.Resolve(name)
	if err != nil {
		t.Fatalf("Resolve(%s): %v", name, err)
	}
	return ref.ID
}

func TestUpdateMatchesGit(t *testing.T) {
	for _, f := range formats {
		t.Run(f.String(), func(t *testing.T) {
			r := newTestRepo(t, f)
			r.populateT(t)
			zero := oid.Zero(f)
			updates := []Update{
				{Name: "refs/heads/new", Old: zero, New: r.c(t, 0)},
				{Name: "refs/heads/deep/er/new", New: r.c(t, 1)},
				{Name: "refs/heads/topic0", Old: r.cur(t, "refs/heads/topic0"), New: r.c(t, 2)}, // loose over packed
				{Name: "refs/heads/topic1", Old: r.cur(t, "refs/heads/topic1"), New: r.c(t, 3)}, // packed only
				{Name: "refs/heads/b/c", Old: r.cur(t, "refs/heads/b/c"), New: zero},            // packed only
				{Name: "refs/heads/loose/only", New: zero},                                      // loose only
				{Name: "refs/tags/v1.0", Old: r.cur(t, "refs/tags/v1.0"), New: zero},            // loose and packed
				{Name: "refs/heads/z/y/x/w", New: zero},                                         // leaves empty dirs
				{Name: "refs/heads/never", New: zero},                                           // absent: no-op
			}
			gitDir := copyRepo(t, r.dir)
			if err := gitTxn(t, gitDir, f, updates); err != nil {
				t.Fatalf("git update-ref: %v", err)
			}
			before := tree(t, r.dir)
			if err := r.s.Check(updates); err != nil {
				t.Fatalf("Check: %v", err)
			}
			if d := diffTrees(before, tree(t, r.dir)); len(d) > 0 {
				t.Errorf("Check changed the repository: %q", d)
			}
			if err := r.s.Update(updates); err != nil {
				t.Fatalf("Update: %v", err)
			}
			if got, want := gitList(t, r.dir, "refs/"), gitList(t, gitDir, "refs/"); !same(got, want) {
				t.Errorf("after Update git sees\n%q\nafter git update-ref\n%q", got, want)
			}
			if got, _ := listRefs(t, r.s, "refs/"); !same(got, gitList(t, gitDir, "refs/")) {
				t.Errorf("List after Update\n%q\nwant\n%q", got, gitList(t, gitDir, "refs/"))
			}
			gittest.Git(t, r.dir, "fsck", "--full", "--no-dangling")
			// Same files as C Git leaves, apart from logs and packed-refs
			// byte order of traits.
			ours, theirs := tree(t, filepath.Join(r.dir, "refs")), tree(t, filepath.Join(gitDir, "refs"))
			if d := diffTrees(theirs, ours); len(d) > 0 {
				t.Errorf("refs/ differs from C Git's: %q", d)
			}
			for _, gone := range []string{"refs/heads/z", "refs/heads/loose"} {
				if _, err := os.Stat(filepath.Join(r.dir, gone)); !os.IsNotExist(err) {
					t.Errorf("%s still exists: %v", gone, err)
				}
			}
			if _, err := os.Stat(filepath.Join(r.dir, "refs/heads")); err != nil {
				t.Errorf("refs/heads removed: %v", err)
			}
			if got := tree(t, r.dir); hasLock(got) {
				t.Errorf("lock files left: %v", got)
			}
		})
	}
}

func hasLock(tree map[string]string) bool {
	for k := range tree {
		if strings.HasSuffix(k, ".lock") {
			return true
		}
	}
	return false
}

func TestUpdateConflicts(t *testing.T) {
	for _, f := range formats {
		t.Run(f.String(), func(t *testing.T) {
			r := newTestRepo(t, f)
			r.populateT(t)
			zero := oid.Zero(f)
			main := r.cur(t, "refs/heads/main")
			ok := Update{Name: "refs/heads/aaa/new", Old: zero, New: main} // would succeed, sorts first
			okDel := Update{Name: "refs/heads/b/c", New: zero}             // would rewrite packed-refs
			mkdir := Update{Name: "refs/heads/zz/new/dir/x", New: main}    // would create directories
			for _, tc := range []struct {
				name     string
				updates  []Update
				noOracle bool // a documented difference from C Git
			}{
				{"wrong old", []Update{ok, {Name: "refs/heads/main", Old: r.c(t, 3), New: main}}, false},
				{"wrong old packed", []Update{ok, okDel, {Name: "refs/heads/topic1", Old: r.c(t, 3), New: main}}, false},
				{"exists", []Update{ok, mkdir, {Name: "refs/heads/main", Old: zero, New: main}}, false},
				{"missing", []Update{ok, {Name: "refs/heads/nope", Old: main, New: main}}, false},
				{"delete wrong old", []Update{ok, {Name: "refs/heads/b/c", Old: r.c(t, 4), New: zero}}, false},
				// C Git follows the symbolic reference; Update does not.
				{"symbolic with old", []Update{ok, {Name: "refs/remotes/origin/HEAD", Old: main, New: main}}, true},
				{"loose file ancestor", []Update{ok, mkdir, {Name: "refs/heads/a0/x", New: main}}, false},
				{"packed ancestor", []Update{ok, okDel, {Name: "refs/heads/main/x", New: main}}, false},
				{"packed descendant", []Update{ok, {Name: "refs/heads/z/y", New: main}}, false},
				{"loose descendant", []Update{ok, {Name: "refs/heads/loose", New: main}}, false},
				{"same transaction", []Update{ok, {Name: "refs/heads/q", New: main}, {Name: "refs/heads/q/r", New: main}}, false},
				{"delete and create below", []Update{{Name: "refs/heads/a", New: zero}, {Name: "refs/heads/a/b", New: main}}, false},
				{"delete and create above", []Update{{Name: "refs/heads/b/c", New: zero}, {Name: "refs/heads/b", New: main}}, false},
			} {
				t.Run(tc.name, func(t *testing.T) {
					gitDir := copyRepo(t, r.dir)
					if err := gitTxn(t, gitDir, f, tc.updates); err == nil && !tc.noOracle {
						t.Errorf("git update-ref accepted the transaction")
					}
					before := tree(t, r.dir)
					if err := r.s.Check(tc.updates); !errors.Is(err, ErrConflict) {
						t.Errorf("Check: got %v; want ErrConflict", err)
					}
					err := r.s.Update(tc.updates)
					if !errors.Is(err, ErrConflict) {
						t.Fatalf("got %v; want ErrConflict", err)
					}
					if d := diffTrees(before, tree(t, r.dir)); len(d) > 0 {
						t.Errorf("failed Update changed the repository: %q (error %v)", d, err)
					}
				})
			}
		})
	}
}

func TestUpdateBadInput(t *testing.T) {
	r := newTestRepo(t, oid.SHA1)
	main := r.cur(t, "refs/heads/main")
	id256 := oid.Zero(oid.SHA256)
	for _, tc := range []struct {
		name    string
		updates []Update
	}{
		{"bad name", []Update{{Name: "refs/heads/a..b", New: main}}},
		{"outside refs", []Update{{Name: "config", New: main}}},
		{"escape", []Update{{Name: "refs/../../x", New: main}}},
		{"no new", []Update{{Name: "refs/heads/x"}}},
		{"wrong format new", []Update{{Name: "refs/heads/x", New: id256}}},
		{"wrong format old", []Update{{Name: "refs/heads/x", Old: id256, New: main}}},
		{"twice", []Update{{Name: "refs/heads/x", New: main}, {Name: "refs/heads/x", New: main}}},
	} {
		before := tree(t, r.dir)
		if err := r.s.Update(tc.updates); err == nil || errors.Is(err, ErrConflict) {
			t.Errorf("%s: got %v; want a validation error", tc.name, err)
		}
		if d := diffTrees(before, tree(t, r.dir)); len(d) > 0 {
			t.Errorf("%s: changed the repository: %q", tc.name, d)
		}
	}
	if err := r.s.Update(nil); err != nil {
		t.Errorf("Update(nil) = %v", err)
	}
}

func TestUpdateForeignLock(t *testing.T) {
	r := newTestRepo(t, oid.SHA1)
	r.gitT(t, "pack-refs", "--all")
	main := r.cur(t, "refs/heads/main")
	for _, tc := range []struct {
		lock   string
		update Update
	}{
		{"refs/heads/topic0.lock", Update{Name: "refs/heads/topic0", New: main}},
		{"packed-refs.lock", Update{Name: "refs/heads/topic0", New: oid.Zero(oid.SHA1)}},
	} {
		lockPath := filepath.Join(r.dir, filepath.FromSlash(tc.lock))
		if err := os.WriteFile(lockPath, []byte("someone else's\n"), 0o666); err != nil {
			t.Fatal(err)
		}
		before := tree(t, r.dir)
		err := r.s.Update([]Update{{Name: "refs/heads/aaa", New: main}, tc.update})
		if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "lock") {
			t.Errorf("%s held: got %v; want ErrConflict about the lock", tc.lock, err)
		}
		if d := diffTrees(before, tree(t, r.dir)); len(d) > 0 {
			t.Errorf("%s held: repository changed: %q", tc.lock, d)
		}
		os.Remove(lockPath)
	}
	// A lock released within the timeout is waited for.
	lockPath := filepath.Join(r.dir, "refs/heads/topic0.lock")
	os.WriteFile(lockPath, nil, 0o666)
	go func() { time.Sleep(20 * time.Millisecond); os.Remove(lockPath) }()
	if err := r.s.Update([]Update{{Name: "refs/heads/topic0", New: main}}); err != nil {
		t.Errorf("Update after the lock went away: %v", err)
	}
}

// TestUpdateConcurrent races many goroutines on one reference with
// compare-and-swap updates: no update may be lost.
func TestUpdateConcurrent(t *testing.T) {
	r := newTestRepo(t, oid.SHA1)
	name := "refs/heads/race"
	ids := make([]oid.ID, len(r.commits))
	next := map[oid.ID]oid.ID{}
	for i := range r.commits {
		ids[i] = r.c(t, i)
	}
	for i := range ids {
		next[ids[i]] = ids[(i+1)%len(ids)]
	}
	if err := r.s.Update([]Update{{Name: name, Old: oid.Zero(oid.SHA1), New: ids[0]}}); err != nil {
		t.Fatal(err)
	}

	// Everyone tries the same swap: exactly one wins.
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for g := 0; g < n; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[g] = r.s.Update([]Update{{Name: name, Old: ids[0], New: ids[1]}})
		}()
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, ErrConflict):
			t.Errorf("unexpected error %v", err)
		}
	}
	if wins != 1 {
		t.Errorf("got %d successful swaps; want 1", wins)
	}

	// Everyone advances the reference k times, retrying on conflict.
	const k = 5
	for g := 0; g < n; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for done := 0; done < k; {
				ref, err := r.s.Read(name)
				if err != nil {
					t.Error(err)
					return
				}
				err = r.s.Update([]Update{{Name: name, Old: ref.ID, New: next[ref.ID]}})
				switch {
				case err == nil:
					done++
				case !errors.Is(err, ErrConflict):
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	want := ids[(1+n*k)%len(ids)]
	if got := r.cur(t, name); got != want {
		t.Errorf("final value %v; want %v after %d updates", got, want, 1+n*k)
	}
	if got := strings.TrimSpace(r.gitT(t, "rev-parse", name)); got != want.String() {
		t.Errorf("git rev-parse %s = %s; want %v", name, got, want)
	}
	if hasLock(tree(t, r.dir)) {
		t.Errorf("lock files left behind")
	}
}

// TestUpdateRacesGit advances a reference from goroutines and from C Git
// processes at once, both with compare-and-swap: C Git and Store honour
// each other's locks, so no update is lost.
func TestUpdateRacesGit(t *testing.T) {
	r := newTestRepo(t, oid.SHA1)
	name := "refs/heads/race"
	ids := make([]oid.ID, len(r.commits))
	next := map[oid.ID]oid.ID{}
	for i := range r.commits {
		ids[i] = r.c(t, i)
	}
	for i := range ids {
		next[ids[i]] = ids[(i+1)%len(ids)]
	}
	r.gitT(t, "update-ref", name, ids[0].String())
	const k = 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	wg.Add(2)
	go func() {
		defer wg.Done()
		for done := 0; done < k; {
			ref, err := r.s.Read(name)
			if err != nil {
				t.Error(err)
				return
			}
			if err := r.s.Update([]Update{{Name: name, Old: ref.ID, New: next[ref.ID]}}); err == nil {
				done++
				mu.Lock()
				total++
				mu.Unlock()
			} else if !errors.Is(err, ErrConflict) {
				t.Error(err)
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for done := 0; done < k; {
			out, err := gittest.Run(t, r.dir, nil, "rev-parse", name)
			if err != nil {
				t.Error(err)
				return
			}
			cur, _ := oid.ParseHex(oid.SHA1, strings.TrimSpace(out))
			if _, err := gittest.Run(t, r.dir, nil, "update-ref", name, next[cur].String(), cur.String()); err == nil {
				done++
				mu.Lock()
				total++
				mu.Unlock()
			}
		}
	}()
	wg.Wait()
	want := ids[total%len(ids)]
	if got := r.cur(t, name); got != want || total != 2*k {
		t.Errorf("final value %v after %d updates; want %v after %d", got, total, want, 2*k)
	}
}

func TestSetSymbolic(t *testing.T) {
	for _, f := range formats {
		t.Run(f.String(), func(t *testing.T) {
			r := newTestRepo(t, f)
			r.gitT(t, "pack-refs", "--all")
			if err := r.s.SetSymbolic("HEAD", "refs/heads/topic0"); err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(r.gitT(t, "symbolic-ref", "HEAD")); got != "refs/heads/topic0" {
				t.Errorf("git symbolic-ref HEAD = %s; want refs/heads/topic0", got)
			}
			if err := r.s.SetSymbolic("refs/remotes/origin/HEAD", "refs/remotes/origin/main"); err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(r.gitT(t, "symbolic-ref", "refs/remotes/origin/HEAD")); got != "refs/remotes/origin/main" {
				t.Errorf("git symbolic-ref = %s", got)
			}
			// Unborn target: Read shows it, Resolve says not found.
			if err := r.s.SetSymbolic("HEAD", "refs/heads/unborn"); err != nil {
				t.Fatal(err)
			}
			if _, err := r.s.Resolve("HEAD"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Resolve(HEAD) = %v; want ErrNotFound", err)
			}
			before := tree(t, r.dir)
			for _, tc := range []struct{ name, target string }{
				{"HEAD", "HEAD"},
				{"HEAD", "refs/heads/a..b"},
				{"HEAD", "main"},
				{"FOO", "refs/heads/main"},
				{"refs/heads/main/x", "refs/heads/main"}, // D/F with packed main
				{"refs/heads", "refs/heads/main"},
			} {
				if err := r.s.SetSymbolic(tc.name, tc.target); err == nil {
					t.Errorf("SetSymbolic(%q, %q) succeeded", tc.name, tc.target)
				}
			}
			os.WriteFile(filepath.Join(r.dir, "HEAD.lock"), nil, 0o666)
			if err := r.s.SetSymbolic("HEAD", "refs/heads/main"); !errors.Is(err, ErrConflict) {
				t.Errorf("SetSymbolic with HEAD.lock held = %v; want ErrConflict", err)
			}
			os.Remove(filepath.Join(r.dir, "HEAD.lock"))
			if d := diffTrees(before, tree(t, r.dir)); len(d) > 0 {
				t.Errorf("failed SetSymbolic changed the repository: %q", d)
			}
		})
	}
}

// peeler returns a peel function built from what C Git says every
// reference peels to.
func peeler(t *testing.T, dir string, f oid.Format) func(oid.ID) (oid.ID, bool) {
	out, _ := gittest.Run(t, dir, nil, "show-ref", "-d")
	byName := map[string]string{}
	m := map[oid.ID]oid.ID{}
	for _, l := range lines(out) {
		id, name, _ := strings.Cut(l, " ")
		if base, ok := strings.CutSuffix(name, "^{}"); ok {
			tag, _ := oid.ParseHex(f, byName[base])
			peeled, _ := oid.ParseHex(f, id)
			m[tag] = peeled
		} else {
			byName[name] = id
		}
	}
	return func(id oid.ID) (oid.ID, bool) {
		p, ok := m[id]
		return p, ok
	}
}

func TestPackRefs(t *testing.T) {
	for _, f := range formats {
		t.Run(f.String(), func(t *testing.T) {
			r := newTestRepo(t, f)
			r.populateT(t)
			gitDir := copyRepo(t, r.dir)
			r.gitT(t, "update-ref", "refs/heads/topic1", r.commits[4]) // refs in both forms
			gittest.Git(t, gitDir, "update-ref", "refs/heads/topic1", r.commits[4])
			if err := r.s.PackRefs(peeler(t, r.dir, f)); err != nil {
				t.Fatal(err)
			}
			gittest.Git(t, gitDir, "pack-refs", "--all", "--prune")
			got, err := os.ReadFile(filepath.Join(r.dir, "packed-refs"))
			if err != nil {
				t.Fatal(err)
			}
			want, _ := os.ReadFile(filepath.Join(gitDir, "packed-refs"))
			if string(got) != string(want) {
				t.Errorf("packed-refs:\n%s\nC Git writes:\n%s", got, want)
			}
			if d := diffTrees(tree(t, filepath.Join(gitDir, "refs")), tree(t, filepath.Join(r.dir, "refs"))); len(d) > 0 {
				t.Errorf("loose references differ from C Git's pack-refs: %q", d)
			}
			if got, want := gitList(t, r.dir, "refs/"), gitList(t, gitDir, "refs/"); !same(got, want) {
				t.Errorf("references changed:\n%q\nwant\n%q", got, want)
			}
			gittest.Git(t, r.dir, "fsck", "--full", "--no-dangling")

			// Without a peeler: still readable, existing peeled lines kept.
			r.gitT(t, "update-ref", "refs/heads/later", r.commits[0])
			if err := r.s.PackRefs(nil); err != nil {
				t.Fatal(err)
			}
			got, _ = os.ReadFile(filepath.Join(r.dir, "packed-refs"))
			if !strings.HasPrefix(string(got), "# pack-refs with: sorted \n") || !strings.Contains(string(got), "\n^") {
				t.Errorf("packed-refs without peeler:\n%s", got)
			}
			gittest.Git(t, gitDir, "update-ref", "refs/heads/later", r.commits[0])
			if got, want := gitList(t, r.dir, "refs/"), gitList(t, gitDir, "refs/"); !same(got, want) {
				t.Errorf("references after PackRefs(nil):\n%q\nwant\n%q", got, want)
			}
			if _, peeled := listRefs(t, r.s, "refs/"); !same(peeled, gitPeeled(t, r.dir)) {
				t.Errorf("peeled after PackRefs(nil): %q; want %q", peeled, gitPeeled(t, r.dir))
			}
		})
	}
}

// TestUpdateManyFewDescriptors: a transaction holds a lock per
// reference but no descriptor for any once its value is written (issue
// 19: an atomic push of 20,000 references failed with "too many open
// files"). The descriptor limit is lowered far below the count.
func TestUpdateManyFewDescriptors(t *testing.T) {
	const n = 300
	r := newTestRepo(t, oid.SHA1)
	main := r.cur(t, "refs/heads/main")
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	low := lim
	low.Cur = 64
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	defer syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	for _, journal := range []bool{false, true} {
		s, prefix := r.s, "refs/heads/plain/"
		if journal {
			j, err := OpenJournal(r.dir, perm.Shared{})
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			s, prefix = r.s.WithJournal(j), "refs/heads/journal/"
		}
		ups := make([]Update, n)
		for i := range ups {
			ups[i] = Update{Name: fmt.Sprintf("%sr%05d", prefix, i), Old: oid.Zero(oid.SHA1), New: main}
		}
		if err := s.Update(ups); err != nil {
			t.Fatalf("journal %v: Update of %d references: %v", journal, n, err)
		}
		// And all deleted again, in one transaction with packed-refs.
		r.gitT(t, "pack-refs", "--all")
		for i := range ups {
			ups[i].Old, ups[i].New = main, oid.Zero(oid.SHA1)
		}
		if err := s.Update(ups); err != nil {
			t.Fatalf("journal %v: deletion of %d references: %v", journal, n, err)
		}
	}
	if l := locks(t, r.dir); len(l) > 0 {
		t.Errorf("lock files left: %q", l[:min(len(l), 5)])
	}
}
