package sideband

import (
	"bytes"
	"strings"
	"testing"

	"gotd/internal/protocol/pktline"
)

// TestPacketSizes writes more than a packet's worth on each band and
// checks every packet against the limit of its capability, and that the
// bands reassemble. OpenBSD gotd sent side-band-64k packets 4 bytes over
// the limit, which made every clone of more than 64 KiB fail.
func TestPacketSizes(t *testing.T) {
	for _, tc := range []struct {
		large bool
		limit int
	}{{false, MaxPacket}, {true, MaxPacket64}} {
		var buf bytes.Buffer
		w := NewWriter(pktline.NewWriter(&buf), tc.large)
		data := bytes.Repeat([]byte("0123456789"), 20000)
		if n, err := w.Write(data); err != nil || n != len(data) {
			t.Fatalf("Write = %d, %v", n, err)
		}
		w.Progress(strings.Repeat("p", 3000))
		w.Errorf("fatal: %s", "no such repository")

		got := map[byte][]byte{}
		r := pktline.NewReader(&buf)
		full := 0
		for {
			kind, payload, err := r.Read()
			if err != nil {
				break
			}
			if kind != pktline.Data || len(payload) == 0 {
				t.Fatalf("unexpected %v packet of %d bytes", kind, len(payload))
			}
			if size := len(payload) + 4; size > tc.limit {
				t.Fatalf("large=%v: packet of %d bytes exceeds %d", tc.large, size, tc.limit)
			} else if size == tc.limit {
				full++
			}
			got[payload[0]] = append(got[payload[0]], payload[1:]...)
		}
		if full == 0 {
			t.Errorf("large=%v: no packet used the whole limit of %d", tc.large, tc.limit)
		}
		if !bytes.Equal(got[Data], data) || len(got[Progress]) != 3000 || string(got[Error]) != "fatal: no such repository" {
			t.Errorf("large=%v: bands reassembled as %d, %d, %q bytes", tc.large, len(got[Data]), len(got[Progress]), got[Error])
		}
	}
}
