package pack

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"testing"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
)

// TestLargeDeltaReads: of a 256 MiB blob stored as a delta against a
// 64 KiB base (a delta bomb), StatObject tells the size and type from
// headers, ReadPrefixAt gives its start and OpenObject all of it without
// building it (issue 18): each costs megabytes, not the blob's size;
// under a lower MaxObjectSize, OpenObject refuses it before reading,
// as ReadAt does.
func TestLargeDeltaReads(t *testing.T) {
	f := oid.SHA1
	base := bytes.Repeat([]byte("0123456789abcdef"), 1<<12)
	const size = 256 << 20
	ops := make([]byte, size>>16)
	for i := range ops {
		ops[i] = 0x80 // copy the base's 64 KiB
	}
	h := f.New()
	h.Write(object.AppendHeader(nil, object.Blob, size))
	for n := 0; n < size; n += len(base) {
		h.Write(base)
	}
	id := oid.MustFromBytes(f, h.Sum(nil))
	c := craftPack(t, f, []craftEntry{
		{typ: object.Blob, data: base},
		{typ: object.OfsDelta, data: delta(uint64(len(base)), size, ops...), base: 0, id: id},
	})
	p := c.open(t, f, Options{MaxObjectSize: 1 << 30})
	measure := func(name string, fn func()) {
		t.Helper()
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		fn()
		runtime.ReadMemStats(&after)
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
			t.Errorf("%s allocated %d MiB of a %d MiB blob; want at most 8", name, alloc>>20, size>>20)
		}
	}
	measure("StatObject", func() {
		if typ, n, err := p.StatObject(id); err != nil || typ != object.Blob || n != size {
			t.Errorf("StatObject = %v, %d, %v; want blob, %d", typ, n, err, size)
		}
	})
	measure("ReadPrefixAt", func() {
		typ, data, whole, err := p.ReadPrefixAt(c.offs[1], nil, 8000)
		if err != nil || typ != object.Blob || whole || !bytes.Equal(data, base[:8000]) {
			t.Errorf("ReadPrefixAt = %v, %d bytes, whole %v, %v; want the blob's first 8000 bytes", typ, len(data), whole, err)
		}
	})
	measure("OpenObject", func() {
		typ, n, r, err := p.OpenObject(c.offs[1])
		if err != nil {
			t.Fatalf("OpenObject: %v", err)
		}
		defer r.Close()
		h.Reset()
		h.Write(object.AppendHeader(nil, typ, int64(n)))
		if _, err := io.CopyBuffer(h, r, make([]byte, 64<<10)); err != nil {
			t.Fatalf("read: %v", err)
		}
		if got := oid.MustFromBytes(f, h.Sum(nil)); got != id {
			t.Errorf("OpenObject gave content hashing to %v; want %v", got, id)
		}
	})
	small := c.open(t, f, Options{MaxObjectSize: 100 << 20})
	measure("OpenObject over the limit", func() {
		if _, _, _, err := small.OpenObject(c.offs[1]); err == nil || !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTooLarge) {
			t.Errorf("OpenObject over the limit: %v; want a refusal", err)
		}
		if _, _, err := small.ReadAt(c.offs[1]); err == nil {
			t.Errorf("ReadAt over the limit: no error")
		}
	})
}
