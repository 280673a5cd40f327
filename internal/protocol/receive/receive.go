// Package receive is the server side of pushes: Git's receive-pack
// service (gitprotocol-pack(5), "Pushing Data To a Server"). Protocol
// version 2 has no receive-pack; a client asking for it is answered in
// version 0, as C Git does.
//
// A push is taken in two steps that the daemon may run in different
// processes: ReceivePack reads the pack into a quarantine directory,
// indexing and checking every object (fsck), without touching the
// repository; Apply then checks that every new reference tip is
// connected, moves the pack into the repository and updates the
// references, all at once when the client asked for an atomic push,
// else each with a compare-and-swap on its old value. A push that fails
// leaves the repository as it was.
package receive

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/refs"
	"gotd/internal/git/repo"
	"gotd/internal/protocol/pktline"
	"gotd/internal/protocol/sideband"
	"gotd/internal/protocol/wire"
)

// Options configure a session. Repo is required.
type Options struct {
	Repo *repo.Repo
	// Version is the protocol version the client asked for; version 2
	// is served as version 0.
	Version int
	Limits  wire.Limits
	// Log receives what the client is not told; nil discards it.
	Log *slog.Logger
	// AdvertiseOnly writes only the advertisement; StatelessRPC reads
	// the request without one (the two legs of smart HTTP).
	AdvertiseOnly, StatelessRPC bool
	// Fsck overrides message severities as receive.fsck.<id> does; nil
	// uses C Git's defaults.
	Fsck *object.Checker
	// Check, if set, is asked about each command once the pack is
	// verified and connected, before any reference moves; an error
	// rejects that command with its client message.
	Check func(ctx context.Context, cmd *Command) error
}

// Command is one reference update of a push.
type Command struct {
	Name     string
	Old, New oid.ID
	// Status is "" for an update that was made, else why not (the text
	// of the "ng" line).
	Status string
}

// IsDelete reports whether the command deletes its reference.
func (c *Command) IsDelete() bool { return c.New.IsNull() }

// Result is what a push did.
type Result struct {
	Commands    []Command
	PushOptions []string
	Agent       string
	// Pack is the path of the installed pack, "" if none was.
	Pack string
}

// Updated returns the commands that moved their references.
func (r *Result) Updated() []Command {
	var out []Command
	for _, c := range r.Commands {
		if c.Status == "" {
			out = append(out, c)
		}
	}
	return out
}

// caps are the capabilities advertised (object-format and agent are
// added with their values).
var caps = []string{"report-status", "report-status-v2", "delete-refs", "side-band-64k",
	"quiet", "atomic", "ofs-delta", "push-options"}

// Limits on push options.
const (
	maxPushOptions   = 100
	maxPushOptionLen = 4096
)

// session is one push.
type session struct {
	ctx  context.Context
	opts Options
	repo *repo.Repo
	br   *bufio.Reader
	in   *pktline.Reader
	bw   *bufio.Writer
	pw   *pktline.Writer
	res  *Result
	req  *request
	sb   *sideband.Writer // when side-band-64k was asked
}

// Serve runs one receive-pack session on r and w. It returns what the
// push did, and the error that ended the session (an error meant for
// the client has been sent to it).
func Serve(ctx context.Context, r io.Reader, w io.Writer, opts Options) (*Result, error) {
	if opts.Repo == nil {
		return nil, errors.New("receive: no repository")
	}
	opts.Limits = opts.Limits.WithDefaults()
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	br := bufio.NewReaderSize(wire.DeadlineReader(r, opts.Limits.RequestTimeout), 64<<10)
	bw := bufio.NewWriterSize(w, 16<<10)
	s := &session{ctx: ctx, opts: opts, repo: opts.Repo, br: br, in: pktline.NewReader(br),
		bw: bw, pw: pktline.NewWriter(bw), res: &Result{}}
	err := s.serve()
	if ferr := bw.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("receive: write: %w", ferr)
	}
	if err != nil {
		opts.Log.Warn("receive-pack failed", "repo", opts.Repo.GitDir, "err", err)
	}
	return s.res, err
}

func (s *session) serve() error {
	if !s.opts.StatelessRPC {
		if err := s.advertise(); err != nil {
			return err
		}
		if err := s.bw.Flush(); err != nil || s.opts.AdvertiseOnly {
			return err
		}
	}
	req, err := s.readRequest()
	if err != nil {
		wire.SendErr(s.pw, err)
		return err
	}
	if req == nil {
		return nil // nothing to do
	}
	s.req = req
	s.res.Commands = req.commands
	s.res.PushOptions = req.options
	if req.caps.Has("side-band-64k") {
		s.sb = sideband.NewWriter(s.pw, true)
	}
	var rp *Received
	unpackErr := error(nil)
	if req.needsPack() {
		rp, unpackErr = ReceivePack(s.ctx, s.br, s.repo, s.packOptions())
	}
	if rp != nil {
		defer rp.Remove()
	}
	if unpackErr == nil {
		unpackErr = s.apply(rp)
	} else {
		s.opts.Log.Warn("receive-pack: unpack failed", "err", unpackErr)
		for i := range req.commands {
			req.commands[i].Status = "unpacker error"
		}
	}
	s.res.Commands = req.commands
	if err := s.report(unpackErr); err != nil {
		return err
	}
	return unpackErr
}

// packOptions are the ReceivePack options of this session.
func (s *session) packOptions() PackOptions {
	po := PackOptions{Limits: s.opts.Limits, Fsck: s.opts.Fsck}
	if s.sb != nil && !s.req.caps.Has("quiet") {
		po.Progress = s.progress
	}
	return po
}

// progress sends an indexing progress line on band 2.
func (s *session) progress(stage string, done, total uint32) {
	pct := uint32(100)
	if total > 0 {
		pct = uint32(uint64(done) * 100 / uint64(total))
	}
	end := "\r"
	if done == total {
		end = ", done.\n"
	}
	name := strings.ToUpper(stage[:1]) + stage[1:]
	s.sb.Progress(fmt.Sprintf("%s: %3d%% (%d/%d)%s", name, pct, done, total, end))
	s.bw.Flush()
}

// advertise writes the references and capabilities.
func (s *session) advertise() error {
	var adv []wire.Ref
	err := s.repo.Refs.List("refs/", func(r refs.Ref) error {
		adv = append(adv, wire.Ref{Name: r.Name, ID: r.ID})
		return nil
	})
	if err != nil {
		wire.SendErr(s.pw, wire.Wrap("cannot list references", err))
		return err
	}
	c := strings.Join(caps, " ") + " object-format=" + s.repo.Format.String() + " agent=" + wire.Agent
	return wire.Advertise(s.pw, s.repo.Format, adv, c, s.opts.Version == wire.V1)
}
