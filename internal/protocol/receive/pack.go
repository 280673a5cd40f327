package receive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"gotd/internal/engine/indexer"
	"gotd/internal/git/commitgraph"
	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/perm"
	"gotd/internal/git/refs"
	"gotd/internal/git/walk"
	"gotd/internal/protocol/wire"
)

// PackOptions configure IndexPack.
type PackOptions struct {
	Format oid.Format
	// Bases completes thin packs: the repository, read only.
	Bases  indexer.BaseSource
	Limits wire.Limits
	// Fsck sets message severities; nil applies C Git's defaults.
	Fsck *object.Checker
	// Progress, if set, is called as the indexer advances.
	Progress func(stage string, done, total uint32)
	// MinFree, if positive, is the free space the pack must leave on
	// the quarantine's file system: a push that would go below it is
	// refused before the pack is written, or as soon as it would,
	// and what was written is removed.
	MinFree int64
	// Visible, if set, returns the tips of the references the client
	// may see (the repository has hidden ones): only objects they
	// reach may complete a thin pack; others count as missing, so that
	// deltas cannot be built on hidden objects nor tell they exist.
	Visible func() ([]oid.ID, error)
	// ObjectsDir, if set, is the repository's objects directory, whose
	// commit-graph speeds up Visible's walk.
	ObjectsDir string
	// Shared gives the permissions of the pack's files: the
	// repository's core.sharedRepository.
	Shared perm.Shared
	// Begin, if set, is called with the object count the pack's
	// header declares (the sender's word), before any object is read.
	Begin func(count uint32)
	// closure, if set, collects what the pack's objects name.
	closure *closure
}

// visibleBases gives out as thin-pack bases only the objects the
// visible references reach, found by one walk for all the bases a pack
// needs (PrepareBases).
type visibleBases struct {
	ctx     context.Context
	repo    indexer.BaseSource
	format  oid.Format
	graph   *commitgraph.Graph // nil without one
	visible func() ([]oid.ID, error)
	ok      map[oid.ID]bool
}

func (v *visibleBases) PrepareBases(ids []oid.ID) error {
	tips, err := v.visible()
	if err != nil {
		return err
	}
	w := &walk.Walker{Store: v.repo, Format: v.format, Graph: v.graph}
	reached, err := w.Reachable(v.ctx, tips, ids)
	if err != nil {
		return err
	}
	v.ok = reached
	return nil
}

func (v *visibleBases) ReadObject(id oid.ID) (object.Type, []byte, error) {
	if v.ok == nil {
		if err := v.PrepareBases([]oid.ID{id}); err != nil {
			return 0, nil, err
		}
	}
	if !v.ok[id] {
		return 0, nil, fmt.Errorf("thin base %v: %w", id, object.ErrNotFound)
	}
	return v.repo.ReadObject(id)
}

// Visible returns PackOptions.Visible for rs with hidden hiding
// references, nil when hidden is.
func Visible(rs *refs.Store, hidden func(string) bool) func() ([]oid.ID, error) {
	if hidden == nil {
		return nil
	}
	return func() ([]oid.ID, error) { return visibleTips(rs, hidden) }
}

// visibleTips lists the ids of the references of rs that hidden does
// not hide, by name or along a chain of symbolic references.
func visibleTips(rs *refs.Store, hidden func(string) bool) ([]oid.ID, error) {
	var tips []oid.ID
	err := rs.List("refs/", func(r refs.Ref) error {
		if !rs.ChainAny(r, hidden) {
			tips = append(tips, r.ID)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("receive: list references: %w", err)
	}
	return tips, nil
}

// ErrNoSpace is wrapped by IndexPack's error for a push that would
// leave less than PackOptions.MinFree free.
var ErrNoSpace = errors.New("the repository's file system is nearly full")

// msgNoSpace tells the client that the server's disk or the
// repository owner's quota is full.
const msgNoSpace = "no space left on the server"

// NoSpace reports whether err comes from a full file system or quota
// (ENOSPC, EDQUOT), wherever in a push's writes it happened.
func NoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// room returns the indexer's Room for a quarantine directory: the
// space left once next bytes are written must stay at or above minFree.
func room(dir string, minFree int64) func(next int64) error {
	return func(next int64) error {
		free, err := freeSpace(dir)
		if err != nil {
			return fmt.Errorf("free space of %s: %w", dir, err)
		}
		if free-next < minFree {
			return fmt.Errorf("%w: %d bytes free, %d to write, %d to keep", ErrNoSpace, free, next, minFree)
		}
		return nil
	}
}

// QuarantinePrefix begins the name of every quarantine directory gotd
// makes. C Git's own are "incoming-" and six characters: never this.
const QuarantinePrefix = "incoming-gotd-"

// NewQuarantine creates a push's quarantine directory in a
// repository's objects directory: where IndexPack writes, and what is
// removed, pack and all, unless the pack is installed. It returns the
// directory and, open, the hold that tells RemoveDeadQuarantines that
// a live process uses it: the caller closes it once the quarantine is
// removed.
func NewQuarantine(objectsDir string) (string, *os.File, error) {
	for tries := 0; ; tries++ {
		dir, err := os.MkdirTemp(objectsDir, QuarantinePrefix)
		if err != nil {
			if NoSpace(err) {
				return "", nil, wire.Wrap(msgNoSpace, err)
			}
			return "", nil, wire.Wrap("unable to create temporary object directory", err)
		}
		hold, err := HoldQuarantine(dir)
		if err == nil || tries == 3 {
			return dir, hold, err
		}
	}
}

// HoldQuarantine takes a shared flock(2) on a quarantine directory, so
// that RemoveDeadQuarantines leaves it alone while the returned file is
// open (the kernel lets go of it when its holders die, however they
// die). It fails if the directory was removed meanwhile.
func HoldQuarantine(dir string) (*os.File, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, wire.Wrap("unable to create temporary object directory", err)
	}
	if err := unix.Flock(int(d.Fd()), unix.LOCK_SH); err != nil {
		d.Close()
		return nil, wire.Wrap("unable to create temporary object directory", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(d.Fd()), &st); err != nil || st.Nlink == 0 {
		d.Close()
		return nil, wire.Wrap("unable to create temporary object directory", fmt.Errorf("%s was removed as it was made", dir))
	}
	return d, nil
}

// RemoveDeadQuarantines removes the quarantine directories gotd made
// in objectsDir that no live process holds (see HoldQuarantine): those
// of pushes whose processes died, the parent included. C Git's
// quarantines and anything else are left alone. It returns how many it
// removed.
func RemoveDeadQuarantines(objectsDir string) (int, error) {
	ents, err := os.ReadDir(objectsDir)
	if err != nil {
		return 0, fmt.Errorf("receive: quarantines: %w", err)
	}
	removed := 0
	var errs []error
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), QuarantinePrefix) {
			continue
		}
		dir := filepath.Join(objectsDir, e.Name())
		d, err := os.Open(dir)
		if err != nil {
			continue // removed meanwhile
		}
		switch err := unix.Flock(int(d.Fd()), unix.LOCK_EX|unix.LOCK_NB); {
		case errors.Is(err, unix.EWOULDBLOCK):
			// In use.
		case err != nil:
			errs = append(errs, fmt.Errorf("receive: quarantine %s: %w", dir, err))
		default:
			if err := os.RemoveAll(dir); err != nil {
				errs = append(errs, fmt.Errorf("receive: remove quarantine: %w", err))
			} else {
				removed++
			}
		}
		d.Close()
	}
	return removed, errors.Join(errs...)
}

// IndexPack reads one pack from r, up to and including its trailer
// and not a byte further, and indexes it into dir, the push's
// quarantine directory: a thin pack is completed from o.bases, every
// object is checked as C Git's receive.fsckObjects does, and the pack
// and object sizes are bounded by o.Limits. It writes nothing outside
// dir and reads the repository only through o.bases, so that it can
// run in a process that may write only into dir. On error nothing it
// wrote is left in dir, and the error's wire.ClientMessage says what is
// wrong with the pack.
func IndexPack(ctx context.Context, r io.Reader, dir string, o PackOptions) (*indexer.Result, error) {
	checker := o.Fsck
	if checker == nil {
		checker = &object.Checker{}
	}
	bases := o.Bases
	if o.Visible != nil && bases != nil {
		vb := &visibleBases{ctx: ctx, repo: o.Bases, format: o.Format, visible: o.Visible}
		if o.ObjectsDir != "" {
			if g, err := commitgraph.Open(o.ObjectsDir, o.Format); err == nil {
				vb.graph = g
				defer g.Close()
			}
		}
		bases = vb
	}
	iopts := indexer.Options{
		Format:   o.Format,
		Dir:      dir,
		Shared:   o.Shared,
		Bases:    bases,
		WriteRev: true,
		Progress: o.Progress,
		Begin: func(count uint32) {
			if o.closure != nil {
				o.closure.begin(count)
			}
			if o.Begin != nil {
				o.Begin(count)
			}
		},
		Check: func(t object.Type, id oid.ID, data []byte) error {
			if data == nil {
				return nil // a blob too large to hold: blobs have no syntax
			}
			if err := checker.Check(o.Format, t, data); err != nil {
				var p *object.Problem
				if !errors.As(err, &p) {
					return wire.Wrap(fmt.Sprintf("object %v is invalid", id), err)
				}
				// The problem's text is fixed (type, message id,
				// header name); the id is the hash the indexer
				// computed.
				return wire.Wrap(fmt.Sprintf("object %v is invalid: %s", id, strings.TrimPrefix(p.Error(), "object: ")), err)
			}
			if o.closure != nil {
				o.closure.add(t, data)
			}
			return nil
		},
	}
	if o.Limits.MaxPackSize > 0 {
		iopts.MaxPackSize = o.Limits.MaxPackSize
	}
	if o.Limits.MaxObjectSize > 0 {
		iopts.MaxObjectSize = o.Limits.MaxObjectSize
	}
	iopts.MaxObjects = o.Limits.MaxObjects
	if o.MinFree > 0 {
		iopts.Room = room(dir, o.MinFree)
	}
	res, err := indexer.Index(ctx, r, iopts)
	if err != nil {
		return nil, packError(err, o.Limits)
	}
	return res, nil
}

// packError gives an indexing error its client message.
func packError(err error, l wire.Limits) error {
	var werr *wire.Error
	switch {
	case errors.As(err, &werr):
		return err
	case errors.Is(err, indexer.ErrTooLarge):
		return wire.Wrap(fmt.Sprintf("pack exceeds the maximum size of %d bytes", l.MaxPackSize), err)
	case errors.Is(err, indexer.ErrTooManyObjects):
		return wire.Wrap(fmt.Sprintf("pack exceeds the maximum of %d objects", l.MaxObjects), err)
	case errors.Is(err, ErrNoSpace):
		return wire.Wrap("not enough disk space on the server for this push", err)
	case NoSpace(err):
		return wire.Wrap(msgNoSpace, err)
	case errors.Is(err, indexer.ErrParsedTooLarge):
		return wire.Wrap(fmt.Sprintf("pack has a tree, commit or tag over the maximum size of %d bytes", indexer.MaxParsedSize), err)
	case errors.Is(err, indexer.ErrObjectTooLarge):
		return wire.Wrap(fmt.Sprintf("pack has an object over the maximum size of %d bytes", l.MaxObjectSize), err)
	case errors.Is(err, indexer.ErrThin):
		return wire.Wrap("pack has a delta against an object the repository lacks", err)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return wire.Wrap("pack is truncated", err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return wire.Wrap("push cancelled", err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return wire.Wrap("timeout reading the pack", err)
	}
	return wire.Wrap("pack is invalid", err)
}

// receive creates the quarantine directory and receives the pack into
// it, with progress on the side-band unless the client asked for quiet.
func (s *session) receive() (*indexer.Result, error) {
	p := &progress{s: s}
	if s.opts.ReceivePack != nil {
		dir, res, err := s.opts.ReceivePack(s.ctx, p.update)
		s.quarantine = dir
		return res, err
	}
	dir, hold, err := NewQuarantine(s.repo.ObjectsDir())
	if err != nil {
		return nil, err
	}
	s.quarantine, s.quarantineHold = dir, hold
	return IndexPack(s.ctx, s.br, dir, PackOptions{
		Format:     s.repo.Format,
		Bases:      s.repo,
		Limits:     s.opts.Limits,
		Fsck:       s.opts.Fsck,
		Progress:   p.update,
		MinFree:    s.opts.MinFree,
		Visible:    Visible(s.repo.Refs, s.opts.Hidden),
		ObjectsDir: s.repo.ObjectsDir(),
		Shared:     s.repo.Shared,
	})
}

// progress relays the indexer's progress to the client on band 2 as C
// Git's receive-pack does: only "Resolving deltas" (the client shows
// its own "Writing objects"), a line per percent, "\r" until the last.
type progress struct {
	s       *session
	pct     uint32
	started bool
	done    bool
}

func (p *progress) update(stage string, done, total uint32) {
	s := p.s
	if stage == "receiving objects" && done == total {
		// The whole pack has been read: the client now waits.
		s.startKeepalive()
	}
	if s.sb == nil || s.req.quiet || stage != "resolving deltas" || total == 0 || p.done {
		return
	}
	pct := uint32(uint64(done) * 100 / uint64(total))
	if p.started && pct == p.pct && done != total {
		return
	}
	p.started, p.pct = true, pct
	end := "\r"
	if done == total {
		end, p.done = ", done.\n", true
	}
	s.sb.Progress(fmt.Sprintf("Resolving deltas: %3d%% (%d/%d)%s", pct, done, total, end))
	s.out.Flush()
}
