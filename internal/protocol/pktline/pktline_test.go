package pktline

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReadTranscript(t *testing.T) {
	in := "0006a\n" + "0004" + "0000" + "0001" + "0002" + "0009hello" + "000aHELLO\n"
	r := NewReader(strings.NewReader(in))
	want := []struct {
		kind    Kind
		payload string
	}{
		{Data, "a\n"}, {Data, ""}, {Flush, ""}, {Delim, ""}, {ResponseEnd, ""}, {Data, "hello"}, {Data, "HELLO\n"},
	}
	for i, w := range want {
		kind, payload, err := r.Read()
		if err != nil || kind != w.kind || string(payload) != w.payload {
			t.Fatalf("packet %d = %v %q %v; want %v %q", i, kind, payload, err, w.kind, w.payload)
		}
	}
	if _, _, err := r.Read(); err != io.EOF {
		t.Errorf("after the last packet: err = %v; want io.EOF", err)
	}
}

func TestReadMalformed(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want error
	}{
		{"0003", ErrMalformed},
		{"00g4", ErrMalformed},
		{"-004", ErrMalformed},
		{"fff1" + strings.Repeat("x", 65521), ErrMalformed},
		{"000", io.ErrUnexpectedEOF},
		{"0009abc", io.ErrUnexpectedEOF},
		{"0005", io.ErrUnexpectedEOF},
	} {
		_, _, err := NewReader(strings.NewReader(tc.in)).Read()
		if !errors.Is(err, tc.want) {
			t.Errorf("Read(%.12q) err = %v; want %v", tc.in, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "abc") {
			t.Errorf("error %q echoes input bytes", err)
		}
	}
}

// TestNoReadAhead checks that the reader leaves whatever follows a
// packet in the stream: pack data after a flush must stay for the next
// reader (another process, in the daemon).
func TestNoReadAhead(t *testing.T) {
	src := strings.NewReader("0008want0000PACK-and-more")
	r := NewReader(src)
	for _, want := range []Kind{Data, Flush} {
		if kind, _, err := r.Read(); err != nil || kind != want {
			t.Fatalf("Read = %v, %v; want %v", kind, err, want)
		}
	}
	rest, _ := io.ReadAll(src)
	if string(rest) != "PACK-and-more" {
		t.Errorf("left in the stream: %q; want %q", rest, "PACK-and-more")
	}
}

func TestWriteRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.WriteString("# service=git-upload-pack\n")
	w.Flush()
	w.Write(nil)
	w.Writef("%s %s\n", "want", strings.Repeat("1", 40))
	w.Delim()
	w.ResponseEnd()
	big := bytes.Repeat([]byte{'z'}, MaxPayloadSize)
	if err := w.Write(big); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(append(big, 'z')); err != ErrTooLong {
		t.Errorf("Write of %d bytes: err = %v; want ErrTooLong", MaxPayloadSize+1, err)
	}
	want := "001e# service=git-upload-pack\n000000040032want " + strings.Repeat("1", 40) + "\n00010002fff0"
	if got := buf.String(); !strings.HasPrefix(got, want) || len(got) != len(want)+MaxPayloadSize {
		t.Fatalf("written %.120q; want prefix %q", got, want)
	}
	r := NewReader(&buf)
	for _, k := range []Kind{Data, Flush, Data, Data, Delim, ResponseEnd, Data} {
		if kind, _, err := r.Read(); err != nil || kind != k {
			t.Fatalf("reading back: %v, %v; want %v", kind, err, k)
		}
	}
}

func TestReadAllocs(t *testing.T) {
	stream := strings.Repeat("0009hello0000", 100)
	r := NewReader(strings.NewReader(stream))
	allocs := testing.AllocsPerRun(50, func() {
		r.Read()
		r.Read()
	})
	if allocs != 0 {
		t.Errorf("Read allocates %v times per packet pair; want 0", allocs)
	}
}
