// Package stream holds what the session processes do to the client's
// stream itself, below the Git protocol.
package stream

import (
	"io"
	"os"
	"syscall"
	"time"
)

// AckNow puts c, when it is a TCP socket, in quick-ACK mode until the
// kernel leaves it (after the next segments): call it after each read
// of a connection whose peer may hold small writes back (Nagle).
func AckNow(c syscall.Conn) { ackNow(c) }

// QuickAck returns a reader of f that, when f is a TCP socket,
// acknowledges what it receives at once instead of after the kernel's
// delayed-ACK timer. A client whose request spans several small
// writes (git sends a v2 command one packet at a time) otherwise
// waits up to 40 ms on its Nagle algorithm before the second of them
// leaves, on every request: most of the time an ls-remote takes.
// Other streams are returned as they are.
func QuickAck(f *os.File) io.Reader {
	if !isTCP(f) {
		return f
	}
	AckNow(f)
	return &quickAckReader{f}
}

type quickAckReader struct{ f *os.File }

func (r *quickAckReader) Read(p []byte) (int, error) {
	n, err := r.f.Read(p)
	// The kernel leaves quick-ACK mode by itself: ask again.
	AckNow(r.f)
	return n, err
}

// SetReadDeadline keeps the request timeouts of the protocol layer,
// which looks for it on its reader.
func (r *quickAckReader) SetReadDeadline(t time.Time) error { return r.f.SetReadDeadline(t) }
