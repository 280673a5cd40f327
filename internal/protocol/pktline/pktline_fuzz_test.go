package pktline

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzRead reads arbitrary streams: every packet read must re-encode to
// exactly the bytes it came from, and a failure must be malformed input
// or a truncated stream.
func FuzzRead(f *testing.F) {
	for _, s := range []string{
		"0006a\n0000", "000100020004", "0003", "ffff", "0009hello0000PACK",
		"001e# service=git-upload-pack\n0000",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		src := bytes.NewReader(in)
		r := NewReader(src)
		var out bytes.Buffer
		w := NewWriter(&out)
		// want is the input with each header's hex digits lower-cased,
		// the one liberty the writer takes.
		want := append([]byte(nil), in...)
		for {
			pos := len(in) - src.Len()
			kind, payload, err := r.Read()
			if err == nil {
				copy(want[pos:pos+4], bytes.ToLower(want[pos:pos+4]))
			}
			if err != nil {
				if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.Is(err, ErrMalformed) {
					t.Fatalf("unexpected error %v", err)
				}
				break
			}
			switch kind {
			case Data:
				err = w.Write(payload)
			case Flush:
				err = w.Flush()
			case Delim:
				err = w.Delim()
			case ResponseEnd:
				err = w.ResponseEnd()
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if got := out.Bytes(); !bytes.Equal(got, want[:len(got)]) {
			t.Fatalf("re-encoded %q; input starts %q", got, want[:len(got)])
		}
	})
}
