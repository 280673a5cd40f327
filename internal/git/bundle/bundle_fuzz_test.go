package bundle

import (
	"bufio"
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// FuzzRead: any input either fails with ErrFormat (or a read error)
// having consumed no more than the bounds allow, or gives a header
// that Write writes back into bytes Read turns into the same header.
func FuzzRead(f *testing.F) {
	for _, s := range []string{
		"# v2 git bundle\n" + id1 + " refs/heads/main\n" + id2 + " HEAD\n\nPACK",
		"# v2 git bundle\n-" + id1 + " subject\n" + id2 + " refs/tags/v1\n\n",
		"# v3 git bundle\n@object-format=sha256\n-" + id6 + "\n" + id6 + " refs/heads/main\n\n",
		"# v3 git bundle\n@filter=blob:none\n\n",
		"# v3 git bundle\n@object-format=sha1\n\n",
		"# v2 git bundle\n" + id1 + " refs/heads/" + strings.Repeat("x", 300) + "\n\n",
		"# v2 git bundle\n" + id1 + " refs/heads/a..b\n\n",
		"# v2 git bundle\n",
		"",
	} {
		f.Add([]byte(s))
	}
	lim := Limits{MaxLine: 512, MaxLines: 64, MaxBytes: 4096}
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(data), 16)
		h, err := Read(br, lim)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error not ErrFormat: %v", err)
			}
			if consumed := len(data) - br.Buffered(); consumed > lim.MaxBytes+lim.MaxLine+16 {
				t.Fatalf("read %d bytes past the bounds", consumed)
			}
			return
		}
		if h.Version != 2 && h.Version != 3 {
			t.Fatalf("version %d", h.Version)
		}
		var b bytes.Buffer
		if err := Write(&b, h); err != nil {
			t.Fatal(err)
		}
		h2, err := Read(bufio.NewReader(&b), Limits{})
		if err != nil {
			t.Fatalf("reading what Write wrote: %v\n%q", err, b.String())
		}
		h.Version, h2.Version = 0, 0
		if !reflect.DeepEqual(h, h2) {
			t.Fatalf("round trip: %+v; want %+v", h2, h)
		}
	})
}
