package fastimport

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// lineReader reads the command lines of a stream (git-fast-import(1),
// "Input Format"): lines end in LF, none may be longer than the reader's
// buffer, and "#" lines are comments. It never echoes what it read in
// its errors beyond a short quoted prefix.
type lineReader struct {
	br     *bufio.Reader
	line   []byte // the current command line, without its LF
	unread bool   // line is to be returned again by next
	eof    bool
	// off is the stream offset of the byte after the current line, or
	// of the data just read: errors name it.
	off int64
}

func newLineReader(r io.Reader, maxLine int) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, maxLine)}
}

// errLineTooLong is wrapped by the error for a line over the bound.
var errLineTooLong = errors.New("line too long")

// readRaw reads one line, comments included; io.EOF when the stream has
// ended. A last line without LF counts as a line.
func (lr *lineReader) readRaw() ([]byte, error) {
	if lr.eof {
		return nil, io.EOF
	}
	b, err := lr.br.ReadSlice('\n')
	switch {
	case err == nil:
		lr.off += int64(len(b))
		return b[:len(b)-1], nil
	case errors.Is(err, bufio.ErrBufferFull):
		return nil, fmt.Errorf("%w: at byte %d: %w (over %d bytes)", ErrStream, lr.off, errLineTooLong, lr.br.Size())
	case err == io.EOF:
		lr.eof = true
		if len(b) == 0 {
			return nil, io.EOF
		}
		lr.off += int64(len(b))
		return b, nil
	default:
		return nil, fmt.Errorf("read stream: %w", err)
	}
}

// next makes the next command line (comments skipped) current; it
// returns io.EOF at the end of the stream. The line is valid until the
// next call.
func (lr *lineReader) next() error {
	if lr.unread {
		lr.unread = false
		return nil
	}
	for {
		b, err := lr.readRaw()
		if err != nil {
			lr.line = nil
			return err
		}
		if len(b) > 0 && b[0] == '#' {
			continue
		}
		lr.line = b
		return nil
	}
}

// skipOptionalLF consumes one LF if it comes next.
func (lr *lineReader) skipOptionalLF() error {
	b, err := lr.br.Peek(1)
	if err == nil && b[0] == '\n' {
		lr.br.Discard(1)
		lr.off++
		return nil
	}
	if err != nil && err != io.EOF {
		return fmt.Errorf("read stream: %w", err)
	}
	return nil
}

// cut returns the text after prefix if the line starts with it.
func cut(line []byte, prefix string) ([]byte, bool) {
	return bytes.CutPrefix(line, []byte(prefix))
}

// snippet quotes the start of a line for an error message.
func snippet(b []byte) string {
	if len(b) > 40 {
		return strconv.Quote(string(b[:40])) + "..."
	}
	return strconv.Quote(string(b))
}

// parseDecimal parses an unsigned decimal that fills b.
func parseDecimal(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, true
}

// unquotePath parses a path at the start of b: C-style quoted if it
// starts with '"' (git-fast-import(1), "filemodify"), else up to the
// first space when last is false or to the end when it is true. It
// returns the path and what follows it.
func unquotePath(b []byte, last bool) ([]byte, []byte, error) {
	if len(b) == 0 || b[0] != '"' {
		if last {
			return b, nil, nil
		}
		i := bytes.IndexByte(b, ' ')
		if i < 0 {
			return b, nil, nil
		}
		return b[:i], b[i:], nil
	}
	var out []byte
	for i := 1; i < len(b); i++ {
		c := b[i]
		switch c {
		case '"':
			if bytes.IndexByte(out, 0) >= 0 {
				return nil, nil, errors.New("NUL in path")
			}
			return out, b[i+1:], nil
		case '\\':
			i++
			if i >= len(b) {
				return nil, nil, errors.New("bad quoted path")
			}
			switch c = b[i]; c {
			case 'a':
				out = append(out, '\a')
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'v':
				out = append(out, '\v')
			case '\\', '"':
				out = append(out, c)
			case '0', '1', '2', '3':
				if i+2 >= len(b) || b[i+1] < '0' || b[i+1] > '7' || b[i+2] < '0' || b[i+2] > '7' {
					return nil, nil, errors.New("bad quoted path")
				}
				out = append(out, (c-'0')<<6|(b[i+1]-'0')<<3|(b[i+2]-'0'))
				i += 2
			default:
				return nil, nil, errors.New("bad quoted path")
			}
		default:
			out = append(out, c)
		}
	}
	return nil, nil, errors.New("unterminated quoted path")
}
