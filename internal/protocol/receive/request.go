package receive

import (
	"bytes"
	"strings"

	"gotd/internal/git/oid"
	"gotd/internal/git/refs"
	"gotd/internal/protocol/wire"
)

// request is a push as the client stated it.
type request struct {
	commands []Command
	caps     wire.Caps
	options  []string
}

// needsPack reports whether a pack follows the commands: unless every
// command is a deletion.
func (q *request) needsPack() bool {
	for i := range q.commands {
		if !q.commands[i].IsDelete() {
			return true
		}
	}
	return false
}

// clientCaps are the names a client may ask for.
var clientCaps = append(append([]string(nil), caps...), "object-format", "agent", "session-id")

// readRequest reads the commands, and the push options if asked for.
// It returns nil when the client sent only a flush.
func (s *session) readRequest() (*request, error) {
	q := &request{}
	seen := map[string]bool{}
	for {
		line, flush, err := wire.ReadLine(s.in)
		if err != nil {
			return nil, err
		}
		if flush {
			break
		}
		if hex, ok := bytes.CutPrefix(line, []byte("shallow ")); ok && len(q.commands) == 0 {
			// A shallow client's boundary: the connectivity check
			// decides whether what it pushes is complete.
			if _, err := oid.ParseHexBytes(s.repo.Format, hex); err != nil {
				return nil, wire.Errorf("protocol error: malformed object id")
			}
			continue
		}
		cmd, caps, hasCaps := bytes.Cut(line, []byte{0})
		if len(q.commands) == 0 {
			if err := s.setCaps(q, string(caps)); err != nil {
				return nil, err
			}
		} else if hasCaps {
			return nil, wire.Errorf("protocol error: capabilities after the first command")
		}
		c, err := s.parseCommand(cmd)
		if err != nil {
			return nil, err
		}
		if seen[c.Name] {
			return nil, wire.Errorf("protocol error: a reference is updated twice")
		}
		seen[c.Name] = true
		q.commands = append(q.commands, c)
		if wire.Exceeds(len(q.commands), s.opts.Limits.MaxRefUpdates) {
			return nil, wire.Errorf("too many reference updates (limit %d)", s.opts.Limits.MaxRefUpdates)
		}
	}
	if len(q.commands) == 0 {
		return nil, nil
	}
	if q.caps.Has("push-options") {
		for {
			line, flush, err := wire.ReadLine(s.in)
			if err != nil {
				return nil, err
			}
			if flush {
				break
			}
			opt := string(line)
			if len(q.options) >= maxPushOptions || len(opt) > maxPushOptionLen || strings.ContainsRune(opt, 0) {
				return nil, wire.Errorf("too many or too long push options")
			}
			q.options = append(q.options, opt)
		}
	}
	return q, nil
}

// setCaps applies the first command's capabilities.
func (s *session) setCaps(q *request, list string) error {
	q.caps = wire.ParseCaps(list)
	if u := q.caps.Unknown(clientCaps); u != "" {
		return wire.Errorf("protocol error: capability not advertised")
	}
	if f, ok := q.caps.Value("object-format"); ok && f != s.repo.Format.String() {
		return wire.Errorf("object format mismatch (repository is %v)", s.repo.Format)
	}
	if a, ok := q.caps.Value("agent"); ok {
		s.res.Agent = a
	}
	return nil
}

// parseCommand parses "<old> <new> <name>".
func (s *session) parseCommand(line []byte) (Command, error) {
	f := s.repo.Format
	hx := f.HexSize()
	if len(line) < 2*hx+3 || line[hx] != ' ' || line[2*hx+1] != ' ' {
		return Command{}, wire.Errorf("protocol error: malformed command")
	}
	old, err1 := oid.ParseHexBytes(f, line[:hx])
	new, err2 := oid.ParseHexBytes(f, line[hx+1:2*hx+1])
	if err1 != nil || err2 != nil {
		return Command{}, wire.Errorf("protocol error: malformed object id")
	}
	name := string(line[2*hx+2:])
	if !strings.HasPrefix(name, "refs/") || refs.CheckName(name) != nil {
		return Command{}, wire.Errorf("protocol error: invalid reference name")
	}
	if old.IsNull() && new.IsNull() {
		return Command{}, wire.Errorf("protocol error: command neither creates nor deletes")
	}
	return Command{Name: name, Old: old, New: new}, nil
}
