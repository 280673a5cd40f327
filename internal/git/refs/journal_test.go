package refs

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gotd/internal/git/oid"
	"gotd/internal/git/perm"
)

// locks lists the lock files under dir, relative to it.
func locks(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for name := range tree(t, dir) {
		if strings.HasSuffix(name, ".lock") {
			out = append(out, name)
		}
	}
	return out
}

// abandon lets go of a journal as its owner's death would: the flock
// goes, the files stay.
func (j *Journal) abandon() {
	j.log.Close()
	j.d.Close()
	j.d = nil
}

// TestJournalDeadLocks: the locks of a journal whose owner is gone are
// removed, and only they: not a lock another writer took after the
// journal's own was committed, not C Git's, not a live journal's
// (issue 19: a killed session_write left refs/heads/many/r01245.lock).
func TestJournalDeadLocks(t *testing.T) {
	r := newTestRepo(t, oid.SHA1)
	main := r.cur(t, "refs/heads/main")
	data := []byte(main.String() + "\n")

	dead, err := OpenJournal(r.dir, perm.Shared{})
	if err != nil {
		t.Fatal(err)
	}
	ds := r.s.WithJournal(dead)
	for _, name := range []string{"refs/heads/many/r01245", "refs/heads/a", "refs/tags/t"} {
		if _, err := ds.lock(ds.path(name), refLockTimeout, data); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ds.lock(filepath.Join(r.dir, "packed-refs"), packedLockTimeout, nil); err != nil {
		t.Fatal(err)
	}
	// Committed, then locked again by C Git: the journal's entry is now
	// the reference, and the lock file is someone else's.
	l, err := ds.lock(ds.path("refs/heads/moved"), refLockTimeout, data)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.commit(); err != nil {
		t.Fatal(err)
	}
	foreign := []string{"refs/heads/moved.lock", "refs/heads/git.lock"}
	for _, f := range foreign {
		if err := os.WriteFile(filepath.Join(r.dir, f), data, 0o666); err != nil {
			t.Fatal(err)
		}
	}
	live, err := OpenJournal(r.dir, perm.Shared{})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	ls := r.s.WithJournal(live)
	ll, err := ls.lock(ls.path("refs/heads/live"), refLockTimeout, data)
	if err != nil {
		t.Fatal(err)
	}
	defer ll.release()
	foreign = append(foreign, "refs/heads/live.lock")

	// While the owner lives, nothing is removed.
	if n, err := RemoveDeadJournals(r.dir); n != 0 || err != nil {
		t.Fatalf("RemoveDeadJournals with live owners = %d, %v; want 0, nil", n, err)
	}
	dead.abandon()
	n, err := RemoveDeadJournals(r.dir)
	if n != 4 || err != nil {
		t.Errorf("RemoveDeadJournals = %d, %v; want 4, nil", n, err)
	}
	got := locks(t, r.dir)
	slices.Sort(got)
	slices.Sort(foreign)
	if !slices.Equal(got, foreign) {
		t.Errorf("lock files left: %q; want %q", got, foreign)
	}
	if _, err := os.Stat(filepath.Join(r.dir, "refs/heads/many")); err == nil {
		t.Errorf("refs/heads/many, made for the lock, is still there")
	}
	if got := r.cur(t, "refs/heads/moved"); got != main {
		t.Errorf("refs/heads/moved = %v; want %v", got, main)
	}
	ents, _ := os.ReadDir(filepath.Join(r.dir, JournalDir))
	if len(ents) != 1 {
		t.Errorf("%d journals left; want the live one", len(ents))
	}
	if err := r.s.Update([]Update{{Name: "refs/heads/many/r01245", Old: oid.Zero(oid.SHA1), New: main}}); err != nil {
		t.Errorf("update after the cleanup: %v", err)
	}
}

// TestJournalHostileNames: a journal is written by a process that may
// be compromised; its names reach no file outside the references, even
// one it linked as an entry.
func TestJournalHostileNames(t *testing.T) {
	r := newTestRepo(t, oid.SHA1)
	outside := filepath.Join(t.TempDir(), "victim.lock")
	if err := os.WriteFile(outside, []byte("x"), 0o666); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(r.dir, "config")
	jdir := filepath.Join(r.dir, JournalDir, "jevil")
	if err := os.MkdirAll(jdir, 0o777); err != nil {
		t.Fatal(err)
	}
	// A symbolic link out of the repository on the way to a lock.
	if err := os.Symlink(filepath.Dir(outside), filepath.Join(r.dir, "refs", "out")); err != nil {
		t.Fatal(err)
	}
	names := []string{
		"../" + filepath.Base(outside), // outside (not even the same path)
		outside,                        // absolute
		"config",                       // not a lock
		"refs/out/victim.lock",         // through the symbolic link
		"refs/heads/../../config.lock", // not clean
		"objects/info/x.lock",          // not a reference's lock
	}
	for i, target := range []string{outside, outside, config, outside, config, config} {
		if err := os.Link(target, filepath.Join(jdir, strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(jdir, journalNames), []byte(strings.Join(names, "\n")+"\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	if n, err := RemoveDeadJournals(r.dir); n != 0 || err != nil {
		t.Errorf("RemoveDeadJournals = %d, %v; want 0, nil", n, err)
	}
	for _, f := range []string{outside, config} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if _, err := os.Stat(jdir); err == nil {
		t.Errorf("dead journal %s not removed", jdir)
	}
}

// TestJournalConcurrent: stores with and without journals race on one
// reference; a journal closed after its updates leaves nothing.
func TestJournalConcurrent(t *testing.T) {
	r := newTestRepo(t, oid.SHA1)
	name := "refs/heads/race"
	a, b := r.c(t, 0), r.c(t, 1)
	errs := make(chan error, 16)
	for g := 0; g < 8; g++ {
		go func() {
			// The journal is closed before the result is sent: the
			// check below must not race a deferred Close.
			errs <- func() error {
				s := r.s
				if g%2 == 0 {
					j, err := OpenJournal(r.dir, perm.Shared{})
					if err != nil {
						return err
					}
					defer j.Close()
					s = r.s.WithJournal(j)
				}
				for i := 0; i < 20; i++ {
					err := s.Update([]Update{{Name: name, New: [2]oid.ID{a, b}[i%2]}, {Name: fmt.Sprintf("refs/heads/g%d", g), New: a}})
					if err != nil && !errors.Is(err, ErrLocked) {
						return err
					}
				}
				return nil
			}()
		}()
	}
	for g := 0; g < 8; g++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if l := locks(t, r.dir); len(l) > 0 {
		t.Errorf("lock files left: %q", l)
	}
	if ents, _ := os.ReadDir(filepath.Join(r.dir, JournalDir)); len(ents) > 0 {
		t.Errorf("%d journals left", len(ents))
	}
}

// TestJournalKilled kills with SIGKILL a process holding locks through
// its journal: its locks are removed, then, and not while it lives.
func TestJournalKilled(t *testing.T) {
	if dir := os.Getenv("GOTD_REFS_JOURNAL_HELPER"); dir != "" {
		journalHelper(dir)
		return
	}
	r := newTestRepo(t, oid.SHA1)
	cmd := exec.Command(os.Args[0], "-test.run=^TestJournalKilled$")
	cmd.Env = append(os.Environ(), "GOTD_REFS_JOURNAL_HELPER="+r.dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "locked\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper said %q, %v", line, err)
	}
	if n, err := RemoveDeadJournals(r.dir); n != 0 || err != nil {
		t.Errorf("RemoveDeadJournals while the holder lives = %d, %v; want 0, nil", n, err)
	}
	if got := len(locks(t, r.dir)); got != 101 {
		t.Errorf("%d locks held; want 101", got)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if n, err := RemoveDeadJournals(r.dir); n != 101 || err != nil {
		t.Errorf("RemoveDeadJournals after the kill = %d, %v; want 101, nil", n, err)
	}
	if l := locks(t, r.dir); len(l) > 0 {
		t.Errorf("lock files left: %q", l)
	}
	main := r.cur(t, "refs/heads/main")
	if err := r.s.Update([]Update{{Name: "refs/heads/many/r7", New: main}, {Name: "refs/heads/topic0", New: oid.Zero(oid.SHA1)}}); err != nil {
		t.Errorf("update after the cleanup: %v", err)
	}
}

// journalHelper takes 100 reference locks and packed-refs.lock through
// a journal and waits to be killed.
func journalHelper(dir string) {
	j, err := OpenJournal(dir, perm.Shared{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	s := New(dir, oid.SHA1).WithJournal(j)
	for i := 0; i < 100; i++ {
		if _, err := s.lock(s.path(fmt.Sprintf("refs/heads/many/r%d", i)), refLockTimeout, []byte{}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	if _, err := s.lock(filepath.Join(dir, "packed-refs"), packedLockTimeout, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("locked")
	time.Sleep(time.Minute)
}
