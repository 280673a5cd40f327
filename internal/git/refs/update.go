package refs

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"gotd/internal/git/oid"
	"gotd/internal/git/perm"
)

const (
	// refLockTimeout is how long a reference lock held by someone else
	// is waited for, C Git's core.filesRefLockTimeout default.
	refLockTimeout = 100 * time.Millisecond
	// packedLockTimeout is the same for packed-refs.lock, C Git's
	// core.packedRefsTimeout default.
	packedLockTimeout = time.Second
)

// Update is one change in a transaction passed to Store.Update.
type Update struct {
	// Name is "HEAD" or a full name accepted by CheckName.
	Name string
	// Old is the value the reference must have for the transaction to
	// proceed: the zero value oid.ID{} means "do not check", the null
	// id of the store's format (oid.Zero) means "must not exist".
	Old oid.ID
	// New is the value to store; the null id deletes the reference.
	New oid.ID
	// Who, unless zero, is appended to the reference's reflog with
	// the reference's value before and New, under the reference's
	// lock; see Store.Update.
	Who Who
}

// lockFile is a held "<path>.lock".
type lockFile struct {
	path   string      // the file the lock protects
	shared perm.Shared // permissions of the file and of directories made
	f      *os.File    // open until written: only for a lock taken without its contents
	dirs   []string    // directories created for the lock, outermost first
	entry  string      // the lock's link in the store's journal, "" without one
	held   bool        // the lock file is ours
	done   bool        // renamed or removed
}

func (l *lockFile) lockPath() string { return l.path + ".lock" }

// release removes the lock file, if it was taken, its journal entry
// and any directories created for it that are still empty. It is a
// no-op once the lock was committed, but for the journal entry.
func (l *lockFile) release() {
	if l.entry != "" {
		// After a commit the entry is a second name of the reference
		// itself; before, of the lock file. Either way it goes.
		defer func() {
			os.Remove(l.entry)
			l.entry = ""
		}()
	}
	if l.done {
		return
	}
	l.done = true
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
	if l.held {
		os.Remove(l.lockPath())
	}
	for i := len(l.dirs) - 1; i >= 0; i-- {
		if os.Remove(l.dirs[i]) != nil {
			break
		}
	}
}

// write stores data in the lock file's open descriptor, after what
// was written there already, syncs and closes it.
func (l *lockFile) write(data []byte) error {
	err := writeSync(l.f, data, true)
	l.f = nil
	return err
}

// writeSync writes data to f, syncs it if sync is set and closes it.
func writeSync(f *os.File, data []byte, sync bool) error {
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if sync {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// commit renames the written lock file over the locked path.
func (l *lockFile) commit() error {
	if err := os.Rename(l.lockPath(), l.path); err != nil {
		return err
	}
	l.done = true
	return nil
}

// errLockHeld reports that a lock file stayed in place until the timeout.
var errLockHeld = errors.New("lock file held by another writer")

// errDirConflict reports that a lock could not be created because a path
// component is a file: another reference is a prefix of this name.
type errDirConflict struct{ at string }

func (e *errDirConflict) Error() string { return e.at + " is a file" }

// lock creates path+".lock" with O_EXCL and the store's permissions
// (renamed into place, the lock file is the reference), first creating missing
// directories below the store's git directory. While the lock is held
// by someone else it retries with growing random back-off until
// timeout.
//
// With data non-nil the lock file is written (and synced unless data is
// empty) and closed before lock returns, as C Git's lock_ref_for_update
// does: a transaction holds thousands of locks but no descriptor for
// any. With data nil the lock's descriptor stays open (l.f) for the
// caller to write and close with l.write.
//
// A store with a journal first creates the lock's contents as an entry
// of the journal and then links it to the lock's name (link(2) fails
// on an existing name as O_EXCL does): the lock file and the entry are
// one inode, which is what lets RemoveDeadJournals tell this lock from
// one another writer took since.
func (s *Store) lock(path string, timeout time.Duration, data []byte) (*lockFile, error) {
	l := &lockFile{path: path, shared: s.Shared}
	if s.journal != nil {
		entry, f, err := s.journal.create(s.gitDir, l.lockPath())
		if err != nil {
			return nil, err
		}
		l.entry = entry
		if err = s.Shared.Chmod(f, 0o666); err != nil {
			f.Close()
		} else if data != nil {
			err = writeSync(f, data, len(data) > 0)
		} else {
			l.f = f
		}
		if err != nil {
			l.release()
			return nil, fmt.Errorf("refs: write %s: %w", l.lockPath(), err)
		}
	}
	deadline := time.Now().Add(timeout)
	backoff := time.Millisecond
	for tries := 0; ; tries++ {
		var err error
		if l.entry != "" {
			err = os.Link(l.entry, l.lockPath())
		} else {
			var f *os.File
			if f, err = os.OpenFile(l.lockPath(), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
				l.f = f
				if err = s.Shared.Chmod(f, 0o666); err != nil {
					l.held = true
					l.release()
					return nil, err
				}
			}
		}
		if err == nil {
			l.held = true
			if data != nil && l.f != nil {
				err := writeSync(l.f, data, len(data) > 0)
				l.f = nil
				if err != nil {
					l.release()
					return nil, fmt.Errorf("refs: write %s: %w", l.lockPath(), err)
				}
			}
			return l, nil
		}
		switch {
		case errors.Is(err, fs.ErrNotExist) && l.entry != "" && !exists(l.entry):
			// The journal's entry is gone: RemoveDeadJournals took
			// this journal for a dead one.
			l.release()
			return nil, fmt.Errorf("refs: journal entry of %s removed", l.lockPath())
		case errors.Is(err, fs.ErrNotExist):
			// A parent directory is missing, or was removed by a
			// concurrent deletion tidying empty directories.
			if tries > 10 {
				l.release()
				return nil, err
			}
			// A directory removed again as it was made: another try.
			if err := l.mkdirs(s.gitDir); err != nil && !errors.Is(err, fs.ErrNotExist) {
				l.release()
				return nil, err
			}
			continue
		case errors.Is(err, syscall.ENOTDIR):
			l.release()
			return nil, l.fileInPath(s.gitDir)
		case !errors.Is(err, fs.ErrExist):
			l.release()
			return nil, err
		}
		if time.Now().After(deadline) {
			l.release()
			return nil, errLockHeld
		}
		time.Sleep(backoff/2 + rand.N(backoff))
		backoff *= 2
	}
}

// exists reports whether a file is at path.
func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// mkdirs creates the directories between base and the lock file,
// remembering which ones it made.
func (l *lockFile) mkdirs(base string) error {
	rel, err := filepath.Rel(base, filepath.Dir(l.path))
	if err != nil || rel == "." {
		return fmt.Errorf("create lock for %s: parent directory missing", l.path)
	}
	dir := base
	for _, comp := range strings.Split(rel, string(filepath.Separator)) {
		dir = filepath.Join(dir, comp)
		err := os.Mkdir(dir, 0o700)
		switch {
		case err == nil:
			l.dirs = append(l.dirs, dir)
			if err := l.shared.FixDir(dir); err != nil {
				return err
			}
		case errors.Is(err, fs.ErrExist):
			if st, err := os.Stat(dir); err == nil && !st.IsDir() {
				return &errDirConflict{at: dir}
			}
		case errors.Is(err, syscall.ENOTDIR):
			return l.fileInPath(base)
		default:
			return err
		}
	}
	return nil
}

// fileInPath finds the file that stands where a directory of the lock's
// path should be.
func (l *lockFile) fileInPath(base string) error {
	rel, _ := filepath.Rel(base, filepath.Dir(l.path))
	dir := base
	for _, comp := range strings.Split(rel, string(filepath.Separator)) {
		dir = filepath.Join(dir, comp)
		if st, err := os.Stat(dir); err == nil && !st.IsDir() {
			return &errDirConflict{at: dir}
		}
	}
	return fmt.Errorf("%s: not a directory", filepath.Dir(l.path))
}

// txnRef is the state of one update while a transaction runs.
type txnRef struct {
	Update
	lock   *lockFile
	cur    oid.ID // its value when locked, the null id if none or symbolic
	exists bool   // the reference exists (loose or packed) when locked
	loose  bool   // it has a loose file
	packed bool   // it has a packed-refs record
}

func (t *txnRef) deleting(f oid.Format) bool { return t.New == oid.Zero(f) }

// Update applies updates as one transaction: either all references
// change or none does.
//
// Every name is checked (HEAD or CheckName) and may appear once. The
// references are locked in name order with C Git's lock files, waiting
// up to 100ms for a lock held by another writer; if any deletion is
// among the updates, packed-refs.lock is taken too (waiting up to 1s)
// and held until the deletions are done, so a concurrent pack-refs
// cannot resurrect a deleted reference. With the locks held, each Old
// is checked against the current value, loose or packed; a symbolic
// reference never matches an Old other than "do not check", and is
// replaced (not followed) by the update. Creating a reference whose
// name is a directory prefix of an existing reference, or has an
// existing reference as a prefix ("refs/heads/a" against
// "refs/heads/a/b"), is refused, as are two names in one transaction in
// that relation.
//
// New values are written into the lock files as they are taken, each
// closed at once (no descriptor stays open per lock), and synced before
// any is renamed into place; deletions then rewrite packed-refs (through
// packed-refs.lock, synced and renamed) if the reference was packed,
// and remove the loose file and the directories that became empty
// (never a directory directly under refs/). Directories holding renamed
// files are synced.
//
// Reflogs: for each update with a Who, a line is appended to
// logs/<name> (created with its directories) with the value found
// under the lock (the null id for a reference that did not exist or
// was symbolic) and New, after the lock files are written and before
// any is renamed; when the updated reference is the branch HEAD points
// at, HEAD's lock is taken too (first, in name order) and the same line
// is appended to logs/HEAD, as C Git's split_head_update does. Unlike
// C Git, a deletion keeps the reflog and appends an entry whose new id
// is null: the history of a deleted reference stays until a reference
// whose name conflicts with it ("a" against "a/b") is logged. Deleting
// a reference that does not exist logs nothing. If the transaction fails
// before its first rename, the lines it appended are taken back.
//
// A mismatching Old, a lock held by someone else or a name conflict is
// an error wrapping ErrConflict that names the reference; a lock held
// by someone else wraps ErrLocked too. On any error
// before the first rename nothing is changed and all lock files are
// removed; an error after that (an I/O failure) may leave some updates
// applied, as with C Git.
func (s *Store) Update(updates []Update) error {
	if len(updates) == 0 {
		return nil
	}
	txn, err := s.checkUpdates(updates)
	if err != nil {
		return err
	}
	var packedLock, headLock *lockFile
	var appended []*logAppend
	renamed := false
	defer func() {
		if !renamed {
			for i := len(appended) - 1; i >= 0; i-- {
				appended[i].undo()
			}
		}
		for _, t := range txn {
			if t.lock != nil {
				t.lock.release()
			}
		}
		if packedLock != nil {
			packedLock.release()
		}
		if headLock != nil {
			headLock.release()
		}
	}()
	zero := oid.Zero(s.format)
	var buf [maxLooseSize]byte
	head := s.headUpdate(txn)
	if head != nil {
		// HEAD's lock comes first in name order; it is only held,
		// never renamed.
		if headLock, err = s.lock(s.path("HEAD"), refLockTimeout, []byte{}); err != nil {
			return s.lockError("HEAD", err)
		}
	}
	for _, t := range txn {
		// The new value is written as the lock is taken and its
		// descriptor closed: a transaction of 20,000 references holds
		// 20,000 locks, not 20,000 descriptors.
		data := []byte{}
		if t.New != zero {
			data = append(t.New.AppendHex(buf[:0]), '\n')
		}
		l, err := s.lock(s.path(t.Name), refLockTimeout, data)
		if err != nil {
			return s.lockError(t.Name, err)
		}
		t.lock = l
	}
	deletes := false
	for _, t := range txn {
		deletes = deletes || t.New == zero
	}
	if deletes {
		if packedLock, err = s.lock(filepath.Join(s.gitDir, "packed-refs"), packedLockTimeout, nil); err != nil {
			if errors.Is(err, errLockHeld) {
				return fmt.Errorf("%w: %w: cannot lock packed-refs", ErrConflict, ErrLocked)
			}
			return fmt.Errorf("refs: lock packed-refs: %w", err)
		}
	}
	snap, err := s.openPacked()
	if err != nil {
		return err
	}
	defer snap.close()
	for _, t := range txn {
		if err := s.verify(t, snap, buf[:], true); err != nil {
			return err
		}
	}
	// Everything is written before the first rename.
	rewritePacked := false
	for _, t := range txn {
		rewritePacked = rewritePacked || t.deleting(s.format) && t.packed
	}
	if rewritePacked {
		if err := writePackedWithout(packedLock, snap, txn, s.format); err != nil {
			return err
		}
	}

	for _, t := range txn {
		if t.Who.IsZero() || !t.exists && t.New == zero {
			continue
		}
		line := appendLogLine(buf[:0], t.cur, t.New, t.Who)
		a, err := s.appendLog(t.Name, line)
		if err != nil {
			return err
		}
		appended = append(appended, a)
		if t == head {
			if ref, err := s.Read("HEAD"); err == nil && ref.Target == t.Name {
				a, err := s.appendLog("HEAD", line)
				if err != nil {
					return err
				}
				appended = append(appended, a)
			}
		}
	}

	syncDirs := map[string]bool{}
	for _, t := range txn {
		if t.New == zero {
			continue
		}
		if err := t.lock.commit(); err != nil {
			return fmt.Errorf("refs: update %s: %w", t.Name, err)
		}
		renamed = true
		for _, d := range t.lock.dirs {
			syncDirs[filepath.Dir(d)] = true
		}
		syncDirs[filepath.Dir(t.lock.path)] = true
	}
	// From here on the transaction changes the repository: its reflog
	// lines stay.
	renamed = true
	var errs []error
	if rewritePacked {
		if err := packedLock.commit(); err != nil {
			errs = append(errs, fmt.Errorf("refs: rename packed-refs.lock: %w", err))
		}
		syncDirs[s.gitDir] = true
	}
	for _, t := range txn {
		if t.New != zero || !t.loose {
			continue
		}
		if err := os.Remove(t.lock.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("refs: delete %s: %w", t.Name, err))
		}
	}
	// Lock files go before empty directories are tidied, as they may be
	// what keeps a directory from being empty.
	for _, t := range txn {
		t.lock.release()
	}
	for _, t := range txn {
		if t.New == zero {
			s.removeEmptyParents(t.Name)
		}
	}
	for d := range syncDirs {
		// A directory gone since the rename held only references that
		// packing has moved into packed-refs (synced by the packer)
		// before it removed them and tidied the directory away.
		if err := syncDir(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// headUpdate returns the update of txn that logs to HEAD's reflog too:
// one with a Who that sets (not deletes) the branch HEAD points at,
// unless HEAD itself is in txn. It is read again under HEAD's lock.
func (s *Store) headUpdate(txn []*txnRef) *txnRef {
	ref, err := s.Read("HEAD")
	if err != nil || ref.Target == "" {
		return nil
	}
	var found *txnRef
	for _, t := range txn {
		switch {
		case t.Name == "HEAD":
			return nil
		case t.Name == ref.Target && !t.Who.IsZero() && !t.deleting(s.format):
			found = t
		}
	}
	return found
}

// checkUpdates validates a transaction and returns it in name order.
func (s *Store) checkUpdates(updates []Update) ([]*txnRef, error) {
	txn := make([]*txnRef, len(updates))
	names := make(map[string]bool, len(updates))
	for i, u := range updates {
		if err := checkReadName(u.Name); err != nil {
			return nil, err
		}
		if u.New.Format() != s.format {
			return nil, fmt.Errorf("refs: update %s: new value is not a %s id", u.Name, s.format)
		}
		if u.Old.Valid() && u.Old.Format() != s.format {
			return nil, fmt.Errorf("refs: update %s: old value is not a %s id", u.Name, s.format)
		}
		if names[u.Name] {
			return nil, fmt.Errorf("refs: %s updated twice in one transaction", u.Name)
		}
		names[u.Name] = true
		txn[i] = &txnRef{Update: u}
	}
	for _, t := range txn {
		for i := 0; i < len(t.Name); i++ {
			if t.Name[i] == '/' && names[t.Name[:i]] {
				return nil, fmt.Errorf("%w: %s and %s cannot both exist", ErrConflict, t.Name[:i], t.Name)
			}
		}
	}
	slices.SortFunc(txn, func(a, b *txnRef) int { return strings.Compare(a.Name, b.Name) })
	return txn, nil
}

// lockError turns a lock failure into the error Update reports.
func (s *Store) lockError(name string, err error) error {
	var dc *errDirConflict
	if errors.As(err, &dc) {
		rel, _ := filepath.Rel(s.gitDir, dc.at)
		return fmt.Errorf("%w: cannot lock %s: %s exists", ErrConflict, name, filepath.ToSlash(rel))
	}
	if errors.Is(err, errLockHeld) {
		return fmt.Errorf("%w: %w: cannot lock %s", ErrConflict, ErrLocked, name)
	}
	return fmt.Errorf("refs: cannot lock %s: %w", name, err)
}

// verify reads the current state of a locked reference, checks it
// against Old and, for a creation, against the names of existing
// references. With tidy set, an empty directory left where the
// reference is to be created is removed.
func (s *Store) verify(t *txnRef, snap *packed, buf []byte, tidy bool) error {
	cur, found, err := s.readLoose(t.Name, buf)
	broken := errors.Is(err, ErrBroken)
	if err != nil && !broken {
		return err
	}
	t.loose = found
	pref, perr := snap.read(t.Name)
	switch {
	case perr == nil:
		t.packed = true
		if !found {
			cur = pref
		}
	case !errors.Is(perr, ErrNotFound):
		return perr
	}
	t.exists = t.loose || t.packed
	zero := oid.Zero(s.format)
	t.cur = zero
	if t.exists && !broken && cur.Target == "" {
		t.cur = cur.ID
	}
	if t.Old.Valid() {
		switch {
		case t.Old == zero:
			if t.exists {
				return fmt.Errorf("%w: %s already exists", ErrConflict, t.Name)
			}
		case !t.exists:
			return fmt.Errorf("%w: %s does not exist", ErrConflict, t.Name)
		case broken:
			return fmt.Errorf("%w: %s is broken", ErrConflict, t.Name)
		case cur.Target != "":
			return fmt.Errorf("%w: %s is a symbolic reference", ErrConflict, t.Name)
		case cur.ID != t.Old:
			return fmt.Errorf("%w: %s is at %s, not %s", ErrConflict, t.Name, cur.ID, t.Old)
		}
	}
	if t.New == zero || t.exists {
		return nil
	}
	return s.checkAvailable(t.Name, snap, tidy)
}

// checkAvailable refuses to create name when an existing reference is a
// directory prefix of it or has it as a directory prefix. Ancestors with
// loose files were already refused when the lock was taken. An empty
// directory at the name's path is removed if tidy is set.
func (s *Store) checkAvailable(name string, snap *packed, tidy bool) error {
	for i := 0; i < len(name); i++ {
		if name[i] != '/' {
			continue
		}
		if _, err := snap.read(name[:i]); err == nil {
			return fmt.Errorf("%w: cannot create %s: %s exists", ErrConflict, name, name[:i])
		}
	}
	if ok, err := snap.has(name + "/"); err != nil {
		return err
	} else if ok {
		return fmt.Errorf("%w: cannot create %s: references exist under %s/", ErrConflict, name, name)
	}
	// A directory at the reference's own path either holds loose
	// references, or is left over and empty (then it is removed).
	dir := s.path(name)
	st, err := os.Lstat(dir)
	if err != nil || !st.IsDir() {
		return nil
	}
	var inside []string
	if err := s.collectLoose(name+"/", name+"/", &inside); err != nil {
		return err
	}
	if len(inside) > 0 {
		return fmt.Errorf("%w: cannot create %s: %s exists", ErrConflict, name, inside[0])
	}
	if !tidy {
		return nil
	}
	if err := removeEmptyDirs(dir); err != nil {
		return fmt.Errorf("%w: cannot create %s: directory in the way: %v", ErrConflict, name, err)
	}
	return nil
}

// removeEmptyDirs removes dir and the directories below it, failing if
// any holds a file.
func removeEmptyDirs(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.IsDir() {
			return fmt.Errorf("%s holds %s", filepath.Base(dir), e.Name())
		}
		if err := removeEmptyDirs(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return os.Remove(dir)
}

// removeEmptyParents removes the directories of a deleted reference that
// became empty, keeping the first two levels (refs/ and refs/heads/), as
// C Git does; the same for its reflog directory.
func (s *Store) removeEmptyParents(name string) {
	for _, root := range []string{s.gitDir, filepath.Join(s.gitDir, "logs")} {
		n := name
		for {
			i := strings.LastIndexByte(n, '/')
			if i < 0 || strings.Count(n[:i], "/") < 2 {
				break
			}
			n = n[:i]
			if os.Remove(filepath.Join(root, filepath.FromSlash(n))) != nil {
				break
			}
		}
	}
}

// writePackedWithout writes into the packed-refs lock the current
// packed-refs minus the references the transaction deletes.
func writePackedWithout(l *lockFile, snap *packed, txn []*txnRef, f oid.Format) error {
	zero := oid.Zero(f)
	pw := newPackedWriter(l, snap.trait)
	it, err := snap.iter("")
	if err != nil {
		return err
	}
	di := 0 // next deletion in txn, which is sorted like the file
	for {
		r, ok, err := it.next()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		for di < len(txn) && (txn[di].New != zero || compareBytesString(r.name, txn[di].Name) > 0) {
			di++
		}
		if di < len(txn) && compareBytesString(r.name, txn[di].Name) == 0 {
			continue
		}
		if err := pw.add(r.name, r.id, r.peeled, r.hasPeeled); err != nil {
			return err
		}
	}
	return pw.finish()
}

// syncDir makes renames and creations in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("refs: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("refs: sync %s: %w", dir, err)
	}
	return nil
}

// SetSymbolic makes name (HEAD or a name CheckName accepts) a symbolic
// reference to target (a name CheckName accepts), replacing whatever
// name held, under name's lock file as Update does. Creating name is
// refused, wrapping ErrConflict, if it conflicts with existing names as
// described for Update, and so is a lock held by someone else.
func (s *Store) SetSymbolic(name, target string) error {
	if err := checkReadName(name); err != nil {
		return err
	}
	if err := CheckName(target); err != nil {
		return err
	}
	l, err := s.lock(s.path(name), refLockTimeout, []byte("ref: "+target+"\n"))
	if err != nil {
		return s.lockError(name, err)
	}
	defer l.release()
	snap, err := s.openPacked()
	if err != nil {
		return err
	}
	defer snap.close()
	var buf [maxLooseSize]byte
	exists := false
	if _, found, err := s.readLoose(name, buf[:]); found || errors.Is(err, ErrBroken) {
		exists = true
	} else if err != nil {
		return err
	} else if _, err := snap.read(name); err == nil {
		exists = true
	}
	if !exists {
		if err := s.checkAvailable(name, snap, true); err != nil {
			return err
		}
	}
	if err := l.commit(); err != nil {
		return fmt.Errorf("refs: update %s: %w", name, err)
	}
	for _, d := range l.dirs {
		if err := syncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return syncDir(filepath.Dir(l.path))
}
