package logs

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestRelay checks how a child's standard error reaches the parent's
// log: its logger's records keep their level, message and attributes
// but not the role the child claims; other lines are warnings; long
// lines are cut; control characters never reach the terminal (issue
// 19).
func TestRelay(t *testing.T) {
	long := strings.Repeat("a", MaxLine+100)
	tests := []struct {
		name, in string
		want     []string // lines of the parent's log, without the time
	}{
		{"record", `{"time":"2026-01-01T00:00:00Z","level":"INFO","msg":"fetch","role":"auth","client":7,"size":9007199254740993}` + "\n",
			[]string{`level=INFO msg=fetch role=parent child=auth client=7 size=9007199254740993`}},
		{"attributes keep their order", `{"level":"WARN","msg":"m","zone":1,"after":"x y"}` + "\n",
			[]string{`level=WARN msg=m role=parent child=auth zone=1 after="x y"`}},
		{"debug record under info", `{"level":"DEBUG","msg":"quiet"}` + "\n", nil},
		{"claimed role dropped", `{"level":"ERROR","msg":"x","role":"parent"}` + "\n",
			[]string{`level=ERROR msg=x role=parent child=auth`}},
		{"panic", "panic: runtime error\n\ngoroutine 1 [running]:\n",
			[]string{`level=WARN msg="standard error" role=parent child=auth line="panic: runtime error"`,
				`level=WARN msg="standard error" role=parent child=auth line="goroutine 1 [running]:"`}},
		{"escape sequence", "\x1b]0;owned\x07\n",
			[]string{`level=WARN msg="standard error" role=parent child=auth line="\x1b]0;owned\a"`}},
		{"record with trailing bytes", `{"level":"INFO","msg":"x"} {}` + "\n",
			[]string{`level=WARN msg="standard error" role=parent child=auth line="{\"level\":\"INFO\",\"msg\":\"x\"} {}"`}},
		{"bad level", `{"level":"LOUD","msg":"x"}`,
			[]string{`level=WARN msg="standard error" role=parent child=auth line="{\"level\":\"LOUD\",\"msg\":\"x\"}"`}},
		{"long line cut", long + "\nnext\n",
			[]string{`level=WARN msg="standard error" role=parent child=auth line=` + long[:MaxLine] + ` truncated=true`,
				`level=WARN msg="standard error" role=parent child=auth line=next`}},
		{"invalid UTF-8", "a\xffb\n",
			[]string{`level=WARN msg="standard error" role=parent child=auth line="a�b"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			h := slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo,
				ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
					if a.Key == slog.TimeKey {
						return slog.Attr{}
					}
					return a
				}})
			Relay(slog.New(h).With("role", "parent", "child", "auth"), strings.NewReader(tt.in))
			got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			if out.Len() == 0 {
				got = nil
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// hexID prints as an object id does: a value with a String method and
// no exported fields.
type hexID struct{ b [2]byte }

func (h hexID) String() string { return fmt.Sprintf("%x", h.b[:]) }

// TestChildRecord: what a child logs reaches the parent's log as the
// text handler prints it; object ids came through as map[] and
// durations in nanoseconds.
func TestChildRecord(t *testing.T) {
	var rec bytes.Buffer
	child := slog.New(slog.NewJSONHandler(&rec, &slog.HandlerOptions{ReplaceAttr: childValue}))
	child.Info("ref updated", "old", hexID{[2]byte{0xab, 0xcd}}, "took", 1500*time.Millisecond, "err", errors.New("e"))
	var out bytes.Buffer
	h := slog.NewTextHandler(&out, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}})
	Relay(slog.New(h).With("child", "session_write"), &rec)
	want := "level=INFO msg=\"ref updated\" child=session_write old=abcd took=1.5s err=e\n"
	if out.String() != want {
		t.Errorf("got %q; want %q", out.String(), want)
	}
}
