// Package sideband multiplexes the pack, progress messages and a fatal
// error onto one pkt-line stream, as the side-band and side-band-64k
// capabilities ask (gitprotocol-capabilities(5), "side-band,
// side-band-64k"): each packet's first payload byte names the band.
package sideband

import (
	"fmt"

	"gotd/internal/protocol/pktline"
)

// Bands of a side-band stream.
const (
	Data     = 1 // the pack or report
	Progress = 2 // messages shown on the client's terminal
	Error    = 3 // a fatal error, then the server hangs up
)

// Packet size limits, header and band byte included: side-band packets
// are at most 1000 bytes, side-band-64k packets at most 65520 (the
// pkt-line maximum). Exceeding them breaks clients ("bad line length").
const (
	MaxPacket   = 1000
	MaxPacket64 = pktline.MaxPacketSize
)

// Writer writes bands onto a pkt-line stream, splitting what it is given
// into packets no larger than its limit. It is not safe for concurrent
// use.
type Writer struct {
	pw  *pktline.Writer
	max int // data bytes per packet
	pkt [pktline.MaxPayloadSize]byte
}

// NewWriter returns a Writer for pw; large selects side-band-64k's
// packet size, else side-band's.
func NewWriter(pw *pktline.Writer, large bool) *Writer {
	w := &Writer{pw: pw, max: MaxPacket - 5}
	if large {
		w.max = MaxPacket64 - 5
	}
	return w
}

// Write sends p on the data band.
func (w *Writer) Write(p []byte) (int, error) {
	if err := w.send(Data, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Progress sends msg on the progress band.
func (w *Writer) Progress(msg string) error { return w.send(Progress, []byte(msg)) }

// Errorf sends a formatted fatal error on the error band. The text must
// not echo client bytes or server paths: clients print it verbatim.
func (w *Writer) Errorf(format string, args ...any) error {
	return w.send(Error, []byte(fmt.Sprintf(format, args...)))
}

func (w *Writer) send(band byte, p []byte) error {
	for len(p) > 0 {
		n := min(len(p), w.max)
		w.pkt[0] = band
		copy(w.pkt[1:], p[:n])
		if err := w.pw.Write(w.pkt[:n+1]); err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}
