package e2enet

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestFailedRequests: an address whose anonymous requests fail one
// after another is refused before a session process starts once it has
// spent its failures (10, one more every 2 s: parent/failed.go), with a
// message saying so, while another address is served.
func TestFailedRequests(t *testing.T) {
	s := start(t, options{})
	const tries = 14
	// bad sends a version 2 command that does not exist over git://
	// from ip and returns what the server answered.
	bad := func(ip net.IP) string {
		c, err := dialFrom(ip, s.gitPort, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte(gitRequest("git-upload-pack", true) + pktLine("command=no-such-command\n") + "0000"))
		c.SetReadDeadline(time.Now().Add(gitTimeout))
		b, _ := io.ReadAll(c)
		return string(b)
	}
	const refusal = "too many failed requests from this address"
	var answers []string
	refused := 0
	for range tries {
		a := bad(flooderIP)
		answers = append(answers, a)
		switch {
		case strings.Contains(a, refusal):
			refused++
			if strings.Contains(a, "version 2") {
				t.Errorf("refused after a session started: %q", a)
			}
		case !strings.Contains(a, "ERR "):
			t.Errorf("a failed request answered %q; want an ERR", a)
		}
	}
	// Each request takes well under the 2 s that give back a failure:
	// at least the last few are refused.
	if refused < tries-10-2 || refused == tries {
		t.Errorf("%d of %d failing requests refused for failing; want the first 10 served, most of the rest refused; answers:\n%s", refused, tries, strings.Join(answers, "\n"))
	}
	// Another address is served.
	if a := bad(net.ParseIP("127.0.0.4")); strings.Contains(a, refusal) || !strings.Contains(a, "version 2") {
		t.Errorf("another address answered %q; want its session's answer", a)
	}
	if out, err := s.git("", nil, "ls-remote", s.gitURL("test")); err != nil || !strings.Contains(out, "refs/heads/") {
		t.Errorf("ls-remote from 127.0.0.1: %v\n%s", err, out)
	}
}
