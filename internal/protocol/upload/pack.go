package upload

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"gotd/internal/engine/packer"
	"gotd/internal/git/bitmap"
	"gotd/internal/git/commitgraph"
	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/pack"
	"gotd/internal/git/refs"
	"gotd/internal/git/repo"
	"gotd/internal/git/walk"
	"gotd/internal/protocol/pktline"
	"gotd/internal/protocol/sideband"
	"gotd/internal/protocol/wire"
)

// PackRequest is everything needed to build the pack of one fetch once
// negotiation is over: it is what the session hands the process that
// writes the pack.
type PackRequest struct {
	Wants []oid.ID
	// Common are the objects the client has (its acknowledged haves).
	Common []oid.ID
	// Shallow is the client's shallow boundary after this fetch and
	// ClientShallow the one before it (walk.Spec).
	Shallow, ClientShallow []oid.ID
	Filter                 walk.Filter
	// Thin allows deltas against objects the client has; OfsDelta
	// allows offset deltas; IncludeTag adds annotated tags pointing at
	// sent objects.
	Thin, OfsDelta, IncludeTag bool
	// Hidden, if set, names references whose tags include-tag leaves
	// out (Options.Hidden).
	Hidden func(name string) bool
}

// newWalker returns a walker over r using its commit-graph and bitmap
// when it has them, the pack that leads the bitmap's order (nil without
// a bitmap, or when no pack does), and the function that releases them.
// The leading pack's objects are the first Count() of the bitmap's pack
// order, in the order they are stored: the bitmapped pack, or the
// multi-pack-index's preferred pack when the multi-pack-index holds
// all its objects.
func newWalker(r *repo.Repo) (*walk.Walker, *pack.Pack, func()) {
	return openWalker(r, true)
}

// openWalker is newWalker, without the bitmap unless bitmaps is set:
// negotiation needs only commits, and opening a bitmap may cost the
// ordering of a whole pack.
func openWalker(r *repo.Repo, bitmaps bool) (*walk.Walker, *pack.Pack, func()) {
	var bitmapped *pack.Pack
	w := &walk.Walker{Store: r, Format: r.Format}
	var closers []func() error
	if g, err := commitgraph.Open(r.ObjectsDir(), r.Format); err == nil {
		w.Graph = g
		closers = append(closers, g.Close)
	}
	// The bitmap of the multi-pack-index, when there is one (upkeep
	// and C Git's repack --write-midx --write-bitmap-index write it over
	// several packs), else the reachability bitmap of a pack, when one
	// has it (C Git writes at most one per repository, `gotadmin pack
	// -a` likewise).
	if bitmaps {
		if x, lead, done := openMidxBitmap(r); x != nil {
			w.Bitmap = x
			bitmapped = lead
			closers = append(closers, done)
			bitmaps = false
		}
	}
	for _, p := range r.Packs() {
		if !bitmaps {
			break
		}
		path := strings.TrimSuffix(p.Path(), ".pack") + ".bitmap"
		if _, err := os.Stat(path); err != nil {
			continue
		}
		if x, err := bitmap.Open(path, r.Format, walk.PackLookup(p)); err == nil {
			w.Bitmap = x
			bitmapped = p
			closers = append(closers, x.Close)
			break
		}
	}
	return w, bitmapped, func() {
		for _, c := range closers {
			c()
		}
	}
}

// openMidxBitmap opens the bitmap of r's multi-pack-index and returns
// it with the pack that leads its order (leadingPack) and the function
// that releases them, or nil when there is none, it does not open, or
// the multi-pack-index names a pack r does not have (a repack removed
// it: the objects the bitmap lists would not all be found there).
func openMidxBitmap(r *repo.Repo) (*bitmap.Index, *pack.Pack, func() error) {
	m, err := pack.OpenMultiPackIndex(r.PackDir(), r.Format)
	if err != nil {
		return nil, nil, nil
	}
	path := filepath.Join(r.PackDir(), "multi-pack-index-"+hex.EncodeToString(m.Checksum())+".bitmap")
	have := make(map[string]*pack.Pack)
	for _, p := range r.Packs() {
		have[strings.TrimSuffix(filepath.Base(p.Path()), ".pack")+".idx"] = p
	}
	ok := true
	for _, name := range m.PackNames() {
		ok = ok && have[name] != nil
	}
	if _, err := os.Stat(path); err != nil || !ok {
		m.Close()
		return nil, nil, nil
	}
	lk, err := walk.MidxLookup(m)
	if err != nil {
		m.Close()
		return nil, nil, nil
	}
	x, err := bitmap.Open(path, r.Format, lk)
	if err != nil {
		m.Close()
		return nil, nil, nil
	}
	return x, leadingPack(m, have), func() error { return errors.Join(x.Close(), m.Close()) }
}

// leadingPack returns the preferred pack of m, the one its pseudo-pack
// order begins with, among packs (by index file name), when m holds
// every object of it: those are then the first Count() objects of the
// order, in the pack's order. Else it returns nil.
func leadingPack(m *pack.MultiPackIndex, packs map[string]*pack.Pack) *pack.Pack {
	if m.Count() == 0 {
		return nil
	}
	first, err := m.IndexAtPseudoPos(0)
	if err != nil {
		return nil
	}
	preferred, _ := m.Object(first)
	p := packs[m.PackNames()[preferred]]
	if p == nil {
		return nil
	}
	n := p.Count()
	if n == 0 || n > m.Count() {
		return nil
	}
	// The order takes the preferred pack's objects first, so they
	// are all there when the n-th is one and the next is not.
	packAt := func(pos int) int {
		i, err := m.IndexAtPseudoPos(pos)
		if err != nil {
			return -1
		}
		k, _ := m.Object(i)
		return k
	}
	if packAt(n-1) != preferred || n < m.Count() && packAt(n) == preferred {
		return nil
	}
	return p
}

// WritePack builds the pack req describes from r and writes it to w,
// with human-readable progress to progress (nil: none). It returns the
// number of objects sent.
func WritePack(ctx context.Context, r *repo.Repo, req *PackRequest, w io.Writer, progress io.Writer) (int, error) {
	wk, lead, done := newWalker(r)
	defer done()
	return writePack(ctx, r, wk, lead, req, w, progress)
}

// writePack is WritePack with the walker to list objects with and the
// pack that leads its bitmap's order (nil for none).
func writePack(ctx context.Context, r *repo.Repo, wk *walk.Walker, lead *pack.Pack, req *PackRequest, w io.Writer, progress io.Writer) (int, error) {
	spec := walk.Spec{
		Wants:         req.Wants,
		Haves:         req.Common,
		Shallow:       req.Shallow,
		ClientShallow: req.ClientShallow,
		Filter:        req.Filter,
	}
	// For a thin pack, what the client has next to what is sent may
	// serve as delta bases: stored deltas against them are kept.
	bases := req.Common
	if req.Thin {
		bases = append([]oid.ID(nil), req.Common...)
		spec.Edges = func(id oid.ID) { bases = append(bases, id) }
	}
	// For include-tag, the annotated tags under refs/tags/ by the object
	// they peel to (as C Git's pack-objects): packed-refs knows that of
	// most without reading the tag.
	var tagsOf map[oid.ID][]oid.ID
	var peeledTo []oid.ID // tagsOf's keys in the order of the tags
	if req.IncludeTag {
		tagsOf = make(map[oid.ID][]oid.ID)
		r.Refs.List("refs/tags/", func(ref refs.Ref) error {
			if req.Hidden != nil && r.Refs.ChainAny(ref, req.Hidden) {
				return nil
			}
			peeled := ref.Peeled
			if !peeled.Valid() {
				peeled = r.Peel(ref.ID)
			}
			if peeled.Valid() && peeled != ref.ID {
				if _, ok := tagsOf[peeled]; !ok {
					peeledTo = append(peeledTo, peeled)
				}
				tagsOf[peeled] = append(tagsOf[peeled], ref.ID)
			}
			return nil
		})
	}
	var objs []packer.Object
	seen := make(map[oid.ID]bool) // tags already listed
	var included []oid.ID
	list := func(id oid.ID, t object.Type, h uint32) error {
		objs = append(objs, packer.Object{ID: id, Type: t, NameHash: h})
		if t == object.Tag {
			seen[id] = true
		}
		if tags, ok := tagsOf[id]; ok {
			included = append(included, tags...)
		}
		if progress != nil && len(objs)%10000 == 0 {
			fmt.Fprintf(progress, "Enumerating objects: %d\r", len(objs))
		}
		return nil
	}
	// A fetch that wants every object of the pack leading the bitmap's
	// order (a clone, mostly) gets that pack's entries copied in one
	// run, as stored, and the other objects after them (C Git's pack
	// reuse): only those are listed and prepared one by one.
	var prefix *pack.Pack
	err := walk.ErrFar
	if lead != nil && wk.Bitmap != nil && canLead(req) {
		var reused bool
		reused, err = wk.ObjectsAfter(ctx, req.Wants, lead.Count(), list)
		if reused {
			prefix = lead
		}
	} else if isNear(req) {
		err = wk.ObjectsNear(ctx, spec, list)
	}
	if errors.Is(err, walk.ErrFar) {
		if wk.Bitmap == nil {
			// The walker of a near fetch has none open yet.
			var done func()
			wk, _, done = openWalker(r, true)
			defer done()
		}
		err = wk.ObjectsFor(ctx, spec, list)
	}
	if err != nil {
		return 0, fmt.Errorf("upload: list objects: %w", err)
	}
	// Include the tags that peel to an object in the pack, and the
	// tags they point at on the way.
	// Those of the prefix were not listed.
	if prefix != nil {
		for _, peeled := range peeledTo {
			if prefix.HasObject(peeled) {
				included = append(included, tagsOf[peeled]...)
			}
		}
	}
	for _, id := range included {
		for depth := 0; depth < repo.MaxTagChain && !seen[id]; depth++ {
			if t, _, err := r.StatObject(id); err != nil || t != object.Tag {
				break
			}
			_, data, err := r.ReadObject(id)
			if err != nil {
				break
			}
			tag, err := object.ParseTag(r.Format, data)
			if err != nil {
				break
			}
			seen[id] = true
			if prefix == nil || !prefix.HasObject(id) {
				objs = append(objs, packer.Object{ID: id, Type: object.Tag})
			}
			id = tag.Object
		}
	}
	total := len(objs)
	if prefix != nil {
		total += prefix.Count()
	}
	if progress != nil {
		fmt.Fprintf(progress, "Enumerating objects: %d, done.\n", total)
	}
	opts := packer.Options{
		Format:      r.Format,
		OfsDelta:    req.OfsDelta,
		Thin:        req.Thin,
		Bases:       bases,
		ReuseDeltas: true,
		Prefix:      prefix,
	}
	if progress != nil {
		opts.Progress = func(stage string, done, total int) {
			if stage != "Compressing objects" {
				return
			}
			pct := 100
			if total > 0 {
				pct = done * 100 / total
			}
			if done == total {
				fmt.Fprintf(progress, "%s: %3d%% (%d/%d), done.\n", stage, pct, done, total)
			} else {
				fmt.Fprintf(progress, "%s: %3d%% (%d/%d)\r", stage, pct, done, total)
			}
		}
	}
	if _, err := packer.Write(ctx, w, r, objs, opts); err != nil {
		return 0, err
	}
	if progress != nil {
		if prefix != nil {
			fmt.Fprintf(progress, "Total %d, pack-reused %d\n", total, prefix.Count())
		} else {
			fmt.Fprintf(progress, "Total %d\n", total)
		}
	}
	return total, nil
}

// canLead reports whether the pack leading the bitmap's order may begin
// the answer to req as stored: a fetch with nothing in common, not
// shallow, not filtered (the bitmap lists its objects), from a client
// that takes offset deltas (the stored entries have them).
func canLead(req *PackRequest) bool {
	return len(req.Common) == 0 && len(req.Shallow) == 0 && len(req.ClientShallow) == 0 &&
		req.Filter.Kind == walk.FilterNone && req.OfsDelta
}

// isNear reports whether req may be answered by walk.ObjectsNear: a
// fetch with haves, not shallow, not filtered.
func isNear(req *PackRequest) bool {
	return len(req.Common) > 0 && len(req.Shallow) == 0 && len(req.ClientShallow) == 0 &&
		req.Filter.Kind == walk.FilterNone
}

// SendPack builds the pack req describes from r and writes it to w
// framed as f, with progress on band 2 when f asks for it, and an
// error on band 3 when a side-band is in use. It is the last step of
// a fetch: the daemon's session_read process runs it on the client's
// stream itself (Options.SendPack). It returns the number of objects sent, and flushes w if it
// is a *bufio.Writer.
func SendPack(ctx context.Context, r *repo.Repo, req *PackRequest, f Framing, w io.Writer) (int, error) {
	bw, ok := w.(*bufio.Writer)
	raw := w // what bw writes to, when known
	if !ok {
		bw = bufio.NewWriterSize(w, 64<<10)
	}
	var out io.Writer = bw
	var sb *sideband.Writer
	var mu sync.Mutex
	var prog io.Writer
	if f.Sideband != 0 {
		sb = sideband.NewWriter(pktline.NewWriter(bw), f.Sideband == sideband.MaxPacket64)
		out = &lockedWriter{mu: &mu, w: sb}
		if f.Progress {
			prog = &lockedWriter{mu: &mu, w: progressWriter{sb, bw}}
		}
	}
	// A fetch the plain walk may answer (near) opens no bitmap unless
	// the walk finds its haves far from its wants; a whole pack is only
	// for requests without haves, which are never near.
	wk, bitmapped, done := openWalker(r, !isNear(req))
	defer done()
	var n int
	whole, err := isWholePack(ctx, r, wk, bitmapped, req)
	if whole {
		n, err = bitmapped.Count(), sendWholePack(ctx, bitmapped, f, bw, raw, prog)
	} else if err == nil {
		n, err = writePack(ctx, r, wk, bitmapped, req, out, prog)
	}
	if err != nil && sb != nil {
		mu.Lock()
		sb.Errorf("upload-pack: %s\n", wire.ClientMessage(err))
		mu.Unlock()
	}
	if ferr := bw.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("upload: write: %w", ferr)
	}
	return n, err
}

// Framing is how a pack is carried on the client's stream.
type Framing struct {
	// Sideband is 0 for a bare pack, else the largest side-band
	// packet: sideband.MaxPacket or sideband.MaxPacket64.
	Sideband int
	// Progress sends progress messages (only with a side-band).
	Progress bool
}

// lockedWriter serialises writes of the pack and of progress messages,
// which may come from different goroutines.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// progressWriter sends what is written on the progress band, at once.
type progressWriter struct {
	sb *sideband.Writer
	bw *bufio.Writer
}

func (p progressWriter) Write(b []byte) (int, error) {
	if err := p.sb.Progress(string(b)); err != nil {
		return 0, err
	}
	if err := p.bw.Flush(); err != nil {
		return 0, err
	}
	return len(b), nil
}
