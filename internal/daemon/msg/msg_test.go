package msg

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func pair(t *testing.T) (*Conn, *Conn) {
	t.Helper()
	a, b, err := Pair()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func TestRoundTrip(t *testing.T) {
	a, b := pair(t)
	payload := (&Encoder{}).String("refs/heads/main").Uint32(7).Strings([]string{"x", "yz"}).Data()
	for _, m := range []Msg{{Type: 1}, {Type: 65535, Data: payload}, {Type: 2, Data: bytes.Repeat([]byte{9}, MaxSize)}} {
		if err := a.Send(m); err != nil {
			t.Fatal(err)
		}
		got, err := b.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if got.Type != m.Type || !bytes.Equal(got.Data, m.Data) || got.File != nil {
			t.Fatalf("got type %d, %d bytes", got.Type, len(got.Data))
		}
	}
	d := NewDecoder(payload)
	if s, n, l := d.String(100), d.Uint32(), d.Strings(2, 2); s != "refs/heads/main" || n != 7 || len(l) != 2 || l[1] != "yz" || d.Finish() != nil {
		t.Errorf("decoded %q %d %q %v", s, n, l, d.Finish())
	}
	if err := a.Send(Msg{Type: 3, Data: make([]byte, MaxSize+1)}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized send: %v", err)
	}
}

func TestFilePassing(t *testing.T) {
	a, b := pair(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := a.Send(Msg{Type: 5, Data: []byte("fd"), File: w}); err != nil {
		t.Fatal(err)
	}
	w.Close() // the receiver's copy keeps the pipe open
	m, err := b.Recv()
	if err != nil || m.File == nil {
		t.Fatalf("Recv: %+v, %v", m, err)
	}
	m.File.WriteString("through the passed descriptor")
	m.File.Close()
	got, _ := io.ReadAll(r)
	if string(got) != "through the passed descriptor" {
		t.Errorf("read %q", got)
	}
}

func TestRejects(t *testing.T) {
	a, b := pair(t)
	raw := func(p []byte, oob []byte) {
		t.Helper()
		if err := unix.Sendmsg(a.fd, p, oob, nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	// Length field disagreeing with the datagram, a short header, a
	// reserved field set.
	raw([]byte{0, 1, 0, 0, 0, 0, 0, 9, 'x'}, nil)
	raw([]byte{0, 1, 0}, nil)
	raw([]byte{0, 1, 0, 1, 0, 0, 0, 0}, nil)
	for i := 0; i < 3; i++ {
		if _, err := b.Recv(); !errors.Is(err, ErrMalformed) {
			t.Errorf("message %d: %v", i, err)
		}
	}
	// Two descriptors with one message: refused, and both closed.
	r1, w1, _ := os.Pipe()
	r2, w2, _ := os.Pipe()
	raw([]byte{0, 1, 0, 0, 0, 0, 0, 0}, unix.UnixRights(int(w1.Fd()), int(w2.Fd())))
	w1.Close()
	w2.Close()
	if _, err := b.Recv(); !errors.Is(err, ErrMalformed) {
		t.Errorf("two descriptors: %v", err)
	}
	for _, r := range []*os.File{r1, r2} {
		if n, err := r.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Errorf("a refused descriptor was kept open: %d %v", n, err)
		}
		r.Close()
	}
	// A datagram larger than any message.
	raw(make([]byte, headerSize+MaxSize+100), nil)
	if _, err := b.Recv(); !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized datagram: %v", err)
	}
	a.Close()
	if _, err := b.Recv(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("after close: %v", err)
	}
}

func TestDecoderBounds(t *testing.T) {
	for _, tc := range []struct {
		data []byte
		read func(d *Decoder)
	}{
		{[]byte{0, 0, 0}, func(d *Decoder) { d.Uint32() }},
		{[]byte{0, 0, 0, 5, 'a'}, func(d *Decoder) { d.String(10) }},
		{[]byte{0, 0, 0, 3, 'a', 'b', 'c'}, func(d *Decoder) { d.String(2) }},
		{[]byte{0, 0, 0, 3}, func(d *Decoder) { d.Strings(2, 10) }},
		{[]byte{0, 0, 0, 1, 'a', 'x'}, func(d *Decoder) { d.String(10) }},
	} {
		d := NewDecoder(tc.data)
		tc.read(d)
		if err := d.Finish(); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q accepted", tc.data)
		}
	}
}

func FuzzDecoder(f *testing.F) {
	f.Add((&Encoder{}).String("a").Strings([]string{"b", "c"}).Uint64(1).Data())
	f.Fuzz(func(t *testing.T, data []byte) {
		d := NewDecoder(data)
		s := d.String(16)
		l := d.Strings(4, 16)
		n := d.Uint64()
		if d.Finish() != nil {
			return
		}
		again := (&Encoder{}).String(s).Strings(l).Uint64(n).Data()
		if !bytes.Equal(again, data) {
			t.Fatalf("%q re-encodes as %q", data, again)
		}
	})
}

// TestUnixConn exchanges messages, with a descriptor, over a Conn of
// an accepted connection, which waits in the poller and keeps to its
// deadline.
func TestUnixConn(t *testing.T) {
	path := t.TempDir() + "/s"
	l, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	uc, err := l.AcceptUnix()
	if err != nil {
		t.Fatal(err)
	}
	server, err := FromUnixConn(uc)
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	if server.File() != nil {
		t.Errorf("File() of a poller Conn: got a file; want nil")
	}
	if uid, _, pid, err := server.PeerCred(); err != nil || uid != uint32(os.Getuid()) || pid != uint32(os.Getpid()) {
		t.Errorf("PeerCred() = %d, %d, %v; want %d, %d", uid, pid, err, os.Getuid(), os.Getpid())
	}

	// Nothing sent: Recv ends at the deadline.
	uc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := server.Recv(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Recv with nothing sent: got %v; want %v", err, os.ErrDeadlineExceeded)
	}
	uc.SetReadDeadline(time.Time{})

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := client.Send(Msg{Type: 3, Data: []byte("hello"), File: w}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	got, err := server.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if got.Type != 3 || string(got.Data) != "hello" || got.File == nil {
		t.Fatalf("got type %d, %q, file %v; want 3, hello, a file", got.Type, got.Data, got.File)
	}
	got.File.WriteString("through")
	got.File.Close()
	if b, _ := io.ReadAll(r); string(b) != "through" {
		t.Errorf("through the passed descriptor: got %q; want %q", b, "through")
	}

	if err := server.Send(Msg{Type: 4, Data: []byte("back")}); err != nil {
		t.Fatal(err)
	}
	if got, err := client.Recv(); err != nil || got.Type != 4 || string(got.Data) != "back" {
		t.Fatalf("reply: got %d %q %v; want 4 back", got.Type, got.Data, err)
	}
	client.Close()
	if _, err := server.Recv(); err != os.ErrClosed {
		t.Errorf("after the peer closed: got %v; want %v", err, os.ErrClosed)
	}
}
