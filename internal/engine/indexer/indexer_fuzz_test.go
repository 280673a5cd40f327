package indexer

import (
	"bytes"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/pack"
	"gotd/internal/gittest"
)

// FuzzIndex feeds mutated packs to Index. fixTrailer recomputes the
// trailer so that mutations reach delta resolution instead of failing
// the checksum. When Index succeeds, the pack it wrote is parsed again by
// recompute, a simple, unbounded implementation written for this test,
// and the idx must list exactly the objects at exactly the offsets that
// it finds. When Index fails, no file may be left behind.
func FuzzIndex(f *testing.F) {
	for _, format := range []oid.Format{oid.SHA1, oid.SHA256} {
		sha256 := format == oid.SHA256
		f.Add(smallPack(format), sha256, false)
		f.Add(thinPack(format), sha256, false)
		f.Add(craft(format, 0), sha256, false)
	}
	for _, format := range []string{"sha1", "sha256"} {
		dir := repoWithHistory(f, format, 3)
		f.Add(packObjects(f, dir, "", "--all", "--revs", "--delta-base-offset"), format == "sha256", false)
		f.Add(packObjects(f, dir, "", "--all", "--revs"), format == "sha256", false)
		src := repoWithHistory(f, format, 6)
		f.Add(packObjects(f, src, "main\n^main~2\n", "--revs", "--thin"), format == "sha256", false)
	}
	// Crafted overflows and hostile cases.
	blob := rawEntry{typ: object.Blob, size: -1, data: baseBlob}
	huge := pack.AppendDeltaSize(pack.AppendDeltaSize(nil, uint64(len(baseBlob))), 1<<40)
	f.Add(craft(oid.SHA1, -1, blob, rawEntry{typ: object.OfsDelta, size: -1, ofs: entryLen(blob), data: append(huge, 1, 'x')}), false, false)
	f.Add(craft(oid.SHA1, -1, rawEntry{typ: object.Blob, size: 4 << 30, data: []byte("tiny")}), false, false)
	f.Add(craft(oid.SHA1, -1, rawEntry{typ: object.Blob, size: 10, zdata: zlibBytes(make([]byte, 1<<16))}), false, false)
	f.Add(craft(oid.SHA1, 0x7fffffff, blob), false, true)
	f.Add(craft(oid.SHA1, -1, blob, rawEntry{typ: object.OfsDelta, size: -1, ofs: 0, data: delta(baseBlob, childBlob)}), false, false)
	f.Add(append(smallPack(oid.SHA1), "trailing"...), false, false)
	gittest.Env(f) // git must be usable for the seeds above

	noSync = true // thousands of runs; durability is not what is tested
	// Blobs made by deltas are streamed from 64 bytes on: both ways are
	// fuzzed, and checked by recompute.
	saved := streamThreshold
	streamThreshold = 64
	defer func() { noSync, streamThreshold = false, saved }()
	f.Fuzz(func(t *testing.T, data []byte, sha256, fixTrailer bool) {
		format := oid.SHA1
		if sha256 {
			format = oid.SHA256
		}
		if fixTrailer && len(data) >= format.Size() {
			data = withTrailer(format, data[:len(data)-format.Size()])
		}
		opts := Options{
			Format:        format,
			Bases:         fuzzBases(format),
			MaxObjectSize: 1 << 20,
			MaxObjects:    1 << 12,
			Threads:       2,
			WriteRev:      true,
		}
		// Inflating every entry from the stream (scanner.inflate's
		// second way) must end the same as trying the buffer first.
		tryBuffered = false
		opts.Dir = t.TempDir()
		streamRes, streamErr := Index(context.Background(), bytes.NewReader(data), opts)
		tryBuffered = true
		dir := t.TempDir()
		opts.Dir = dir
		r := bytes.NewReader(data)
		res, err := Index(context.Background(), r, opts)
		if (err == nil) != (streamErr == nil) || err != nil && err.Error() != streamErr.Error() {
			t.Fatalf("Index: got %v with the buffer tried first, %v without", err, streamErr)
		}
		if err != nil {
			if names := dirEntries(t, dir); len(names) != 0 {
				t.Fatalf("Index failed (%v) and left files %q", err, names)
			}
			return
		}
		written := readFile(t, res.PackPath)
		if !bytes.Equal(readFile(t, res.IndexPath), readFile(t, streamRes.IndexPath)) || !bytes.Equal(written, readFile(t, streamRes.PackPath)) {
			t.Fatalf("got a different pack or idx with the buffer tried first")
		}
		if res.ThinBases == 0 {
			// The pack is the input's prefix, and nothing after it
			// was read.
			if consumed := len(data) - r.Len(); consumed != len(written) || !bytes.Equal(written, data[:consumed]) {
				t.Fatalf("pack of %d bytes written; %d bytes consumed", len(written), consumed)
			}
		}
		if !bytes.Equal(res.Checksum, written[len(written)-format.Size():]) {
			t.Fatalf("got checksum %x; pack ends in %x", res.Checksum, written[len(written)-format.Size():])
		}
		want, err := recompute(format, written, fuzzBases(format))
		if err != nil {
			t.Fatalf("Index accepted a pack that recompute rejects: %v", err)
		}
		idx, err := pack.ParseIndex(readFile(t, res.IndexPath), format)
		if err != nil {
			t.Fatalf("parse idx: %v", err)
		}
		if idx.Count() != len(want) || int(res.Count) != len(want) {
			t.Fatalf("idx lists %d objects, Count %d; recompute finds %d", idx.Count(), res.Count, len(want))
		}
		for i := 0; i < idx.Count(); i++ {
			off := idx.Offset(i)
			if id, ok := want[off]; !ok || id != idx.ID(i) {
				t.Fatalf("idx lists %s at offset %d; recompute finds %s there", idx.ID(i), off, id)
			}
		}
		if _, err := os.Stat(res.RevPath); err != nil {
			t.Fatalf("rev: %v", err)
		}
	})
}

// thinPack is a pack whose ref-delta needs baseBlob from fuzzBases.
func thinPack(f oid.Format) []byte {
	return craft(f, -1,
		rawEntry{typ: object.RefDelta, size: -1, ref: mustID(f, object.Blob, baseBlob).Bytes(), data: delta(baseBlob, childBlob)},
		rawEntry{typ: object.Blob, size: -1, data: []byte("whole\n")})
}

func fuzzBases(f oid.Format) mapBases {
	m := mapBases{}
	m[mustID(f, object.Blob, baseBlob)] = struct {
		t    object.Type
		data []byte
	}{object.Blob, baseBlob}
	return m
}

// recompute parses a whole pack held in memory, the simple way, and
// returns the id of the object at each entry offset.
func recompute(f oid.Format, p []byte, bases mapBases) (map[uint64]oid.ID, error) {
	count, err := pack.ParseHeader(p)
	if err != nil {
		return nil, err
	}
	type raw struct {
		typ     object.Type
		data    []byte
		baseOff uint64
		baseID  oid.ID
	}
	entries := map[uint64]*raw{}
	var order []uint64
	off := uint64(pack.HeaderSize)
	for i := uint32(0); i < count; i++ {
		if off >= uint64(len(p)) {
			return nil, errors.New("truncated")
		}
		typ, size, n, err := pack.ParseEntryHeader(p[off:])
		if err != nil {
			return nil, err
		}
		e := &raw{typ: typ}
		pos := off + uint64(n)
		switch typ {
		case object.OfsDelta:
			ofs, n, err := pack.ParseOfs(p[pos:])
			if err != nil {
				return nil, err
			}
			if ofs == 0 || ofs > off {
				return nil, errors.New("bad ofs")
			}
			e.baseOff = off - ofs
			pos += uint64(n)
		case object.RefDelta:
			if pos+uint64(f.Size()) > uint64(len(p)) {
				return nil, errors.New("truncated")
			}
			e.baseID = oid.MustFromBytes(f, p[pos:pos+uint64(f.Size())])
			pos += uint64(f.Size())
		}
		br := bytes.NewReader(p[pos:])
		zr, err := zlib.NewReader(br)
		if err != nil {
			return nil, err
		}
		if e.data, err = io.ReadAll(zr); err != nil {
			return nil, err
		}
		if uint64(len(e.data)) != size {
			return nil, fmt.Errorf("size %d, declared %d", len(e.data), size)
		}
		entries[off] = e
		order = append(order, off)
		off = pos + uint64(br.Size()) - uint64(br.Len())
	}
	if off+uint64(f.Size()) != uint64(len(p)) {
		return nil, errors.New("trailer not at the end")
	}

	ids := map[uint64]oid.ID{}
	types := map[uint64]object.Type{}
	contents := map[uint64][]byte{}
	byID := map[oid.ID]uint64{}
	// Resolve in rounds until nothing changes: each round resolves the
	// deltas whose bases are known.
	for changed := true; changed; {
		changed = false
		for _, off := range order {
			if _, done := ids[off]; done {
				continue
			}
			e := entries[off]
			var typ object.Type
			var data []byte
			switch e.typ {
			case object.OfsDelta, object.RefDelta:
				var base []byte
				if e.typ == object.OfsDelta {
					if _, ok := ids[e.baseOff]; !ok {
						continue
					}
					typ, base = types[e.baseOff], contents[e.baseOff]
				} else if boff, ok := byID[e.baseID]; ok {
					typ, base = types[boff], contents[boff]
				} else if o, ok := bases[e.baseID]; ok {
					typ, base = o.t, o.data
				} else {
					continue
				}
				d, err := pack.ApplyDelta(nil, base, e.data, 1<<30)
				if err != nil {
					return nil, err
				}
				data = d
			default:
				typ, data = e.typ, e.data
			}
			id, err := object.ID(f, typ, data)
			if err != nil {
				return nil, err
			}
			ids[off], types[off], contents[off] = id, typ, data
			if _, ok := byID[id]; !ok {
				byID[id] = off
			}
			changed = true
		}
	}
	if len(ids) != len(order) {
		return nil, fmt.Errorf("%d of %d entries unresolved", len(order)-len(ids), len(order))
	}
	return ids, nil
}

// FuzzInflaters checks what the scan's first try (scanner.inflate)
// relies on: when klauspost's inflater, reading from memory, takes a zlib
// stream, compress/flate's takes it too, with the same content and the
// same end, so that trying the buffered bytes first changes neither what
// the scan accepts nor where it finds the next entry. (The other way
// round is allowed: then the scan inflates from the stream.)
func FuzzInflaters(f *testing.F) {
	text := bytes.Repeat([]byte("tree 1234 blob abcd parent \x00\x01\x02 "), 300)
	for _, level := range []int{zlib.NoCompression, zlib.BestSpeed, zlib.DefaultCompression, zlib.HuffmanOnly} {
		var b bytes.Buffer
		w, _ := zlib.NewWriterLevel(&b, level)
		w.Write(text)
		w.Close()
		f.Add(append(b.Bytes(), "next entry"...))
	}
	f.Add(zlibBytes(nil))
	f.Add(zlibBytes([]byte("x")))
	// A non-final stored block, then a final fixed Huffman block holding
	// only its end code (the shortest block after a non-final one).
	f.Add([]byte{0x78, 0x01, 0x00, 0x01, 0x00, 0xfe, 0xff, 'a', 0x03, 0x00, 0x00, 0x62, 0x00, 0x62, 0xff})
	const limit = 1 << 20
	inflate := func(z *inflater, p []byte) (out []byte, used int, err error) {
		br := bytes.NewReader(p)
		if err := z.reset(br, true); err != nil {
			return nil, 0, err
		}
		out, err = io.ReadAll(io.LimitReader(z, limit+1))
		if err == nil && len(out) > limit {
			err = errors.New("too long")
		}
		return out, len(p) - br.Len(), err
	}
	slow, fast := newInflater(), newFastInflater()
	f.Fuzz(func(t *testing.T, p []byte) {
		fout, fused, ferr := inflate(fast, p)
		if ferr != nil {
			return
		}
		sout, sused, serr := inflate(slow, p)
		if serr != nil {
			t.Fatalf("klauspost took %d bytes, compress/flate failed: %v", fused, serr)
		}
		if fused != sused || !bytes.Equal(fout, sout) {
			t.Fatalf("klauspost took %d bytes into %d; compress/flate %d into %d", fused, len(fout), sused, len(sout))
		}
	})
}
