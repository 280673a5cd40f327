package ipc

import (
	"io"
	"os"
	"testing"
	"time"

	"gotd/internal/daemon/msg"
)

// TestStreams passes a client's two streams as the parent passes them
// to a session_read process: the receiver gets them in order,
// non-blocking (a read deadline applies), and refuses any other
// sequence.
func TestStreams(t *testing.T) {
	pipe := func() (*os.File, *os.File) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close(); w.Close() })
		return r, w
	}
	t.Run("ok", func(t *testing.T) {
		a, b, err := msg.Pair()
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		defer b.Close()
		inR, inW := pipe()
		outR, outW := pipe()
		if err := SendStreams(a, 7, inR, outW); err != nil {
			t.Fatal(err)
		}
		in, out, err := RecvStreams(b)
		if err != nil {
			t.Fatalf("RecvStreams: %v", err)
		}
		defer in.Close()
		defer out.Close()
		inW.Write([]byte("want"))
		buf := make([]byte, 4)
		if _, err := io.ReadFull(in, buf); err != nil || string(buf) != "want" {
			t.Errorf("input: got %q, %v; want \"want\"", buf, err)
		}
		out.Write([]byte("pack"))
		if _, err := io.ReadFull(outR, buf); err != nil || string(buf) != "pack" {
			t.Errorf("output: got %q, %v; want \"pack\"", buf, err)
		}
		// Non-blocking: a deadline ends a read that nothing answers.
		in.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		if _, err := in.Read(buf); !os.IsTimeout(err) {
			t.Errorf("read past the deadline: got %v; want a timeout", err)
		}
	})
	for _, tc := range []struct {
		name string
		msgs []Stream
	}{
		{"output first", []Stream{{Client: 7, Output: true}, {Client: 7}}},
		{"two inputs", []Stream{{Client: 7}, {Client: 7}}},
		{"two clients", []Stream{{Client: 7}, {Client: 8, Output: true}}},
		{"client 0", []Stream{{Client: 0}, {Client: 0, Output: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b, err := msg.Pair()
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			defer b.Close()
			r, _ := pipe()
			for i := range tc.msgs {
				if err := Send(a, &tc.msgs[i], r); err != nil {
					t.Fatal(err)
				}
			}
			if in, out, err := RecvStreams(b); err == nil {
				in.Close()
				out.Close()
				t.Errorf("RecvStreams accepted %+v", tc.msgs)
			}
		})
	}
	t.Run("no descriptor", func(t *testing.T) {
		a, b, err := msg.Pair()
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		defer b.Close()
		Send(a, &Stream{Client: 7}, nil)
		if _, _, err := RecvStreams(b); err == nil {
			t.Error("RecvStreams accepted a Stream without its descriptor")
		}
	})
}
