package parent

import (
	"errors"
	"strings"
	"testing"
)

// TestLastLineReason checks what a child's last words say of why it
// failed to start: the error of its last JSON record, else its message,
// else its last line, never a control character; its exit status when
// it said nothing.
func TestLastLineReason(t *testing.T) {
	status := errors.New("exit status 1")
	for _, c := range []struct {
		name, stderr, want string
	}{
		{"record with an error", `{"level":"INFO","msg":"starting"}` + "\n" + `{"level":"ERROR","msg":"exiting","err":"sandbox listen: landlock: not supported"}` + "\n",
			"sandbox listen: landlock: not supported"},
		{"record without an error", `{"level":"ERROR","msg":"cannot go on"}` + "\n", "cannot go on"},
		{"plain line", "panic: oops\n\n", "panic: oops"},
		{"unfinished line", "first\nlast words", "last words"},
		{"control characters", "bad\x1b[2Jterminal\n", "bad?[2Jterminal"},
		{"nothing", "", "exit status 1"},
		{"long line", strings.Repeat("x", 3000) + "\n", strings.Repeat("x", maxLastLine)},
	} {
		l := newLastLine()
		l.Write([]byte(c.stderr))
		close(l.done)
		if got := l.reason(status); got != c.want {
			t.Errorf("%s: got %q; want %q", c.name, got, c.want)
		}
	}
}
