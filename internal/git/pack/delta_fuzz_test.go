package pack

import (
	"bytes"
	"io"
	"testing"
)

// FuzzApplyDelta feeds arbitrary deltas to ApplyDelta: it must never
// panic or produce more than the limit, and a success must yield exactly
// the declared size. DeltaReader, which applies deltas as a stream, must
// agree with it: the same result, or an error from both. It also checks that entry headers and ofs offsets
// decode and re-encode to the same value.
func FuzzApplyDelta(f *testing.F) {
	base := []byte("0123456789abcdefghijklmnopqrstuvwxyz")
	good := AppendDeltaSize(AppendDeltaSize(nil, uint64(len(base))), 9)
	good = append(good, 0x91, 10, 3, 3, 'x', 'y', 'z', 0x90, 3)
	f.Add(base, good)
	f.Add(base, AppendDeltaSize(AppendDeltaSize(nil, uint64(len(base))), 1<<40))
	f.Add([]byte{}, []byte{0, 0})
	f.Add(base, append(AppendDeltaSize(AppendDeltaSize(nil, uint64(len(base))), 0x10000), 0x80))
	f.Fuzz(func(t *testing.T, base, delta []byte) {
		const limit = 1 << 20
		out, err := ApplyDelta(nil, base, delta, limit)
		var streamed []byte
		dr, serr := NewDeltaReader(bytes.NewReader(base), uint64(len(base)), bytes.NewReader(delta), limit)
		if serr == nil {
			streamed, serr = io.ReadAll(io.LimitReader(dr, limit+1))
		}
		if (err == nil) != (serr == nil) || err == nil && !bytes.Equal(out, streamed) {
			t.Fatalf("ApplyDelta: %d bytes, %v; DeltaReader: %d bytes, %v", len(out), err, len(streamed), serr)
		}
		if err != nil {
			if len(out) != 0 {
				t.Fatalf("failed ApplyDelta returned %d bytes", len(out))
			}
		} else {
			_, size, _, herr := DeltaSizes(delta)
			if herr != nil || uint64(len(out)) != size || size > limit {
				t.Fatalf("ApplyDelta produced %d bytes; header says %d (%v)", len(out), size, herr)
			}
			// Appending to a prefix keeps the prefix.
			out2, err := ApplyDelta([]byte("prefix"), base, delta, limit)
			if err != nil || !bytes.Equal(out2, append([]byte("prefix"), out...)) {
				t.Fatalf("ApplyDelta with a prefix differs: %v", err)
			}
		}
		if typ, size, n, err := ParseEntryHeader(delta); err == nil {
			if again := AppendEntryHeader(nil, typ, size); !bytes.Equal(again, delta[:n]) && delta[n-1] != 0 {
				// Only a header padded with zero continuation bytes may
				// encode differently.
				if _, size2, _, _ := ParseEntryHeader(again); size2 != size {
					t.Fatalf("entry header %x re-encodes as %x", delta[:n], again)
				}
			}
		}
		if ofs, n, err := ParseOfs(delta); err == nil {
			if got, m, err := ParseOfs(AppendOfs(nil, ofs)); err != nil || got != ofs || m > n {
				t.Fatalf("ofs %d (from %x) does not round-trip: %d, %v", ofs, delta[:n], got, err)
			}
		}
	})
}
