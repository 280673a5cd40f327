package upload

import (
	"bytes"
	"fmt"
	"io"
	"slices"

	"gotd/internal/git/oid"
	"gotd/internal/protocol/pktline"
	"gotd/internal/protocol/sideband"
	"gotd/internal/protocol/wire"
)

// Bounds of the lists of a version 2 request besides wire.Limits'
// (wants, haves and shallow lines). Real clients send far less: a few
// capabilities, a handful of ref-prefix lines per refspec, one
// deepen-not per --shallow-exclude.
const (
	maxCapLines      = 256
	maxCapBytes      = 64 << 10 // one line of the longest packet fits
	maxServerOptions = 100
	// C Git ignores ref-prefix lines past 65536 (and lists every
	// reference); here the request is refused.
	maxRefPrefixes    = 65536
	maxRefPrefixBytes = 4 << 20
	// keptRefPrefixes is how many ref-prefix lines are kept to match
	// the references against; past it they are read and counted only,
	// and every reference is listed, as C Git does past 65536: the
	// client picks what it asked for. A set of 65,536 prefixes was
	// most of the CPU of a request that floods them (issue 18).
	keptRefPrefixes = 1024
)

// capsV2 returns the version 2 capability advertisement lines.
func (s *session) capsV2() []string {
	fetch := "fetch=shallow wait-for-done"
	if s.opts.Filter {
		fetch += " filter"
	}
	if s.opts.RefInWant {
		fetch += " ref-in-want"
	}
	if s.opts.SidebandAll {
		fetch += " sideband-all"
	}
	return []string{
		"agent=" + wire.Agent,
		"ls-refs=unborn",
		fetch,
		"server-option",
		"object-format=" + s.repo.Format.String(),
		"object-info",
	}
}

// serveV2 runs a version 2 session: the capability advertisement, then
// commands until the client hangs up (or one command when stateless).
func (s *session) serveV2() error {
	if !s.opts.StatelessRPC {
		s.pw.WriteString("version 2\n")
		for _, c := range s.capsV2() {
			s.pw.WriteString(c + "\n")
		}
		s.pw.Flush()
		if err := s.flush(); err != nil || s.opts.AdvertiseOnly {
			return err
		}
	}
	for {
		done, err := s.commandV2()
		if err != nil {
			return s.fail(err)
		}
		if err := s.flush(); err != nil {
			return err
		}
		if done || s.opts.StatelessRPC {
			return nil
		}
	}
}

// commandV2 reads and runs one command. It reports true when the client
// ended the session (a flush or the end of input instead of a command).
func (s *session) commandV2() (bool, error) {
	k, line, err := s.in.Read()
	if err == io.EOF {
		return true, nil
	}
	if err != nil {
		return true, wire.ReadError(err)
	}
	if k == pktline.Flush {
		return true, nil
	}
	if k != pktline.Data {
		return true, wire.Errorf("protocol error: expected a command")
	}
	cmd, ok := bytes.CutPrefix(bytes.TrimSuffix(line, []byte{'\n'}), []byte("command="))
	if !ok {
		return true, wire.Errorf("protocol error: expected a command")
	}
	var command string
	switch string(cmd) {
	case "ls-refs", "fetch", "object-info":
		command = string(cmd)
	default:
		return true, wire.Errorf("protocol error: unknown command")
	}
	// Capability lines up to the delimiter (or a flush: no arguments),
	// each checked as it comes and nothing of them kept but what they
	// set.
	caps := wire.Budget{Prefix: "upload-pack: ", What: "capabilities", Lines: maxCapLines, Bytes: maxCapBytes}
	k, err = s.eachLine(true, func(line []byte) error {
		if err := caps.Take(len(line)); err != nil {
			return err
		}
		return s.capabilityV2(line)
	})
	if err != nil {
		return true, err
	}
	args := k == pktline.Delim
	switch command {
	case "ls-refs":
		return false, s.lsRefs(args)
	case "object-info":
		return false, s.objectInfo(args)
	}
	return false, s.fetchV2(args)
}

// capabilityV2 applies one capability line of a command.
func (s *session) capabilityV2(line []byte) error {
	name, val, _ := bytes.Cut(line, []byte{'='})
	switch string(name) {
	case "agent":
		s.res.Agent = string(val)
	case "object-format":
		if string(val) != s.repo.Format.String() {
			return wire.Errorf("upload-pack: object format mismatch (repository is %v)", s.repo.Format)
		}
	case "server-option":
		if len(s.res.ServerOptions) >= maxServerOptions {
			return wire.Errorf("upload-pack: too many server options (limit %d)", maxServerOptions)
		}
		s.res.ServerOptions = append(s.res.ServerOptions, string(val))
	case "session-id":
	default:
		return wire.Errorf("protocol error: capability not advertised")
	}
	return nil
}

// eachLine reads data lines up to a flush, or with delimOK up to a
// delimiter too, and returns which ended it. fn is called with each
// line without its newline, valid only during the call; its first
// error ends the reading (nothing more of the request is read) and is
// returned.
func (s *session) eachLine(delimOK bool, fn func(line []byte) error) (pktline.Kind, error) {
	for {
		k, p, err := s.readPacket()
		if err != nil {
			return 0, err
		}
		switch {
		case k == pktline.Flush, k == pktline.Delim && delimOK:
			return k, nil
		case k != pktline.Data:
			return 0, wire.Errorf("protocol error: unexpected %v packet", k)
		}
		if err := fn(bytes.TrimSuffix(p, []byte{'\n'})); err != nil {
			return 0, err
		}
	}
}

// arguments reads a command's arguments, if it has any (a delimiter
// ended its capabilities), with fn as eachLine does.
func (s *session) arguments(args bool, fn func(line []byte) error) error {
	if !args {
		return nil
	}
	_, err := s.eachLine(false, fn)
	return err
}

// lsRefs answers ls-refs (gitprotocol-v2(5)). Its ref-prefix
// arguments are kept in a set of at most keptRefPrefixes, past which
// every reference is listed, and bounded in number and bytes: C Git
// ignores them all past 65536, here such a request is refused, so that
// neither the list nor the matching of every reference against it grows
// with what the client sends.
func (s *session) lsRefs(args bool) error {
	var symrefs, peel, unborn, all bool
	prefixes := make(map[string]bool)
	lens := make(map[int]bool) // the lengths of the prefixes, to match by lookups
	budget := wire.Budget{Prefix: "upload-pack: ", What: "ref-prefix lines", Lines: maxRefPrefixes, Bytes: maxRefPrefixBytes}
	err := s.arguments(args, func(a []byte) error {
		switch {
		case string(a) == "symrefs":
			symrefs = true
		case string(a) == "peel":
			peel = true
		case string(a) == "unborn":
			unborn = true
		case bytes.HasPrefix(a, []byte("ref-prefix ")):
			if err := budget.Take(len(a)); err != nil {
				return err
			}
			p := a[len("ref-prefix "):]
			switch {
			case all:
			case len(prefixes) == keptRefPrefixes && !prefixes[string(p)]:
				all = true
				clear(prefixes)
				clear(lens)
			case !prefixes[string(p)]:
				prefixes[string(p)] = true
				lens[len(p)] = true
			}
		default:
			return wire.Errorf("protocol error: unexpected ls-refs argument")
		}
		return nil
	})
	if err != nil {
		return err
	}
	match := func(name string) bool {
		if len(prefixes) == 0 {
			return true
		}
		for n := 0; n <= len(name); n++ {
			if lens[n] && prefixes[name[:n]] {
				return true
			}
		}
		return false
	}
	// The references are written as they are listed, none kept: a
	// fetch that follows on the same connection lists them again, as
	// they are then.
	s.tips, s.refs, s.listed = nil, nil, s.listed[:0]
	buf := make([]byte, 0, 256)
	var writeErr error
	headDone := false
	// head ends HEAD's place in the list, which an unborn HEAD takes
	// when the client asks for it: eachRef passes a HEAD that
	// resolves first, and HEAD's target is known before any other.
	head := func(resolved bool) error {
		if headDone {
			return nil
		}
		headDone = true
		if unborn && !resolved && match("HEAD") && s.head != "" {
			return s.pw.WriteString("unborn HEAD symref-target:" + s.head + "\n")
		}
		return nil
	}
	err = s.eachRef(func(r wire.Ref, target string) error {
		if writeErr = head(r.Name == "HEAD"); writeErr != nil {
			return writeErr
		}
		if !match(r.Name) {
			return nil
		}
		s.listed = append(s.listed, r.ID)
		if r.Peeled.Valid() {
			s.listed = append(s.listed, r.Peeled)
		}
		buf = r.ID.AppendHex(buf[:0])
		buf = append(buf, ' ')
		buf = append(buf, r.Name...)
		if symrefs && target != "" {
			buf = append(buf, " symref-target:"...)
			buf = append(buf, target...)
		}
		if peel && r.Peeled.Valid() {
			buf = append(buf, " peeled:"...)
			buf = r.Peeled.AppendHex(buf)
		}
		buf = append(buf, '\n')
		writeErr = s.pw.Write(buf)
		return writeErr
	})
	if writeErr != nil {
		return writeErr
	}
	if err != nil {
		return fmt.Errorf("upload: list references: %w", err)
	}
	if err := head(false); err != nil {
		return err
	}
	s.res.LsRefs++
	return s.pw.Flush()
}

// objectInfo answers object-info: the size of each object asked for.
// Sizes are told only of objects the client could ask for as wants:
// what the advertised references reach (anything, with WantAny and no
// hidden references); of the others, as of missing objects, the size
// is left empty. The ids are bounded as wants are.
func (s *session) objectInfo(args bool) error {
	size := false
	var ids []oid.ID
	budget := s.idBudget("object-info ids", "oid", s.opts.Limits.MaxWants)
	err := s.arguments(args, func(a []byte) error {
		if string(a) == "size" {
			size = true
			return nil
		}
		hex, ok := bytes.CutPrefix(a, []byte("oid "))
		if !ok {
			return wire.Errorf("protocol error: unexpected object-info argument")
		}
		if err := budget.Take(len(a)); err != nil {
			return err
		}
		id, err := s.parseID(hex)
		if err != nil {
			return err
		}
		ids = append(ids, id)
		return nil
	})
	if err != nil {
		return err
	}
	if size {
		s.pw.WriteString("size\n")
	}
	told := func(oid.ID) bool { return true }
	if (s.opts.Wants != WantAny || s.opts.Hidden != nil) && len(ids) > 0 {
		reached, err := s.reachable(ids) // one walk for all
		if err != nil {
			return err
		}
		told = func(id oid.ID) bool { return reached[id] }
	}
	for _, id := range ids {
		line := id.String()
		if size {
			line += " "
			if told(id) {
				if _, n, err := s.repo.StatObject(id); err == nil {
					line += fmt.Sprint(n)
				}
			}
		}
		if err := s.pw.WriteString(line + "\n"); err != nil {
			return err
		}
	}
	return s.pw.Flush()
}

// fetchV2 runs one round of the version 2 fetch command. Each
// argument is checked as it is read, and only what the answer needs is
// kept: wants that exist, haves the repository has, within their
// budgets.
func (s *session) fetchV2(args bool) error {
	// The references are read when a want needs them (checkWants,
	// want-ref), not before.
	q := s.newRequest()
	seenHaves := false
	haveSeen := make(map[oid.ID]bool)
	err := s.arguments(args, func(line []byte) error {
		if hex, ok := bytes.CutPrefix(line, []byte("want ")); ok {
			if err := q.budgets.wants.Take(len(line)); err != nil {
				return err
			}
			return s.addWant(q, hex, true)
		}
		if name, ok := bytes.CutPrefix(line, []byte("want-ref ")); ok && s.opts.RefInWant {
			if err := q.budgets.wants.Take(len(line)); err != nil {
				return err
			}
			r, err := s.wantRef(string(name))
			if err != nil {
				return err
			}
			q.wantRefs = append(q.wantRefs, r)
			q.addWant(r.ID)
			return nil
		}
		if hex, ok := bytes.CutPrefix(line, []byte("have ")); ok {
			if err := q.budgets.roundHaves.Take(len(line)); err != nil {
				return err
			}
			if err := s.haveBudget.Take(len(line)); err != nil {
				return err
			}
			s.res.Haves++
			id, err := s.parseID(hex)
			if err != nil {
				return err
			}
			seenHaves = true
			// Looked up once the request is read whole: a request over
			// its bounds is refused before any of its haves costs a
			// lookup (the ids kept meanwhile are bounded by
			// maxRoundHaves).
			if !haveSeen[id] {
				haveSeen[id] = true
				q.haves = append(q.haves, id)
			}
			return nil
		}
		if ok, err := s.parseShallowLine(q, line); ok || err != nil {
			return err
		}
		if err := q.budgets.other.Take(len(line)); err != nil {
			return err
		}
		switch string(line) {
		case "done":
			q.done = true
		case "thin-pack":
			q.thin = true
		case "no-progress":
			q.noProgress = true
		case "include-tag":
			q.includeTag = true
		case "ofs-delta":
			q.ofs = true
		case "deepen-relative":
			q.relative = true
		case "wait-for-done":
			q.waitForDone = true
		case "sideband-all":
			if !s.opts.SidebandAll {
				return wire.Errorf("protocol error: sideband-all not advertised")
			}
			q.sidebandAll = true
		default:
			return wire.Errorf("protocol error: unexpected fetch argument")
		}
		return nil
	})
	if err != nil {
		return err
	}
	// A have the repository lacks changes nothing in the negotiation:
	// it is not kept.
	q.haves = slices.DeleteFunc(q.haves, func(id oid.ID) bool { return !s.repo.HasObject(id) })
	if err := s.checkWants(q.wants, true); err != nil {
		return err
	}
	if len(q.wants) == 0 && !q.waitForDone {
		return nil // nothing wanted: no response at all, as C Git
	}
	// Acknowledgments, unless the client is done or sent no haves.
	c := s.negotiator(q.wants)
	var common []oid.ID
	for _, id := range q.haves {
		ok, err := c.Have(id)
		if err != nil {
			return err
		}
		if ok {
			common = append(common, id)
		}
	}
	// With sideband-all every line but flushes and delimiters carries
	// the band byte.
	section := func(line string) error {
		if q.sidebandAll {
			line = "\x01" + line
		}
		return s.pw.WriteString(line)
	}
	if !q.done && seenHaves {
		section("acknowledgments\n")
		if len(common) == 0 {
			section("NAK\n")
		}
		for _, id := range common {
			section(fmt.Sprintf("ACK %v\n", id))
		}
		ready := false
		if !q.waitForDone {
			var err error
			if ready, err = c.Ready(); err != nil {
				return err
			}
		}
		if !ready {
			return s.pw.Flush()
		}
		section("ready\n")
		s.pw.Delim()
	}
	sh, err := s.shallowList(q)
	if err != nil {
		return err
	}
	if q.shallowInfo() {
		section("shallow-info\n")
		if q.deepening() {
			for _, id := range sh.Shallow {
				section(fmt.Sprintf("shallow %v\n", id))
			}
			for _, id := range sh.Unshallow {
				section(fmt.Sprintf("unshallow %v\n", id))
			}
		}
		s.pw.Delim()
	}
	if len(q.wantRefs) > 0 {
		section("wanted-refs\n")
		for _, r := range q.wantRefs {
			section(fmt.Sprintf("%v %s\n", r.ID, r.Name))
		}
		s.pw.Delim()
	}
	if err := section("packfile\n"); err != nil {
		return err
	}
	// The haves of earlier rounds are resent by the client in the round
	// that ends with done, so this round's common objects are all.
	if err := s.sendPack(s.packRequest(q, sh, common), Framing{Sideband: sideband.MaxPacket64, Progress: !q.noProgress}); err != nil {
		return err
	}
	return s.pw.Flush()
}

// wantRef resolves a want-ref argument to an advertised reference.
func (s *session) wantRef(name string) (wire.Ref, error) {
	if err := s.loadRefs(); err != nil {
		return wire.Ref{}, fmt.Errorf("upload: list references: %w", err)
	}
	for _, r := range s.refs {
		if r.Name == name {
			return r, nil
		}
	}
	return wire.Ref{}, wire.Errorf("upload-pack: unknown ref in want-ref")
}
