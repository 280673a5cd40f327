package sessionread

import (
	"fmt"
	"testing"

	"gotd/internal/daemon/stream"
	"gotd/internal/protocol/pktline"
	"gotd/internal/protocol/wire"
)

// TestAbusive checks which failures the parent counts against an
// anonymous client's address: a list over its bounds, a malformed
// request and a client too slow do; a want of what the repository does
// not offer (a hidden reference) and the server's own errors do not.
func TestAbusive(t *testing.T) {
	b := wire.Budget{Prefix: "upload-pack: ", What: "ref-prefix lines", Lines: 1, Bytes: 100}
	b.Take(10)
	over := b.Take(10)
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"over a budget", fmt.Errorf("ls-refs: %w", over), true},
		{"protocol error", wire.Errorf("protocol error: unknown command"), true},
		{"malformed packet", fmt.Errorf("read: %w", pktline.ErrMalformed), true},
		{"too slow", fmt.Errorf("read: %w", stream.ErrTooSlow), true},
		{"not our ref", wire.Errorf("upload-pack: not our ref %s", "0123456789012345678901234567890123456789"), false},
		{"server's own", fmt.Errorf("read pack: disk error"), false},
	} {
		if got := abusive(tc.err); got != tc.want {
			t.Errorf("%s: abusive(%v) = %v; want %v", tc.name, tc.err, got, tc.want)
		}
	}
}
