package e2enet

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// leftovers lists what a push may leave in a repository if its
// processes die and nobody tidies: lock files, quarantines, journals.
func leftovers(t testing.TB, gitDir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(gitDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(gitDir, path)
		switch {
		case rel == "gotd-prune.lock" || rel == "gotd-upkeep.lock":
			// Empty files whose flock(2) is the lock, left in place
			// by design; the kernel lets go of it with the process.
		case strings.HasSuffix(rel, ".lock"):
			out = append(out, rel)
		case d.IsDir() && strings.HasPrefix(rel, "objects/incoming-"):
			out = append(out, rel)
			return filepath.SkipDir
		case strings.HasPrefix(rel, "gotd-locks/"):
			out = append(out, rel)
		}
		return nil
	})
	return out
}

// sessions counts the daemon's per-client processes.
func (s *server) sessions() int {
	n := 0
	for role, p := range children(s.t, s.daemon.Process.Pid) {
		if strings.HasPrefix(role, "session_") || strings.HasPrefix(role, "repo_") || role == "auth" {
			n += len(p)
		}
	}
	return n
}

// settle waits until the daemon has no client process left and the
// repositories hold no leftovers; it fails the test if that does not
// happen in time.
func (s *server) settle(what string, repos ...string) {
	s.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var left []string
		for _, r := range repos {
			left = append(left, leftovers(s.t, r)...)
		}
		busy := s.sessions()
		if busy == 0 && len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: %d client processes, leftovers %q", what, busy, left[:min(len(left), 8)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// killWhen kills with SIGKILL the first process of role (or the
// daemon, for "parent") once it exists and ready says so, after a
// random delay below max; it returns whether it killed one. It gives
// up after a few seconds.
func (s *server) killWhen(role string, max time.Duration, ready func() bool) bool {
	deadline := time.Now().Add(5 * time.Second)
	var pid int
	for time.Now().Before(deadline) {
		// The process is found once (a scan of /proc is slower
		// than some pushes hold their locks), then ready is polled.
		if pid != 0 && syscall.Kill(pid, 0) != nil {
			pid = 0
		}
		if pid == 0 {
			if role == "parent" {
				pid = s.daemon.Process.Pid
			} else if p := children(s.t, s.daemon.Process.Pid)[role]; len(p) > 0 {
				pid = p[0]
			}
		}
		if pid != 0 && (ready == nil || ready()) {
			time.Sleep(rand.N(max))
			return syscall.Kill(pid, syscall.SIGKILL) == nil
		}
		time.Sleep(2 * time.Millisecond)
	}
	return false
}

// locking reports whether a push holds reference locks in gitDir: its
// journal has entries.
func locking(gitDir string) bool {
	m, _ := filepath.Glob(filepath.Join(gitDir, "gotd-locks", "*", "[0-9]*"))
	return len(m) > 0
}

// TestCrash kills every role of gotd with SIGKILL at random points of
// pushes and fetches, the parent too (then gotd is started again), in
// a bounded number of rounds (issue 19). After each round the
// repositories pass git fsck --full, hold no lock, quarantine or
// journal, the next push to the same references lands, and the clients
// whose processes were not killed succeeded.
//
// Upkeep is off: started by a push, it packs references and replaces
// packs while the test's own git commands (fsck, update-ref, chown)
// read and change the repository between rounds, and those failed on
// files it had just removed. Upkeep's own kills are TestUpkeepKilled's.
func TestCrash(t *testing.T) {
	s := start(t, options{extraTop: "upkeep off"})
	test := filepath.Join(s.dir, "test.git")
	private := filepath.Join(s.dir, "private.git")
	env := []string{"GIT_SSH_COMMAND=" + s.sshCommand(s.writerKey)}
	work := filepath.Join(s.clientDir("crash"), "w")
	s.mustGit(s.dir, nil, "clone", "-q", s.gitURL("test"), work)
	pwork := filepath.Join(s.clientDir("crash"), "p")
	s.mustGit(s.dir, env, "clone", "-q", s.sshURL(rwAccount, "private"), pwork)

	const nRefs, nGone = 150, 50
	// pushArgs moves nRefs references to HEAD and deletes nGone packed
	// ones.
	pushArgs := func(atomic bool) []string {
		args := []string{"push", "--porcelain", s.sshURL(rwAccount, "test")}
		if atomic {
			args = append(args, "--atomic")
		}
		for i := range nRefs {
			args = append(args, fmt.Sprintf("+HEAD:refs/heads/crash/r%04d", i))
		}
		for i := range nGone {
			args = append(args, fmt.Sprintf(":refs/heads/gone/r%04d", i))
		}
		return args
	}
	// makeGone creates the references the push deletes, packed, as
	// C Git's pack-refs leaves them.
	makeGone := func() {
		head := strings.TrimSpace(run(t, "git", "--git-dir", test, "rev-parse", "main"))
		var b strings.Builder
		for i := range nGone {
			fmt.Fprintf(&b, "update refs/heads/gone/r%04d %s\n", i, head)
		}
		stdin := filepath.Join(s.dir, "gone.txt")
		write(t, stdin, b.String(), 0o644)
		run(t, "sh", "-c", fmt.Sprintf("git --git-dir %s update-ref --stdin < %s && git --git-dir %s pack-refs --all", test, stdin, test))
		if os.Geteuid() == 0 {
			run(t, "chown", "-R", rootDaemon, test)
		}
	}
	commit := func(dir, name string, size int) {
		write(t, filepath.Join(dir, name), string(randomBytes(size)), 0o644)
		s.mustGit(dir, nil, "add", "-A")
		s.mustGit(dir, nil, "commit", "-q", "-m", name)
	}

	roles := []string{"session_write", "repo_write", "session_read", "parent"}
	start := time.Now()
	kills := map[string]int{}
	for round := range 2 * len(roles) {
		role := roles[round%len(roles)]
		what := fmt.Sprintf("round %d (%s)", round, role)
		pushes := role != "session_read"
		// The victim: a push of many references with a pack of some
		// size, or a clone. The bystander uses roles other than the
		// victim's, so that a kill can only reach the victim.
		victim := make(chan error, 1)
		bystander := make(chan error, 1)
		if pushes {
			makeGone()
			commit(work, fmt.Sprintf("f%d", round), 1<<20)
			go func() {
				_, err := s.git(work, env, pushArgs(round%2 == 0)...)
				victim <- err
			}()
			go func() {
				var err error
				for i := range 2 {
					clone := filepath.Join(s.dir, "clients", fmt.Sprintf("by%d-%d.git", round, i))
					if out, e := s.git(s.dir, nil, "clone", "-q", "--bare", s.gitURL("test"), clone); e != nil {
						err = fmt.Errorf("clone: %v\n%s", e, out)
					}
					os.RemoveAll(clone)
				}
				bystander <- err
			}()
		} else {
			go func() {
				clone := filepath.Join(s.dir, "clients", fmt.Sprintf("v%d.git", round))
				_, err := s.git(s.dir, nil, "clone", "-q", "--bare", s.gitURL("test"), clone)
				os.RemoveAll(clone)
				victim <- err
			}()
			go func() {
				commit(pwork, fmt.Sprintf("p%d", round), 4<<10)
				out, err := s.git(pwork, env, "push", "-q", s.sshURL(rwAccount, "private"), "HEAD:main")
				if err != nil {
					err = fmt.Errorf("push: %v\n%s", err, out)
				}
				bystander <- err
			}()
		}
		// session_write and the parent are killed while the push
		// holds reference locks, the others soon after they start.
		max, ready := 200*time.Millisecond, func() bool { return locking(test) }
		switch role {
		case "repo_write", "session_read":
			max, ready = 30*time.Millisecond, nil
		}
		if s.killWhen(role, max, ready) {
			kills[role]++
		}
		<-victim // it may fail: its processes were killed
		berr := <-bystander
		if role == "parent" {
			s.daemon.Wait()
			if l := leftovers(t, test); len(l) > 0 {
				t.Logf("%s: left by the dead daemon: %d files", what, len(l))
			}
			s.launch()
		} else if berr != nil {
			t.Errorf("%s: a client whose processes were not killed failed: %v", what, berr)
		}
		s.settle(what, test, private)
		fsck(t, test)
		fsck(t, private)
		// The next push to the same references lands.
		if pushes {
			makeGone()
			if out, err := s.git(work, env, pushArgs(false)...); err != nil {
				t.Fatalf("%s: the next push failed: %v\n%s", what, err, out)
			}
			head := strings.TrimSpace(s.mustGit(work, nil, "rev-parse", "HEAD"))
			for _, r := range []string{"refs/heads/crash/r0000", fmt.Sprintf("refs/heads/crash/r%04d", nRefs-1)} {
				if got := strings.TrimSpace(run(t, "git", "--git-dir", test, "rev-parse", r)); got != head {
					t.Errorf("%s: after the next push %s = %s; want %s", what, r, got, head)
				}
			}
			s.settle(what+", next push", test)
		}
	}
	log := s.log.String()
	removed := strings.Count(log, "removed the reference locks of a dead push") + strings.Count(log, "removed the reference locks of dead writers")
	t.Logf("%d rounds in %v, kills by role: %v, lock removals: %d", 2*len(roles), time.Since(start).Round(time.Millisecond), kills, removed)
	if kills["session_write"] == 0 || kills["parent"] == 0 || removed == 0 {
		t.Errorf("kills by role %v, lock removals %d: session_write and the parent must have been killed holding locks", kills, removed)
	}
}

// TestUpkeepKilled kills the upkeep process with SIGKILL at random
// points of a full run (gotctl upkeep), in a bounded number of rounds,
// each after pushes that leave packs, loose objects and loose
// references to tidy. After each kill the repository passes git fsck
// --full, its references are those before the run, and the next push
// and the next run, let finish, leave no lock, quarantine or journal
// behind.
func TestUpkeepKilled(t *testing.T) {
	s := start(t, options{extraTop: "upkeep off"}) // only the runs of gotctl upkeep
	test := filepath.Join(s.dir, "test.git")
	env := []string{"GIT_SSH_COMMAND=" + s.sshCommand(s.writerKey)}
	url := s.sshURL(rwAccount, "test")
	work := filepath.Join(s.clientDir("upkill"), "w")
	s.mustGit(s.dir, nil, "clone", "-q", s.gitURL("test"), work)
	push := func(round, i int) {
		write(t, filepath.Join(work, fmt.Sprintf("u%d-%d", round, i)), string(randomBytes(256<<10)), 0o644)
		s.mustGit(work, nil, "add", "-A")
		s.mustGit(work, nil, "commit", "-q", "-m", fmt.Sprintf("u%d-%d", round, i))
		args := []string{"push", "-q", url, "HEAD:main"}
		for j := range 20 {
			args = append(args, fmt.Sprintf("HEAD:refs/heads/up/r%d-%d-%d", round, i, j))
		}
		s.mustGit(work, env, args...)
	}
	kills := 0
	for round, max := range []time.Duration{5, 20, 50, 100, 200, 400} {
		what := fmt.Sprintf("round %d", round)
		for i := range 4 {
			push(round, i)
		}
		before := refs(t, test)
		ran := make(chan error, 1)
		go func() {
			_, err := s.gotctl("upkeep", "test")
			ran <- err
		}()
		if s.killWhen("upkeep", max*time.Millisecond, nil) {
			kills++
		}
		<-ran // it fails if the kill came before the run's end
		s.settle(what, test)
		fsck(t, test)
		if got := refs(t, test); got != before {
			t.Fatalf("%s: the references after the killed upkeep:\n%s\nwant:\n%s", what, got, before)
		}
		push(round, 4)
		if out, err := s.gotctl("upkeep", "test"); err != nil {
			t.Fatalf("%s: the run after the killed one: %v\n%s", what, err, out)
		}
		s.settle(what+", next run", test)
		fsck(t, test)
		if packs, _ := filepath.Glob(filepath.Join(test, "objects", "pack", "pack-*.pack")); len(packs) != 1 {
			t.Errorf("%s: %d packs after a full run; want 1", what, len(packs))
		}
	}
	t.Logf("%d rounds, %d upkeep processes killed", 6, kills)
	if kills == 0 {
		t.Error("no upkeep process was killed")
	}
}

// TestDiskFull: a push that fills the disk, with no "min free space"
// guard, is told "no space left on the server" and changes nothing
// (issue 19: it was told "pack is invalid").
func TestDiskFull(t *testing.T) {
	mnt, err := os.MkdirTemp("", "gotd-e2enet-fs-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(mnt)
	if out, err := runErr("mount", "-t", "tmpfs", "-o", "size=8m,mode=0755", "tmpfs", mnt); err != nil {
		if os.Getenv("GOTD_REQUIRE_E2E") != "" {
			t.Fatalf("cannot mount a tmpfs: %v\n%s", err, out)
		}
		t.Skipf("cannot mount a tmpfs (needs root): %v\n%s", err, out)
	}
	defer func() {
		if out, err := runErr("umount", mnt); err != nil {
			t.Errorf("umount: %v\n%s", err, out)
		}
	}()
	full := filepath.Join(mnt, "full.git")
	run(t, "git", "init", "-q", "--bare", "-b", "main", full)
	if os.Geteuid() == 0 {
		run(t, "chown", "-R", rootDaemon, full)
	}
	s := start(t, options{extraTop: fmt.Sprintf(`repository "full" {
	path "%s"
	permit rw %s
}`, full, rwAccount)})
	url := s.sshURL(rwAccount, "full")
	env := []string{"GIT_SSH_COMMAND=" + s.sshCommand(s.writerKey)}
	w := filepath.Join(s.clientDir("full"), "w")
	s.mustGit(s.dir, nil, "init", "-q", "-b", "main", w)
	write(t, filepath.Join(w, "readme"), "full\n", 0o644)
	s.mustGit(w, nil, "add", "-A")
	s.mustGit(w, nil, "commit", "-q", "-m", "readme")
	s.mustGit(w, env, "push", "-q", url, "HEAD:main")
	before := refs(t, full)

	write(t, filepath.Join(w, "big.bin"), string(randomBytes(10<<20)), 0o644)
	s.mustGit(w, nil, "add", "-A")
	s.mustGit(w, nil, "commit", "-q", "-m", "big")
	out, err := s.git(w, env, "push", url, "HEAD:main")
	if err == nil || !strings.Contains(out, "no space left on the server") {
		t.Errorf("push onto a full disk: %v\n%s", err, out)
	}
	if got := refs(t, full); got != before {
		t.Errorf("references changed:\n%s\nwere:\n%s", got, before)
	}
	s.settle("full disk", full)
	fsck(t, full)
}
