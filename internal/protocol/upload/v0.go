package upload

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"gotd/internal/git/oid"
	"gotd/internal/git/walk"
	"gotd/internal/protocol/pktline"
	"gotd/internal/protocol/sideband"
	"gotd/internal/protocol/wire"
)

// capsV0 returns the capabilities advertised in versions 0 and 1.
func (s *session) capsV0() string {
	c := []string{"multi_ack", "thin-pack", "side-band", "side-band-64k", "ofs-delta",
		"shallow", "deepen-since", "deepen-not", "deepen-relative", "no-progress",
		"include-tag", "multi_ack_detailed"}
	if s.stateless() {
		// Only stateless clients (smart HTTP) use no-done.
		c = append(c, "no-done")
	}
	if !s.advertisedOnly(false) {
		// Over smart HTTP reachable wants are allowed (advertisedOnly):
		// said so, a client asks for an object by id.
		c = append(c, "allow-tip-sha1-in-want", "allow-reachable-sha1-in-want")
	}
	if s.opts.Filter {
		c = append(c, "filter")
	}
	if s.head != "" && len(s.refs) > 0 && s.refs[0].Name == "HEAD" {
		c = append(c, "symref=HEAD:"+s.head)
	}
	c = append(c, "object-format="+s.repo.Format.String(), "agent="+wire.Agent)
	return strings.Join(c, " ")
}

// clientCapsV0 are the capability names a client may send back: what we
// advertise, by name.
func (s *session) clientCapsV0() []string {
	var names []string
	for _, w := range strings.Fields(s.capsV0()) {
		name, _, _ := strings.Cut(w, "=")
		if name != "symref" {
			names = append(names, name)
		}
	}
	return append(names, "session-id")
}

// serveV0 runs a version 0 or 1 session.
func (s *session) serveV0() error {
	if err := s.loadRefs(); err != nil {
		return s.fail(fmt.Errorf("upload: list references: %w", err))
	}
	if !s.opts.StatelessRPC {
		if err := wire.Advertise(s.pw, s.repo.Format, s.refs, s.capsV0(), s.opts.Version == wire.V1); err != nil {
			return err
		}
		s.res.LsRefs++
		if err := s.flush(); err != nil || s.opts.AdvertiseOnly {
			return err
		}
	}
	q, err := s.readWantsV0()
	if err != nil {
		return s.fail(err)
	}
	if q == nil {
		return nil // the client needs nothing
	}
	sh, err := s.shallowList(q)
	if err != nil {
		return s.fail(err)
	}
	if q.deepening() {
		if err := s.writeShallow(sh); err != nil {
			return err
		}
		if err := s.pw.Flush(); err != nil {
			return err
		}
	}
	if err := s.flush(); err != nil {
		return err
	}
	common, done, err := s.negotiateV0(q)
	if err != nil {
		return s.fail(err)
	}
	if !done {
		return nil // a stateless round ends here
	}
	f := Framing{Progress: !q.noProgress}
	switch {
	case q.sideband64k:
		f.Sideband = sideband.MaxPacket64
	case q.sideband:
		f.Sideband = sideband.MaxPacket
	}
	if err := s.sendPack(s.packRequest(q, sh, common), f); err != nil {
		return err
	}
	if f.Sideband != 0 {
		return s.pw.Flush()
	}
	return nil
}

// readWantsV0 reads the want, shallow, deepen and filter lines up to the
// flush. It returns nil if the client sent only a flush.
func (s *session) readWantsV0() (*request, error) {
	q := s.newRequest()
	first := true
	for {
		line, flush, err := wire.ReadLine(s.in)
		if err != nil {
			return nil, err
		}
		if flush {
			break
		}
		if rest, ok := bytes.CutPrefix(line, []byte("want ")); ok {
			hex, caps := rest, []byte(nil)
			if i := bytes.IndexAny(rest, " \x00"); i >= 0 {
				hex, caps = rest[:i], rest[i+1:]
			}
			if first {
				if err := s.setCapsV0(q, wire.ParseCaps(string(caps))); err != nil {
					return nil, err
				}
			} else if len(caps) > 0 {
				return nil, wire.Errorf("protocol error: capabilities after the first want")
			}
			first = false
			// The first line's capabilities are bounded by the
			// packet, and not counted as the want's bytes.
			if err := q.budgets.wants.Take(len("want ") + len(hex)); err != nil {
				return nil, err
			}
			if err := s.addWant(q, hex, false); err != nil {
				return nil, err
			}
			continue
		}
		if first {
			return nil, wire.Errorf("protocol error: expected want")
		}
		ok, err := s.parseShallowLine(q, line)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, wire.Errorf("protocol error: expected want, shallow, deepen or filter")
		}
	}
	if first {
		return nil, nil
	}
	if err := s.checkWants(q.wants, false); err != nil {
		return nil, err
	}
	return q, nil
}

// setCapsV0 applies the first want line's capabilities.
func (s *session) setCapsV0(q *request, caps wire.Caps) error {
	if u := caps.Unknown(s.clientCapsV0()); u != "" {
		return wire.Errorf("protocol error: capability not advertised")
	}
	if f, ok := caps.Value("object-format"); ok && f != s.repo.Format.String() {
		return wire.Errorf("upload-pack: object format mismatch (repository is %v)", s.repo.Format)
	}
	if a, ok := caps.Value("agent"); ok {
		s.res.Agent = a
	}
	q.multiAck = caps.Has("multi_ack")
	q.multiAckDetailed = caps.Has("multi_ack_detailed")
	q.noDone = caps.Has("no-done")
	q.thin = caps.Has("thin-pack")
	q.sideband = caps.Has("side-band")
	q.sideband64k = caps.Has("side-band-64k")
	q.ofs = caps.Has("ofs-delta")
	q.noProgress = caps.Has("no-progress")
	q.includeTag = caps.Has("include-tag")
	q.relative = caps.Has("deepen-relative")
	return nil
}

// negotiateV0 reads have lines and answers them as gitprotocol-pack(5)
// and C Git's upload-pack do, in the acknowledgement mode the client
// chose. It returns the objects both sides have and whether the pack is
// to be sent now (false at the end of a stateless round).
func (s *session) negotiateV0(q *request) ([]oid.ID, bool, error) {
	c := s.negotiator(q.wants)
	var common []oid.ID
	seen := make(map[oid.ID]bool)
	var last oid.ID
	gotCommon, gotOther, sentReady := false, false, false
	multi := q.multiAck || q.multiAckDetailed
	for {
		k, line, err := s.in.Read()
		if err == io.EOF && s.opts.StatelessRPC && c.Count() == 0 {
			// A stateless shallow request ends after its deepen lines:
			// the client only wanted the shallow list.
			return nil, false, nil
		}
		if err != nil {
			return nil, false, wire.ReadError(err)
		}
		if k == pktline.Flush {
			if q.multiAckDetailed && gotCommon && !gotOther {
				ready, err := c.Ready()
				if err != nil {
					return nil, false, err
				}
				if ready {
					sentReady = true
					s.pw.Writef("ACK %v ready\n", last)
				}
			}
			if c.Count() == 0 || multi {
				s.pw.WriteString("NAK\n")
			}
			if q.noDone && sentReady {
				s.pw.Writef("ACK %v\n", last)
				return common, true, s.flush()
			}
			if err := s.flush(); err != nil {
				return nil, false, err
			}
			if s.opts.StatelessRPC {
				return nil, false, nil
			}
			gotCommon, gotOther = false, false
			q.budgets.roundHaves = s.idBudget("haves in one request", "have", maxRoundHaves)
			continue
		}
		if k != pktline.Data {
			return nil, false, wire.Errorf("protocol error: unexpected %v packet", k)
		}
		line = bytes.TrimSuffix(line, []byte{'\n'})
		if hex, ok := bytes.CutPrefix(line, []byte("have ")); ok {
			if err := q.budgets.roundHaves.Take(len(line)); err != nil {
				return nil, false, err
			}
			if err := s.haveBudget.Take(len(line)); err != nil {
				return nil, false, err
			}
			s.res.Haves++
			id, err := s.parseID(hex)
			if err != nil {
				return nil, false, err
			}
			has, err := c.Have(id)
			if err != nil {
				return nil, false, err
			}
			if !has {
				gotOther = true
				if multi {
					ready, err := c.Ready()
					if err != nil {
						return nil, false, err
					}
					if ready && q.multiAckDetailed {
						sentReady = true
						s.pw.Writef("ACK %v ready\n", id)
					} else if ready {
						s.pw.Writef("ACK %v continue\n", id)
					}
				}
				continue
			}
			gotCommon = true
			last = id
			if !seen[id] {
				seen[id] = true
				common = append(common, id)
			}
			switch {
			case q.multiAckDetailed:
				s.pw.Writef("ACK %v common\n", id)
			case q.multiAck:
				s.pw.Writef("ACK %v continue\n", id)
			case c.Count() == 1:
				s.pw.Writef("ACK %v\n", id)
			}
			continue
		}
		if string(line) == "done" {
			if c.Count() > 0 {
				if multi {
					s.pw.Writef("ACK %v\n", last)
				}
			} else {
				s.pw.WriteString("NAK\n")
			}
			return common, true, nil
		}
		return nil, false, wire.Errorf("protocol error: expected have or done")
	}
}

// packRequest turns a negotiated request into what the pack is built
// from.
func (s *session) packRequest(q *request, sh *walk.Shallow, common []oid.ID) *PackRequest {
	return &PackRequest{
		Wants:         q.wants,
		Common:        common,
		Shallow:       sh.Boundary,
		ClientShallow: q.shallows,
		Filter:        q.filter,
		Thin:          q.thin,
		OfsDelta:      q.ofs,
		IncludeTag:    q.includeTag,
		Hidden:        s.opts.Hidden,
	}
}

// sendPack sends the pack of pr framed as f, here or, with
// Options.SendPack, through the caller's writer of the same stream:
// everything buffered goes out first.
func (s *session) sendPack(pr *PackRequest, f Framing) error {
	// With hidden references, what the client says it has counts only
	// where the advertised references reach it: a hidden object is
	// neither left out because of it nor a delta base, whose
	// instructions would tell what it holds.
	if s.opts.Hidden != nil && len(pr.Common) > 0 {
		common, err := s.visibleOnly(pr.Common)
		if err != nil {
			return err
		}
		pr.Common = common
	}
	var n int
	var err error
	if s.opts.SendPack != nil {
		if err := s.flush(); err != nil {
			return err
		}
		n, err = s.opts.SendPack(s.ctx, pr, f)
	} else {
		n, err = SendPack(s.ctx, s.repo, pr, f, s.bw)
	}
	if err != nil {
		s.opts.Log.Error("upload-pack: pack failed", "err", err)
		return err
	}
	s.res.Fetches++
	s.res.Wants += len(pr.Wants)
	s.res.Objects += n
	return nil
}
