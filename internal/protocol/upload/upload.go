// Package upload is the server side of fetches and clones: Git's
// upload-pack service in protocol versions 0, 1 and 2
// (gitprotocol-pack(5), gitprotocol-v2(5)).
//
// A session reads requests from an io.Reader and answers on an
// io.Writer. It advertises references, checks what the client wants,
// negotiates what it has (so that an incremental fetch sends only what
// is new), computes shallow boundaries, and sends the pack with
// progress on a side-band. Options.SendPack lets the caller write the
// pack to a writer of its choice.
//
// Errors meant for the client are *wire.Error values; every other error
// reaches the client as a generic message and is returned for the log.
package upload

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"

	"gotd/internal/git/repo"
	"gotd/internal/protocol/pktline"
	"gotd/internal/protocol/wire"
)

// WantPolicy says which objects a client may ask for by id.
type WantPolicy int

const (
	// WantAdvertised allows the advertised references' objects and what
	// annotated tags among them peel to (C Git's default for versions 0
	// and 1; in version 2, where references are listed separately,
	// anything reachable from them is allowed, as WantReachable).
	WantAdvertised WantPolicy = iota
	// WantReachable also allows any object reachable from them
	// (uploadpack.allowReachableSHA1InWant).
	WantReachable
	// WantAny allows any object in the repository
	// (uploadpack.allowAnySHA1InWant).
	WantAny
)

// Options configure a session. Repo is required.
type Options struct {
	Repo *repo.Repo
	// Version is the protocol version the client asked for
	// (wire.ParseVersion of GIT_PROTOCOL).
	Version int
	Limits  wire.Limits
	// Log receives what the client is not told; nil discards it.
	Log *slog.Logger

	// AdvertiseOnly writes the advertisement (versions 0 and 1: the
	// references; version 2: the capabilities) and returns: the first
	// leg of smart HTTP. StatelessRPC serves one request without an
	// advertisement and returns after answering it, as smart HTTP's
	// POST does.
	AdvertiseOnly, StatelessRPC bool

	// Wants is what clients may ask for by id.
	Wants WantPolicy
	// Hidden, if set, names the references never shown nor served:
	// left out of the advertisements, of want-ref, deepen-not and
	// include-tag, and what only they reach cannot be asked for by id
	// (WantAny then counts as WantReachable; object-info answers only
	// for objects the others reach).
	Hidden func(name string) bool
	// Filter enables partial clone (the filter capability).
	Filter bool
	// RefInWant and SidebandAll enable those version 2 fetch features.
	RefInWant, SidebandAll bool

	// SendPack, if set, writes the pack for req on the client's
	// stream, framed as f, as the package's SendPack does, and returns
	// the objects it sent: the caller chooses the writer (the daemon
	// gives its guarded stream, not a buffer over it) or another
	// process. The session has flushed what it wrote before, and
	// writes nothing until SendPack returns. Nil sends the pack from
	// here, through the session's buffer.
	SendPack func(ctx context.Context, req *PackRequest, f Framing) (int, error)
}

// Result tells the caller what a session did, for logs and
// notifications.
type Result struct {
	LsRefs        int      // reference listings sent: ls-refs, or the advertisement of versions 0 and 1
	Fetches       int      // packs sent
	Wants, Haves  int      // the wants of those packs, and the have lines read
	Objects       int      // objects in them
	ServerOptions []string // version 2 server-option values
	Agent         string   // the client's agent capability, if sent
}

// readBuffer is how much of the client's input a session reads at a
// time: a request of many short lines (haves, ref-prefix lines) is read
// in a few large reads, not two per line. Unbuffered, an ls-refs of
// 65,536 ref-prefix lines cost session_read 131,072 reads of a guarded
// stream (each with its deadline and quick acknowledgement) and about
// a second of CPU (issue 18, "load held").
const readBuffer = 64 << 10

// Serve runs one upload-pack session on r and w, answering in the
// version opts.Version selects. It returns when the client is done, or
// with the error that ended the session; an error meant for the client
// has been sent to it. r is read through a buffer: what the session
// read ahead of its last request is lost to any later reader of r.
func Serve(ctx context.Context, r io.Reader, w io.Writer, opts Options) (*Result, error) {
	if opts.Repo == nil {
		return nil, errors.New("upload: no repository")
	}
	opts.Limits = opts.Limits.WithDefaults()
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	s := &session{
		ctx:  ctx,
		opts: opts,
		repo: opts.Repo,
		in:   pktline.NewReader(bufio.NewReaderSize(wire.DeadlineReader(r, opts.Limits.RequestTimeout), readBuffer)),
		bw:   bw,
		pw:   pktline.NewWriter(bw),
		res:  &Result{},
	}
	s.haveBudget = s.idBudget("haves", "have", opts.Limits.MaxHaves)
	defer func() {
		if s.release != nil {
			s.release()
		}
	}()
	var err error
	if opts.Version == wire.V2 {
		err = s.serveV2()
	} else {
		err = s.serveV0()
	}
	if ferr := bw.Flush(); err == nil && ferr != nil {
		err = ferr
	}
	return s.res, err
}
