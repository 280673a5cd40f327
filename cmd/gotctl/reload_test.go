package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"

	"gotd/internal/daemon/config"
	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/msg"
)

// TestBindListed checks that gotctl binds only the listeners of the
// configuration it read itself: a daemon asking for another address
// (taken over, it could ask root's gotctl for any port) gets an error
// and no socket.
func TestBindListed(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cfg, err := config.Parse("t.conf", []byte(fmt.Sprintf("listen git on 127.0.0.1 port %d\nrepository \"r\" {\n\tpath \"/r\"\n}\n", port)), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := &reloader{cfg: cfg}
	for _, c := range []struct {
		addr   string
		socket bool
	}{
		{fmt.Sprintf("127.0.0.1:%d", port), true},
		{"127.0.0.1:22", false},
		{fmt.Sprintf("0.0.0.0:%d", port), false},
	} {
		gotd, ctl, err := msg.Pair()
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			var m ipc.ReloadBind
			m.Addr = c.addr
			ipc.Send(gotd, &m, nil)
		}()
		raw, err := ctl.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if err := r.bind(ctl, raw); err != nil {
			t.Fatalf("%s: %v", c.addr, err)
		}
		e, err := gotd.Recv()
		if err != nil {
			t.Fatal(err)
		}
		var got ipc.ReloadSocket
		f, err := ipc.Check(e, &got, c.socket)
		if err != nil {
			t.Errorf("%s: got %+v, socket %v; want socket %v", c.addr, got, e.File != nil, c.socket)
		}
		if f != nil {
			f.Close()
		}
		gotd.Close()
		ctl.Close()
	}
}

// TestOwned checks the files gotctl opens at paths the daemon names:
// the caller's or root's, and writable by no one else.
func TestOwned(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		mode os.FileMode
		ok   bool
	}{{0o644, true}, {0o600, true}, {0o664, false}, {0o666, false}} {
		path := filepath.Join(dir, fmt.Sprintf("f%o", c.mode))
		if err := os.WriteFile(path, nil, c.mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(path, c.mode)
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := owned(f); (err == nil) != c.ok {
			t.Errorf("mode %o: got %v; want ok %v", c.mode, err, c.ok)
		}
		f.Close()
	}
}
