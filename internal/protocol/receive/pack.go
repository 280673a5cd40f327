package receive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"gotd/internal/engine/indexer"
	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/pack"
	"gotd/internal/git/repo"
	"gotd/internal/protocol/wire"
)

// PackOptions control ReceivePack.
type PackOptions struct {
	Limits wire.Limits
	// Fsck, if not nil, sets message severities; nil uses C Git's.
	Fsck *object.Checker
	// Progress, if set, is called as the indexer advances.
	Progress func(stage string, done, total uint32)
}

// Received is a pushed pack, indexed and checked, in its quarantine
// directory inside the repository's objects directory.
type Received struct {
	Dir   string // the quarantine directory
	Index *indexer.Result
	Pack  *pack.Pack // the quarantined pack, open for reading
}

// Remove closes the quarantined pack and removes its directory (after
// Install, only the empty directory is left to remove).
func (rp *Received) Remove() {
	if rp.Pack != nil {
		rp.Pack.Close()
		rp.Pack = nil
	}
	os.RemoveAll(rp.Dir)
}

// ReceivePack reads a pack from r into a new quarantine directory under
// the repository's objects directory, completing a thin pack from the
// repository and checking every object. It reads nothing past the pack.
// On error nothing is left behind; the error's client message says what
// was wrong with the pack.
func ReceivePack(ctx context.Context, r io.Reader, rep *repo.Repo, opts PackOptions) (*Received, error) {
	dir, err := os.MkdirTemp(rep.ObjectsDir(), "incoming-")
	if err != nil {
		return nil, wire.Wrap("cannot store the pack", err)
	}
	checker := opts.Fsck
	if checker == nil {
		checker = &object.Checker{}
	}
	f := rep.Format
	iopts := indexer.Options{
		Format:   f,
		Dir:      dir,
		Bases:    rep,
		WriteRev: true,
		Progress: opts.Progress,
		Check: func(t object.Type, id oid.ID, data []byte) error {
			if data == nil {
				return nil // a blob too large to check: blobs have no syntax
			}
			if err := checker.Check(f, t, data); err != nil {
				msg := strings.TrimPrefix(err.Error(), "object: ")
				return wire.Wrap(fmt.Sprintf("object %v is invalid: %s", id, msg), err)
			}
			return nil
		},
	}
	if opts.Limits.MaxPackSize > 0 {
		iopts.MaxPackSize = opts.Limits.MaxPackSize
	}
	if opts.Limits.MaxObjectSize > 0 {
		iopts.MaxObjectSize = opts.Limits.MaxObjectSize
	}
	res, err := indexer.Index(ctx, r, iopts)
	if err != nil {
		os.RemoveAll(dir)
		return nil, packError(err, opts.Limits)
	}
	p, err := pack.Open(res.PackPath, f, pack.Options{})
	if err != nil {
		os.RemoveAll(dir)
		return nil, wire.Wrap("cannot read the pack", err)
	}
	return &Received{Dir: dir, Index: res, Pack: p}, nil
}

// packError gives an indexing error its client message.
func packError(err error, l wire.Limits) error {
	var werr *wire.Error
	switch {
	case errors.As(err, &werr):
		return err
	case errors.Is(err, indexer.ErrTooLarge):
		return wire.Wrap(fmt.Sprintf("pack exceeds the maximum size of %d bytes", l.MaxPackSize), err)
	case errors.Is(err, indexer.ErrObjectTooLarge):
		return wire.Wrap(fmt.Sprintf("pack has an object over the maximum size of %d bytes", l.MaxObjectSize), err)
	case errors.Is(err, indexer.ErrThin):
		return wire.Wrap("pack has a delta against an object the repository lacks", err)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return wire.Wrap("pack is truncated", err)
	}
	return wire.Wrap("pack is invalid", err)
}
