package refs

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"gotd/internal/git/perm"
)

// JournalDir is the directory of a repository's git directory that
// holds the journals of the processes updating its references (see
// Journal). C Git ignores it.
const JournalDir = "gotd-locks"

// journalNames is the file of a journal that lists, one a line, the
// lock files its entries were made for, relative to the git directory:
// line i names the lock of entry file i.
const journalNames = "names"

// Journal records the lock files a process takes in one repository, so
// that when the process dies holding some, another can remove exactly
// those and none that another writer (C Git, or a live process) holds.
//
// A journal is a directory under JournalDir, flock(2)ed by its owner
// for as long as the journal is open: the kernel lets go of the flock
// when the process dies, however it dies, so that a journal whose flock
// can be taken is proved dead. Each lock is created as an entry file of
// the journal, its name appended to the journal's names file, and then
// linked to the lock's path: while the lock file exists and is the same
// inode as the entry, it is the dead process's lock; once renamed over
// the reference or removed, the lock's path is free or another's.
//
// A Journal is safe for concurrent use. The caller must Close it.
type Journal struct {
	dir string
	mu  sync.Mutex
	d   *os.File // the directory, flocked while the journal is open
	log *os.File // the names file, append-only
	n   int      // entries made
	err error    // set once the journal failed or was closed
}

// OpenJournal creates a journal in gitDir's JournalDir, which it
// creates if missing; both get the directory permissions of sh, the
// repository's sharing.
func OpenJournal(gitDir string, sh perm.Shared) (*Journal, error) {
	root := filepath.Join(gitDir, JournalDir)
	if err := sh.Mkdir(root); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("refs: journal: %w", err)
	}
	for tries := 0; ; tries++ {
		dir, err := os.MkdirTemp(root, "j")
		if err == nil {
			if err = sh.FixDir(dir); err != nil {
				os.Remove(dir)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("refs: journal: %w", err)
		}
		d, err := os.Open(dir)
		if err != nil {
			return nil, fmt.Errorf("refs: journal: %w", err)
		}
		if err := unix.Flock(int(d.Fd()), unix.LOCK_EX); err != nil {
			d.Close()
			return nil, fmt.Errorf("refs: journal: lock %s: %w", dir, err)
		}
		// Between the mkdir and the flock, RemoveDeadJournals could
		// take the journal for a dead one and remove it.
		var st unix.Stat_t
		if err := unix.Fstat(int(d.Fd()), &st); err != nil || st.Nlink == 0 {
			d.Close()
			if tries < 3 {
				continue
			}
			return nil, fmt.Errorf("refs: journal %s removed as it was made", dir)
		}
		log, err := os.OpenFile(filepath.Join(dir, journalNames), os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o666)
		if err != nil {
			d.Close()
			os.RemoveAll(dir)
			return nil, fmt.Errorf("refs: journal: %w", err)
		}
		return &Journal{dir: dir, d: d, log: log}, nil
	}
}

// create makes the next entry for the lock file lockPath (inside
// gitDir) and returns its path and its open descriptor.
func (j *Journal) create(gitDir, lockPath string) (string, *os.File, error) {
	rel, err := filepath.Rel(gitDir, lockPath)
	if err != nil || !filepath.IsLocal(rel) || strings.ContainsAny(rel, "\n") {
		return "", nil, fmt.Errorf("refs: journal: %s is not inside the repository", lockPath)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return "", nil, j.err
	}
	// The name first: an entry that is never linked is harmless, a
	// linked one that names nothing would stay.
	if _, err := j.log.WriteString(filepath.ToSlash(rel) + "\n"); err != nil {
		j.err = fmt.Errorf("refs: journal: %w", err)
		return "", nil, j.err
	}
	entry := filepath.Join(j.dir, strconv.Itoa(j.n))
	j.n++
	f, err := os.OpenFile(entry, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return "", nil, fmt.Errorf("refs: journal: %w", err)
	}
	return entry, f, nil
}

// Close removes the journal. Entries left by locks not yet released
// are removed with it; their lock files are not.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.d == nil {
		return nil
	}
	j.err = errors.New("refs: journal closed")
	j.log.Close()
	err := os.RemoveAll(j.dir)
	j.d.Close() // lets go of the flock
	j.d = nil
	if err != nil {
		return fmt.Errorf("refs: remove journal: %w", err)
	}
	return nil
}

// WithJournal returns a Store for the same repository that records
// every lock it takes in j.
func (s *Store) WithJournal(j *Journal) *Store {
	c := *s
	c.journal = j
	return &c
}

// maxJournalName bounds a line of a journal's names file: a lock's
// path under the git directory.
const maxJournalName = 4096 + 64

// RemoveDeadJournals removes the journals in gitDir whose owners are
// gone, and with each the lock files it proves its owner held: a lock
// file that is still the inode of its journal entry. Lock files of
// live journals, of C Git and of anyone else are left alone, as are
// files a journal names outside the references (a journal is written
// by a process that may have been compromised: it names only lock
// files under refs/, HEAD.lock and packed-refs.lock). It returns how
// many lock files it removed. A missing JournalDir is no journal.
func RemoveDeadJournals(gitDir string) (int, error) {
	root := filepath.Join(gitDir, JournalDir)
	ents, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("refs: journals: %w", err)
	}
	removed := 0
	var errs []error
	for _, e := range ents {
		n, err := removeDeadJournal(gitDir, filepath.Join(root, e.Name()))
		removed += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	return removed, errors.Join(errs...)
}

// removeDeadJournal removes one journal if its owner is gone.
func removeDeadJournal(gitDir, dir string) (int, error) {
	d, err := os.Open(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, nil // removed meanwhile
		}
		return 0, fmt.Errorf("refs: journal %s: %w", dir, err)
	}
	defer d.Close()
	if st, err := d.Stat(); err != nil || !st.IsDir() {
		return 0, fmt.Errorf("refs: journal %s is not a directory", dir)
	}
	switch err := unix.Flock(int(d.Fd()), unix.LOCK_EX|unix.LOCK_NB); {
	case errors.Is(err, unix.EWOULDBLOCK):
		return 0, nil // its owner lives
	case err != nil:
		return 0, fmt.Errorf("refs: journal %s: %w", dir, err)
	}
	removed := 0
	if f, err := os.Open(filepath.Join(dir, journalNames)); err == nil {
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 4096), maxJournalName)
		for i := 0; sc.Scan(); i++ {
			entry := filepath.Join(dir, strconv.Itoa(i))
			if removeJournaled(gitDir, sc.Text(), entry) {
				removed++
			}
		}
		f.Close()
	}
	if err := os.RemoveAll(dir); err != nil {
		return removed, fmt.Errorf("refs: remove journal: %w", err)
	}
	return removed, nil
}

// removeJournaled removes the lock file rel (relative to gitDir) if it
// is the inode of entry, and then the directories it leaves empty.
func removeJournaled(gitDir, rel, entry string) bool {
	if !journaledLock(rel) {
		return false
	}
	est, err := os.Lstat(entry)
	if err != nil || !est.Mode().IsRegular() {
		return false
	}
	// No directory on the way may be a symbolic link out of the
	// repository.
	for dir := filepath.Dir(rel); dir != "."; dir = filepath.Dir(dir) {
		if st, err := os.Lstat(filepath.Join(gitDir, filepath.FromSlash(dir))); err != nil || !st.IsDir() {
			return false
		}
	}
	path := filepath.Join(gitDir, filepath.FromSlash(rel))
	lst, err := os.Lstat(path)
	if err != nil || !os.SameFile(est, lst) {
		return false
	}
	if os.Remove(path) != nil {
		return false
	}
	// Directories made for the lock, up to refs/<kind>/ as C Git keeps.
	for dir := filepath.Dir(rel); strings.Count(dir, "/") >= 2; dir = filepath.Dir(dir) {
		if os.Remove(filepath.Join(gitDir, filepath.FromSlash(dir))) != nil {
			break
		}
	}
	return true
}

// journaledLock reports whether rel may be a lock file a journal
// records: a reference's or packed-refs' lock, by a clean relative
// path.
func journaledLock(rel string) bool {
	if !strings.HasSuffix(rel, ".lock") || !filepath.IsLocal(rel) || filepath.ToSlash(filepath.Clean(rel)) != rel {
		return false
	}
	switch name := strings.TrimSuffix(rel, ".lock"); {
	case name == "HEAD", name == "packed-refs":
		return true
	default:
		return CheckName(name) == nil
	}
}
