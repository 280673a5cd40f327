package dumb

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"gotd/internal/protocol/pktline"
)

// The daemon carries a dumb request from its HTTP front-end to the
// session process, and the answer back, on the client's stream:
//
//	request: one packet holding the path (at most MaxPath bytes)
//	answer:  one packet "found SIZE IMMUTABLE CONTENT-TYPE" (IMMUTABLE
//	         0 or 1) then the file's SIZE bytes, or one packet
//	         "missing", then the end of the stream

// Header is the first packet of an answer.
type Header struct {
	Found       bool
	Size        int64
	Immutable   bool
	ContentType string
}

// errFrame is any malformed frame.
var errFrame = errors.New("dumb: malformed frame")

// WriteRequest writes the request for path.
func WriteRequest(w io.Writer, path string) error {
	if len(path) > MaxPath {
		return errFrame
	}
	return pktline.NewWriter(w).WriteString(path)
}

// ReadRequest reads a request's path.
func ReadRequest(r io.Reader) (string, error) {
	k, p, err := pktline.NewReader(r).Read()
	if err != nil {
		return "", fmt.Errorf("dumb: read request: %w", err)
	}
	if k != pktline.Data || len(p) > MaxPath {
		return "", errFrame
	}
	return string(p), nil
}

// WriteHeader writes the header of f, or "missing" for nil.
func WriteHeader(w io.Writer, f *File) error {
	if f == nil {
		return pktline.NewWriter(w).WriteString("missing")
	}
	imm := 0
	if f.Immutable {
		imm = 1
	}
	return pktline.NewWriter(w).Writef("found %d %d %s", f.Size, imm, f.ContentType)
}

// ReadHeader reads an answer's header. Only the content types of this
// package are accepted.
func ReadHeader(r io.Reader) (Header, error) {
	k, p, err := pktline.NewReader(r).Read()
	if err != nil {
		return Header{}, fmt.Errorf("dumb: read answer: %w", err)
	}
	if k != pktline.Data {
		return Header{}, errFrame
	}
	s := string(p)
	if s == "missing" {
		return Header{}, nil
	}
	f := strings.SplitN(s, " ", 4)
	if len(f) != 4 || f[0] != "found" || (f[2] != "0" && f[2] != "1") {
		return Header{}, errFrame
	}
	size, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || size < 0 {
		return Header{}, errFrame
	}
	switch f[3] {
	case TypeText, TypeTextUTF8, TypeLoose, TypePack, TypePackIndex:
	default:
		return Header{}, errFrame
	}
	return Header{Found: true, Size: size, Immutable: f[2] == "1", ContentType: f[3]}, nil
}
