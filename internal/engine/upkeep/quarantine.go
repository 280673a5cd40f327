package upkeep

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/pack"
	"gotd/internal/git/repo"
)

// overlay reads the repository, then the quarantined packs.
type overlay struct {
	r *repo.Repo
	q *quarantines
}

func (o overlay) ReadObject(id oid.ID) (object.Type, []byte, error) {
	for _, p := range o.q.packs {
		if p.HasObject(id) {
			return p.ReadObject(id)
		}
	}
	return o.r.ReadObject(id)
}

// ReadObjectInto is ReadObject that may put the content in dst's array
// (repo.Repo.ReadObjectInto): the walk of a full repack reads every
// tree and keeps none.
func (o overlay) ReadObjectInto(id oid.ID, dst []byte) (object.Type, []byte, error) {
	if p, off, ok := o.q.locate(id); ok {
		return p.ReadAtInto(off, dst)
	}
	return o.r.ReadObjectInto(id, dst)
}

// ReadObjectPrefix returns the first n bytes of id's content, or all of
// it (repo.Repo.ReadObjectPrefix): the commit walk needs only headers.
func (o overlay) ReadObjectPrefix(id oid.ID, dst []byte, n int) (object.Type, []byte, bool, error) {
	if p, off, ok := o.q.locate(id); ok {
		return p.ReadPrefixAt(off, dst, n)
	}
	return o.r.ReadObjectPrefix(id, dst, n)
}

func (o overlay) HasObject(id oid.ID) bool {
	for _, p := range o.q.packs {
		if p.HasObject(id) {
			return true
		}
	}
	return o.r.HasObject(id)
}

// quarantines are the packs of pushes in flight: those in the
// objects/incoming-* directories gotd's receive-pack (and C Git's)
// write into before a push is accepted.
type quarantines struct {
	packs []*pack.Pack
}

// gotdQuarantine begins the name of gotd's quarantine directories
// (receive.QuarantinePrefix, which this layer may not import); C Git's
// begin "incoming-" too.
const gotdQuarantine = "incoming-gotd-"

// staleQuarantine is the age past which a C Git quarantine directory,
// which has no lock to tell it is in use, is taken as left by a
// process that died.
const staleQuarantine = 24 * time.Hour

// quarantineDirs returns the incoming-* directories of pushes in flight
// in the repository's objects directory. One of gotd's is in flight
// while a process holds its lock (receive.HoldQuarantine); one left by a
// dead process is skipped (gotd removes those when it starts). One of C
// Git's is taken as in flight for a day after it last changed.
func quarantineDirs(r *repo.Repo) ([]string, error) {
	ents, err := os.ReadDir(r.ObjectsDir())
	if err != nil {
		return nil, fmt.Errorf("upkeep: %w", err)
	}
	var dirs []string
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "incoming-") {
			continue
		}
		dir := filepath.Join(r.ObjectsDir(), e.Name())
		if strings.HasPrefix(e.Name(), gotdQuarantine) {
			if !held(dir) {
				continue
			}
		} else if info, err := e.Info(); err != nil || time.Since(info.ModTime()) > staleQuarantine {
			continue
		}
		dirs = append(dirs, dir)
	}
	return dirs, nil
}

// held reports whether a live process holds the shared lock of one of
// gotd's quarantine directories. A directory that cannot be opened is
// gone (not held); one whose lock cannot be tested is taken as held.
func held(dir string) bool {
	d, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer d.Close()
	err = unix.Flock(int(d.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if err == nil {
		unix.Flock(int(d.Fd()), unix.LOCK_UN)
		return false
	}
	return true
}

// openQuarantines opens the indexed packs of the quarantines (those
// with an .idx). A pack whose quarantine went meanwhile is skipped.
func openQuarantines(r *repo.Repo) (*quarantines, error) {
	dirs, err := quarantineDirs(r)
	if err != nil {
		return nil, err
	}
	q := &quarantines{}
	for _, dir := range dirs {
		for _, d := range []string{dir, filepath.Join(dir, "pack")} {
			idxs, _ := filepath.Glob(filepath.Join(d, "pack-*.idx"))
			for _, idx := range idxs {
				p, err := pack.Open(strings.TrimSuffix(idx, ".idx")+".pack", r.Format, pack.Options{})
				if err != nil {
					continue
				}
				q.packs = append(q.packs, p)
			}
		}
	}
	return q, nil
}

// locate returns the quarantined pack holding id and its offset there.
func (q *quarantines) locate(id oid.ID) (*pack.Pack, uint64, bool) {
	for _, p := range q.packs {
		if off, ok := p.OffsetOf(id); ok {
			return p, off, true
		}
	}
	return nil, 0, false
}

func (q *quarantines) close() {
	for _, p := range q.packs {
		p.Close()
	}
}
