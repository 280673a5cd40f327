// Package pktline reads and writes Git's pkt-line framing
// (gitprotocol-common(5), "pkt-line Format"): a four-digit hexadecimal
// length that counts itself, then the payload; the special lengths 0000
// (flush), 0001 (delim) and 0002 (response end) carry no payload.
//
// The Reader never reads past the packet it returns: it asks its source
// for the 4 header bytes, then for exactly the payload. A stream whose
// descriptor is handed to another process after some packets (the pack
// data of a push) therefore loses nothing to buffering here.
package pktline

import (
	"errors"
	"fmt"
	"io"
)

// MaxPacketSize is the largest packet, header included, that Git sends or
// accepts (LARGE_PACKET_MAX).
const MaxPacketSize = 65520

// MaxPayloadSize is the largest payload of a data packet.
const MaxPayloadSize = MaxPacketSize - 4

// Kind says what a Reader returned.
type Kind int

const (
	Data        Kind = iota // a data packet (possibly empty: "0004")
	Flush                   // 0000
	Delim                   // 0001, protocol v2 section separator
	ResponseEnd             // 0002, protocol v2 end of a stateless response
)

func (k Kind) String() string {
	switch k {
	case Data:
		return "data"
	case Flush:
		return "flush"
	case Delim:
		return "delim"
	case ResponseEnd:
		return "response-end"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// ErrMalformed is wrapped by every error about bytes that are not a valid
// packet. Its messages never include the offending bytes.
var ErrMalformed = errors.New("pktline: malformed packet")

// Reader reads packets from a stream without reading ahead. It is not
// safe for concurrent use.
type Reader struct {
	r   io.Reader
	hdr [4]byte
	buf [MaxPayloadSize]byte
}

// NewReader returns a Reader of r. r is read only as far as the packets
// returned.
func NewReader(r io.Reader) *Reader { return &Reader{r: r} }

// Read returns the next packet. For Data, payload is valid until the
// next call and must not be retained; for the special packets it is nil.
// A stream that ends cleanly before a header returns io.EOF; one that
// ends inside a packet returns io.ErrUnexpectedEOF.
func (r *Reader) Read() (kind Kind, payload []byte, err error) {
	if _, err := io.ReadFull(r.r, r.hdr[:]); err != nil {
		return 0, nil, err
	}
	n := 0
	for _, c := range r.hdr {
		var v byte
		switch {
		case '0' <= c && c <= '9':
			v = c - '0'
		case 'a' <= c && c <= 'f':
			v = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			v = c - 'A' + 10
		default:
			return 0, nil, fmt.Errorf("%w: bad length digits", ErrMalformed)
		}
		n = n<<4 | int(v)
	}
	switch {
	case n == 0:
		return Flush, nil, nil
	case n == 1:
		return Delim, nil, nil
	case n == 2:
		return ResponseEnd, nil, nil
	case n == 3:
		return 0, nil, fmt.Errorf("%w: length 3", ErrMalformed)
	case n > MaxPacketSize:
		return 0, nil, fmt.Errorf("%w: length %d exceeds %d", ErrMalformed, n, MaxPacketSize)
	}
	payload = r.buf[:n-4]
	if _, err := io.ReadFull(r.r, payload); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return Data, payload, nil
}

// Writer writes packets. Each call writes one packet with one Write on
// the underlying writer; it is not safe for concurrent use.
type Writer struct {
	w   io.Writer
	buf [MaxPacketSize]byte
}

// NewWriter returns a Writer to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// ErrTooLong is returned for a payload over MaxPayloadSize.
var ErrTooLong = errors.New("pktline: payload too long")

// Write writes payload as one data packet.
func (w *Writer) Write(payload []byte) error {
	if len(payload) > MaxPayloadSize {
		return ErrTooLong
	}
	n := len(payload) + 4
	PutLen(w.buf[:4], n)
	copy(w.buf[4:], payload)
	_, err := w.w.Write(w.buf[:n])
	return err
}

// WriteString writes s as one data packet.
func (w *Writer) WriteString(s string) error {
	if len(s) > MaxPayloadSize {
		return ErrTooLong
	}
	n := len(s) + 4
	PutLen(w.buf[:4], n)
	copy(w.buf[4:], s)
	_, err := w.w.Write(w.buf[:n])
	return err
}

// Writef formats a data packet.
func (w *Writer) Writef(format string, args ...any) error {
	return w.WriteString(fmt.Sprintf(format, args...))
}

// Flush writes a flush packet (0000). It does not flush w.
func (w *Writer) Flush() error { return w.special("0000") }

// Delim writes a delim packet (0001).
func (w *Writer) Delim() error { return w.special("0001") }

// ResponseEnd writes a response-end packet (0002).
func (w *Writer) ResponseEnd() error { return w.special("0002") }

func (w *Writer) special(s string) error {
	copy(w.buf[:4], s)
	_, err := w.w.Write(w.buf[:4])
	return err
}

// PutLen writes into b[:4] the length header of a packet of n bytes in
// all (the header's four included), for a caller that writes the
// payload itself.
func PutLen(b []byte, n int) {
	const hex = "0123456789abcdef"
	b[0] = hex[n>>12&15]
	b[1] = hex[n>>8&15]
	b[2] = hex[n>>4&15]
	b[3] = hex[n&15]
}
