package send

import "testing"

// TestPort: the port a target's URL reaches, which its sandbox allows.
func TestPort(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want uint16
		bad  bool
	}{
		{url: "git://example.com/r.git", want: 9418},
		{url: "git://example.com:9419/r.git", want: 9419},
		{url: "http://example.com/r.git", want: 80},
		{url: "https://example.com/r.git", want: 443},
		{url: "https://example.com:8443/r.git", want: 8443},
		{url: "ssh://git@example.com/r.git", want: 22},
		{url: "ssh://git@[::1]:2222/r.git", want: 2222},
		{url: "git@example.com:r.git", want: 22},
		{url: "ftp://example.com/r.git", bad: true},
		{url: "git://example.com:0/r.git", bad: true},
		{url: "git://example.com:70000/r.git", bad: true},
	} {
		got, err := Port(tc.url)
		if tc.bad != (err != nil) || got != tc.want {
			t.Errorf("Port(%s): got %d, %v; want %d (error %v)", tc.url, got, err, tc.want, tc.bad)
		}
	}
}

// TestRedact: logs and gotctl info never show user information.
func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"ssh://git@example.com/r.git":   "ssh://example.com/r.git",
		"https://example.com/r.git":     "https://example.com/r.git",
		"git@example.com:r.git":         "git@example.com:r.git",
		"https://u:p@example.com/r.git": "https://example.com/r.git",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%s): got %s; want %s", in, got, want)
		}
	}
}
