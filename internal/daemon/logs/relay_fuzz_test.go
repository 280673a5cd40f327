package logs

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// FuzzRelay feeds Relay what a compromised child could write to its
// standard error: the parent's log never gets a control character (an
// escape sequence for the operator's terminal), a line claiming to be
// another role, or more than a bounded line per line read.
func FuzzRelay(f *testing.F) {
	f.Add([]byte(`{"time":"2026-01-01T00:00:00Z","level":"INFO","msg":"fetch done","role":"session_read","objects":3}` + "\n"))
	f.Add([]byte("panic: boom\n\ngoroutine 1 [running]:\n"))
	f.Add([]byte("\x1b]0;title\x07\x1b[2J\n\r\n"))
	f.Add([]byte(`{"level":"ERROR","msg":"x\u001b[31m","role":"parent","k\n":{"a":[1,2,{"b":null}]}}` + "\n"))
	f.Add([]byte(`{"level":"INFO+2","msg":"","":""}`))
	f.Add(bytes.Repeat([]byte("a"), MaxLine*2+3))
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		h := slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})
		Relay(slog.New(h).With("role", "parent", "child", "auth"), bytes.NewReader(in))
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		if out.Len() == 0 {
			lines = nil
		}
		if max := bytes.Count(in, []byte("\n")) + 1; len(lines) > max {
			t.Fatalf("%d log lines from %d input lines", len(lines), max)
		}
		for _, l := range lines {
			for _, c := range []byte(l) {
				if c < 0x20 || c == 0x7f {
					t.Fatalf("control character %#x in %q", c, l)
				}
			}
			if n := strings.Count(l, " role="); n != 1 || !strings.Contains(l, " role=parent child=auth") {
				t.Fatalf("role attributes of %q", l)
			}
			// Quoting at most quadruples a byte (\xNN).
			if len(l) > 4*MaxLine+512 {
				t.Fatalf("log line of %d bytes", len(l))
			}
		}
	})
}
