package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"gotd/internal/engine/packer"
	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/refs"
	"gotd/internal/git/repo"
	"gotd/internal/git/walk"
	"gotd/internal/protocol/pktline"
	"gotd/internal/protocol/sideband"
	"gotd/internal/protocol/wire"
)

// SendOptions configure Send: the client side of receive-pack, for push
// mirrors. URL and Repo are required.
type SendOptions struct {
	// URL is the target: git://host[:port]/path (a daemon that allows
	// pushes), http(s)://…, ssh://[user@]host[:port]/path or
	// [user@]host:path, or a local path.
	URL  string
	Repo *repo.Repo
	// SSH pins the host key and gives the client key for ssh URLs.
	SSH *SSH
	// Auth, if set, is sent to an http(s) target with each request
	// (basic authentication).
	Auth *BasicAuth
	// CA, if not empty, is PEM certificates (at most MaxCA bytes): the only
	// roots an https target's certificate is verified against,
	// instead of the system's.
	CA []byte
	// Take selects the local references sent and the target's deleted
	// when the local repository lacks them (full names); nil takes
	// refs/heads/ and refs/tags/.
	Take func(name string) bool
	// Expect, if set, gives for a reference the value the sender last
	// saw at the target (ok false: it saw none, the reference must not
	// exist): a reference the target holds at another value has been
	// moved by another writer, and is not overwritten (its Status says
	// so). Without Expect the target's references are overwritten.
	Expect func(name string) (id oid.ID, ok bool)
	// Timeout bounds the whole push (default 1 hour); IOTimeout each
	// read and write (default 5 minutes).
	Timeout, IOTimeout time.Duration
	// MaxRefs bounds the references the target may list (default
	// 1,000,000).
	MaxRefs int
}

// SendUpdate is one reference Send asked the target to move, and the
// target's answer: Status "" for done, else why not.
type SendUpdate struct {
	Name     string
	Old, New oid.ID // the null ID for "none"
	Status   string
}

// SendResult is what Send did: the updates it asked for (none when
// the target was already equal), with their outcome.
type SendResult struct {
	Updates []SendUpdate
}

// Failed returns the updates the target refused or Send held back.
func (r *SendResult) Failed() []SendUpdate {
	var out []SendUpdate
	for _, u := range r.Updates {
		if u.Status != "" {
			out = append(out, u)
		}
	}
	return out
}

// Reasons Send gives for updates it does not ask for.
const (
	StatusMovedElsewhere = "the target moved it: not overwritten"
)

// Send makes the target's references (those Take selects) equal to the
// local repository's: created, moved (forced when need be) and deleted,
// in one atomic push when the target offers it, with the objects the
// target lacks as one pack (thin against what it advertised). The
// target's answer is read as report-status(-v2) says it.
func Send(ctx context.Context, opts SendOptions) (*SendResult, error) {
	if opts.Repo == nil || opts.URL == "" {
		return nil, errors.New("remote: no repository or URL")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = defaultTimeout
	}
	if opts.IOTimeout <= 0 {
		opts.IOTimeout = defaultIOTimeout
	}
	if opts.MaxRefs <= 0 {
		opts.MaxRefs = defaultMaxRefs
	}
	if opts.Take == nil {
		opts.Take = func(name string) bool {
			return strings.HasPrefix(name, "refs/heads/") || strings.HasPrefix(name, "refs/tags/")
		}
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	t, err := dial(ctx, opts.URL, receivePack, opts.IOTimeout, true, opts.SSH)
	if err != nil {
		return nil, err
	}
	defer t.close()
	if err := setCA(t, opts.CA); err != nil {
		return nil, err
	}
	if h, ok := t.(*httpTransport); ok {
		h.auth = opts.Auth
	}
	return send(ctx, t, opts)
}

// send pushes over t, dialled: everything of Send after the dial.
func send(ctx context.Context, t transport, opts SendOptions) (*SendResult, error) {
	rp := opts.Repo
	if rp.Format != oid.SHA1 {
		return nil, errors.New("remote: pushing a SHA-256 repository is not supported")
	}
	adv, err := t.advertisement(ctx)
	if err != nil {
		return nil, err
	}
	f := &fetcher{opts: FetchOptions{MaxRefs: opts.MaxRefs, Take: func(string) bool { return true }}, format: rp.Format, push: true}
	targetRefs, caps, err := f.readPushAdvertisement(adv)
	if err != nil {
		return nil, err
	}
	target := map[string]oid.ID{}
	for _, r := range targetRefs {
		target[r.Name] = r.ID
	}
	null := oid.Zero(rp.Format)
	local := map[string]oid.ID{}
	rp.Refs.List("refs/", func(r refs.Ref) error {
		if r.Target == "" && opts.Take(r.Name) {
			local[r.Name] = r.ID
		}
		return nil
	})
	res := &SendResult{}
	var cmds []SendUpdate
	for name, id := range local {
		if old, ok := target[name]; !ok || old != id {
			if !ok {
				old = null
			}
			cmds = append(cmds, SendUpdate{Name: name, Old: old, New: id})
		}
	}
	if caps.Has("delete-refs") {
		for name, id := range target {
			if _, ok := local[name]; !ok && opts.Take(name) {
				cmds = append(cmds, SendUpdate{Name: name, Old: id, New: null})
			}
		}
	}
	// Another writer's moves are not overwritten.
	var send []SendUpdate
	for _, c := range cmds {
		if opts.Expect != nil {
			want, ok := opts.Expect(c.Name)
			if !ok {
				want = null
			}
			if want != c.Old {
				c.Status = StatusMovedElsewhere
				res.Updates = append(res.Updates, c)
				continue
			}
		}
		send = append(send, c)
	}
	if len(send) == 0 {
		if _, ok := t.(*streamTransport); ok {
			t.command(ctx, strings.NewReader("0000")) // nothing to do: end the session
		}
		return res, nil
	}
	report, err := sendPush(ctx, t, rp, caps, send, target)
	if err != nil {
		return nil, err
	}
	for i := range send {
		st, ok := report[send[i].Name]
		if !ok {
			st = "no report from the target"
		}
		send[i].Status = st
	}
	res.Updates = append(res.Updates, send...)
	return res, nil
}

// readPushAdvertisement reads receive-pack's advertisement: every
// reference and the capabilities.
func (f *fetcher) readPushAdvertisement(r io.Reader) ([]remoteRef, wire.Caps, error) {
	refsList, _, err := f.readAdvertisement(r)
	if err != nil {
		return nil, nil, err
	}
	if !f.v0 {
		return nil, nil, fmt.Errorf("%w: receive-pack answered in protocol version 2", ErrProtocol)
	}
	if !f.caps.Has("report-status") && !f.caps.Has("report-status-v2") {
		return nil, nil, fmt.Errorf("%w: the target does not offer report-status", ErrProtocol)
	}
	return refsList, f.caps, nil
}

// sendPush writes the commands and the pack, and reads the report: the
// status of each reference ("" for ok).
func sendPush(ctx context.Context, t transport, rp *repo.Repo, caps wire.Caps, cmds []SendUpdate, target map[string]oid.ID) (map[string]string, error) {
	var wants, haves []oid.ID
	for _, c := range cmds {
		if !c.New.IsNull() {
			wants = append(wants, c.New)
		}
	}
	for _, id := range target {
		if rp.HasObject(id) {
			haves = append(haves, id)
		}
	}
	var objs []packer.Object
	w := &walk.Walker{Store: rp, Format: rp.Format}
	if len(wants) > 0 {
		err := w.ObjectsWithHash(ctx, wants, haves, func(id oid.ID, t object.Type, nameHash uint32) error {
			objs = append(objs, packer.Object{ID: id, Type: t, NameHash: nameHash})
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("remote: objects to send: %w", err)
		}
	}
	pr, pw := io.Pipe()
	go func() {
		pl := pktline.NewWriter(pw)
		capList := " report-status agent=gotd"
		for _, c := range []string{"report-status-v2", "side-band-64k", "atomic", "ofs-delta", "quiet"} {
			if caps.Has(c) {
				capList += " " + c
			}
		}
		for i, c := range cmds {
			line := c.Old.String() + " " + c.New.String() + " " + c.Name
			if i == 0 {
				line += "\x00" + strings.TrimSpace(capList)
			}
			if err := pl.WriteString(line + "\n"); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		if err := pl.Flush(); err != nil {
			pw.CloseWithError(err)
			return
		}
		if len(wants) > 0 {
			_, err := packer.Write(ctx, pw, rp, objs, packer.Options{
				Format: rp.Format, OfsDelta: caps.Has("ofs-delta"), Thin: !caps.Has("no-thin"), Bases: haves, ReuseDeltas: true,
			})
			if err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.Close()
	}()
	body, err := t.command(ctx, pr)
	pr.Close()
	if err != nil {
		return nil, err
	}
	defer body.Close()
	in := io.Reader(body)
	if caps.Has("side-band-64k") {
		br := bandReader(pktline.NewReader(body))
		defer br.Close() // a report read only in part: the reader's goroutine ends
		in = br
	}
	return readReport(pktline.NewReader(in), len(cmds))
}

// bandReader passes on band 1 of a side-band stream, drops band 2 and
// ends with band 3's message as an error. Closing it ends its
// goroutine.
func bandReader(pr *pktline.Reader) *io.PipeReader {
	r, w := io.Pipe()
	go func() {
		for {
			kind, p, err := pr.Read()
			switch {
			case err != nil:
				w.CloseWithError(err)
				return
			case kind == pktline.Flush:
				w.Close()
				return
			case kind != pktline.Data || len(p) == 0:
				continue
			}
			switch p[0] {
			case sideband.Data:
				if _, err := w.Write(p[1:]); err != nil {
					return
				}
			case sideband.Error:
				w.CloseWithError(fmt.Errorf("%w: %.200q", ErrUpstream, strings.TrimSpace(string(p[1:]))))
				return
			}
		}
	}()
	return r
}

// readReport reads report-status(-v2): "unpack ok" or the reason, then
// "ok REF" or "ng REF reason" per command (v2's option lines skipped),
// a flush.
func readReport(pr *pktline.Reader, n int) (map[string]string, error) {
	line, _, err := wire.ReadLine(pr)
	if err != nil {
		return nil, fmt.Errorf("%w: report: %v", ErrProtocol, err)
	}
	if s := string(line); s != "unpack ok" {
		return nil, fmt.Errorf("%w: the target could not take the pack: %.200q", ErrUpstream, strings.TrimPrefix(s, "unpack "))
	}
	out := map[string]string{}
	for i := 0; ; i++ {
		line, flush, err := wire.ReadLine(pr)
		switch {
		case err != nil:
			return nil, fmt.Errorf("%w: report: %v", ErrProtocol, err)
		case flush:
			return out, nil
		case i > 4*n+16:
			return nil, fmt.Errorf("%w: report: too long", ErrProtocol)
		}
		s := string(line)
		switch {
		case strings.HasPrefix(s, "ok "):
			out[strings.TrimPrefix(s, "ok ")] = ""
		case strings.HasPrefix(s, "ng "):
			name, why, _ := strings.Cut(strings.TrimPrefix(s, "ng "), " ")
			if why == "" {
				why = "refused"
			}
			out[name] = sanitize(why)
		case strings.HasPrefix(s, "option "):
		default:
			return nil, fmt.Errorf("%w: report: malformed line", ErrProtocol)
		}
	}
}
