package pack

import (
	"bytes"
	"errors"
	"testing"

	"gotd/internal/git/oid"
)

// FuzzParseRev parses arbitrary .rev files for a fixed index taken from
// a real pack. Whatever it accepts must give positions in range; when
// they are in pack order, WriteRev must reproduce the file.
func FuzzParseRev(f *testing.F) {
	idxData, rev := readSeed(f, "sha1.idx"), readSeed(f, "sha1.rev")
	f.Add(rev)
	short := bytes.Clone(rev)
	copy(short[revHeaderSize:], []byte{0xff, 0xff, 0xff, 0xff})
	f.Add(short)
	f.Add(rev[:revHeaderSize])
	x, err := ParseIndex(idxData, oid.SHA1)
	if err != nil {
		f.Fatal(err)
	}
	ents := make([]IndexEntry, x.Count())
	for i := range ents {
		ents[i] = IndexEntry{ID: x.ID(i), Offset: x.Offset(i), CRC32: x.CRC32(i)}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRev(data, oid.SHA1, x)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("ParseRev err = %v; want ErrCorrupt", err)
			}
			return
		}
		for k := 0; k < r.Count(); k++ {
			if i := r.IndexPos(k); i < 0 || i >= x.Count() {
				t.Fatalf("IndexPos(%d) = %d out of range", k, i)
			}
		}
		if r.checkOrder() != nil {
			return
		}
		var buf bytes.Buffer
		if _, err := WriteRev(&buf, oid.SHA1, ents, x.PackChecksum()); err != nil {
			t.Fatalf("WriteRev: %v", err)
		}
		body := len(data) - oid.SHA1.Size()
		if !bytes.Equal(buf.Bytes()[:body], data[:body]) {
			t.Fatalf("WriteRev does not reproduce a reverse index in pack order")
		}
	})
}
