package msg

import (
	"encoding/binary"
	"fmt"
)

// Encoder builds a message payload.
type Encoder struct{ b []byte }

// Uint32 appends v.
func (e *Encoder) Uint32(v uint32) *Encoder {
	e.b = binary.BigEndian.AppendUint32(e.b, v)
	return e
}

// Uint64 appends v.
func (e *Encoder) Uint64(v uint64) *Encoder {
	e.b = binary.BigEndian.AppendUint64(e.b, v)
	return e
}

// Bytes appends b with its length.
func (e *Encoder) Bytes(b []byte) *Encoder {
	e.Uint32(uint32(len(b)))
	e.b = append(e.b, b...)
	return e
}

// String appends s with its length.
func (e *Encoder) String(s string) *Encoder { return e.Bytes([]byte(s)) }

// Strings appends a counted list of strings.
func (e *Encoder) Strings(l []string) *Encoder {
	e.Uint32(uint32(len(l)))
	for _, s := range l {
		e.String(s)
	}
	return e
}

// Uint32s appends a counted list of uint32 values.
func (e *Encoder) Uint32s(v []uint32) *Encoder {
	e.Uint32(uint32(len(v)))
	for _, x := range v {
		e.Uint32(x)
	}
	return e
}

// Data returns the payload built so far.
func (e *Encoder) Data() []byte { return e.b }

// Decoder reads a payload, remembering the first error: a read past
// the end, or a field longer than its bound. Finish reports it, and
// trailing bytes.
type Decoder struct {
	b   []byte
	err error
}

// NewDecoder returns a Decoder of data.
func NewDecoder(data []byte) *Decoder { return &Decoder{b: data} }

func (d *Decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
	d.b = nil
}

// Fail records a field that is out of its bounds in a way only the
// caller can tell (a count, an enumeration), unless an error is
// already recorded.
func (d *Decoder) Fail(reason string) { d.fail("%s", reason) }

// Uint32s reads a counted list of at most n uint32 values.
func (d *Decoder) Uint32s(n int) []uint32 {
	c := d.Uint32()
	if d.err != nil {
		return nil
	}
	if int64(c) > int64(n) || int64(c)*4 > int64(len(d.b)) {
		d.fail("list of %d numbers (bound %d)", c, n)
		return nil
	}
	v := make([]uint32, c)
	for i := range v {
		v[i] = d.Uint32()
	}
	return v
}

// Uint32 reads a uint32.
func (d *Decoder) Uint32() uint32 {
	if len(d.b) < 4 {
		d.fail("short uint32")
		return 0
	}
	v := binary.BigEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

// Uint64 reads a uint64.
func (d *Decoder) Uint64() uint64 {
	if len(d.b) < 8 {
		d.fail("short uint64")
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

// Bytes reads a counted byte string of at most max bytes.
func (d *Decoder) Bytes(max int) []byte {
	n := d.Uint32()
	if d.err != nil {
		return nil
	}
	if int64(n) > int64(max) || int(n) > len(d.b) {
		d.fail("field of %d bytes (bound %d, %d left)", n, max, len(d.b))
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// String reads a counted string of at most max bytes.
func (d *Decoder) String(max int) string { return string(d.Bytes(max)) }

// Strings reads a counted list of at most n strings of at most max
// bytes each.
func (d *Decoder) Strings(n, max int) []string {
	c := d.Uint32()
	if d.err != nil {
		return nil
	}
	if int64(c) > int64(n) {
		d.fail("list of %d entries (bound %d)", c, n)
		return nil
	}
	l := make([]string, 0, c)
	for i := uint32(0); i < c && d.err == nil; i++ {
		l = append(l, d.String(max))
	}
	return l
}

// Finish returns the first error, or an error if bytes are left over.
func (d *Decoder) Finish() error {
	if d.err == nil && len(d.b) > 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	return d.err
}
