// Package receive is the server side of pushes: Git's receive-pack
// service in protocol versions 0 and 1 (gitprotocol-pack(5), "Pushing
// Data To a Server"; gitprotocol-capabilities(5)). Receive-pack has no
// version 2: a client asking for it is answered in version 0, as C Git
// does.
//
// A push goes through these steps, each a state of the session:
//
//  1. advertise every reference under refs/ and the capabilities;
//  2. read the commands ("<old> <new> <ref>") and push options, all
//     validated before anything is written;
//  3. receive the pack into a quarantine directory under objects/,
//     completing a thin pack from the repository and checking every
//     object as receive.fsckObjects does (IndexPack: the daemon's
//     repo_write process, which may write only there);
//  4. check each command: its new object exists and everything it
//     reaches is in the pack or the repository, branches point at
//     commits, the old value is still current, Options.Check agrees;
//  5. if any command may proceed, move the pack into objects/pack and
//     update the references, in one transaction with the atomic
//     capability, else each with its own compare-and-swap on the old
//     value (installPack and updateRefs: the session_write process);
//  6. report the outcome of each command.
//
// Steps 4 and 5 hold the repository's prune lock shared, so that a
// cleanup removes no object the check found (prune.go).
//
// A push that fails leaves the repository as it was: the quarantine
// directory is removed whatever happens.
//
// Errors meant for the client are *wire.Error values with fixed texts
// that never echo client bytes or name server paths; the full cause of
// every failure goes to Options.Log.
package receive

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"gotd/internal/engine/indexer"
	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/refs"
	"gotd/internal/git/repo"
	"gotd/internal/git/walk"
	"gotd/internal/protocol/pktline"
	"gotd/internal/protocol/sideband"
	"gotd/internal/protocol/wire"
)

// Options configure a session. Repo is required; the zero value of
// every other field is usable.
type Options struct {
	Repo *repo.Repo
	// Version is the protocol version the client asked for
	// (wire.ParseVersion of GIT_PROTOCOL): wire.V1 adds a "version 1"
	// line before the advertisement; wire.V2 is served as wire.V0.
	Version int
	// Limits bound the request and the pack; zero fields take
	// wire.DefaultLimits. RequestTimeout applies to every read when r
	// has SetReadDeadline.
	Limits wire.Limits
	// Log receives every failure with the detail the client is not
	// told; nil discards it.
	Log *slog.Logger
	// AdvertiseOnly writes only the advertisement and returns;
	// StatelessRPC skips the advertisement and reads the request at
	// once. They are the two legs of smart HTTP.
	AdvertiseOnly, StatelessRPC bool
	// Reflog is the pusher's identity recorded in the reflog entry of
	// every reference the push moves (refs.Update.Who) and the start
	// of its message, such as "push via ssh"; the session adds how
	// the reference moved: "push via ssh: forced-update". When is
	// ignored. Zero Name and Message: the push logs as "anonymous"
	// with the message "push".
	Reflog refs.Who
	// Fsck overrides the severity of fsck messages as
	// receive.fsck.<msg-id> does; nil applies C Git's defaults.
	Fsck *object.Checker
	// Check, if set, is asked about each command that passed every
	// other check (the pack is verified and the new value connected),
	// before any reference moves; objects reads the repository as it
	// will be with the pushed objects (for ancestry checks). An error
	// rejects that command: its wire.ClientMessage becomes the "ng"
	// reason, so it must be a *wire.Error to say more than "internal
	// server error". Check must not keep cmd or objects.
	Check func(ctx context.Context, cmd *Command, objects walk.Store) error
	// Hidden, if set, names references the client never sees: they
	// are left out of the advertisement, updates of them are refused,
	// and a new value must be connected to the other references with
	// objects the pack brought, not with what only hidden references
	// reach (nor may a thin pack's deltas take it as a base).
	Hidden func(name string) bool
	// MinFree, if positive, is the free space a push must leave on the
	// repository's file system (PackOptions.MinFree), when the pack is
	// received here.
	MinFree int64
	// ReceivePack, if set, has another process (the daemon's
	// repo_write) receive the pack: it reads the pack from the client's
	// stream with IndexPack into a quarantine directory made with
	// NewQuarantine, relaying progress, and returns the directory (the
	// session removes it when done) and the indexed pack. The session
	// then reads no byte of the stream past the commands. An error's
	// wire.ClientMessage is the unpack status the client reads.
	ReceivePack func(ctx context.Context, progress func(stage string, done, total uint32)) (quarantine string, pack *indexer.Result, err error)
	// Rebase, if set, names the branches whose stale updates are
	// rebased onto their current value (see rebase.go); MaxRebase
	// bounds the commits of one rebased update (0: DefaultMaxRebase).
	Rebase    func(name string) bool
	MaxRebase int
	// PruneWait bounds the wait for the repository's prune lock, which
	// a push holds shared from its check to its reference updates
	// while a cleanup may hold it exclusive (see prune.go; 0:
	// DefaultPruneWait).
	PruneWait time.Duration
}

// Command is one reference update of a push.
type Command struct {
	Old, New oid.ID // the null id of the format for "none"
	Name     string // a full name under refs/, checked with refs.CheckName
	// Status is "" for an update that was made (or, in Options.Check,
	// that may still be), else why not: the reason of its "ng" line.
	Status string
	// Pushed is, for an update rebased onto the branch's current value
	// (Options.Rebase), the value the client pushed: New is then the
	// rebased tip and Old the value it was rebased onto. It is the
	// zero ID otherwise.
	Pushed oid.ID
	// Move is how the reference moved, as its reflog entry says it
	// (MovedCreated…), once the push decided to make the update; ""
	// before.
	Move string

	clientOld oid.ID // the old value the client sent, once rebased
}

// IsDelete reports whether the command deletes its reference.
func (c *Command) IsDelete() bool { return c.New.IsNull() }

// Result is what a push did, for logs and notifications.
type Result struct {
	// Commands are the client's commands in request order, each with its
	// outcome; empty when the client sent none or the request was
	// malformed.
	Commands []Command
	// PushOptions are the client's push options ("git push -o").
	PushOptions []string
	// Agent is the client's agent capability, unchecked client text:
	// only for logs.
	Agent string
	// Pack is the path of the pack installed in objects/pack, "" if
	// none was (deletions only, an empty pack, or nothing to update);
	// Objects is how many objects it holds.
	Pack    string
	Objects int
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

// Reasons sent on "ng" lines and as unpack status. They are fixed
// texts: a client reads them, a log has the detail.
const (
	ngUnpack        = "unpacker error"
	ngMissing       = "missing necessary objects"
	ngNotCommit     = "branch must point at a commit"
	ngStale         = "failed to update ref: old value is not current"
	ngUpdate        = "failed to update ref"
	ngLocked        = "reference is locked by another update"
	ngAtomic        = "atomic push failure"
	ngAtomicTx      = "atomic transaction failed"
	ngInstall       = "unable to migrate objects to permanent storage"
	ngDeleteCurrent = "deletion of the current branch prohibited"
	ngHidden        = "deny updating a hidden ref"
	ngFunny         = "funny refname"
	ngInternal      = "internal server error"
)

// keepaliveInterval is how often an empty side-band packet is sent
// while the client waits for the server, as C Git's receive.keepAlive
// (5 seconds) does, so that proxies do not drop a quiet connection.
var keepaliveInterval = 5 * time.Second

// state is a step of a push; see the package comment.
type state int

const (
	stateAdvertise state = iota
	stateRequest
	statePack
	stateCheck
	stateInstall
	stateReport
)

// session is one push.
type session struct {
	ctx  context.Context
	opts Options
	repo *repo.Repo
	log  *slog.Logger

	br  *bufio.Reader // kept for the pack (nil with Options.ReceivePack): the pkt-line reader reads no further than a packet
	in  *pktline.Reader
	out *syncWriter
	pw  *pktline.Writer
	sb  *sideband.Writer // with side-band-64k

	req            *request
	res            *Result
	quarantine     string          // objects/incoming-gotd-*, removed when the session ends
	quarantineHold *os.File        // made here: its hold (NewQuarantine), let go once removed
	pack           *indexer.Result // the received pack, nil if none was read
	madePack       *indexer.Result // the objects rebases made, nil if none
	rebaseDeadline time.Time       // of all the push's rebases, set by the first
	unpackErr      error
	hadBranch      bool   // the repository had a branch before the push
	unlockPrune    func() // lets go of the prune lock, nil when not held

	keepalive struct {
		once       sync.Once
		stop, done chan struct{}
	}
}

// Serve runs one receive-pack session: it reads the client's request
// from r and answers on w. It returns what the push did, and the error
// that ended the session, if any: a malformed request (answered with an
// "ERR" packet), a pack that could not be received (answered with
// "unpack <reason>"), or an I/O failure. Commands refused one by one
// are not errors; they are in the Result. Serve reads r through a
// buffer, so it may read past the end of the push; it does not close r
// or w.
func Serve(ctx context.Context, r io.Reader, w io.Writer, opts Options) (*Result, error) {
	if opts.Repo == nil {
		return nil, errors.New("receive: no repository")
	}
	opts.Limits = opts.Limits.WithDefaults()
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var in io.Reader = wire.DeadlineReader(r, opts.Limits.RequestTimeout)
	var br *bufio.Reader
	if opts.ReceivePack == nil {
		br = bufio.NewReaderSize(in, 64<<10)
		in = br
	}
	out := &syncWriter{bw: bufio.NewWriterSize(w, 16<<10)}
	s := &session{
		ctx: ctx, opts: opts, repo: opts.Repo,
		// The caller's log names the repository: said once per line.
		log: log.With("service", "receive-pack"),
		br:  br, in: pktline.NewReader(in), out: out, pw: pktline.NewWriter(out),
		res: &Result{},
	}
	defer s.cleanup()
	err := s.run()
	if ferr := s.out.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("receive: write: %w", ferr)
	}
	if err != nil {
		s.log.Warn("push failed", "agent", s.res.Agent, "err", err)
	}
	return s.res, err
}

// run is the session's state machine.
func (s *session) run() error {
	st := stateAdvertise
	if s.opts.StatelessRPC {
		st = stateRequest // the advertisement was the previous HTTP request
	}
	for {
		switch st {
		case stateAdvertise:
			if err := s.advertise(); err != nil {
				return err
			}
			if err := s.out.Flush(); err != nil {
				return fmt.Errorf("receive: write: %w", err)
			}
			if s.opts.AdvertiseOnly {
				return nil // the first leg of smart HTTP
			}
			st = stateRequest

		case stateRequest:
			req, err := readRequest(s.in, s.repo.Format, s.opts.Limits)
			if err != nil {
				return s.fail(err)
			}
			if req == nil {
				return nil // a flush alone: the client has nothing to push
			}
			s.req = req
			s.res.Commands = req.commands
			s.res.PushOptions = req.options
			s.res.Agent = req.agent
			if req.sideBand {
				s.sb = sideband.NewWriter(s.pw, true)
			}
			s.log.Info("push", "agent", req.agent, "commands", len(req.commands), "atomic", req.atomic)
			st = statePack
			if req.deleteOnly() {
				st = stateCheck // no pack follows deletions
			}

		case statePack:
			s.pack, s.unpackErr = s.receive()
			st = stateCheck
			if s.unpackErr != nil {
				s.setAll(ngUnpack) // Serve logs the error
				st = stateReport
			}

		case stateCheck:
			s.startKeepalive()
			if !s.lockPrune() {
				st = stateReport
				break
			}
			if err := s.check(); err != nil {
				s.log.Error("cannot check the push", "err", err)
				s.setAll(ngInternal)
			}
			st = stateReport
			if s.anyOK() {
				st = stateInstall
			}

		case stateInstall:
			s.install()
			st = stateReport

		case stateReport:
			s.unlockPruneNow()
			s.stopKeepalive()
			s.logOutcome()
			if err := s.report(); err != nil {
				return err
			}
			return s.unpackErr
		}
	}
}

// cleanup stops the keepalive and removes the quarantine directory,
// whatever state the session ended in.
func (s *session) cleanup() {
	s.unlockPruneNow()
	s.stopKeepalive()
	if s.quarantine != "" {
		if err := os.RemoveAll(s.quarantine); err != nil {
			s.log.Error("cannot remove the quarantine directory", "err", err)
		}
	}
	if s.quarantineHold != nil {
		s.quarantineHold.Close()
	}
}

// fail sends err to the client as an ERR packet and returns it.
func (s *session) fail(err error) error {
	wire.SendErr(s.pw, err)
	s.out.Flush()
	return err
}

// setAll gives every command still OK the status reason.
func (s *session) setAll(reason string) {
	for i := range s.req.commands {
		if s.req.commands[i].Status == "" {
			s.req.commands[i].Status = reason
		}
	}
}

// anyOK reports whether some command may still proceed.
func (s *session) anyOK() bool {
	for i := range s.req.commands {
		if s.req.commands[i].Status == "" {
			return true
		}
	}
	return false
}

// logOutcome logs each command's outcome.
func (s *session) logOutcome() {
	for _, c := range s.req.commands {
		if c.Status == "" {
			s.log.Info("ref updated", "ref", c.Name, "old", c.Old, "new", c.New)
		} else {
			s.log.Info("ref not updated", "ref", c.Name, "old", c.Old, "new", c.New, "reason", c.Status)
		}
	}
}

// hidden reports whether the reference name is hidden.
func (s *session) hidden(name string) bool {
	return s.opts.Hidden != nil && s.opts.Hidden(name)
}

// hiddenRef reports whether r is hidden: its name, or a name its chain
// of symbolic references passes through.
func (s *session) hiddenRef(r refs.Ref) bool {
	return s.opts.Hidden != nil && s.repo.Refs.ChainAny(r, s.opts.Hidden)
}

// advertise writes every reference under refs/ with the capabilities
// (no HEAD line and no peeled lines, as C Git's receive-pack).
func (s *session) advertise() error {
	var adv []wire.Ref
	err := s.repo.Refs.List("refs/", func(r refs.Ref) error {
		if !s.hiddenRef(r) {
			adv = append(adv, wire.Ref{Name: r.Name, ID: r.ID})
		}
		return nil
	})
	if err != nil {
		return s.fail(wire.Wrap("cannot list references", err))
	}
	if err := wire.Advertise(s.pw, s.repo.Format, adv, advertisedCaps(s.repo.Format), s.opts.Version == wire.V1); err != nil {
		return fmt.Errorf("receive: write: %w", err)
	}
	return nil
}

// syncWriter buffers the session's output and serialises it: the
// keepalive goroutine and the indexer's progress callback write next
// to the session. Each pkt-line Writer writes a packet with one Write,
// so packets never interleave.
type syncWriter struct {
	mu sync.Mutex
	bw *bufio.Writer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.bw.Write(p)
}

// Flush sends what is buffered.
func (w *syncWriter) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.bw.Flush()
}

// startKeepalive starts sending empty data-band packets every
// keepaliveInterval, once the client has sent everything and waits
// (C Git's receive-pack waits for index-pack's end-of-input likewise:
// an HTTP client may not read the response before its request is
// sent). Only with side-band-64k: the packets must not reach the
// report-status parser.
func (s *session) startKeepalive() {
	if s.sb == nil {
		return
	}
	s.keepalive.once.Do(func() {
		stop, done := make(chan struct{}), make(chan struct{})
		s.keepalive.stop, s.keepalive.done = stop, done
		pw := pktline.NewWriter(s.out) // its own: pktline Writers are not shared between goroutines
		go func() {
			defer close(done)
			t := time.NewTicker(keepaliveInterval)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					if pw.Write([]byte{sideband.Data}) != nil || s.out.Flush() != nil {
						return // the session sees the broken connection itself
					}
				}
			}
		}()
	})
}

// stopKeepalive stops the keepalive goroutine and waits for it.
func (s *session) stopKeepalive() {
	s.keepalive.once.Do(func() {}) // none may start afterwards
	if s.keepalive.stop != nil {
		close(s.keepalive.stop)
		<-s.keepalive.done
		s.keepalive.stop = nil
	}
}
