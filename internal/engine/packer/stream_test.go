package packer

import (
	"bytes"
	"context"
	"crypto/sha1"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/klauspost/compress/zlib"

	"gotd/internal/git/loose"
	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/pack"
)

// packSource is a Source of one pack that refuses to read objects
// whole: what Write sends must come from the pack's stored bytes or
// through Pack.OpenObject.
type packSource struct {
	t *testing.T
	p *pack.Pack
}

func (s packSource) ReadObject(id oid.ID) (object.Type, []byte, error) {
	s.t.Errorf("ReadObject(%v): the object was read whole", id)
	return s.p.ReadObject(id)
}

func (s packSource) LocateObject(id oid.ID) (*pack.Pack, uint64, bool) {
	off, ok := s.p.OffsetOf(id)
	return s.p, off, ok
}

// writeSinglePack writes the SHA-1 pack of raw entries (whole objects
// or ofs-deltas against the previous entry) with its index into dir and
// opens it.
func writeSinglePack(t *testing.T, dir string, ids []oid.ID, entries []struct {
	typ  object.Type
	data []byte
}) *pack.Pack {
	t.Helper()
	p := pack.AppendHeader(nil, uint32(len(entries)))
	var ents []pack.IndexEntry
	var prev uint64
	for i, e := range entries {
		off := uint64(len(p))
		ents = append(ents, pack.IndexEntry{ID: ids[i], Offset: off})
		p = pack.AppendEntryHeader(p, e.typ, uint64(len(e.data)))
		if e.typ == object.OfsDelta {
			p = pack.AppendOfs(p, off-prev)
		}
		var z bytes.Buffer
		zw := zlib.NewWriter(&z)
		zw.Write(e.data)
		zw.Close()
		p = append(p, z.Bytes()...)
		prev = off
	}
	sum := sha1.Sum(p)
	p = append(p, sum[:]...)
	path := filepath.Join(dir, "pack-test.pack")
	if err := os.WriteFile(path, p, 0o644); err != nil {
		t.Fatal(err)
	}
	var idx bytes.Buffer
	if _, err := pack.WriteIndex(&idx, oid.SHA1, ents, sum[:]); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pack-test.idx"), idx.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	pk, err := pack.Open(path, oid.SHA1, pack.Options{MaxObjectSize: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pk.Close() })
	return pk
}

// TestWriteLargeDeltaStreamed: a 300 MiB blob stored as a delta against
// a 64 KiB blob (a delta bomb pushed before the object size bound, or
// kept by another writer) and asked for without its base, as a fetch
// naming it alone or filtering its base out asks, is sent whole by
// applying the delta as its result is compressed: the write costs
// megabytes, not the blob's size, and the blob sent hashes to its id
// (issue 18).
func TestWriteLargeDeltaStreamed(t *testing.T) {
	base := bytes.Repeat([]byte("0123456789abcdef"), 1<<12)
	const size = 300 << 20
	d := pack.AppendDeltaSize(pack.AppendDeltaSize(nil, uint64(len(base))), size)
	for n := 0; n < size; n += 1 << 16 {
		d = append(d, 0x80)
	}
	h := oid.SHA1.New()
	h.Write(object.AppendHeader(nil, object.Blob, size))
	for n := 0; n < size; n += len(base) {
		h.Write(base)
	}
	bigID := oid.MustFromBytes(oid.SHA1, h.Sum(nil))
	baseID, _ := object.ID(oid.SHA1, object.Blob, base)
	p := writeSinglePack(t, t.TempDir(), []oid.ID{baseID, bigID}, []struct {
		typ  object.Type
		data []byte
	}{{object.Blob, base}, {object.OfsDelta, d}})

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var out bytes.Buffer
	_, err := Write(context.Background(), &out, packSource{t, p}, []Object{{ID: bigID, Type: object.Blob}},
		Options{Format: oid.SHA1, OfsDelta: true, ReuseDeltas: true})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	alloc := after.TotalAlloc - before.TotalAlloc - uint64(out.Cap())
	t.Logf("wrote a pack of %d bytes for a %d MiB blob, allocating %d KiB besides it", out.Len(), size>>20, alloc>>10)
	if alloc > 16<<20 {
		t.Errorf("allocated %d MiB for a %d MiB blob; want at most 16", alloc>>20, size>>20)
	}

	// The pack sent holds the blob whole, under its id.
	sum := out.Bytes()[out.Len()-oid.SHA1.Size():]
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "pack-out.pack"), out.Bytes(), 0o644)
	var idx bytes.Buffer
	pack.WriteIndex(&idx, oid.SHA1, []pack.IndexEntry{{ID: bigID, Offset: pack.HeaderSize}}, sum)
	os.WriteFile(filepath.Join(dir, "pack-out.idx"), idx.Bytes(), 0o644)
	sent, err := pack.Open(filepath.Join(dir, "pack-out.pack"), oid.SHA1, pack.Options{MaxObjectSize: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	defer sent.Close()
	if e, err := sent.Entry(pack.HeaderSize); err != nil || e.Type != object.Blob || e.Size != size {
		t.Fatalf("sent entry %+v, %v; want a whole blob of %d bytes", e, err, size)
	}
	typ, n, r, err := sent.OpenObject(pack.HeaderSize)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	h.Reset()
	h.Write(object.AppendHeader(nil, typ, int64(n)))
	if _, err := io.Copy(h, r); err != nil {
		t.Fatal(err)
	}
	if got := oid.MustFromBytes(oid.SHA1, h.Sum(nil)); got != bigID {
		t.Errorf("sent blob hashes to %v; want %v", got, bigID)
	}
}

// looseSource is a Source of loose objects only, which refuses to read
// them whole.
type looseSource struct {
	t *testing.T
	s *loose.Store
}

func (s looseSource) ReadObject(id oid.ID) (object.Type, []byte, error) {
	s.t.Errorf("ReadObject(%v): the object was read whole", id)
	return s.s.ReadObject(id)
}

func (s looseSource) LocateObject(oid.ID) (*pack.Pack, uint64, bool) { return nil, 0, false }

func (s looseSource) StatObject(id oid.ID) (object.Type, int64, error) { return s.s.StatObject(id) }

func (s looseSource) OpenObject(id oid.ID) (object.Type, int64, io.ReadCloser, error) {
	return s.s.OpenObject(id)
}

// TestWriteLargeLooseStreamed: a large loose blob is compressed as it
// is inflated from its file, not read whole, when the Source can open
// objects (issue 18).
func TestWriteLargeLooseStreamed(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "objects")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	store := loose.New(dir, oid.SHA1)
	big := make([]byte, 64<<20)
	for i := 0; i < len(big); i += 4096 {
		copy(big[i:], fmt.Sprintf("block %12d\n", i))
	}
	id, err := store.WriteObject(object.Blob, big)
	if err != nil {
		t.Fatal(err)
	}
	want := len(big)
	big = nil
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var out bytes.Buffer
	_, err = Write(context.Background(), &out, looseSource{t, store}, []Object{{ID: id, Type: object.Blob}},
		Options{Format: oid.SHA1, OfsDelta: true, ReuseDeltas: true})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	alloc := after.TotalAlloc - before.TotalAlloc - uint64(out.Cap())
	t.Logf("wrote a pack of %d bytes for a %d MiB loose blob, allocating %d KiB besides it", out.Len(), want>>20, alloc>>10)
	if alloc > 16<<20 {
		t.Errorf("allocated %d MiB for a %d MiB blob; want at most 16", alloc>>20, want>>20)
	}
	// The pack holds the blob whole, under its id.
	p := out.Bytes()
	typ, size, hl, err := pack.ParseEntryHeader(p[pack.HeaderSize:])
	if err != nil || typ != object.Blob || size != uint64(want) {
		t.Fatalf("sent entry %v of %d bytes, %v; want a blob of %d", typ, size, err, want)
	}
	zr, err := zlib.NewReader(bytes.NewReader(p[pack.HeaderSize+hl:]))
	if err != nil {
		t.Fatal(err)
	}
	h := oid.SHA1.New()
	h.Write(object.AppendHeader(nil, object.Blob, int64(want)))
	if n, err := io.Copy(h, zr); err != nil || n != int64(want) {
		t.Fatalf("inflated %d bytes, %v; want %d", n, err, want)
	}
	if got := oid.MustFromBytes(oid.SHA1, h.Sum(nil)); got != id {
		t.Errorf("sent blob hashes to %v; want %v", got, id)
	}
}
