package receive

import (
	"bytes"
	"errors"
	"io"
	"strings"

	"gotd/internal/git/oid"
	"gotd/internal/git/refs"
	"gotd/internal/protocol/pktline"
	"gotd/internal/protocol/wire"
)

// capability is one capability receive-pack advertises, and so one a
// client may ask for (gitprotocol-capabilities(5)). The table drives
// both the advertisement and the parsing of the client's list.
type capability struct {
	name string
	// value returns the advertised value; nil for a capability that
	// has none. A client names a capability with a value as
	// "name=value" and one without as "name", nothing else.
	value func(f oid.Format) string
}

var capabilities = []capability{
	{name: "report-status"},
	{name: "report-status-v2"},
	{name: "delete-refs"},
	{name: "side-band-64k"},
	{name: "quiet"},
	{name: "atomic"},
	{name: "ofs-delta"},
	{name: "push-options"},
	{name: "object-format", value: oid.Format.String},
	{name: "agent", value: func(oid.Format) string { return wire.Agent }},
}

// advertisedCaps is the capability list of the advertisement.
func advertisedCaps(f oid.Format) string {
	var b strings.Builder
	for i, c := range capabilities {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(c.name)
		if c.value != nil {
			b.WriteByte('=')
			b.WriteString(c.value(f))
		}
	}
	return b.String()
}

// Bounds of a request besides wire.Limits. Each list is bounded in
// lines and in bytes (wire.Budget).
const (
	// Push options are few and short (git push -o); 100 of the
	// longest would take 400 KiB, the bytes bound a sixth of it.
	maxPushOptions     = 100
	maxPushOptionLen   = 4096
	maxPushOptionBytes = 64 << 10
	// maxShallow bounds the "shallow" lines of a client whose clone is
	// shallow: one per boundary commit it has (counted, not kept).
	maxShallow = 1 << 16
	// maxRefNameLen bounds a reference name, so that a report line
	// always fits a packet (C Git's limit is the file system's PATH_MAX).
	maxRefNameLen = 4096
)

// maxRequestBytes bounds the command lines of a request together, so
// that Limits.MaxRefUpdates long names cannot take much memory: 32 MiB
// hold 100,000 commands with names of 250 bytes; C Git sends a
// 20,000-reference mirror push of names like refs/heads/many/r01245 in
// some 2 MiB.
var maxRequestBytes = 32 << 20

// request is a push as the client stated it (gitprotocol-pack(5),
// "Reference Update Request and Packfile Transfer").
type request struct {
	commands []Command
	options  []string // push options, with push-options
	agent    string   // unchecked client text

	reportStatus bool // report-status or report-status-v2
	reportV2     bool // report-status-v2: rebased updates are told with "option" lines
	sideBand     bool // side-band-64k
	quiet        bool
	atomic       bool
	pushOptions  bool
}

// deleteOnly reports whether every command is a deletion: then no pack
// follows.
func (q *request) deleteOnly() bool {
	for i := range q.commands {
		if !q.commands[i].IsDelete() {
			return false
		}
	}
	return true
}

// readRequest reads the commands of a push and, when the client asked
// for push-options, its options, from pr: up to and including the
// flush that ends them and nothing more. It returns nil without error
// when the client sent a flush alone, or hung up before sending
// anything (it has nothing to push). Every error is a *wire.Error for
// the client: the request is refused whole, before anything is
// written.
//
// The request is:
//
//	*("shallow" SP id)                    (a shallow client's boundary; ignored)
//	old SP new SP name NUL capabilities   (the first command)
//	*(old SP new SP name)
//	flush
//	[*(push-option) flush]                (with push-options)
//
// Ids are hexadecimal in the repository's format f; names must pass
// refs.CheckName, be under refs/ and appear once; old and new are not
// both null; capabilities must be ones advertised, object-format the
// repository's.
func readRequest(pr *pktline.Reader, f oid.Format, l wire.Limits) (*request, error) {
	q := &request{}
	names := map[string]bool{}
	commands := wire.Budget{What: "reference updates", Lines: l.MaxRefUpdates, Bytes: maxRequestBytes}
	shallow := wire.Budget{What: "shallow lines", Lines: maxShallow, Bytes: maxShallow * (len("shallow ") + f.HexSize())}
	for first := true; ; first = false {
		line, flush, err := wire.ReadLine(pr)
		if err != nil {
			if first && errors.Is(err, io.EOF) {
				return nil, nil // hung up after the advertisement
			}
			return nil, err
		}
		if flush {
			break
		}
		if hex, ok := bytes.CutPrefix(line, []byte("shallow ")); ok && len(q.commands) == 0 {
			// The connectivity check decides whether what a
			// shallow client pushes is complete.
			if err := shallow.Take(len(line)); err != nil {
				return nil, err
			}
			if _, err := oid.ParseHexBytes(f, hex); err != nil {
				return nil, wire.Errorf("protocol error: malformed object id")
			}
			continue
		}
		cmd, caps, hasCaps := bytes.Cut(line, []byte{0})
		if len(q.commands) == 0 {
			if err := q.setCaps(string(caps), f); err != nil {
				return nil, err
			}
		} else if hasCaps {
			return nil, wire.Errorf("protocol error: capabilities after the first command")
		}
		c, err := parseCommand(cmd, f)
		if err != nil {
			return nil, err
		}
		// The first line's capabilities are bounded by the packet and
		// not kept; the commands are, within their budget.
		if err := commands.Take(len(cmd)); err != nil {
			return nil, err
		}
		if names[c.Name] {
			return nil, wire.Errorf("protocol error: reference named twice")
		}
		names[c.Name] = true
		q.commands = append(q.commands, c)
	}
	if len(q.commands) == 0 {
		return nil, nil
	}
	if q.pushOptions {
		if err := q.readOptions(pr); err != nil {
			return nil, err
		}
	}
	return q, nil
}

// readOptions reads push options up to their flush.
func (q *request) readOptions(pr *pktline.Reader) error {
	budget := wire.Budget{What: "push options", Lines: maxPushOptions, Bytes: maxPushOptionBytes}
	for {
		line, flush, err := wire.ReadLine(pr)
		if err != nil {
			return err
		}
		if flush {
			return nil
		}
		if err := budget.Take(len(line)); err != nil {
			return err
		}
		switch {
		case len(line) > maxPushOptionLen:
			return wire.Errorf("push option too long (limit %d bytes)", maxPushOptionLen)
		case bytes.IndexByte(line, 0) >= 0 || bytes.IndexByte(line, '\n') >= 0:
			return wire.Errorf("protocol error: malformed push option")
		}
		q.options = append(q.options, string(line))
	}
}

// setCaps applies the capability list of the first command.
func (q *request) setCaps(list string, f oid.Format) error {
	for _, w := range strings.Fields(list) {
		name, value, hasValue := strings.Cut(w, "=")
		i := capIndex(name)
		if i < 0 {
			return wire.Errorf("protocol error: capability not advertised")
		}
		if hasValue != (capabilities[i].value != nil) {
			return wire.Errorf("protocol error: malformed capability")
		}
		// delete-refs and ofs-delta only inform the client
		// (gitprotocol-capabilities(5)); one that sends them back
		// anyway is not refused.
		switch name {
		case "report-status", "report-status-v2":
			// The two differ only by the "option" lines that tell
			// where a reference ended when it is not where the
			// client pushed it: a rebased update.
			q.reportStatus = true
			q.reportV2 = q.reportV2 || name == "report-status-v2"
		case "side-band-64k":
			q.sideBand = true
		case "quiet":
			q.quiet = true
		case "atomic":
			q.atomic = true
		case "push-options":
			q.pushOptions = true
		case "object-format":
			if value != f.String() {
				return wire.Errorf("object format mismatch (repository is %v)", f)
			}
		case "agent":
			q.agent = value
		}
	}
	return nil
}

// capIndex returns the index of name in capabilities, or -1.
func capIndex(name string) int {
	for i := range capabilities {
		if capabilities[i].name == name {
			return i
		}
	}
	return -1
}

// parseCommand parses "<old> <new> <name>" in format f.
func parseCommand(line []byte, f oid.Format) (Command, error) {
	hx := f.HexSize()
	if len(line) < 2*hx+2 || line[hx] != ' ' || line[2*hx+1] != ' ' {
		return Command{}, wire.Errorf("protocol error: malformed command")
	}
	old, err1 := oid.ParseHexBytes(f, line[:hx])
	new, err2 := oid.ParseHexBytes(f, line[hx+1:2*hx+1])
	if err1 != nil || err2 != nil {
		return Command{}, wire.Errorf("protocol error: malformed object id")
	}
	name := string(line[2*hx+2:])
	if len(name) > maxRefNameLen || !strings.HasPrefix(name, "refs/") || refs.CheckName(name) != nil {
		return Command{}, wire.Errorf("protocol error: invalid reference name")
	}
	if old.IsNull() && new.IsNull() {
		return Command{}, wire.Errorf("protocol error: command neither creates nor deletes")
	}
	return Command{Name: name, Old: old, New: new}, nil
}
