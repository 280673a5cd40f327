package indexer

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/pack"
)

var (
	baseBlob  = []byte(strings.Repeat("base content line\n", 8))
	childBlob = append(append([]byte{}, baseBlob...), "one more line\n"...)
)

// smallPack returns a pack with a blob, an ofs-delta and a ref-delta on
// it, and a tree and a commit: every kind of entry.
func smallPack(f oid.Format) []byte {
	blobID := mustID(f, object.Blob, baseBlob)
	tree := object.AppendTreeEntry(nil, 0o100644, []byte("file"), blobID)
	treeID := mustID(f, object.Tree, tree)
	commit := []byte("tree " + treeID.String() + "\nauthor A <a@b> 1 +0000\ncommitter A <a@b> 1 +0000\n\nmsg\n")
	blob := rawEntry{typ: object.Blob, size: -1, data: baseBlob}
	third := append(append([]byte{}, childBlob...), "third\n"...)
	return craft(f, -1,
		blob,
		rawEntry{typ: object.OfsDelta, size: -1, ofs: entryLen(blob), data: delta(baseBlob, childBlob)},
		rawEntry{typ: object.RefDelta, size: -1, ref: blobID.Bytes(), data: delta(baseBlob, third)},
		rawEntry{typ: object.Tree, size: -1, data: tree},
		rawEntry{typ: object.Commit, size: -1, data: commit},
	)
}

func TestIndexSmallPack(t *testing.T) {
	for _, f := range []oid.Format{oid.SHA1, oid.SHA256} {
		p := smallPack(f)
		res, err := indexBytes(t, p, Options{Format: f})
		if err != nil {
			t.Fatalf("%s: Index: %v", f, err)
		}
		got := parseIdx(t, f, readFile(t, res.IndexPath))
		third := append(append([]byte{}, childBlob...), "third\n"...)
		for _, want := range []oid.ID{mustID(f, object.Blob, baseBlob), mustID(f, object.Blob, childBlob), mustID(f, object.Blob, third)} {
			if _, ok := got[want]; !ok {
				t.Errorf("%s: idx lacks %s", f, want)
			}
		}
		if len(got) != 5 {
			t.Errorf("%s: got %d objects; want 5", f, len(got))
		}
	}
}

// TestIndexTruncated cuts a pack at every offset: each prefix must fail
// and leave no file behind.
func TestIndexTruncated(t *testing.T) {
	for _, f := range []oid.Format{oid.SHA1, oid.SHA256} {
		p := smallPack(f)
		dir := t.TempDir()
		for n := 0; n < len(p); n++ {
			_, err := Index(context.Background(), bytes.NewReader(p[:n]), Options{Format: f, Dir: dir})
			if err == nil {
				t.Fatalf("%s: prefix of %d/%d bytes: got nil error; want one", f, n, len(p))
			}
			if !strings.HasPrefix(err.Error(), "indexer: ") {
				t.Errorf("%s: prefix of %d bytes: got %q; want the indexer: prefix", f, n, err)
			}
		}
		if names := dirEntries(t, dir); len(names) != 0 {
			t.Errorf("%s: got files %q left; want none", f, names)
		}
	}
}

// patch returns a copy of p with b written at off and the trailer fixed.
func patch(f oid.Format, p []byte, off int, b ...byte) []byte {
	q := append([]byte{}, p[:len(p)-f.Size()]...)
	copy(q[off:], b)
	return withTrailer(f, q)
}

func TestIndexHostile(t *testing.T) {
	f := oid.SHA1
	good := smallPack(f)
	blob := rawEntry{typ: object.Blob, size: -1, data: baseBlob}
	blobLen := entryLen(blob)
	blobID := mustID(f, object.Blob, baseBlob)
	bomb := zlibBytes(make([]byte, 50<<20))
	deepBase := []byte("x")
	var deep []rawEntry
	deep = append(deep, rawEntry{typ: object.Blob, size: -1, data: deepBase})
	prev, prevLen := deepBase, entryLen(deep[0])
	for i := 0; i <= maxDeltaDepth; i++ {
		next := append(append([]byte{}, prev[:1]...), byte(i), byte(i>>8))
		e := rawEntry{typ: object.OfsDelta, size: -1, ofs: prevLen, data: delta(prev, next)}
		deep = append(deep, e)
		prev, prevLen = next, entryLen(e)
	}
	hugeDelta := pack.AppendDeltaSize(pack.AppendDeltaSize(nil, uint64(len(baseBlob))), 1<<40)
	hugeDelta = append(hugeDelta, 1, 'x')
	badZlib := zlibBytes(baseBlob)
	badAdler := append([]byte{}, badZlib...)
	badAdler[len(badAdler)-1] ^= 1
	fdict := append([]byte{}, badZlib...)
	for flg := 0x20; flg < 0x40; flg++ {
		if (uint16(fdict[0])<<8|uint16(flg))%31 == 0 {
			fdict[1] = byte(flg)
			break
		}
	}
	fdict = append(fdict[:2:2], append([]byte{0, 0, 0, 1}, fdict[2:]...)...)

	tests := []struct {
		name string
		p    []byte
		opts func(*Options)
		want string // substring of the error
	}{
		{"empty input", nil, nil, "pack header"},
		{"bad signature", patch(f, good, 0, 'K', 'C', 'A', 'P'), nil, "signature"},
		{"version 1", patch(f, good, 4, 0, 0, 0, 1), nil, "version"},
		{"version 4", patch(f, good, 4, 0, 0, 0, 4), nil, "version"},
		{"count too large", patch(f, good, 8, 0, 0, 0, 6), nil, ""},
		{"count huge", patch(f, good, 8, 0xff, 0xff, 0xff, 0xff), nil, ""},
		{"count too small", patch(f, good, 8, 0, 0, 0, 4), nil, "checksum"},
		{"wrong trailer", append(append([]byte{}, good[:len(good)-1]...), good[len(good)-1]^1), nil, "checksum"},
		{"too many objects", good, func(o *Options) { o.MaxObjects = 4 }, "limit"},
		{"pack too large", good, func(o *Options) { o.MaxPackSize = int64(len(good) - 1) }, "size limit"},
		{"type 5", craft(f, -1, rawEntry{typ: 5, size: -1, data: baseBlob}), nil, "type"},
		{"type 0", craft(f, -1, rawEntry{typ: 0, size: -1, data: baseBlob}), nil, "type"},
		{"entry header too long", craft(f, -1, rawEntry{typ: object.Blob, data: baseBlob,
			header: []byte{0xb0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0}}), nil, "too long"},
		{"declared size too small", craft(f, -1, rawEntry{typ: object.Blob, size: 10, data: baseBlob}), nil, "more than its declared"},
		{"declared size too large", craft(f, -1, rawEntry{typ: object.Blob, size: 1000, data: baseBlob}), nil, "declared"},
		{"zlib bomb", craft(f, -1, rawEntry{typ: object.Blob, size: 10, zdata: bomb}), nil, "more than its declared"},
		{"bad zlib header", craft(f, -1, rawEntry{typ: object.Blob, size: -1, data: baseBlob, zdata: append([]byte{0x78, 0x00}, badZlib[2:]...)}), nil, "zlib header"},
		{"zlib dictionary", craft(f, -1, rawEntry{typ: object.Blob, size: -1, data: baseBlob, zdata: fdict}), nil, "zlib header"},
		{"bad adler", craft(f, -1, rawEntry{typ: object.Blob, size: -1, data: baseBlob, zdata: badAdler}), nil, "zlib checksum"},
		{"bad deflate", craft(f, -1, rawEntry{typ: object.Blob, size: -1, data: baseBlob, zdata: []byte{0x78, 0x9c, 0xff, 0xff, 0xff, 0xff}}), nil, "corrupt"},
		{"object too large", craft(f, -1, rawEntry{typ: object.Blob, size: -1, data: baseBlob}), func(o *Options) { o.MaxObjectSize = 10 }, "exceeds the size limit"},
		{"ofs-delta to itself", craft(f, -1, blob, rawEntry{typ: object.OfsDelta, size: -1, ofs: 0, data: delta(baseBlob, childBlob)}), nil, "itself"},
		{"ofs-delta before header", craft(f, -1, blob, rawEntry{typ: object.OfsDelta, size: -1, ofs: blobLen + 1, data: delta(baseBlob, childBlob)}), nil, "before the pack header"},
		{"ofs-delta far before header", craft(f, -1, blob, rawEntry{typ: object.OfsDelta, size: -1, ofs: 1 << 40, data: delta(baseBlob, childBlob)}), nil, "before the pack header"},
		{"ofs-delta mid-entry", craft(f, -1, blob, rawEntry{typ: object.OfsDelta, size: -1, ofs: blobLen - 1, data: delta(baseBlob, childBlob)}), nil, "not the start of an object"},
		{"ref-delta to missing base", craft(f, -1, rawEntry{typ: object.RefDelta, size: -1, ref: mustID(f, object.Blob, []byte("nope")).Bytes(), data: delta(baseBlob, childBlob)}), nil, "base not found"},
		{"ref-delta missing from Bases", craft(f, -1, rawEntry{typ: object.RefDelta, size: -1, ref: blobID.Bytes(), data: delta(baseBlob, childBlob)}),
			func(o *Options) { o.Bases = mapBases{} }, "base not found"},
		{"ref-delta chain to missing base", craft(f, -1,
			rawEntry{typ: object.RefDelta, size: -1, ref: mustID(f, object.Blob, childBlob).Bytes(), data: delta(childBlob, baseBlob)},
			rawEntry{typ: object.RefDelta, size: -1, ref: blobID.Bytes(), data: delta(baseBlob, childBlob)}), nil, "base not found"},
		{"delta base size mismatch", craft(f, -1, blob, rawEntry{typ: object.OfsDelta, size: -1, ofs: blobLen, data: delta(baseBlob[1:], childBlob)}), nil, "base size"},
		{"delta copy out of bounds", craft(f, -1, blob, rawEntry{typ: object.OfsDelta, size: -1, ofs: blobLen,
			data: append(pack.AppendDeltaSize(pack.AppendDeltaSize(nil, uint64(len(baseBlob))), 20), 0x91, byte(len(baseBlob)-10), 20)}), nil, "past the end"},
		{"delta result size lies", craft(f, -1, blob, rawEntry{typ: object.OfsDelta, size: -1, ofs: blobLen,
			data: append(pack.AppendDeltaSize(pack.AppendDeltaSize(nil, uint64(len(baseBlob))), 5), 2, 'a', 'b')}), nil, "declared"},
		{"delta opcode 0", craft(f, -1, blob, rawEntry{typ: object.OfsDelta, size: -1, ofs: blobLen,
			data: append(pack.AppendDeltaSize(pack.AppendDeltaSize(nil, uint64(len(baseBlob))), 1), 0, 1, 'a')}), nil, "reserved"},
		{"delta result 2^40", craft(f, -1, blob, rawEntry{typ: object.OfsDelta, size: -1, ofs: blobLen, data: hugeDelta}), nil, "delta result of 1099511627776 bytes"},
		{"delta header truncated", craft(f, -1, blob, rawEntry{typ: object.OfsDelta, size: -1, ofs: blobLen, data: []byte{0x80}}), nil, "truncated delta header"},
		{"delta chain too deep", craft(f, -1, deep...), nil, "deeper than"},
		{"entry size overflows", craft(f, -1, rawEntry{typ: object.Blob, data: baseBlob,
			header: []byte{0xbf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}}), nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{Format: f, Dir: dir, Threads: 2}
			if tt.opts != nil {
				tt.opts(&opts)
			}
			// Inflating from the stream alone (scanner.inflate's second
			// way) fails the same.
			tryBuffered = false
			_, streamErr := Index(context.Background(), bytes.NewReader(tt.p), opts)
			tryBuffered = true
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := Index(context.Background(), bytes.NewReader(tt.p), opts)
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatalf("got nil error; want one containing %q", tt.want)
			}
			if streamErr == nil || streamErr.Error() != err.Error() {
				t.Errorf("got error %q inflating from the stream alone; want %q as with the buffer tried first", streamErr, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %q; want one containing %q", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "indexer: ") {
				t.Errorf("got error %q; want the indexer: prefix", err)
			}
			if names := dirEntries(t, dir); len(names) != 0 {
				t.Errorf("got files %q left; want none", names)
			}
			// Nothing here may allocate more than a few buffers,
			// whatever sizes the input declares.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
				t.Errorf("allocated %d bytes; want at most 16 MiB", alloc)
			}
		})
	}
}

// TestIndexHugeDeclaredObject: an object that declares 4 GiB but holds a
// few bytes fails without allocating its declared size, with the default
// limit and with a limit above it.
func TestIndexHugeDeclaredObject(t *testing.T) {
	f := oid.SHA1
	for _, tt := range []struct {
		name string
		max  int64
		typ  object.Type
		want string
	}{
		{"default limit", 0, object.Blob, "exceeds the size limit"},
		{"limit above", 8 << 30, object.Blob, "declared"},
		{"tree, limit above", 8 << 30, object.Tree, "tree, commit or tag exceeds the size limit"},
		{"delta, limit above", 8 << 30, object.RefDelta, "declared"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := rawEntry{typ: tt.typ, size: 4 << 30, data: []byte("tiny")}
			if tt.typ == object.RefDelta {
				e.ref = make([]byte, f.Size())
			}
			p := craft(f, -1, e)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := indexBytes(t, p, Options{Format: f, MaxObjectSize: tt.max,
				Check: func(object.Type, oid.ID, []byte) error { return nil }})
			runtime.ReadMemStats(&after)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v; want an error containing %q", err, tt.want)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
				t.Errorf("allocated %d bytes; want at most 16 MiB", alloc)
			}
		})
	}
}

func TestIndexCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	_, err := Index(ctx, bytes.NewReader(smallPack(oid.SHA1)), Options{Format: oid.SHA1, Dir: dir})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v; want context.Canceled", err)
	}
	if names := dirEntries(t, dir); len(names) != 0 {
		t.Errorf("got files %q left; want none", names)
	}
}

func TestIndexBadOptions(t *testing.T) {
	if _, err := Index(context.Background(), bytes.NewReader(nil), Options{}); err == nil {
		t.Errorf("Index without a format: got nil error; want one")
	}
	if _, err := Index(context.Background(), bytes.NewReader(nil), Options{Format: oid.SHA1, Dir: "/nonexistent/dir"}); err == nil {
		t.Errorf("Index into a missing directory: got nil error; want one")
	}
}

// TestIndexThinFromMemory completes a crafted thin pack whose deltas
// chain through two missing bases, checking ThinBases and the ids.
func TestIndexThinFromMemory(t *testing.T) {
	for _, f := range []oid.Format{oid.SHA1, oid.SHA256} {
		other := []byte("another base object\n")
		otherChild := []byte("another base object, changed\n")
		bases := mapBases{}
		bases[mustID(f, object.Blob, baseBlob)] = struct {
			t    object.Type
			data []byte
		}{object.Blob, baseBlob}
		bases[mustID(f, object.Blob, other)] = struct {
			t    object.Type
			data []byte
		}{object.Blob, other}
		grandChild := append(append([]byte{}, childBlob...), "grand\n"...)
		d1 := rawEntry{typ: object.RefDelta, size: -1, ref: mustID(f, object.Blob, baseBlob).Bytes(), data: delta(baseBlob, childBlob)}
		p := craft(f, -1,
			d1,
			rawEntry{typ: object.OfsDelta, size: -1, ofs: entryLen(d1) + 0, data: delta(childBlob, grandChild)},
			rawEntry{typ: object.RefDelta, size: -1, ref: mustID(f, object.Blob, other).Bytes(), data: delta(other, otherChild)},
		)
		if f == oid.SHA256 {
			// entryLen measures SHA-1 entries; fix the ofs for SHA-256.
			d2 := rawEntry{typ: object.OfsDelta, size: -1, ofs: uint64(len(craft(f, 1, d1)) - pack.HeaderSize - f.Size()), data: delta(childBlob, grandChild)}
			p = craft(f, -1, d1, d2, rawEntry{typ: object.RefDelta, size: -1, ref: mustID(f, object.Blob, other).Bytes(), data: delta(other, otherChild)})
		}
		res, err := indexBytes(t, p, Options{Format: f, Bases: bases})
		if err != nil {
			t.Fatalf("%s: Index: %v", f, err)
		}
		if res.ThinBases != 2 || res.Count != 5 {
			t.Errorf("%s: got ThinBases %d, Count %d; want 2, 5", f, res.ThinBases, res.Count)
		}
		got := parseIdx(t, f, readFile(t, res.IndexPath))
		for _, d := range [][]byte{baseBlob, childBlob, grandChild, other, otherChild} {
			if _, ok := got[mustID(f, object.Blob, d)]; !ok {
				t.Errorf("%s: idx lacks %q", f, d)
			}
		}
		// The completed pack must index to the same idx again.
		res2, err := indexBytes(t, readFile(t, res.PackPath), Options{Format: f})
		if err != nil {
			t.Fatalf("%s: re-index of the completed pack: %v", f, err)
		}
		if !bytes.Equal(readFile(t, res2.IndexPath), readFile(t, res.IndexPath)) {
			t.Errorf("%s: completed pack re-indexes to a different idx", f)
		}
	}
}

// TestIndexLargeBlobStreamed: a blob stored whole is hashed while it
// inflates and never held in memory, with or without Check.
func TestIndexLargeBlobStreamed(t *testing.T) {
	f := oid.SHA1
	big := make([]byte, 64<<20)
	for i := range big {
		big[i] = byte(i / 4096)
	}
	p := craft(f, -1, rawEntry{typ: object.Blob, size: -1, data: big})
	want := mustID(f, object.Blob, big)
	big = nil
	runtime.GC()
	for _, check := range []bool{false, true} {
		opts := Options{Format: f, Threads: 2}
		if check {
			opts.Check = func(object.Type, oid.ID, []byte) error { return nil }
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		res, err := indexBytes(t, p, opts)
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatalf("Index: %v", err)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
			t.Errorf("check=%v: allocated %d bytes for a 64 MiB blob; want at most 8 MiB", check, alloc)
		}
		if got := parseIdx(t, f, readFile(t, res.IndexPath)); len(got) != 1 || got[want] != pack.HeaderSize {
			t.Errorf("check=%v: got idx %v; want %s at offset 12", check, got, want)
		}
	}
}

// TestIndexLimitsAtTheBoundary: limits equal to what the pack needs pass.
func TestIndexLimitsAtTheBoundary(t *testing.T) {
	f := oid.SHA1
	p := smallPack(f)
	var stages []string
	var last uint32
	_, err := indexBytes(t, p, Options{Format: f, MaxPackSize: int64(len(p)), MaxObjects: 5, MaxObjectSize: int64(len(childBlob) + 6),
		Progress: func(stage string, done, total uint32) {
			if done > total {
				t.Errorf("progress %s: done %d > total %d", stage, done, total)
			}
			stages = append(stages, stage)
			last = done
		}})
	if err != nil {
		t.Fatalf("Index with limits at the boundary: %v", err)
	}
	if len(stages) == 0 || stages[len(stages)-1] != "resolving deltas" || last != 2 {
		t.Errorf("got progress stages %q ending at %d; want them to end with resolving deltas at 2", stages, last)
	}
}

// TestIndexLargeDeltaResultStreamed: a delta that makes a 300 MiB blob
// out of a 64 KiB base, in a pack of a few KiB, is resolved when the
// object size bound allows it, and the blob is hashed as the delta
// produces it: the index costs megabytes, not the blob's size (issue
// 18). A delta based on such a blob (a ref-delta: only the blob's id
// tells) still finds it.
func TestIndexLargeDeltaResultStreamed(t *testing.T) {
	f := oid.SHA1
	base := bytes.Repeat([]byte("0123456789abcdef"), 1<<12)
	const size = 300 << 20
	d := pack.AppendDeltaSize(pack.AppendDeltaSize(nil, uint64(len(base))), size)
	for n := 0; n < size; n += 1 << 16 {
		d = append(d, 0x80) // copy the base's 64 KiB
	}
	// The id the blob must get, hashed independently.
	h := f.New()
	h.Write(object.AppendHeader(nil, object.Blob, size))
	for n := 0; n < size; n += len(base) {
		h.Write(base)
	}
	want := oid.MustFromBytes(f, h.Sum(nil))
	baseEntry := rawEntry{typ: object.Blob, size: -1, data: base}
	bomb := rawEntry{typ: object.OfsDelta, size: -1, ofs: entryLen(baseEntry), data: d}
	// A small delta against the big blob, by id: "x" and the rest.
	child := pack.AppendDeltaSize(pack.AppendDeltaSize(nil, size), 2)
	child = append(child, 1, 'x', 0x90, 1)
	for _, tt := range []struct {
		name    string
		entries []rawEntry
		count   int
	}{
		{"leaf", []rawEntry{baseEntry, bomb}, 2},
		{"with a ref-delta child", []rawEntry{baseEntry, bomb, {typ: object.RefDelta, size: -1, ref: want.Bytes(), data: child}}, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := craft(f, -1, tt.entries...)
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			var checked []object.Type
			var mu sync.Mutex
			res, err := indexBytes(t, p, Options{Format: f, MaxObjectSize: 1 << 30, Threads: 2,
				Check: func(typ object.Type, id oid.ID, data []byte) error {
					mu.Lock()
					defer mu.Unlock()
					if id == want && data != nil {
						t.Errorf("Check got %d bytes of the large blob; want nil", len(data))
					}
					checked = append(checked, typ)
					return nil
				}})
			runtime.ReadMemStats(&after)
			if err != nil {
				t.Fatalf("Index: %v", err)
			}
			got := parseIdx(t, f, readFile(t, res.IndexPath))
			if _, ok := got[want]; !ok || len(got) != tt.count || len(checked) != tt.count {
				t.Errorf("got idx %v, %d checked; want %v among %d", got, len(checked), want, tt.count)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("allocated %d KiB for a %d MiB blob", alloc>>10, size>>20)
			if tt.count == 2 && alloc > 16<<20 {
				t.Errorf("allocated %d MiB for a %d MiB blob; want at most 16", alloc>>20, size>>20)
			}
		})
	}
}

// TestIndexParsedSizeBound: trees, commits and tags, which are checked
// whole, are refused over MaxParsedSize even when MaxObjectSize allows
// more, on the size declared by their entry or by the delta that makes
// them, before that size is allocated; a blob made the same way passes.
func TestIndexParsedSizeBound(t *testing.T) {
	f := oid.SHA1
	const size = MaxParsedSize + 1<<16
	// Check accepts anything here: the base need not parse.
	base := bytes.Repeat([]byte("x"), 1<<16)
	copies := pack.AppendDeltaSize(pack.AppendDeltaSize(nil, uint64(len(base))), size)
	for n := 0; n < size; n += 1 << 16 {
		copies = append(copies, 0x80) // copy the base's 64 KiB
	}
	on := func(typ object.Type) []rawEntry {
		e := rawEntry{typ: typ, size: -1, data: base}
		return []rawEntry{e, {typ: object.OfsDelta, size: -1, ofs: entryLen(e), data: copies}}
	}
	for _, tt := range []struct {
		name    string
		entries []rawEntry
		want    error
	}{
		{"whole tree", []rawEntry{{typ: object.Tree, size: size, data: base}}, ErrParsedTooLarge},
		{"whole commit", []rawEntry{{typ: object.Commit, size: size, data: base}}, ErrParsedTooLarge},
		{"delta on a tree", on(object.Tree), ErrParsedTooLarge},
		{"delta on a tag", on(object.Tag), ErrParsedTooLarge},
		{"delta on a blob", on(object.Blob), nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := craft(f, -1, tt.entries...)
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := indexBytes(t, p, Options{Format: f, MaxObjectSize: 1 << 30, Threads: 1,
				Check: func(object.Type, oid.ID, []byte) error { return nil }})
			runtime.ReadMemStats(&after)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("got %v; want %v", err, tt.want)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
				t.Errorf("allocated %d MiB; want at most 16", alloc>>20)
			}
		})
	}
}
