package parent

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"gotd/internal/daemon/ipc"
)

// id20 is an object id of 20 bytes b.
func id20(b byte) []byte { return bytes.Repeat([]byte{b}, 20) }

// TestRecord checks the record of a request as its log line tells it:
// the action, the outcome and why, and a push's references (issue 20:
// a forced push left no line saying "forced").
func TestRecord(t *testing.T) {
	ok := &ipc.SessionEnd{}
	push := func(us ...ipc.Update) *ipc.SessionEnd {
		e := &ipc.SessionEnd{Commands: uint32(len(us)), Bytes: 10}
		for _, u := range us {
			if u.Refused == "" {
				e.Updated++
			}
		}
		e.Updates = us
		return e
	}
	forced := ipc.Update{Name: "refs/heads/main", Old: id20(1), New: id20(2), Move: "forced-update"}
	deleted := ipc.Update{Name: "refs/heads/old", Old: id20(2), New: id20(0), Move: "deleted"}
	refused := ipc.Update{Name: "refs/tags/v1", Old: id20(0), New: id20(3), Refused: "tag exists"}
	many := push()
	many.Commands, many.Updated = 25, 25
	for range ipc.MaxUpdates {
		many.Updates = append(many.Updates, ipc.Update{Name: "refs/heads/b", Old: id20(0), New: id20(4), Move: "created"})
	}
	tests := []struct {
		name string
		c    client
		want []string // parts of the line
	}{
		{"clone", client{end: &ipc.SessionEnd{LsRefs: 1, Fetches: 1, Wants: 3, Objects: 9, Bytes: 1000}},
			[]string{"action=clone outcome=ok wants=3 haves=0 objects=9 bytes=1000"}},
		{"fetch", client{end: &ipc.SessionEnd{LsRefs: 1, Fetches: 1, Wants: 1, Haves: 5, Objects: 2, Bytes: 100}},
			[]string{"action=fetch outcome=ok wants=1 haves=5 objects=2 bytes=100"}},
		{"ls-remote", client{end: &ipc.SessionEnd{LsRefs: 1, Bytes: 80}}, []string{"action=ls-refs outcome=ok bytes=80"}},
		{"negotiation round", client{end: &ipc.SessionEnd{Haves: 32, Bytes: 90}}, []string{"action=negotiate outcome=ok haves=32 bytes=90"}},
		{"forced push and deletion", client{write: true, end: push(forced, deleted)},
			[]string{`action=push outcome=ok updated=2 commands=2 refs="refs/heads/main ` + strings.Repeat("01", 20) + "->" + strings.Repeat("02", 20) +
				` forced, refs/heads/old ` + strings.Repeat("02", 20) + "->" + strings.Repeat("00", 20) + ` deleted" bytes=10`}},
		{"push partly refused", client{write: true, end: push(forced, refused)},
			[]string{`outcome=partial reason="tag exists"`, ` refused: tag exists"`}},
		{"push refused", client{write: true, end: push(refused)}, []string{`outcome=refused reason="tag exists"`}},
		{"many references", client{write: true, end: many}, []string{" created and 15 more\""}},
		{"refused before the session", client{write: true, refusal: "permission denied", reason: ipc.ReasonDenied,
			rec: request{reason: "read-only user pushing"}}, []string{`action=push outcome=refused reason="read-only user pushing" duration=`}},
		{"failed", client{failure: "request deadline passed", end: ok}, []string{`action=fetch outcome=failed reason="request deadline passed"`}},
		{"failed session", client{end: &ipc.SessionEnd{Status: ipc.StatusFailed, Error: "protocol error"}},
			[]string{`outcome=failed reason="protocol error"`}},
		{"no report", client{}, []string{`outcome=failed reason="the session ended without a report"`}},
		{"advertisement", client{end: ok, connect: ipc.Connect{Mode: ipc.ModeAdvertise}}, nil},
	}
	for _, tc := range tests {
		var out bytes.Buffer
		log := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelWarn}))
		d := &daemon{log: log, audit: slog.New(slog.NewTextHandler(&out, nil))}
		c := tc.c
		rec := c.rec
		c.rec = newRequest(7, &ipc.Connect{Via: ipc.ViaSSH, Account: "flan", Remote: "192.0.2.1:2222", Mode: c.connect.Mode,
			Hello: ipc.Hello{Repo: "r"}}, time.Now())
		c.rec.reason = rec.reason
		d.requestDone(c.ended())
		got := out.String()
		if tc.want == nil {
			if got != "" {
				t.Errorf("%s: got %s; want nothing at the default verbosity", tc.name, got)
			}
			continue
		}
		if !strings.Contains(got, " msg=request client=7 user=flan transport=ssh remote=192.0.2.1:2222 repo=r ") || strings.Count(got, "\n") != 1 {
			t.Errorf("%s: got %s; want one record of flan", tc.name, got)
		}
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: got %s; want %s in it", tc.name, got, w)
			}
		}
	}
}

// TestRefusalSummary checks that refusals of anonymous clients are
// counted after the first (issue 18's review: a line per anonymous
// refusal of a private repository let anyone fill the log), while
// those of accounts each have their line.
func TestRefusalSummary(t *testing.T) {
	var out bytes.Buffer
	log := slog.New(slog.NewTextHandler(&out, nil))
	d := &daemon{log: log, audit: log, refused: newRefusals(log)}
	d.refused.Interval = time.Hour
	for i := range 100 {
		for _, account := range []string{"", "flan"} {
			c := &client{refusal: "no such repository", reason: ipc.ReasonNoRepo}
			c.rec = newRequest(uint32(i), &ipc.Connect{Via: ipc.ViaGit, Account: account, Remote: fmt.Sprintf("192.0.2.%d:9418", i%7),
				Hello: ipc.Hello{Repo: "private"}}, time.Now())
			d.requestDone(c.ended())
		}
	}
	if got := strings.Count(out.String(), `msg="requests refused: no such repository"`); got != 1 {
		t.Errorf("anonymous refusals: %d lines; want 1 until the interval ends:\n%s", got, out.String())
	}
	if got := strings.Count(out.String(), "msg=request client="); got != 100 {
		t.Errorf("refusals of an account: %d lines; want 100", got)
	}
}
