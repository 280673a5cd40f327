package walk

import (
	"errors"
	"testing"
)

// FuzzParseFilter checks that ParseFilter never panics, that its errors
// wrap ErrFilter, and that every filter it accepts prints, with String,
// a spec it reads back to the same filter. Seeds are the specs C Git's
// clients send (git clone --filter expands sizes to bytes) and crafted
// overflows at each bound.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{
		"blob:none", "blob:limit=0", "blob:limit=1024", "blob:limit=1k", "blob:limit=1M", "blob:limit=3g",
		"tree:0", "tree:3", "tree:1k", "object:type=blob", "object:type=tag",
		"blob:limit=18446744073709551615", "blob:limit=18446744073709551616", "blob:limit=17179869184g",
		"blob:limit=9223372036854775808", "tree:2147483648", "tree:4294967296k",
		"blob:limit=010", "blob:limit=0x10", "blob:limit=-1", "combine:blob:none+tree:0", "sparse:oid=HEAD:x", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := ParseFilter(s)
		if err != nil {
			if !errors.Is(err, ErrFilter) {
				t.Fatalf("ParseFilter(%q): %v does not wrap ErrFilter", s, err)
			}
			return
		}
		if flt.Kind == FilterNone {
			t.Fatalf("ParseFilter(%q) accepted FilterNone", s)
		}
		again, err := ParseFilter(flt.String())
		if err != nil || again != flt {
			t.Fatalf("%q parsed to %+v, whose string %q parses to %+v, %v", s, flt, flt.String(), again, err)
		}
	})
}
