package e2enet

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// TestRefusalRead: a git:// client refused (a push) that sent more
// than its request reads the ERR packet and then the end of the
// stream: gitd ends its side and reads the rest before it closes,
// instead of closing with unread input, which resets the connection
// (the test fails so without linger: "connection reset by peer").
func TestRefusalRead(t *testing.T) {
	s := start(t, options{})
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.gitPort), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := "git-receive-pack /test\x00host=127.0.0.1\x00"
	msg := fmt.Sprintf("%04x%s", len(req)+4, req) + string(bytes.Repeat([]byte("0000"), 4<<10))
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	// The refusal and the close come before the client reads.
	time.Sleep(300 * time.Millisecond)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Contains(got, []byte("ERR git:// is read-only")) {
		t.Errorf("the refused client read %q, %v; want the ERR packet and the end of the stream", got, err)
	}
}
