package upload

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"gotd/internal/git/oid"
	"gotd/internal/protocol/pktline"
	"gotd/internal/protocol/sideband"
	"gotd/internal/protocol/wire"
)

// maxRefPrefixes is the number of ls-refs ref-prefix arguments past
// which they are ignored (every reference is listed), as in C Git.
const maxRefPrefixes = 65536

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
	// Capability lines up to the delimiter (or a flush: no arguments).
	k, args, err := s.readSection(true)
	if err != nil {
		return true, err
	}
	for _, c := range args {
		name, val, _ := strings.Cut(c, "=")
		switch name {
		case "agent":
			s.res.Agent = val
		case "object-format":
			if val != s.repo.Format.String() {
				return true, wire.Errorf("upload-pack: object format mismatch (repository is %v)", s.repo.Format)
			}
		case "server-option":
			if len(s.res.ServerOptions) >= 100 {
				return true, wire.Errorf("upload-pack: too many server options")
			}
			s.res.ServerOptions = append(s.res.ServerOptions, val)
		case "session-id":
		default:
			return true, wire.Errorf("protocol error: capability not advertised")
		}
	}
	var lines []string
	if k == pktline.Delim {
		if _, lines, err = s.readSection(false); err != nil {
			return true, err
		}
	}
	switch command {
	case "ls-refs":
		return false, s.lsRefs(lines)
	case "object-info":
		return false, s.objectInfo(lines)
	}
	return false, s.fetchV2(lines)
}

// readSection reads data lines up to a flush, or with delimOK up to a
// delimiter too, and returns which ended it. Lines lose their newline.
// Their number is bounded by the want and have limits together.
func (s *session) readSection(delimOK bool) (pktline.Kind, []string, error) {
	var lines []string
	max := s.opts.Limits.MaxWants + s.opts.Limits.MaxHaves + 1024
	for {
		k, p, err := s.readPacket()
		if err != nil {
			return 0, nil, err
		}
		switch {
		case k == pktline.Flush, k == pktline.Delim && delimOK:
			return k, lines, nil
		case k != pktline.Data:
			return 0, nil, wire.Errorf("protocol error: unexpected %v packet", k)
		}
		if len(lines) >= max && max > 0 {
			return 0, nil, wire.Errorf("upload-pack: request too long")
		}
		lines = append(lines, strings.TrimSuffix(string(p), "\n"))
	}
}

// lsRefs answers ls-refs (gitprotocol-v2(5)).
func (s *session) lsRefs(args []string) error {
	var symrefs, peel, unborn bool
	var prefixes []string
	for _, a := range args {
		switch {
		case a == "symrefs":
			symrefs = true
		case a == "peel":
			peel = true
		case a == "unborn":
			unborn = true
		case strings.HasPrefix(a, "ref-prefix "):
			prefixes = append(prefixes, strings.TrimPrefix(a, "ref-prefix "))
		default:
			return wire.Errorf("protocol error: unexpected ls-refs argument")
		}
	}
	if len(prefixes) > maxRefPrefixes {
		prefixes = nil
	}
	match := func(name string) bool {
		if len(prefixes) == 0 {
			return true
		}
		for _, p := range prefixes {
			if strings.HasPrefix(name, p) {
				return true
			}
		}
		return false
	}
	s.tips = nil
	s.refs = nil
	s.symrefs = nil
	if err := s.loadRefs(); err != nil {
		return fmt.Errorf("upload: list references: %w", err)
	}
	if unborn && match("HEAD") && s.head != "" && (len(s.refs) == 0 || s.refs[0].Name != "HEAD") {
		if err := s.pw.WriteString("unborn HEAD symref-target:" + s.head + "\n"); err != nil {
			return err
		}
	}
	buf := make([]byte, 0, 256)
	for _, r := range s.refs {
		if !match(r.Name) {
			continue
		}
		buf = r.ID.AppendHex(buf[:0])
		buf = append(buf, ' ')
		buf = append(buf, r.Name...)
		if symrefs {
			if target := s.symrefTarget(r.Name); target != "" {
				buf = append(buf, " symref-target:"...)
				buf = append(buf, target...)
			}
		}
		if peel && r.Peeled.Valid() {
			buf = append(buf, " peeled:"...)
			buf = r.Peeled.AppendHex(buf)
		}
		buf = append(buf, '\n')
		if err := s.pw.Write(buf); err != nil {
			return err
		}
	}
	return s.pw.Flush()
}

// symrefTarget returns the target of a symbolic reference, or "".
func (s *session) symrefTarget(name string) string {
	if name == "HEAD" {
		return s.head
	}
	return s.symrefs[name]
}

// objectInfo answers object-info: the size of each object asked for.
func (s *session) objectInfo(args []string) error {
	size := false
	var ids []oid.ID
	for _, a := range args {
		switch {
		case a == "size":
			size = true
		case strings.HasPrefix(a, "oid "):
			id, err := s.parseID([]byte(strings.TrimPrefix(a, "oid ")))
			if err != nil {
				return err
			}
			ids = append(ids, id)
		default:
			return wire.Errorf("protocol error: unexpected object-info argument")
		}
	}
	if size {
		s.pw.WriteString("size\n")
	}
	// With hidden references, sizes are told of what the others reach
	// only, as if the rest were missing.
	told := func(oid.ID) bool { return true }
	if s.opts.Hidden != nil && len(ids) > 0 {
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
			if _, n, err := s.repo.StatObject(id); err == nil && told(id) {
				line += fmt.Sprint(n)
			}
		}
		if err := s.pw.WriteString(line + "\n"); err != nil {
			return err
		}
	}
	return s.pw.Flush()
}

// fetchV2 runs one round of the version 2 fetch command.
func (s *session) fetchV2(args []string) error {
	if err := s.loadRefs(); err != nil {
		return fmt.Errorf("upload: list references: %w", err)
	}
	q := &request{ofs: false}
	seenHaves := false
	for _, a := range args {
		line := []byte(a)
		if hex, ok := bytes.CutPrefix(line, []byte("want ")); ok {
			id, err := s.parseID(hex)
			if err != nil {
				return err
			}
			q.addWant(id)
			if wire.Exceeds(len(q.wants), s.opts.Limits.MaxWants) {
				return wire.Errorf("upload-pack: too many wants (limit %d)", s.opts.Limits.MaxWants)
			}
			continue
		}
		if name, ok := bytes.CutPrefix(line, []byte("want-ref ")); ok && s.opts.RefInWant {
			r, err := s.wantRef(string(name))
			if err != nil {
				return err
			}
			q.wantRefs = append(q.wantRefs, r)
			q.addWant(r.ID)
			continue
		}
		if hex, ok := bytes.CutPrefix(line, []byte("have ")); ok {
			id, err := s.parseID(hex)
			if err != nil {
				return err
			}
			if s.haves++; wire.Exceeds(s.haves, s.opts.Limits.MaxHaves) {
				return wire.Errorf("upload-pack: too many haves (limit %d)", s.opts.Limits.MaxHaves)
			}
			q.haves = append(q.haves, id)
			seenHaves = true
			continue
		}
		switch a {
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
			ok, err := s.parseShallowLine(q, line)
			if err != nil {
				return err
			}
			if !ok {
				return wire.Errorf("protocol error: unexpected fetch argument")
			}
		}
	}
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
	for _, r := range s.refs {
		if r.Name == name {
			return r, nil
		}
	}
	return wire.Ref{}, wire.Errorf("upload-pack: unknown ref in want-ref")
}
