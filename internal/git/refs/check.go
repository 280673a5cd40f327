package refs

import (
	"fmt"
	"os"
)

// Check reports the error Update would return for updates, as far as it
// can be told without taking the locks, and changes nothing: a bad or
// repeated name, two names in conflict, an Old that does not match, and
// a creation whose name conflicts with an existing reference, loose or
// packed. A caller that is about to add objects for the references
// (a pack to install) checks first, so that a transaction bound to fail
// leaves no trace. A nil error does not promise that Update succeeds:
// another writer may change the references in between.
func (s *Store) Check(updates []Update) error {
	txn, err := s.checkUpdates(updates)
	if err != nil {
		return err
	}
	snap, err := s.openPacked()
	if err != nil {
		return err
	}
	defer snap.close()
	var buf [maxLooseSize]byte
	for _, t := range txn {
		// A loose reference where a directory of the name should be
		// is what lock refuses.
		for i := 0; i < len(t.Name); i++ {
			if t.Name[i] != '/' {
				continue
			}
			if st, err := os.Lstat(s.path(t.Name[:i])); err == nil && !st.IsDir() {
				return fmt.Errorf("%w: cannot lock %s: %s exists", ErrConflict, t.Name, t.Name[:i])
			}
		}
		if err := s.verify(t, snap, buf[:], false); err != nil {
			return err
		}
	}
	return nil
}
