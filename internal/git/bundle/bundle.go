// Package bundle reads and writes the header of Git bundles
// (gitformat-bundle(5)): the signature, the capabilities of a v3
// bundle, the prerequisite objects and the references, up to the empty
// line the pack follows. The pack itself is read and written by the
// pack engine.
package bundle

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"gotd/internal/git/oid"
	"gotd/internal/git/refs"
)

// Signatures of the two versions (gitformat-bundle(5), "Format").
const (
	signatureV2 = "# v2 git bundle"
	signatureV3 = "# v3 git bundle"
)

// ErrFormat is wrapped by every error Read returns for a header that
// is not a valid bundle header or exceeds its Limits.
var ErrFormat = errors.New("bundle: malformed header")

// Ref is one reference a bundle carries.
type Ref struct {
	Name string // "HEAD" or a name refs.CheckName accepts
	ID   oid.ID
}

// Header is a bundle's header.
type Header struct {
	// Version is 2 or 3.
	Version int
	// Format is the object format: SHA-1 for v2, the object-format
	// capability's for v3 (SHA-1 if absent).
	Format oid.Format
	// Prerequisites are objects the bundle's pack assumes the reader
	// has (gitformat-bundle(5), "prerequisite").
	Prerequisites []oid.ID
	// Refs are the references, in the bundle's order.
	Refs []Ref
}

// Limits bound what Read accepts. The zero value of a field selects
// its default.
type Limits struct {
	// MaxLine bounds one header line in bytes, newline included
	// (default 4096 + 2 + the longest hex object id: a reference name
	// longer than refs accepts is refused anyway).
	MaxLine int
	// MaxLines bounds the lines of the header (default 1,000,000).
	MaxLines int
	// MaxBytes bounds the whole header in bytes (default 64 MiB): what
	// Read keeps of it is no larger.
	MaxBytes int
}

const (
	defaultMaxLine  = 4096 + 2 + 2*oid.MaxSize
	defaultMaxLines = 1000000
	defaultMaxBytes = 64 << 20
)

// Read reads a bundle header from br, up to and including the empty
// line that ends it, and leaves br at the first byte of the pack. It
// reads at most one line past a bound: a line longer than l.MaxLine, a
// header of more than l.MaxLines lines or l.MaxBytes bytes, is an error
// wrapping
// ErrFormat, as is anything gitformat-bundle(5) does not allow: an
// unknown signature, a capability in a v2 bundle, an unknown or
// repeated capability (the filter capability, which makes a bundle
// that lacks objects, is refused), a bad object id, a reference name
// refs.CheckName refuses, or a prerequisite after a reference. The
// error's text never quotes the bytes read.
func Read(br *bufio.Reader, l Limits) (*Header, error) {
	if l.MaxLine <= 0 {
		l.MaxLine = defaultMaxLine
	}
	if l.MaxLines <= 0 {
		l.MaxLines = defaultMaxLines
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = defaultMaxBytes
	}
	n, size := 0, 0
	next := func() ([]byte, error) {
		n++
		if n > l.MaxLines {
			return nil, fmt.Errorf("%w: more than %d lines", ErrFormat, l.MaxLines)
		}
		max, whole := l.MaxLine, false
		if left := l.MaxBytes - size; left < max {
			max, whole = left, true
		}
		line, err := readLine(br, max)
		if errors.Is(err, errLong) && whole {
			return nil, fmt.Errorf("%w: longer than %d bytes", ErrFormat, l.MaxBytes)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrFormat, n, err)
		}
		size += len(line) + 1
		return line, nil
	}
	line, err := next()
	if err != nil {
		return nil, err
	}
	h := &Header{Format: oid.SHA1}
	switch string(line) {
	case signatureV2:
		h.Version = 2
	case signatureV3:
		h.Version = 3
	default:
		return nil, fmt.Errorf("%w: not a v2 or v3 git bundle", ErrFormat)
	}
	seenCap := map[string]bool{}
	refsBegun := false
	for {
		line, err := next()
		if err != nil {
			return nil, err
		}
		switch {
		case len(line) == 0:
			return h, nil
		case line[0] == '@':
			if h.Version < 3 || refsBegun || len(h.Prerequisites) > 0 {
				return nil, fmt.Errorf("%w: line %d: capability out of place", ErrFormat, n)
			}
			key, value, hasValue := strings.Cut(string(line[1:]), "=")
			if seenCap[key] {
				return nil, fmt.Errorf("%w: line %d: repeated capability", ErrFormat, n)
			}
			seenCap[key] = true
			switch {
			case key == "object-format" && hasValue:
				f, err := oid.ParseFormat(value)
				if err != nil {
					return nil, fmt.Errorf("%w: line %d: unknown object format", ErrFormat, n)
				}
				h.Format = f
			case key == "filter":
				return nil, fmt.Errorf("%w: line %d: filtered bundles (missing objects) are not supported", ErrFormat, n)
			default:
				return nil, fmt.Errorf("%w: line %d: unknown capability", ErrFormat, n)
			}
		case line[0] == '-':
			if refsBegun {
				return nil, fmt.Errorf("%w: line %d: prerequisite after a reference", ErrFormat, n)
			}
			hexID, _, _ := bytes.Cut(line[1:], []byte{' '})
			id, err := parseID(h.Format, hexID)
			if err != nil {
				return nil, fmt.Errorf("%w: line %d: prerequisite: %w", ErrFormat, n, err)
			}
			h.Prerequisites = append(h.Prerequisites, id)
		default:
			refsBegun = true
			hexID, name, ok := bytes.Cut(line, []byte{' '})
			if !ok {
				return nil, fmt.Errorf("%w: line %d: reference without a name", ErrFormat, n)
			}
			id, err := parseID(h.Format, hexID)
			if err != nil {
				return nil, fmt.Errorf("%w: line %d: reference: %w", ErrFormat, n, err)
			}
			if string(name) != "HEAD" && refs.CheckName(string(name)) != nil {
				return nil, fmt.Errorf("%w: line %d: invalid reference name", ErrFormat, n)
			}
			h.Refs = append(h.Refs, Ref{Name: string(name), ID: id})
		}
	}
}

// errLong is readLine's error for a line over its bound.
var errLong = errors.New("line too long")

// readLine reads one line of at most max bytes with its newline and
// returns it without the newline.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(line)+len(frag) > max {
			return nil, fmt.Errorf("%w: over %d bytes", errLong, max)
		}
		line = append(line, frag...)
		switch {
		case err == nil:
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}

// parseID parses a lower-case hex object id of format f.
func parseID(f oid.Format, b []byte) (oid.ID, error) {
	if len(b) != f.HexSize() {
		return oid.ID{}, errors.New("bad object id")
	}
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return oid.ID{}, errors.New("bad object id")
		}
	}
	id, err := oid.ParseHexBytes(f, b)
	if err != nil {
		return oid.ID{}, errors.New("bad object id")
	}
	return id, nil
}

// Write writes h's header to w: a v2 bundle for SHA-1, a v3 bundle
// with the object-format capability for SHA-256 (h.Version is not
// consulted), each prerequisite without a comment, then the
// references and the empty line the pack follows. The names must be
// valid; Write does not check them.
func Write(w io.Writer, h *Header) error {
	var b bytes.Buffer
	if h.Format == oid.SHA1 {
		b.WriteString(signatureV2 + "\n")
	} else {
		fmt.Fprintf(&b, "%s\n@object-format=%s\n", signatureV3, h.Format)
	}
	for _, id := range h.Prerequisites {
		fmt.Fprintf(&b, "-%s\n", id)
	}
	for _, r := range h.Refs {
		fmt.Fprintf(&b, "%s %s\n", r.ID, r.Name)
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}
