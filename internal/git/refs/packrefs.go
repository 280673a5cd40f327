package refs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"gotd/internal/git/oid"
)

// PackRefs moves every loose reference under refs/ into packed-refs, as
// `git pack-refs --all --prune` does. Symbolic and broken loose
// references stay where they are.
//
// peel, if not nil, returns for an object id what it peels to and true
// when the object is an annotated tag (following tags of tags), or false
// for any other object; the file is then written with the traits
// "peeled fully-peeled sorted" and a peeled line for every tag. With a
// nil peel, peeled lines already in packed-refs are kept and the file
// claims only "sorted".
//
// packed-refs.lock is held (waiting up to 1s) while the new file is
// written, synced and renamed into place. A loose reference whose lock
// is held is not packed: its writer may be a deletion that has
// already rewritten packed-refs and not yet removed the loose file,
// which packing would bring back. Each packed loose file is then
// removed under its own lock if it still holds the value that was
// packed and packed-refs still holds that value too (a deletion and a
// re-creation at the same value may have come between); one that
// changed meanwhile, or whose lock is held, is left loose (it overrides
// the packed value, so nothing is lost).
func (s *Store) PackRefs(peel func(oid.ID) (oid.ID, bool)) error {
	l, err := s.lock(filepath.Join(s.gitDir, "packed-refs"), packedLockTimeout, nil)
	if err != nil {
		if errors.Is(err, errLockHeld) {
			return fmt.Errorf("%w: %w: cannot lock packed-refs", ErrConflict, ErrLocked)
		}
		return fmt.Errorf("refs: lock packed-refs: %w", err)
	}
	defer l.release()
	var names []string
	if err := s.collectLoose("refs/", "refs/", &names); err != nil {
		return err
	}
	snap, err := s.openPacked()
	if err != nil {
		return err
	}
	defer snap.close()
	it, err := snap.iter("")
	if err != nil {
		return err
	}

	type pruned struct {
		name string
		id   oid.ID
	}
	var prune []pruned
	trait := peelNone
	if peel != nil {
		trait = peelFull
	}
	pw := newPackedWriter(l, trait)
	var lbuf [maxLooseSize]byte
	rec, pok, err := it.next()
	if err != nil {
		return err
	}
	li := 0
	for pok || li < len(names) {
		if li < len(names) && (!pok || compareBytesString(rec.name, names[li]) >= 0) {
			name := names[li]
			li++
			if exists(s.path(name) + ".lock") {
				// Being written: what packed-refs holds stays.
				continue
			}
			ref, found, err := s.readLoose(name, lbuf[:])
			if err == nil && found && ref.Target == "" {
				if pok && compareBytesString(rec.name, name) == 0 {
					if rec, pok, err = it.next(); err != nil {
						return err
					}
				}
				var peeled oid.ID
				hasPeeled := false
				if peel != nil {
					peeled, hasPeeled = peel(ref.ID)
				}
				if err := pw.add([]byte(name), ref.ID, peeled, hasPeeled); err != nil {
					return err
				}
				prune = append(prune, pruned{name, ref.ID})
			} else if err != nil && !errors.Is(err, ErrBroken) {
				return err
			}
			// A broken or symbolic loose file keeps overriding the
			// packed record, which is copied below.
			continue
		}
		peeled, hasPeeled := rec.peeled, rec.hasPeeled
		if peel != nil && !hasPeeled && !snap.knowsPeeled(&rec) {
			peeled, hasPeeled = peel(rec.id)
		}
		if err := pw.add(rec.name, rec.id, peeled, hasPeeled); err != nil {
			return err
		}
		if rec, pok, err = it.next(); err != nil {
			return err
		}
	}
	if err := pw.finish(); err != nil {
		return err
	}
	if err := l.commit(); err != nil {
		return fmt.Errorf("refs: rename packed-refs.lock: %w", err)
	}
	if err := syncDir(s.gitDir); err != nil {
		return err
	}

	var cur currentPacked
	defer cur.close()
	for _, p := range prune {
		rl, err := s.lock(s.path(p.name), refLockTimeout, []byte{})
		if err != nil {
			continue // busy: leave it loose
		}
		ref, found, err := s.readLoose(p.name, lbuf[:])
		if err == nil && found && ref.Target == "" && ref.ID == p.id && cur.holds(s, p.name, p.id) {
			os.Remove(s.path(p.name))
		}
		rl.release()
		s.removeEmptyParents(p.name)
	}
	return nil
}

// currentPacked is the packed-refs file as it is now, opened again only
// when it was replaced since it was last read.
type currentPacked struct {
	snap *packed
	fi   os.FileInfo
}

// holds reports whether packed-refs now names name at id. Under name's
// lock the answer stays true: only a deletion of name, which needs that
// lock, takes a packed record away.
func (c *currentPacked) holds(s *Store, name string, id oid.ID) bool {
	fi, err := os.Stat(filepath.Join(s.gitDir, "packed-refs"))
	if err != nil {
		return false
	}
	if c.snap == nil || !os.SameFile(fi, c.fi) || fi.Size() != c.fi.Size() || !fi.ModTime().Equal(c.fi.ModTime()) {
		c.close()
		if c.snap, err = s.openPacked(); err != nil {
			return false
		}
		c.fi = fi
	}
	ref, err := c.snap.read(name)
	return err == nil && ref.ID == id
}

func (c *currentPacked) close() {
	if c.snap != nil {
		c.snap.close()
		c.snap = nil
	}
}

// CountLoose returns how many loose reference files there are under
// refs/ (symbolic ones included), to decide whether PackRefs is due.
func (s *Store) CountLoose() (int, error) {
	var names []string
	if err := s.collectLoose("refs/", "refs/", &names); err != nil {
		return 0, err
	}
	return len(names), nil
}
