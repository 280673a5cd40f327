package pack

import (
	"bytes"
	"errors"
	"testing"

	"gotd/internal/git/object"
)

func TestEntryHeaderRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		typ  object.Type
		size uint64
	}{
		{object.Commit, 0}, {object.Blob, 15}, {object.Blob, 16}, {object.Tree, 1 << 20},
		{object.OfsDelta, 1<<35 + 7}, {object.RefDelta, 1<<64 - 1},
	} {
		b := AppendEntryHeader(nil, tc.typ, tc.size)
		typ, size, n, err := ParseEntryHeader(append(b, 0xff))
		if err != nil || typ != tc.typ || size != tc.size || n != len(b) {
			t.Errorf("ParseEntryHeader(%x) = %v, %d, %d, %v; want %v, %d, %d", b, typ, size, n, err, tc.typ, tc.size, len(b))
		}
		typ, size, raw, err := ReadEntryHeader(bytes.NewReader(append(b, 0xff)), nil)
		if err != nil || typ != tc.typ || size != tc.size || !bytes.Equal(raw, b) {
			t.Errorf("ReadEntryHeader(%x) = %v, %d, %x, %v", b, typ, size, raw, err)
		}
	}
}

func TestEntryHeaderMalformed(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":     {},
		"truncated": {0x90},
		"type 0":    {0x00},
		"type 5":    {0x50},
		"too long":  bytes.Repeat([]byte{0xff}, 11),
		"overflow":  {0x9f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
	} {
		if _, _, _, err := ParseEntryHeader(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: ParseEntryHeader(%x) err = %v; want ErrCorrupt", name, b, err)
		}
	}
}

func TestOfsRoundTrip(t *testing.T) {
	for _, ofs := range []uint64{0, 1, 127, 128, 16511, 16512, 1 << 40, 1<<56 - 1} {
		b := AppendOfs(nil, ofs)
		got, n, err := ParseOfs(b)
		if err != nil || got != ofs || n != len(b) {
			t.Errorf("ParseOfs(AppendOfs(%d)=%x) = %d, %d, %v", ofs, b, got, n, err)
		}
	}
}

func TestApplyDelta(t *testing.T) {
	base := []byte("0123456789abcdefghij")
	delta := AppendDeltaSize(nil, uint64(len(base)))
	delta = AppendDeltaSize(delta, 9)
	delta = append(delta, 0x91, 10, 3) // copy 3 bytes from offset 10: "abc"
	delta = append(delta, 3, 'x', 'y', 'z')
	delta = append(delta, 0x90, 3) // copy 3 bytes from offset 0
	got, err := ApplyDelta(nil, base, delta, 1<<20)
	if err != nil || string(got) != "abcxyz012" {
		t.Fatalf("ApplyDelta = %q, %v; want %q", got, err, "abcxyz012")
	}
	hdr := AppendDeltaSize(AppendDeltaSize(nil, uint64(len(base))), 3)
	for name, d := range map[string][]byte{
		"base size mismatch": append(AppendDeltaSize(AppendDeltaSize(nil, 3), 3), 0x90, 3),
		"copy past base":     append(append([]byte{}, hdr...), 0x91, 19, 3),
		"result too long":    append(append([]byte{}, hdr...), 4, 'a', 'b', 'c', 'd'),
		"result too short":   append(append([]byte{}, hdr...), 2, 'a', 'b'),
		"truncated insert":   append(append([]byte{}, hdr...), 3, 'a'),
		"reserved op":        append(append([]byte{}, hdr...), 0),
		"truncated copy":     append(append([]byte{}, hdr...), 0x91, 1),
		"over limit":         AppendDeltaSize(AppendDeltaSize(nil, uint64(len(base))), 1<<40),
		"truncated header":   {0x80},
	} {
		if _, err := ApplyDelta(nil, base, d, 1<<20); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: ApplyDelta err = %v; want ErrCorrupt", name, err)
		}
	}
}
