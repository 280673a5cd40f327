package object

import (
	"bytes"
	"fmt"

	"gotd/internal/git/oid"
)

// ParsedTag is a parsed annotated tag object (named so because Tag is
// the object type) as git-mktag(1) describes it:
// "object", "type", "tag" and an optional "tagger" header, a blank line
// and the message (which carries any PGP signature).
//
// Name, Message and the Tagger's slices alias the data the tag was parsed
// from; the caller must keep that data unchanged while it uses the ParsedTag.
type ParsedTag struct {
	Object oid.ID
	Type   Type
	Name   []byte
	// Tagger is nil when the tag has no "tagger" header (early tags do
	// not). Its fields are extracted leniently, as for commits.
	Tagger *Signature
	// Message is everything after the first blank line, nil if there is
	// none.
	Message []byte

	tagger Signature // storage for Tagger, so a ParsedTag is one allocation
}

// ParseTag parses a tag object's content for reading. Like C Git's reader
// (tag.c, parse_tag_buffer) it requires well-formed "object", "type" and
// "tag" lines in that order and accepts any further headers. Use Check to
// validate a tag received from a client.
func ParseTag(f oid.Format, data []byte) (*ParsedTag, error) {
	t := new(ParsedTag)
	if f.HexSize() == 0 {
		return nil, fmt.Errorf("object: tag: invalid object format %v", f)
	}
	line, rest, ok := cutLine(data)
	if !ok || !bytes.HasPrefix(line, []byte("object ")) {
		return nil, fmt.Errorf("object: tag: missing object line")
	}
	var err error
	if t.Object, err = oid.ParseHexBytes(f, line[len("object "):]); err != nil {
		return nil, fmt.Errorf("object: tag: bad object id")
	}
	line, rest, ok = cutLine(rest)
	if !ok || !bytes.HasPrefix(line, []byte("type ")) {
		return nil, fmt.Errorf("object: tag: missing type line")
	}
	if t.Type, err = ParseType(line[len("type "):]); err != nil {
		return nil, fmt.Errorf("object: tag: bad type %q", truncate(line[len("type "):]))
	}
	line, rest, ok = cutLine(rest)
	if !ok || !bytes.HasPrefix(line, []byte("tag ")) {
		return nil, fmt.Errorf("object: tag: missing tag line")
	}
	t.Name = line[len("tag "):]
	for len(rest) > 0 {
		if rest[0] == '\n' {
			t.Message = rest[1:]
			break
		}
		var h []byte
		h, rest = nextHeader(rest)
		if t.Tagger == nil && bytes.HasPrefix(h, []byte("tagger ")) {
			if i := bytes.IndexByte(h, '\n'); i >= 0 {
				h = h[:i]
			}
			t.tagger = parseIdentLenient(h[len("tagger "):])
			t.Tagger = &t.tagger
		}
	}
	return t, nil
}
