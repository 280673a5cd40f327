package pack

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
)

// packTemplate is a real pack whose index entries FuzzPackRead keeps
// while it mutates the pack's bytes.
type packTemplate struct {
	f    oid.Format
	pack []byte
	ents []IndexEntry // sorted by id
}

// FuzzPackRead reads every object of a mutated small pack through an
// index of the original's entries (whose pack checksum is taken from the
// mutated trailer, so that Open's checks pass). Reads must fail with
// ErrCorrupt or ErrTooLarge or return objects within the size limit
// whose type and size StatObject agrees with, the same with and without
// a delta cache; an unmutated pack must read back every object under its
// id.
func FuzzPackRead(f *testing.F) {
	templates := fuzzTemplates(f)
	for i, tp := range templates {
		f.Add(tp.pack, uint8(i))
	}
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		checkPackRead(t, templates[int(which)%len(templates)], data)
	})
}

// fuzzTemplates returns the packs FuzzPackRead mutates: the stored seeds
// and a crafted pack with a ref-delta.
func fuzzTemplates(f testing.TB) []packTemplate {
	var templates []packTemplate
	for _, spec := range seedSpecs {
		fo, _ := oid.ParseFormat(spec.format)
		x, err := ParseIndex(readSeed(f, spec.name+".idx"), fo)
		if err != nil {
			f.Fatal(err)
		}
		tp := packTemplate{f: fo, pack: readSeed(f, spec.name+".pack")}
		for i := 0; i < x.Count(); i++ {
			tp.ents = append(tp.ents, IndexEntry{ID: x.ID(i), Offset: x.Offset(i)})
		}
		templates = append(templates, tp)
	}
	c := craftPack(f, oid.SHA1, validEntries(oid.SHA1))
	tp := packTemplate{f: oid.SHA1, pack: c.pack}
	for i := range c.ids {
		tp.ents = append(tp.ents, IndexEntry{ID: c.ids[i], Offset: c.offs[i]})
	}
	slices.SortFunc(tp.ents, func(a, b IndexEntry) int { return a.ID.Compare(b.ID) })
	return append(templates, tp)
}

// checkPackRead is the body of FuzzPackRead: data is tp's pack, mutated.
func checkPackRead(t *testing.T, tp packTemplate, data []byte) {
	{
		hs := tp.f.Size()
		if len(data) < hs {
			return
		}
		var idx bytes.Buffer
		if _, err := WriteIndex(&idx, tp.f, append([]IndexEntry(nil), tp.ents...), data[len(data)-hs:]); err != nil {
			t.Fatal(err)
		}
		x, err := ParseIndex(idx.Bytes(), tp.f)
		if err != nil {
			t.Fatal(err)
		}
		opts := Options{MaxObjectSize: 1 << 16, MaxDeltaDepth: 64}
		p, err := newPack("fuzz.pack", &mapping{data: data}, x, opts)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("newPack err = %v; want ErrCorrupt", err)
			}
			return
		}
		opts.Cache = NewDeltaCache(1 << 20)
		cached, _ := newPack("fuzz.pack", &mapping{data: data}, x, opts)
		original := bytes.Equal(data, tp.pack)
		var into []byte // reused by ReadAtInto across all reads
		for round := 0; round < 2; round++ {
			for _, e := range tp.ents {
				typ, obj, err := p.ReadAt(e.Offset)
				ctyp, cobj, cerr := cached.ReadAt(e.Offset)
				if (err == nil) != (cerr == nil) || typ != ctyp || !bytes.Equal(obj, cobj) {
					t.Fatalf("ReadAt(%d) = %v, %d bytes, %v; with a cache %v, %d bytes, %v", e.Offset, typ, len(obj), err, ctyp, len(cobj), cerr)
				}
				styp, sobj, serr := readOpened(p, e.Offset)
				if serr != nil && !errors.Is(serr, ErrCorrupt) && !errors.Is(serr, ErrTooLarge) {
					t.Fatalf("OpenObject(%d) err = %v; want ErrCorrupt or ErrTooLarge", e.Offset, serr)
				}
				if err == nil && (serr != nil || styp != typ || !bytes.Equal(sobj, obj)) {
					t.Fatalf("OpenObject(%d) = %v, %d bytes, %v; ReadAt %v, %d bytes", e.Offset, styp, len(sobj), serr, typ, len(obj))
				}
				ityp, iobj, ierr := cached.ReadAtInto(e.Offset, into)
				if (err == nil) != (ierr == nil) || typ != ityp || !bytes.Equal(obj, iobj) {
					t.Fatalf("ReadAtInto(%d) = %v, %d bytes, %v; ReadAt %v, %d bytes, %v", e.Offset, ityp, len(iobj), ierr, typ, len(obj), err)
				}
				if ierr == nil {
					into = iobj
				}
				if err != nil {
					if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTooLarge) {
						t.Fatalf("ReadAt(%d) err = %v; want ErrCorrupt or ErrTooLarge", e.Offset, err)
					}
					if original {
						t.Fatalf("ReadAt(%d) of the unmutated pack: %v", e.Offset, err)
					}
					continue
				}
				if len(obj) > 1<<16 || !typ.IsBase() {
					t.Fatalf("ReadAt(%d) = %v, %d bytes", e.Offset, typ, len(obj))
				}
				st, size, err := p.statAt(e.Offset)
				if err != nil || st != typ || size != int64(len(obj)) {
					t.Fatalf("statAt(%d) = %v, %d, %v; ReadAt gave %v, %d bytes", e.Offset, st, size, err, typ, len(obj))
				}
				if original {
					if id, _ := object.ID(tp.f, typ, obj); id != e.ID {
						t.Fatalf("object at %d hashes to %s; want %s", e.Offset, id, e.ID)
					}
				}
			}
		}
		for _, e := range tp.ents {
			en, err := p.Entry(e.Offset)
			if err != nil {
				continue
			}
			if en.Offset+uint64(en.HeaderLen) >= en.End || en.End > uint64(len(data)-hs) {
				t.Fatalf("Entry(%d) = %+v in a pack of %d bytes", e.Offset, en, len(data))
			}
			if en.Type == object.OfsDelta && (en.BaseOffset >= en.Offset || en.BaseOffset < HeaderSize) {
				t.Fatalf("Entry(%d) has base offset %d", e.Offset, en.BaseOffset)
			}
			if _, err := p.Bytes(en.Offset, en.End); err != nil {
				t.Fatalf("Bytes(%d, %d): %v", en.Offset, en.End, err)
			}
		}
	}
}

// readOpened reads the object at off through OpenObject.
func readOpened(p *Pack, off uint64) (object.Type, []byte, error) {
	t, size, r, err := p.OpenObject(off)
	if err != nil {
		return 0, nil, err
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, 1<<17))
	if err == nil && uint64(len(data)) != size {
		err = fmt.Errorf("OpenObject said %d bytes, read %d", size, len(data))
	}
	return t, data, err
}
