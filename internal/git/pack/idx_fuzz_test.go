package pack

import (
	"bytes"
	"errors"
	"testing"

	"gotd/internal/git/oid"
)

// FuzzParseIndex parses arbitrary .idx files. Whatever it accepts must
// be readable at every position without panicking; when the ids are
// ordered, Find must locate every id; and when the 64-bit table is laid
// out as git lays it out, WriteIndex must reproduce the file.
func FuzzParseIndex(f *testing.F) {
	for _, format := range formats {
		fo, _ := oid.ParseFormat(format)
		f.Add(readSeed(f, format+".idx"), fo == oid.SHA256)
		small, _ := smallIndex(f, fo)
		f.Add(small, fo == oid.SHA256)
		// A fan-out declaring 2^32-1 objects in a small file.
		huge := bytes.Clone(small)
		copy(huge[idxHeaderSize+4*255:], []byte{0xff, 0xff, 0xff, 0xff})
		f.Add(huge, fo == oid.SHA256)
	}
	f.Add(readSeed(f, "sha1-nodelta.idx"), false)
	f.Add([]byte{0xff, 't', 'O', 'c', 0, 0, 0, 2}, false)
	f.Fuzz(func(t *testing.T, data []byte, sha256 bool) {
		fo := oid.SHA1
		if sha256 {
			fo = oid.SHA256
		}
		x, err := ParseIndex(data, fo)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("ParseIndex err = %v; want ErrCorrupt", err)
			}
			return
		}
		n := x.Count()
		if uint64(n)*uint64(fo.Size()+8)+idxHeaderSize+fanoutSize+2*uint64(fo.Size()) > uint64(len(data)) {
			t.Fatalf("Count() = %d does not fit %d bytes", n, len(data))
		}
		canonical := true
		var nlarge uint32
		ents := make([]IndexEntry, n)
		for i := 0; i < n; i++ {
			ents[i] = IndexEntry{ID: x.ID(i), Offset: x.Offset(i), CRC32: x.CRC32(i)}
			if v := be32(x.offs[4*i:]); v&largeOffsetFlag != 0 {
				canonical = canonical && v&^largeOffsetFlag == nlarge && ents[i].Offset > maxSmallOffset
				nlarge++
			}
		}
		if x.checkOrder() != nil {
			return
		}
		for i, e := range ents {
			if got, ok := x.Find(e.ID); !ok || got != i {
				t.Fatalf("Find(ID(%d)) = %d, %v", i, got, ok)
			}
		}
		if !canonical || int(nlarge) != len(x.large)/8 {
			return
		}
		var buf bytes.Buffer
		if _, err := WriteIndex(&buf, fo, ents, x.PackChecksum()); err != nil {
			t.Fatalf("WriteIndex: %v", err)
		}
		body := len(data) - fo.Size()
		if !bytes.Equal(buf.Bytes()[:body], data[:body]) {
			t.Fatalf("WriteIndex does not reproduce the parsed index")
		}
	})
}
