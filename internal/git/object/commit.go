package object

import (
	"bytes"
	"fmt"

	"gotd/internal/git/oid"
)

// ParsedCommit is a parsed commit object (named so because Commit is the
// object type) as git-commit-tree(1) writes it: a
// header of "tree", "parent"*, "author", "committer" and optional further
// lines, a blank line, and the message.
//
// Every slice in a ParsedCommit aliases the data it was parsed from; the caller
// must keep that data unchanged while it uses the ParsedCommit.
type ParsedCommit struct {
	Tree    oid.ID
	Parents []oid.ID
	// Author and Committer are zero when the header is absent. Their
	// fields are extracted leniently (see ParseCommit); Raw is always the
	// header's value.
	Author, Committer Signature
	// Encoding is the value of the "encoding" header, nil if absent.
	Encoding []byte
	// Extra holds every other header in order (gpgsig, gpgsig-sha256,
	// mergetag, unknown ones, and author/committer lines after the
	// first), each the raw text from its name up to and excluding the
	// newline that ends its last continuation line; continuation lines
	// keep their leading space.
	Extra [][]byte
	// Message is everything after the first blank line, nil if there is
	// none.
	Message []byte
}

// ParseCommit parses a commit object's content for reading. It is as
// lenient as C Git's reader (commit.c, parse_commit_buffer): it requires
// a well-formed "tree" line first and well-formed "parent" lines right
// after it, and nothing else; identities that fsck would reject are
// parsed as far as possible (a bad date reads as 0). Use Check to
// validate a commit received from a client.
func ParseCommit(f oid.Format, data []byte) (*ParsedCommit, error) {
	c := new(ParsedCommit)
	if err := c.Parse(f, data); err != nil {
		return nil, err
	}
	return c, nil
}

// Parse is ParseCommit into an existing ParsedCommit, reusing the capacity of
// c.Parents and c.Extra so a loop over many commits need not allocate.
// On error c's contents are unspecified.
func (c *ParsedCommit) Parse(f oid.Format, data []byte) error {
	tree, parents, rest, err := commitHead(f, data, c.Parents[:0])
	*c = ParsedCommit{Tree: tree, Parents: parents, Extra: c.Extra[:0]}
	if err != nil {
		return err
	}
	var haveAuthor, haveCommitter bool
	for len(rest) > 0 {
		if rest[0] == '\n' {
			c.Message = rest[1:]
			break
		}
		var h []byte
		h, rest = nextHeader(rest)
		first := h
		if i := bytes.IndexByte(h, '\n'); i >= 0 {
			first = h[:i]
		}
		switch {
		case !haveAuthor && bytes.HasPrefix(first, []byte("author ")):
			haveAuthor = true
			c.Author = parseIdentLenient(first[len("author "):])
		case !haveCommitter && bytes.HasPrefix(first, []byte("committer ")):
			haveCommitter = true
			c.Committer = parseIdentLenient(first[len("committer "):])
		case c.Encoding == nil && bytes.HasPrefix(first, []byte("encoding ")):
			c.Encoding = first[len("encoding "):]
		default:
			c.Extra = append(c.Extra, h)
		}
	}
	return nil
}

// CommitLinks is the fast path of graph walks: it returns the commit's
// tree, its parents appended to parents[:0], and the committer time as
// ParseCommit reads it (0 when absent or unparsable). It allocates nothing
// beyond growing parents. It accepts exactly what ParseCommit accepts.
func CommitLinks(f oid.Format, data []byte, parents []oid.ID) (tree oid.ID, ps []oid.ID, when int64, err error) {
	tree, ps, rest, err := commitHead(f, data, parents[:0])
	if err != nil {
		return tree, ps, 0, err
	}
	when, _, _ = committerTime(rest)
	return tree, ps, when, nil
}

// committerTime finds the committer among the headers at the start of
// rest and returns its time and true, or false and what is left of rest
// where the headers or rest end. Only the committer line's first line is
// read, with ParseCommit's lenient reading, so that both agree on every
// commit.
func committerTime(rest []byte) (when int64, found bool, left []byte) {
	for len(rest) > 0 && rest[0] != '\n' {
		var h []byte
		h, rest = nextHeader(rest)
		if bytes.HasPrefix(h, []byte("committer ")) {
			line := h[len("committer "):]
			if i := bytes.IndexByte(line, '\n'); i >= 0 {
				line = line[:i]
			}
			return parseIdentLenient(line).When, true, rest
		}
	}
	return 0, false, rest
}

// CommitLinksPrefix is CommitLinks for the first bytes of a commit: ok
// is false when they do not settle the answer (the committer line, or
// the end of the headers without one, is beyond them; or they do not
// parse, which the whole commit will tell). When ok, the answer is
// CommitLinks' on the whole commit.
func CommitLinksPrefix(f oid.Format, prefix []byte, parents []oid.ID) (tree oid.ID, ps []oid.ID, when int64, ok bool) {
	// Only whole lines count.
	end := bytes.LastIndexByte(prefix, '\n')
	if end < 0 {
		return tree, parents[:0], 0, false
	}
	tree, ps, rest, err := commitHead(f, prefix[:end+1], parents[:0])
	if err != nil {
		return tree, ps, 0, false
	}
	// A committer line found is whole (its first line is all that is
	// read). Without one: the blank line ending the headers is here, so
	// there is none; or the prefix ended first, and the rest may hold it.
	when, found, left := committerTime(rest)
	return tree, ps, when, found || len(left) > 0
}

// commitHead parses the "tree" line and the "parent" lines that follow
// it, appending parents to ps, and returns the rest of the data.
func commitHead(f oid.Format, data []byte, ps []oid.ID) (tree oid.ID, _ []oid.ID, rest []byte, err error) {
	hexLen := f.HexSize()
	if hexLen == 0 {
		return tree, ps, nil, fmt.Errorf("object: commit: invalid object format %v", f)
	}
	line, rest, ok := cutLine(data)
	if !ok || !bytes.HasPrefix(line, []byte("tree ")) {
		return tree, ps, nil, fmt.Errorf("object: commit: missing tree line")
	}
	tree, err = oid.ParseHexBytes(f, line[len("tree "):])
	if err != nil {
		return tree, ps, nil, fmt.Errorf("object: commit: bad tree id")
	}
	for bytes.HasPrefix(rest, []byte("parent ")) {
		var line []byte
		line, rest, ok = cutLine(rest)
		var p oid.ID
		if ok {
			p, err = oid.ParseHexBytes(f, line[len("parent "):])
		}
		if !ok || err != nil {
			return tree, ps, nil, fmt.Errorf("object: commit: bad parent id")
		}
		ps = append(ps, p)
	}
	return tree, ps, rest, nil
}

// cutLine returns the line at the start of b without its newline and the
// rest after it; ok is false when b has no newline.
func cutLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return b, nil, false
	}
	return b[:i], b[i+1:], true
}

// nextHeader returns the header at the start of b with its continuation
// lines (lines starting with a space), without the final newline, and the
// rest of b after that newline. A header missing its final newline ends
// the data.
func nextHeader(b []byte) (h, rest []byte) {
	end := 0
	for {
		i := bytes.IndexByte(b[end:], '\n')
		if i < 0 {
			return b, nil
		}
		end += i
		if end+1 < len(b) && b[end+1] == ' ' {
			end++
			continue
		}
		return b[:end], b[end+1:]
	}
}
