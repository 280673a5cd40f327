package sessionwrite

import (
	"errors"
	"fmt"
	"testing"

	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/msg"
	"gotd/internal/git/oid"
	"gotd/internal/protocol/receive"
	"gotd/internal/protocol/wire"
)

// TestReport checks what session_write tells the parent of a push for
// its log line: the counts, and which references it lists when there
// are more than ipc.MaxUpdates: forced updates, deletions and refusals
// before creations and fast-forwards (issue 20).
func TestReport(t *testing.T) {
	zero := oid.Zero(oid.SHA1)
	cmds := []receive.Command{
		{Name: "refs/heads/made", Old: zero, New: zero, Move: receive.MovedCreated},
		{Name: "refs/heads/ahead", Old: zero, New: zero, Move: receive.MovedFastForward},
	}
	for i := range 12 {
		cmds = append(cmds, receive.Command{Name: fmt.Sprintf("refs/heads/new%02d", i), Old: zero, New: zero, Move: receive.MovedCreated})
	}
	cmds = append(cmds,
		receive.Command{Name: "refs/heads/rewritten", Old: zero, New: zero, Move: receive.MovedForced},
		receive.Command{Name: "refs/heads/gone", Old: zero, New: zero, Move: receive.MovedDeleted},
		receive.Command{Name: "refs/tags/v1", Old: zero, New: zero, Status: "tag exists"},
		receive.Command{Name: "refs/heads/late", Old: zero, New: zero}, // the push ended before it
	)
	end := report(&receive.Result{Commands: cmds, Objects: 5}, nil)
	if end.Status != ipc.StatusOK || end.Commands != 18 || end.Updated != 16 || end.Objects != 5 {
		t.Errorf("got status %d, %d commands, %d updated, %d objects; want 0, 18, 16, 5", end.Status, end.Commands, end.Updated, end.Objects)
	}
	want := []string{"refs/heads/rewritten forced-update ", "refs/heads/gone deleted ", "refs/tags/v1  tag exists", "refs/heads/late  ",
		"refs/heads/made created ", "refs/heads/ahead fast-forward ", "refs/heads/new00 created ", "refs/heads/new01 created ",
		"refs/heads/new02 created ", "refs/heads/new03 created "}
	var got []string
	for _, u := range end.Updates {
		got = append(got, u.Name+" "+u.Move+" "+u.Refused)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("listed\n%q\nwant\n%q", got, want)
	}
	var e ipc.SessionEnd
	if err := roundTrip(end, &e); err != nil {
		t.Errorf("the report does not pass ipc's checks: %v", err)
	}

	failed := report(nil, wire.Wrap("pack is truncated", errors.New("EOF")))
	if failed.Status != ipc.StatusFailed || failed.Error != "pack is truncated" {
		t.Errorf("failed push: got status %d error %q", failed.Status, failed.Error)
	}
}

// roundTrip sends m over a channel and receives it into got.
func roundTrip(m, got *ipc.SessionEnd) error {
	a, b, err := msg.Pair()
	if err != nil {
		return err
	}
	defer a.Close()
	defer b.Close()
	if err := ipc.Send(a, m, nil); err != nil {
		return err
	}
	_, err = ipc.Recv(b, got, false)
	return err
}
