// Package wire holds what the Git services share on the wire: the
// protocol version a client asks for, capability lists, the version 0
// reference advertisement, client-visible errors and the limits every
// service enforces (gitprotocol-pack(5), gitprotocol-v2(5),
// gitprotocol-capabilities(5)).
package wire

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"gotd/internal/protocol/pktline"
)

// Agent is what the server calls itself in the agent capability.
var Agent = "gotd/0.1"

// Protocol versions.
const (
	V0 = 0
	V1 = 1
	V2 = 2
)

// ParseVersion returns the protocol version requested by the value of
// GIT_PROTOCOL (or the extra parameters of a git:// request joined with
// ':'): the highest "version=N" among the colon-separated keys that the
// server speaks, or V0 when there is none. Unknown keys and versions are
// ignored, as gitprotocol-v2(5) asks.
func ParseVersion(gitProtocol string) int {
	v := V0
	for _, kv := range strings.Split(gitProtocol, ":") {
		switch kv {
		case "version=1":
			v = max(v, V1)
		case "version=2":
			v = V2
		}
	}
	return v
}

// Error is an error with a message that may be sent to the client. The
// message is fixed text chosen by the server: it never echoes client
// bytes or names server paths. Err, if set, is the detail for the log.
type Error struct {
	Msg string
	Err error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return e.Msg
	}
	return e.Msg + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with a formatted client message. Arguments
// must be server-chosen values (object ids the server checked, counts,
// names of capabilities it advertises), never client text.
func Errorf(format string, args ...any) *Error {
	return &Error{Msg: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error sending msg to the client and logging err.
func Wrap(msg string, err error) *Error { return &Error{Msg: msg, Err: err} }

// ClientMessage is the text to send the client for err: the message of
// the outermost *Error in its chain, else a generic one.
func ClientMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Msg
	}
	return "internal server error"
}

// SendErr writes err to the client as an "ERR" packet, the form used
// before a side-band is set up.
func SendErr(pw *pktline.Writer, err error) error {
	return pw.WriteString("ERR " + ClientMessage(err) + "\n")
}

// Limits bound what one client may ask of a service. Zero fields take
// the defaults of DefaultLimits; a negative field means no limit.
type Limits struct {
	// MaxPackSize bounds a pushed pack in bytes.
	MaxPackSize int64
	// MaxObjectSize bounds every object of a pushed pack, inflated, and
	// every delta result, checked on the sizes the pack declares before
	// anything of that size is allocated.
	MaxObjectSize int64
	// MaxObjects bounds the objects of a pushed pack (0: no bound).
	MaxObjects uint32
	// MaxRefUpdates bounds the commands of one push.
	MaxRefUpdates int
	// MaxWants bounds the want lines of one fetch.
	MaxWants int
	// MaxHaves bounds the have lines of one fetch, all rounds together.
	MaxHaves int
	// RequestTimeout bounds the wait for each request line or pack
	// chunk from the client, when the reader has SetReadDeadline.
	RequestTimeout time.Duration
}

// DefaultLimits are generous enough for the largest public
// repositories and small enough to bound memory. MaxObjectSize is the
// limit GitHub puts on files (gotd.conf's "max object size" raises it).
var DefaultLimits = Limits{
	MaxPackSize:    -1,
	MaxObjectSize:  100 << 20,
	MaxRefUpdates:  100000,
	MaxWants:       1000000,
	MaxHaves:       4000000,
	RequestTimeout: time.Hour,
}

// WithDefaults returns l with zero fields replaced by DefaultLimits'.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits
	if l.MaxPackSize == 0 {
		l.MaxPackSize = d.MaxPackSize
	}
	if l.MaxObjectSize == 0 {
		l.MaxObjectSize = d.MaxObjectSize
	}
	if l.MaxRefUpdates == 0 {
		l.MaxRefUpdates = d.MaxRefUpdates
	}
	if l.MaxWants == 0 {
		l.MaxWants = d.MaxWants
	}
	if l.MaxHaves == 0 {
		l.MaxHaves = d.MaxHaves
	}
	if l.RequestTimeout == 0 {
		l.RequestTimeout = d.RequestTimeout
	}
	return l
}

// Exceeds reports whether n is over a limit (negative: unlimited).
func Exceeds[T int | int64](n, limit T) bool { return limit >= 0 && n > limit }

// DeadlineReader returns a reader of r that, when r has
// SetReadDeadline (a socket or a pipe), sets a deadline of timeout
// before each read, so a silent client cannot hold a session open for
// ever. A zero timeout returns r.
func DeadlineReader(r io.Reader, timeout time.Duration) io.Reader {
	if timeout <= 0 {
		return r
	}
	if dl, ok := r.(readDeadliner); ok {
		return &deadlineReader{r: dl, timeout: timeout}
	}
	return r
}

type readDeadliner interface {
	io.Reader
	SetReadDeadline(time.Time) error
}

type deadlineReader struct {
	r       readDeadliner
	timeout time.Duration
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	d.r.SetReadDeadline(time.Now().Add(d.timeout)) // an error means no deadlines: read anyway
	return d.r.Read(p)
}

// ReadError turns an error reading a client's request into an error for
// the client: a malformed pkt-line or an early end of input is the
// client's fault; anything else is an I/O failure.
func ReadError(err error) error {
	switch {
	case errors.Is(err, pktline.ErrMalformed):
		return Wrap("protocol error: bad pkt-line", err)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return Wrap("protocol error: unexpected end of input", err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return Wrap("timeout reading the request", err)
	}
	return fmt.Errorf("read request: %w", err)
}

// ReadLine reads the next line of a section that ends with a flush:
// a data packet without its trailing newline, or flush true at the
// flush. Any other packet, and any read error, is an error for the
// client. The line is valid until the next read.
func ReadLine(pr *pktline.Reader) (line []byte, flush bool, err error) {
	k, p, err := pr.Read()
	switch {
	case err != nil:
		return nil, false, ReadError(err)
	case k == pktline.Flush:
		return nil, true, nil
	case k != pktline.Data:
		return nil, false, Errorf("protocol error: unexpected %v packet", k)
	}
	if n := len(p); n > 0 && p[n-1] == '\n' {
		p = p[:n-1]
	}
	return p, false, nil
}
