package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestListenMetrics: "listen metrics on ADDRESS port N" in the grammar
// of the other listeners, without tls, on an address no other listener
// has.
func TestListenMetrics(t *testing.T) {
	src := `listen metrics on 127.0.0.1 port 9100
listen metrics on "::1" port 9100
listen http on 127.0.0.1 port 8080
repository "r" {
	path "/r"
}
`
	c, err := Parse("m.conf", []byte(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Listen{{Address: "127.0.0.1", Port: 9100, Line: 1}, {Address: "::1", Port: 9100, Line: 2}}
	if !reflect.DeepEqual(c.Metrics, want) {
		t.Errorf("got metrics listeners %+v; want %+v", c.Metrics, want)
	}
	if len(c.HTTP) != 1 {
		t.Errorf("got %d http listeners; want 1", len(c.HTTP))
	}

	for _, tc := range []struct{ line, want string }{
		{"listen metrics on 127.0.0.1 port 0", "m.conf:1: invalid port 0"},
		{"listen metrics on 127.0.0.1 port 9100 tls certificate \"/c\" key \"/k\"", "m.conf:1: tls is only for http listeners"},
		{"listen metrics on 127.0.0.1", "m.conf:1: syntax error"},
		{"listen metrics 127.0.0.1 port 9100", "m.conf:1: syntax error"},
		{"listen http on 127.0.0.1 port 9100\nlisten metrics on 127.0.0.1 port 9100", "m.conf:2: duplicate listener 127.0.0.1:9100"},
		{"listen metrics on * port 9100\nlisten git on * port 9100", "m.conf:2: duplicate listener :9100"},
	} {
		_, err := Parse("m.conf", []byte(tc.line+"\nrepository \"r\" {\n\tpath \"/r\"\n}\n"), Options{})
		var cerr *Error
		if !errors.As(err, &cerr) || len(cerr.Problems) == 0 {
			t.Errorf("%q: got error %v; want %q", tc.line, err, tc.want)
			continue
		}
		if got := cerr.Problems[0]; !strings.HasPrefix(got, tc.want) {
			t.Errorf("%q: got %q; want %q", tc.line, got, tc.want)
		}
	}
}
