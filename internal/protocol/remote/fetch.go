// Package remote is the client side of the Git protocol, as a mirror
// needs it: Fetch fetches the references of an upstream repository and
// the objects they need into a local repository (upload-pack's client),
// Send makes a target's references equal to the local repository's
// (receive-pack's client).
//
// Fetch speaks protocol version 2 (gitprotocol-v2(5): ls-refs, then one
// fetch request that sends the local tips as haves and "done"), and
// version 0 with upstreams that answer in it (the references of the
// advertisement, then one request of wants, haves and done); Send,
// version 0 (receive-pack has no other), with report-status(-v2),
// side-band-64k, atomic and ofs-delta when offered, and a thin pack
// against what the target advertised. Both go over git://, smart
// HTTP(S), SSH (ssh:// and scp-like user@host:path: the server's host
// key pinned, never accepted unseen; the remote command quoted as C
// Git quotes it) and local paths (served in-process by packages upload
// and receive).
//
// Everything the other side sends is hostile input: the reference list
// is bounded in count and checked name by name, a fetched pack goes
// through the same indexer, object checks, limits and quarantine as a
// pushed pack (receive.Ingest), and the references move only once every
// new value is there with everything it reaches, in one transaction
// whose old values are the ones the fetch started from. A fetch that
// fails leaves the repository as it was.
package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"gotd/internal/engine/indexer"
	"gotd/internal/git/oid"
	"gotd/internal/git/refs"
	"gotd/internal/git/repo"
	"gotd/internal/protocol/pktline"
	"gotd/internal/protocol/receive"
	"gotd/internal/protocol/sideband"
	"gotd/internal/protocol/wire"
)

// FetchOptions configure a fetch. URL and Repo are required.
type FetchOptions struct {
	// URL is the upstream: git://host[:port]/path, http(s)://…,
	// ssh://[user@]host[:port]/path or [user@]host:path, or a local
	// path (or file:// URL) of a repository.
	URL  string
	Repo *repo.Repo
	// SSH pins the host key and gives the client key for ssh URLs.
	SSH *SSH
	// Take selects the upstream references fetched (full names);
	// nil takes refs/heads/ and refs/tags/.
	Take func(name string) bool
	// Prune deletes the local references Take selects that the
	// upstream no longer has.
	Prune bool
	// Limits bound the pack as a push's are bounded; zero fields take
	// wire.DefaultLimits.
	Limits wire.Limits
	// MinFree is receive.Ingest's: the free space the pack must leave.
	MinFree int64
	// MaxRefs bounds the references the upstream may list (default
	// 1,000,000).
	MaxRefs int
	// Timeout bounds the whole fetch (default 1 hour); IOTimeout each
	// read and write (default 5 minutes).
	Timeout, IOTimeout time.Duration
	// Who is recorded in the reflog of every reference moved.
	Who refs.Who
	Log *slog.Logger
	// Progress, if set, receives the upstream's progress lines and the
	// indexer's stages.
	Progress func(msg string)
	// BeforeInstall is receive.Ingest's.
	BeforeInstall func(files []string) error
	// PackObjects, if set, is told the object count of the pack the
	// upstream sends (as its header declares it) before the pack is
	// read: a caller may tune its memory to the work ahead.
	PackObjects func(count uint32)
	// Auth, if set, is sent to an http(s) upstream (with each request;
	// net/http drops it on a redirect to another host).
	Auth *BasicAuth
	// V0 asks the upstream for protocol version 0 instead of 2, as
	// C Git's protocol.version=0 does.
	V0 bool
	// CA, if not empty, is PEM certificates (at most MaxCA bytes): the only
	// roots an https upstream's certificate is verified against,
	// instead of the system's.
	CA []byte
}

// Update is a reference the fetch moved.
type Update struct {
	Name     string
	Old, New oid.ID // the null ID for "none"
}

// FetchResult is what a fetch did.
type FetchResult struct {
	Updates []Update
	Pack    string // the installed pack, "" if none was needed
	// Head is the upstream HEAD's target ("refs/heads/main"), "" if it
	// did not say.
	Head string
}

// Errors a fetch may end with, wrapped with detail.
var (
	ErrProtocol = errors.New("remote: upstream protocol error")
	ErrUpstream = errors.New("remote: upstream error")
)

const (
	defaultMaxRefs   = 1_000_000
	defaultTimeout   = time.Hour
	defaultIOTimeout = 5 * time.Minute
	// maxHaves bounds the local tips sent as haves.
	maxHaves = 4096
	// maxProgress bounds the progress bytes passed on per fetch.
	maxProgress = 64 << 10
	// maxRefName bounds a reference's name: no longer one can be a
	// loose reference (PATH_MAX).
	maxRefName = 4096
	// maxRefBytes bounds the names of the references kept, together:
	// MaxRefs names of up to maxRefName bytes would be gigabytes.
	maxRefBytes = 128 << 20
)

// Fetch fetches from opts.URL into opts.Repo.
func Fetch(ctx context.Context, opts FetchOptions) (*FetchResult, error) {
	f, cancel, err := startFetch(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer cancel()
	defer f.t.close()
	return f.run(f.ctx)
}

// Fetched is what FetchPack brought: the reference updates that would
// make the repository's references the upstream's, and the pack that
// brings what they need, indexed in the quarantine directory.
type Fetched struct {
	// Updates have the old values the fetch started from; empty when
	// the references are the upstream's already.
	Updates []refs.Update
	// Tips are the new values, for receive.Ingest.Install.
	Tips []receive.Tip
	// Pack is the indexed pack, nil when Updates is empty; a pack
	// without objects when every object was here already.
	Pack *indexer.Result
	Head string
	// closed: the pack holds every new value and everything its
	// objects name (receive.Ingest.IndexClosed), so its check relied
	// on nothing in the repository.
	closed bool
}

// FetchPack is Fetch for a process that may not write the repository
// (a mirror's fetch process): it reads the repository and indexes the
// upstream's pack into dir, a quarantine directory of the repository's
// objects directory, checking every object, but installs nothing and
// moves no reference: the caller hands the result to the process that
// may, which calls receive.Ingest.Install and moves the references.
// That Install is the check that every new value is there with
// everything it reaches: it must not take this process's word for it,
// so FetchPack does not check it first (a walk of the new history for
// nothing). On error nothing is left in dir.
func FetchPack(ctx context.Context, opts FetchOptions, dir string) (*Fetched, error) {
	f, cancel, err := startFetch(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer cancel()
	defer f.t.close()
	return f.fetchPack(f.ctx, dir, false)
}

// startFetch checks opts, gives them their defaults, and connects to
// the upstream; the caller cancels the context, which bounds the
// whole fetch, and closes the transport.
func startFetch(ctx context.Context, opts FetchOptions) (*fetcher, context.CancelFunc, error) {
	if opts.Repo == nil || opts.URL == "" {
		return nil, nil, errors.New("remote: no repository or URL")
	}
	opts.Limits = opts.Limits.WithDefaults()
	if opts.MaxRefs <= 0 {
		opts.MaxRefs = defaultMaxRefs
	}
	if opts.Timeout <= 0 {
		opts.Timeout = defaultTimeout
	}
	if opts.IOTimeout <= 0 {
		opts.IOTimeout = defaultIOTimeout
	}
	if opts.Take == nil {
		opts.Take = func(name string) bool {
			return strings.HasPrefix(name, "refs/heads/") || strings.HasPrefix(name, "refs/tags/")
		}
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	t, err := dial(ctx, opts.URL, uploadPack, opts.IOTimeout, opts.V0, opts.SSH)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	if err := setCA(t, opts.CA); err != nil {
		t.close()
		cancel()
		return nil, nil, err
	}
	if h, ok := t.(*httpTransport); ok {
		h.auth = opts.Auth
	}
	return &fetcher{ctx: ctx, opts: opts, t: t, format: opts.Repo.Format}, cancel, nil
}

type fetcher struct {
	ctx    context.Context // bounds the whole fetch
	opts   FetchOptions
	t      transport
	format oid.Format
	caps   wire.Caps
	v0     bool // the upstream speaks protocol version 0 (or 1)
	push   bool // the advertisement is receive-pack's
	// refBytes counts the bytes of the names checkRef kept.
	refBytes int
}

// run fetches into the repository: the pack indexed in a quarantine
// of its own, installed, then the references moved in one transaction.
func (f *fetcher) run(ctx context.Context) (*FetchResult, error) {
	rp := f.opts.Repo
	dir, hold, err := receive.NewQuarantine(rp.ObjectsDir())
	if err != nil {
		return nil, fmt.Errorf("remote: %w", err)
	}
	defer func() {
		os.RemoveAll(dir)
		hold.Close()
	}()
	got, err := f.fetchPack(ctx, dir, true)
	if err != nil {
		return nil, err
	}
	res := &FetchResult{Head: got.Head}
	if len(got.Updates) == 0 {
		return res, nil
	}
	in := &receive.Ingest{Repo: rp, Limits: f.opts.Limits, BeforeInstall: f.opts.BeforeInstall}
	// fetchPack checked the tips, but without the prune lock, which a
	// push's check and update hold shared (receive's prune.go): a
	// cleanup may have removed since an object the pack relies on. So
	// they are checked again under it, which costs a walk of what the
	// pack brought, unless the pack relies on nothing here (closed,
	// as an initial mirror's is: of git.git, that walk read the whole
	// pack again and took gotadmin clone from 216 MB of peak RSS to
	// 321 MB). The lock is then held only so that the pack,
	// unreachable until the references move, is not removed in
	// between.
	unlock, err := rp.LockPrune(ctx, false, receive.DefaultPruneWait, nil)
	if err != nil {
		return nil, fmt.Errorf("remote: %w", err)
	}
	defer unlock()
	tips := make([]receive.Tip, len(got.Updates))
	for i, u := range got.Updates {
		tips[i] = receive.Tip{Name: u.Name, ID: u.New}
	}
	if got.closed {
		res.Pack, err = in.InstallChecked(got.Pack)
	} else {
		res.Pack, err = in.Install(ctx, got.Pack, tips)
	}
	if err != nil {
		return nil, fmt.Errorf("remote: %w", err)
	}
	if err := rp.Refs.Update(got.Updates); err != nil {
		return nil, fmt.Errorf("remote: update the references: %w", err)
	}
	for _, u := range got.Updates {
		res.Updates = append(res.Updates, Update{Name: u.Name, Old: u.Old, New: u.New})
	}
	return res, nil
}

// fetchPack plans the updates and indexes the pack into dir; with
// check, it also checks that the new values are there with everything
// they reach (and finds whether the pack is closed).
func (f *fetcher) fetchPack(ctx context.Context, dir string, check bool) (*Fetched, error) {
	adv, err := f.t.advertisement(ctx)
	if err != nil {
		return nil, err
	}
	remote, head, err := f.readAdvertisement(adv)
	if err != nil {
		return nil, err
	}
	if !f.v0 {
		if remote, head, err = f.lsRefs(ctx); err != nil {
			return nil, err
		}
	}
	res := &Fetched{Head: head}
	rp := f.opts.Repo

	// What the references will be: the upstream's, and for Prune none
	// for the local ones it lacks.
	local := map[string]oid.ID{}
	rp.Refs.List("refs/", func(r refs.Ref) error {
		if r.Target == "" {
			local[r.Name] = r.ID
		}
		return nil
	})
	null := oid.Zero(f.format)
	var ups []refs.Update
	var wants []oid.ID
	var tips []receive.Tip
	wanted := map[oid.ID]bool{}
	for _, r := range remote {
		old, ok := local[r.Name]
		if ok && old == r.ID {
			continue
		}
		if !ok {
			old = null
		}
		ups = append(ups, refs.Update{Name: r.Name, Old: old, New: r.ID, Who: f.opts.Who})
		tips = append(tips, receive.Tip{Name: r.Name, ID: r.ID})
		if !rp.HasObject(r.ID) && !wanted[r.ID] {
			wanted[r.ID] = true
			wants = append(wants, r.ID)
		}
	}
	if f.opts.Prune {
		upstream := map[string]bool{}
		for _, r := range remote {
			upstream[r.Name] = true
		}
		for name, id := range local {
			if f.opts.Take(name) && !upstream[name] {
				ups = append(ups, refs.Update{Name: name, Old: id, New: null, Who: f.opts.Who})
			}
		}
	}
	if len(ups) == 0 {
		return res, nil
	}
	// A transaction bound to fail ("a" beside "a/b" upstream, a name in
	// the way of a local reference) fails before a pack is fetched.
	if err := rp.Refs.Check(ups); err != nil {
		return nil, fmt.Errorf("remote: update the references: %w", err)
	}
	res.Updates, res.Tips = ups, tips
	if !check {
		tips = nil
	}
	in := &receive.Ingest{Repo: rp, Limits: f.opts.Limits, MinFree: f.opts.MinFree, Begin: f.opts.PackObjects}
	if f.opts.Progress != nil {
		in.Progress = func(stage string, done, total uint32) {
			if done == total {
				f.opts.Progress(fmt.Sprintf("%s: %d, done.", stage, total))
			}
		}
	}
	if len(wants) == 0 {
		// Every object is here already (a reference moved to a known
		// commit): still checked for connectivity.
		if res.Pack, err = in.Index(ctx, emptyPack(f.format), dir, tips); err != nil {
			return nil, fmt.Errorf("remote: %w", err)
		}
		return res, nil
	}
	// Each local tip once: a server without multi_ack acknowledges a
	// repeated first common have again.
	var haves []oid.ID
	had := map[oid.ID]bool{}
	for _, id := range local {
		if len(haves) < maxHaves && !had[id] && rp.HasObject(id) {
			had[id] = true
			haves = append(haves, id)
		}
	}
	body, err := f.fetchRequest(ctx, wants, haves)
	if err != nil {
		return nil, err
	}
	pack, errc := f.packStream(body)
	res.Pack, res.closed, err = in.IndexClosed(ctx, pack, dir, tips)
	pack.CloseWithError(err)
	if err != nil {
		body.Close() // the stream may be blocked reading it
		<-errc
	} else {
		// The indexer stops at the trailer: the stream still reads
		// what ends the section (a flush), and closing the connection
		// under it failed a fetch whose pack was whole ("use of
		// closed network connection").
		err = <-errc
		body.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("remote: %w", err)
	}
	return res, nil
}

// readAdvertisement reads the upstream's first answer: in protocol
// version 2 the capabilities (the references come from ls-refs); in
// version 0 or 1, which upstreams that do not know version 2 answer
// with, the references and the capabilities of the first line, and
// HEAD's target from its symref capability.
func (f *fetcher) readAdvertisement(r io.Reader) ([]remoteRef, string, error) {
	pr := pktline.NewReader(r)
	var refsList []remoteRef
	head := ""
	seen := map[string]bool{}
	first := true
	lines := 0 // reference lines
	for n := 0; ; n++ {
		line, flush, err := wire.ReadLine(pr)
		if err != nil {
			return nil, "", fmt.Errorf("%w: advertisement: %v", ErrProtocol, err)
		}
		if flush {
			break
		}
		s := string(line)
		switch {
		case strings.HasPrefix(s, "ERR "):
			return nil, "", fmt.Errorf("%w: %.200q", ErrUpstream, strings.TrimPrefix(s, "ERR "))
		case first && strings.HasPrefix(s, "# service="):
			// Smart HTTP's header, then a flush.
			if _, flush, err := wire.ReadLine(pr); err != nil || !flush {
				return nil, "", fmt.Errorf("%w: smart HTTP header", ErrProtocol)
			}
			continue
		case first && s == "version 2":
			first = false
			continue
		case first && s == "version 1":
			continue
		case first:
			f.v0 = true
		}
		first = false
		if !f.v0 {
			if n > 1000 {
				return nil, "", fmt.Errorf("%w: endless capability advertisement", ErrProtocol)
			}
			f.caps = append(f.caps, s)
			continue
		}
		// Every line counts, those skipped below too: an upstream
		// listing references Take does not select, or peeled values,
		// without end would hold the fetch until its timeout.
		if lines++; lines > f.opts.MaxRefs {
			return nil, "", fmt.Errorf("%w: more than %d references", ErrUpstream, f.opts.MaxRefs)
		}
		if i := strings.IndexByte(s, 0); i >= 0 {
			if f.caps != nil {
				return nil, "", fmt.Errorf("%w: capabilities twice", ErrProtocol)
			}
			f.caps = wire.ParseCaps(s[i+1:])
			s = s[:i]
			for _, c := range f.caps {
				if t, ok := strings.CutPrefix(c, "symref=HEAD:"); ok && refs.CheckName(t) == nil {
					head = t
				}
			}
		}
		hex, name, ok := strings.Cut(s, " ")
		if !ok {
			return nil, "", fmt.Errorf("%w: advertisement: malformed line", ErrProtocol)
		}
		if name == "capabilities^{}" || name == "HEAD" || strings.HasSuffix(name, "^{}") || !f.opts.Take(name) {
			continue
		}
		ref, err := f.checkRef(hex, name, seen)
		if err != nil {
			return nil, "", err
		}
		refsList = append(refsList, ref)
	}
	if first {
		return nil, "", fmt.Errorf("%w: empty advertisement", ErrProtocol)
	}
	if f.v0 {
		if f.format != oid.SHA1 {
			return nil, "", fmt.Errorf("%w: a %s repository needs an upstream speaking protocol version 2", ErrProtocol, f.format)
		}
		if !f.push && !f.caps.Has("side-band-64k") {
			return nil, "", fmt.Errorf("%w: the upstream does not offer side-band-64k", ErrProtocol)
		}
		return refsList, head, nil
	}
	if !f.caps.Has("ls-refs") {
		return nil, "", fmt.Errorf("%w: the upstream does not offer ls-refs", ErrProtocol)
	}
	if _, ok := f.caps.Value("fetch"); !ok && !f.caps.Has("fetch") {
		return nil, "", fmt.Errorf("%w: the upstream does not offer fetch", ErrProtocol)
	}
	format := "sha1"
	if v, ok := f.caps.Value("object-format"); ok {
		format = v
	}
	if format != f.format.String() {
		return nil, "", fmt.Errorf("%w: the upstream's object format is %.16q, the repository's %s", ErrProtocol, format, f.format)
	}
	return nil, "", nil
}

// checkRef checks one reference the upstream listed.
func (f *fetcher) checkRef(hex, name string, seen map[string]bool) (remoteRef, error) {
	id, err := oid.ParseHex(f.format, hex)
	if err != nil || id.IsNull() {
		return remoteRef{}, fmt.Errorf("%w: malformed object id", ErrProtocol)
	}
	if len(name) > maxRefName {
		return remoteRef{}, fmt.Errorf("%w: a reference name over %d bytes", ErrUpstream, maxRefName)
	}
	if err := refs.CheckName(name); err != nil || refs.ReservedName(name) {
		return remoteRef{}, fmt.Errorf("%w: invalid reference name %.64q", ErrUpstream, name)
	}
	if f.refBytes += len(name); f.refBytes > maxRefBytes {
		return remoteRef{}, fmt.Errorf("%w: reference names over %d MiB", ErrUpstream, maxRefBytes>>20)
	}
	if seen[name] {
		return remoteRef{}, fmt.Errorf("%w: %.64q listed twice", ErrUpstream, name)
	}
	seen[name] = true
	return remoteRef{name, id}, nil
}

// request writes a version 2 command request.
func (f *fetcher) request(command string, args []string) []byte {
	var b strings.Builder
	pw := pktline.NewWriter(&b)
	pw.WriteString("command=" + command + "\n")
	pw.WriteString("agent=gotd\n")
	if f.format != oid.SHA1 {
		pw.WriteString("object-format=" + f.format.String() + "\n")
	}
	pw.Delim()
	for _, a := range args {
		pw.WriteString(a + "\n")
	}
	pw.Flush()
	return []byte(b.String())
}

// remoteRef is one reference the upstream listed and Take selected.
type remoteRef struct {
	Name string
	ID   oid.ID
}

// lsRefs lists the upstream's references under refs/heads/ and
// refs/tags/ (and what Take selects), and HEAD's target.
func (f *fetcher) lsRefs(ctx context.Context) ([]remoteRef, string, error) {
	args := []string{"symrefs", "ref-prefix HEAD", "ref-prefix refs/"}
	body, err := f.t.command(ctx, bytes.NewReader(f.request("ls-refs", args)))
	if err != nil {
		return nil, "", err
	}
	defer body.Close()
	pr := pktline.NewReader(body)
	var out []remoteRef
	head := ""
	seen := map[string]bool{}
	for n := 0; ; n++ {
		line, flush, err := wire.ReadLine(pr)
		if err != nil {
			return nil, "", fmt.Errorf("%w: ls-refs: %v", ErrProtocol, err)
		}
		if flush {
			break
		}
		if n >= f.opts.MaxRefs {
			return nil, "", fmt.Errorf("%w: more than %d references", ErrUpstream, f.opts.MaxRefs)
		}
		fields := strings.Split(string(line), " ")
		if len(fields) < 2 {
			return nil, "", fmt.Errorf("%w: ls-refs: malformed line", ErrProtocol)
		}
		name := fields[1]
		if name == "HEAD" {
			for _, attr := range fields[2:] {
				if t, ok := strings.CutPrefix(attr, "symref-target:"); ok && refs.CheckName(t) == nil {
					head = t
				}
			}
			continue
		}
		if fields[0] == "unborn" || !f.opts.Take(name) {
			continue
		}
		ref, err := f.checkRef(fields[0], name, seen)
		if err != nil {
			return nil, "", err
		}
		out = append(out, ref)
	}
	return out, head, nil
}

// fetchRequest sends the fetch command and reads its response up to
// the packfile section, whose side-band stream the returned body then
// holds.
func (f *fetcher) fetchRequest(ctx context.Context, wants, haves []oid.ID) (*packBody, error) {
	if f.v0 {
		return f.fetchRequestV0(ctx, wants, haves)
	}
	args := []string{"thin-pack", "ofs-delta"}
	if f.opts.Progress == nil {
		args = append(args, "no-progress")
	}
	for _, id := range wants {
		args = append(args, "want "+id.String())
	}
	for _, id := range haves {
		args = append(args, "have "+id.String())
	}
	args = append(args, "done")
	body, err := f.t.command(ctx, bytes.NewReader(f.request("fetch", args)))
	if err != nil {
		return nil, err
	}
	pr := pktline.NewReader(body)
	for n := 0; ; n++ {
		line, flush, err := wire.ReadLine(pr)
		switch {
		case err != nil:
			body.Close()
			return nil, fmt.Errorf("%w: remote: %v", ErrProtocol, err)
		case flush || n > 100000:
			body.Close()
			return nil, fmt.Errorf("%w: remote: no pack", ErrProtocol)
		case string(line) == "packfile":
			return &packBody{pr: pr, body: body}, nil
		case strings.HasPrefix(string(line), "ERR "):
			body.Close()
			return nil, fmt.Errorf("%w: %.200q", ErrUpstream, strings.TrimPrefix(string(line), "ERR "))
		}
		// Sections before the pack (shallow-info, acknowledgments)
		// carry nothing a full fetch with done needs: skipped, bounded.
	}
}

// fetchRequestV0 is fetchRequest in protocol version 0: the wants with
// the capabilities on the first, a flush, the haves and done; the
// answer is one NAK or ACK line, then the side-band stream.
func (f *fetcher) fetchRequestV0(ctx context.Context, wants, haves []oid.ID) (*packBody, error) {
	var b strings.Builder
	pw := pktline.NewWriter(&b)
	caps := " side-band-64k agent=gotd"
	for _, c := range []string{"multi_ack_detailed", "ofs-delta", "thin-pack"} {
		if f.caps.Has(c) {
			caps += " " + c
		}
	}
	if f.opts.Progress == nil && f.caps.Has("no-progress") {
		caps += " no-progress"
	}
	for i, id := range wants {
		if i == 0 {
			pw.WriteString("want " + id.String() + caps + "\n")
		} else {
			pw.WriteString("want " + id.String() + "\n")
		}
	}
	pw.Flush()
	for _, id := range haves {
		pw.WriteString("have " + id.String() + "\n")
	}
	pw.WriteString("done\n")
	body, err := f.t.command(ctx, strings.NewReader(b.String()))
	if err != nil {
		return nil, err
	}
	// ACK and NAK lines until the side-band stream begins: its packets
	// start with a band number, never with a letter. (Without
	// multi_ack a server acknowledges the first common have again for
	// each have it already knew of: there may be several.)
	pr := pktline.NewReader(body)
	for n := 0; ; n++ {
		kind, p, err := pr.Read()
		switch {
		case err != nil:
			body.Close()
			return nil, fmt.Errorf("%w: fetch: %v", ErrProtocol, err)
		case kind != pktline.Data || n > 2*maxHaves+16:
			body.Close()
			return nil, fmt.Errorf("%w: fetch: no pack", ErrProtocol)
		case len(p) > 0 && p[0] <= sideband.Error:
			return &packBody{pr: pr, body: body, first: append([]byte(nil), p...)}, nil
		case bytes.HasPrefix(p, []byte("ERR ")):
			body.Close()
			return nil, fmt.Errorf("%w: %.200q", ErrUpstream, bytes.TrimSpace(p[4:]))
		case bytes.HasPrefix(p, []byte("ACK ")), bytes.Equal(bytes.TrimSuffix(p, []byte("\n")), []byte("NAK")):
		default:
			body.Close()
			return nil, fmt.Errorf("%w: fetch: unexpected line before the pack", ErrProtocol)
		}
	}
}

// packBody is a response whose pkt-lines from here on are the
// side-band stream of the pack.
type packBody struct {
	pr    *pktline.Reader
	body  io.Closer
	first []byte // a side-band packet read already, nil if none
}

func (b *packBody) Close() error { return b.body.Close() }

// packStream demultiplexes the packfile section's side-band stream:
// band 1 to the returned pipe (the indexer reads it), band 2 to
// Progress (bounded), band 3 an upstream error. The error channel gets
// the stream's outcome once the pack has been passed on.
func (f *fetcher) packStream(rc *packBody) (*io.PipeReader, chan error) {
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		progress := 0
		var partial []byte // a progress line not ended yet
		for {
			kind, payload, err := pktline.Data, rc.first, error(nil)
			if rc.first != nil {
				rc.first = nil
			} else {
				kind, payload, err = rc.pr.Read()
			}
			switch {
			case err != nil:
				err = fmt.Errorf("%w: pack stream: %v", ErrProtocol, err)
				pw.CloseWithError(err)
				errc <- err
				return
			case kind == pktline.Flush:
				pw.Close()
				errc <- nil
				return
			case kind != pktline.Data || len(payload) == 0:
				continue
			}
			switch payload[0] {
			case sideband.Data:
				if _, err := pw.Write(payload[1:]); err != nil {
					errc <- nil // the indexer stopped: its error is the fetch's
					return
				}
			case sideband.Progress:
				if f.opts.Progress != nil && progress < maxProgress {
					progress += len(payload) - 1
					partial = append(partial, payload[1:]...)
					for {
						i := bytes.IndexAny(partial, "\r\n")
						if i < 0 {
							break
						}
						if line := partial[:i]; len(line) > 0 && bytes.HasSuffix(partial[:i+1], []byte("\n")) {
							f.opts.Progress(sanitize(string(line)))
						}
						partial = partial[i+1:]
					}
					if len(partial) > 1024 {
						partial = partial[:0]
					}
				}
			case sideband.Error:
				err := fmt.Errorf("%w: %.200q", ErrUpstream, strings.TrimSpace(string(payload[1:])))
				pw.CloseWithError(err)
				errc <- err
				return
			default:
				err := fmt.Errorf("%w: pack stream: band %d", ErrProtocol, payload[0])
				pw.CloseWithError(err)
				errc <- err
				return
			}
		}
	}()
	return pr, errc
}

// sanitize makes an upstream's progress line safe for a log or a
// terminal: printable ASCII, at most 200 bytes.
func sanitize(s string) string {
	b := []byte(s)
	if len(b) > 200 {
		b = b[:200]
	}
	for i, c := range b {
		if c < ' ' || c > '~' {
			b[i] = '?'
		}
	}
	return string(b)
}

// emptyPack is a pack of no objects.
func emptyPack(f oid.Format) io.Reader {
	h := f.New()
	hdr := []byte("PACK\x00\x00\x00\x02\x00\x00\x00\x00")
	h.Write(hdr)
	return io.MultiReader(strings.NewReader(string(hdr)), strings.NewReader(string(h.Sum(nil))))
}
