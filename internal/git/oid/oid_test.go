package oid

import "testing"

func TestSumKnownIDs(t *testing.T) {
	// Ids of the empty blob, as `git hash-object --stdin </dev/null` prints
	// them in each format.
	for _, tc := range []struct {
		f    Format
		want string
	}{
		{SHA1, "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"},
		{SHA256, "473a0f4c3be8a93681a267e3b1e9a7dcda1185436fe141f7749120a303721813"},
	} {
		h := NewHasher(tc.f)
		h.Write([]byte("blob 0\x00"))
		id, err := h.ID()
		if err != nil || id.String() != tc.want {
			t.Errorf("%v: got %v, %v; want %s", tc.f, id, err, tc.want)
		}
		p, err := ParseHex(tc.f, tc.want)
		if err != nil || p != id {
			t.Errorf("ParseHex(%s) = %v, %v", tc.want, p, err)
		}
		q, err := ParseHexBytes(tc.f, []byte(tc.want))
		if err != nil || q != id {
			t.Errorf("ParseHexBytes(%s) = %v, %v", tc.want, q, err)
		}
	}
}

func TestParseHexInvalid(t *testing.T) {
	for _, s := range []string{"", "e69de29bb2d1d6434b8b29ae775ad8c2e48c539", "g69de29bb2d1d6434b8b29ae775ad8c2e48c5391"} {
		if _, err := ParseHex(SHA1, s); err == nil {
			t.Errorf("ParseHex(%q) succeeded", s)
		}
		if _, err := ParseHexBytes(SHA1, []byte(s)); err == nil {
			t.Errorf("ParseHexBytes(%q) succeeded", s)
		}
	}
}
