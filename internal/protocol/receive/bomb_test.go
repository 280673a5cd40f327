package receive

import (
	"bytes"
	"context"
	"crypto/sha1"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/zlib"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/pack"
	"gotd/internal/protocol/wire"
)

// bombEntry is one entry of a hand-made pack: a whole object, or an
// ofs-delta against the entry back entries before it.
type bombEntry struct {
	typ  object.Type
	back int
	data []byte
}

// bombPack assembles a SHA-1 pack of entries.
func bombPack(entries ...bombEntry) []byte {
	p := pack.AppendHeader(nil, uint32(len(entries)))
	var offs []uint64
	for _, e := range entries {
		off := uint64(len(p))
		offs = append(offs, off)
		p = pack.AppendEntryHeader(p, e.typ, uint64(len(e.data)))
		if e.typ == object.OfsDelta {
			p = pack.AppendOfs(p, off-offs[len(offs)-1-e.back])
		}
		var z bytes.Buffer
		zw, _ := zlib.NewWriterLevel(&z, zlib.BestCompression)
		zw.Write(e.data)
		zw.Close()
		p = append(p, z.Bytes()...)
	}
	sum := sha1.Sum(p)
	return append(p, sum[:]...)
}

// copyDelta is a delta that turns a base of baseSize bytes into result
// bytes by copying the base's first 64 KiB over and over: one byte of
// delta per 64 KiB of result, a few KiB compressed for a gigabyte.
func copyDelta(baseSize, result uint64) []byte {
	d := pack.AppendDeltaSize(nil, baseSize)
	d = pack.AppendDeltaSize(d, result)
	for n := uint64(0); n < result; n += 1 << 16 {
		d = append(d, 0x80) // copy 0x10000 bytes from offset 0
	}
	return d
}

// TestIndexPackDeltaBomb: with the default limits, a small pack holding
// a delta that declares a result far over the object size bound, alone
// or at the end of a chain, is refused on the declared size, before its
// result is allocated, with a message naming the bound, and leaves
// nothing in the quarantine. Before issue 18 the default bound was
// 2 GiB: these deltas were resolved, taking their size in memory, and
// accepted.
func TestIndexPackDeltaBomb(t *testing.T) {
	base := bytes.Repeat([]byte("0123456789abcdef"), 1<<12) // 64 KiB
	mid := 8 << 20
	for _, tt := range []struct {
		name    string
		entries []bombEntry
	}{
		{"one delta", []bombEntry{
			{typ: object.Blob, data: base},
			{typ: object.OfsDelta, back: 1, data: copyDelta(uint64(len(base)), 600<<20)},
		}},
		{"end of a chain", []bombEntry{
			{typ: object.Blob, data: base},
			{typ: object.OfsDelta, back: 1, data: copyDelta(uint64(len(base)), uint64(mid))},
			{typ: object.OfsDelta, back: 1, data: copyDelta(uint64(mid), 1<<30)},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := bombPack(tt.entries...)
			if len(p) > 64<<10 {
				t.Fatalf("pack of %d bytes; want a small one", len(p))
			}
			dir := t.TempDir()
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := IndexPack(context.Background(), bytes.NewReader(p), dir, PackOptions{
				Format: oid.SHA1,
				Limits: wire.Limits{}.WithDefaults(),
			})
			runtime.ReadMemStats(&after)
			want := "pack has an object over the maximum size of 104857600 bytes"
			if err == nil || wire.ClientMessage(err) != want {
				t.Errorf("got %v; want the client told %q", err, want)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32<<20 {
				t.Errorf("allocated %d MiB; want at most 32", alloc>>20)
			}
			if names, _ := os.ReadDir(dir); len(names) != 0 {
				var left []string
				for _, n := range names {
					left = append(left, n.Name())
				}
				t.Errorf("left %s in the quarantine", strings.Join(left, " "))
			}
		})
	}
}

// TestIndexPackParsedSize: under a raised object size bound, a delta
// making a tree over indexer.MaxParsedSize is refused with its own
// message: the bound the client hit is not the one it raised.
func TestIndexPackParsedSize(t *testing.T) {
	var base []byte // a valid tree of at least 64 KiB
	for i := 0; len(base) < 1<<16; i++ {
		base = append(base, fmt.Sprintf("100644 f%05d\x00", i)...)
		base = append(base, bytes.Repeat([]byte{1}, oid.SHA1.Size())...)
	}
	p := bombPack(
		bombEntry{typ: object.Tree, data: base},
		bombEntry{typ: object.OfsDelta, back: 1, data: copyDelta(uint64(len(base)), 200<<20)},
	)
	_, err := IndexPack(context.Background(), bytes.NewReader(p), t.TempDir(), PackOptions{
		Format: oid.SHA1,
		Limits: wire.Limits{MaxObjectSize: 1 << 30}.WithDefaults(),
	})
	want := "pack has a tree, commit or tag over the maximum size of 104857600 bytes"
	if err == nil || wire.ClientMessage(err) != want {
		t.Errorf("got %v; want the client told %q", err, want)
	}
}
