package pack

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/gittest"
)

// gitObject is an object as git cat-file --batch prints it.
type gitObject struct {
	t    object.Type
	data []byte
}

// catAll returns every object of the repository at dir, read by C Git.
func catAll(t testing.TB, dir string, f oid.Format) map[oid.ID]gitObject {
	t.Helper()
	out := gittest.Git(t, dir, "cat-file", "--batch-all-objects", "--batch")
	br := bufio.NewReader(strings.NewReader(out))
	objs := map[oid.ID]gitObject{}
	for {
		hdr, err := br.ReadString('\n')
		if err == io.EOF {
			return objs
		}
		fl := strings.Fields(hdr)
		if err != nil || len(fl) != 3 {
			t.Fatalf("cat-file header %q: %v", hdr, err)
		}
		id, err := oid.ParseHex(f, fl[0])
		if err != nil {
			t.Fatal(err)
		}
		typ, err := object.ParseType([]byte(fl[1]))
		if err != nil {
			t.Fatal(err)
		}
		size, _ := strconv.Atoi(fl[2])
		data := make([]byte, size+1)
		if _, err := io.ReadFull(br, data); err != nil {
			t.Fatal(err)
		}
		objs[id] = gitObject{typ, data[:size]}
	}
}

// showIndex returns the entries of the .idx at path as git show-index
// prints them, in index order.
func showIndex(t testing.TB, f oid.Format, path string) []IndexEntry {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := gittest.GitInput(t, "", data, "show-index", "--object-format="+f.String())
	var ents []IndexEntry
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var off uint64
		var hex string
		var crc uint32
		if _, err := fmt.Sscanf(line, "%d %s (%x)", &off, &hex, &crc); err != nil {
			t.Fatalf("show-index line %q: %v", line, err)
		}
		id, err := oid.ParseHex(f, hex)
		if err != nil {
			t.Fatal(err)
		}
		ents = append(ents, IndexEntry{ID: id, Offset: off, CRC32: crc})
	}
	return ents
}

// verifyLine is one object line of git verify-pack -v.
type verifyLine struct {
	id       oid.ID
	typ      string
	size     uint64
	inPack   uint64
	offset   uint64
	depth    int
	base     oid.ID
	hasDelta bool
}

func verifyPack(t testing.TB, f oid.Format, dir, idxPath string) []verifyLine {
	t.Helper()
	out := gittest.Git(t, dir, "verify-pack", "-v", idxPath)
	var lines []verifyLine
	for _, line := range strings.Split(out, "\n") {
		fl := strings.Fields(line)
		if len(fl) < 5 || len(fl[0]) != f.HexSize() {
			continue
		}
		var v verifyLine
		var err error
		if v.id, err = oid.ParseHex(f, fl[0]); err != nil {
			continue
		}
		v.typ = fl[1]
		v.size, _ = strconv.ParseUint(fl[2], 10, 64)
		v.inPack, _ = strconv.ParseUint(fl[3], 10, 64)
		v.offset, _ = strconv.ParseUint(fl[4], 10, 64)
		if len(fl) == 7 {
			v.hasDelta = true
			v.depth, _ = strconv.Atoi(fl[5])
			if v.base, err = oid.ParseHex(f, fl[6]); err != nil {
				t.Fatalf("verify-pack line %q: %v", line, err)
			}
		}
		lines = append(lines, v)
	}
	return lines
}

// onePack returns the path of the only pack of the repository at dir.
func onePack(t testing.TB, dir string) string {
	t.Helper()
	packs, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "pack-*.pack"))
	if len(packs) != 1 {
		t.Fatalf("packs = %v; want one", packs)
	}
	return packs[0]
}

// generated returns a bare repository of the given format with a
// generated history, packed as fast-import leaves it.
func generated(t testing.TB, format string) (string, oid.Format) {
	t.Helper()
	f, err := oid.ParseFormat(format)
	if err != nil {
		t.Fatal(err)
	}
	dir := gittest.InitBare(t, format)
	gittest.Generate(t, dir, gittest.History{Commits: 40, Branches: 2, Files: 12})
	return dir, f
}

var formats = []string{"sha1", "sha256"}

// TestPackMatchesGit reads every object of packs C Git wrote in various
// ways and compares with what git cat-file, git show-index and git
// verify-pack report.
func TestPackMatchesGit(t *testing.T) {
	type setup struct {
		name      string
		cmds      [][]string
		wantRev   bool
		wantDelta object.Type // a kind of delta the pack must have
	}
	setups := []setup{
		{name: "fast-import", wantDelta: object.OfsDelta},
		{name: "repack-adf", cmds: [][]string{{"repack", "-q", "-adf"}}, wantDelta: object.OfsDelta},
		{name: "gc-aggressive", cmds: [][]string{{"gc", "-q", "--aggressive", "--prune=now"}}, wantDelta: object.OfsDelta},
		{name: "deep", cmds: [][]string{{"repack", "-q", "-adf", "--depth=4095", "--window=250"}}, wantDelta: object.OfsDelta},
		{name: "bitmap", cmds: [][]string{{"repack", "-q", "-ad", "--write-bitmap-index"}}, wantDelta: object.OfsDelta},
		{name: "ref-delta", cmds: [][]string{{"-c", "repack.useDeltaBaseOffset=false", "repack", "-q", "-adf"}}, wantDelta: object.RefDelta},
		{name: "write-rev-config", cmds: [][]string{{"-c", "pack.writeReverseIndex=true", "repack", "-q", "-adf"}}, wantRev: true, wantDelta: object.OfsDelta},
		{name: "index-pack-rev", cmds: [][]string{{"repack", "-q", "-adf"}, {"index-pack", "--rev-index", "PACK"}}, wantRev: true, wantDelta: object.OfsDelta},
	}
	for _, format := range formats {
		for _, s := range setups {
			t.Run(format+"/"+s.name, func(t *testing.T) {
				t.Parallel()
				dir, f := generated(t, format)
				for _, cmd := range s.cmds {
					cmd = slices.Clone(cmd)
					for i := range cmd {
						if cmd[i] == "PACK" {
							cmd[i] = onePack(t, dir)
						}
					}
					gittest.Git(t, dir, cmd...)
				}
				path := onePack(t, dir)
				want := catAll(t, dir, f)
				for _, cache := range []*DeltaCache{nil, NewDeltaCache(1 << 20)} {
					p, err := Open(path, f, Options{Cache: cache})
					if err != nil {
						t.Fatalf("Open: %v", err)
					}
					// The .rev is opened when the order is first needed.
					if p.rev != nil {
						t.Errorf("Open mapped the .rev before any use of the pack order")
					}
					p.orderReady()
					if got := p.rev != nil; got != s.wantRev {
						t.Errorf("pack uses a .rev: got %v; want %v", got, s.wantRev)
					}
					kinds := comparePack(t, dir, p, want)
					if kinds[s.wantDelta] == 0 {
						t.Errorf("pack has no %v entries; entry kinds %v", s.wantDelta, kinds)
					}
					if err := p.Close(); err != nil {
						t.Errorf("Close: %v", err)
					}
				}
			})
		}
	}
}

// comparePack checks p against C Git's view of it and returns how many
// entries of each kind it has.
func comparePack(t *testing.T, dir string, p *Pack, want map[oid.ID]gitObject) map[object.Type]int {
	t.Helper()
	f := p.Format()
	idxPath := strings.TrimSuffix(p.Path(), ".pack") + ".idx"
	ents := showIndex(t, f, idxPath)
	if got := p.Count(); got != len(ents) {
		t.Fatalf("Count() = %d; want %d (show-index)", got, len(ents))
	}
	inPack := map[oid.ID]gitObject{}
	for _, e := range ents {
		w, ok := want[e.ID]
		if !ok {
			t.Fatalf("git cat-file does not list %s", e.ID)
		}
		inPack[e.ID] = w
	}
	want = inPack
	if err := p.Index().Verify(); err != nil {
		t.Errorf("Index().Verify() = %v; want nil", err)
	}
	for i, e := range ents {
		x := p.Index()
		if x.ID(i) != e.ID || x.Offset(i) != e.Offset || x.CRC32(i) != e.CRC32 {
			t.Fatalf("index entry %d = %s %d %08x; want %s %d %08x", i, x.ID(i), x.Offset(i), x.CRC32(i), e.ID, e.Offset, e.CRC32)
		}
		if got, ok := x.Find(e.ID); !ok || got != i {
			t.Fatalf("Find(%s) = %d, %v; want %d, true", e.ID, got, ok, i)
		}
	}

	for id, w := range want {
		typ, data, err := p.ReadObject(id)
		if err != nil || typ != w.t || !bytes.Equal(data, w.data) {
			t.Fatalf("ReadObject(%s) = %v, %d bytes, %v; want %v, %d bytes", id, typ, len(data), err, w.t, len(w.data))
		}
		st, size, err := p.StatObject(id)
		if err != nil || st != w.t || size != int64(len(w.data)) {
			t.Errorf("StatObject(%s) = %v, %d, %v; want %v, %d", id, st, size, err, w.t, len(w.data))
		}
		if !p.HasObject(id) {
			t.Errorf("HasObject(%s) = false", id)
		}
	}
	// ReadAtInto with one buffer for all: each result must be whole
	// and right although the buffer held the previous one, and reading
	// into it must not have spoilt the cached bases of later reads.
	var buf []byte
	reused := 0
	for _, e := range ents {
		typ, data, err := p.ReadAtInto(e.Offset, buf)
		w := want[e.ID]
		if err != nil || typ != w.t || !bytes.Equal(data, w.data) {
			t.Fatalf("ReadAtInto(%d) of %s = %v, %d bytes, %v; want %v, %d bytes", e.Offset, e.ID, typ, len(data), err, w.t, len(w.data))
		}
		if len(data) > 0 && cap(buf) >= len(data) && &data[:1][0] == &buf[:1][0] {
			reused++
		}
		buf = data
	}
	if reused == 0 {
		t.Errorf("ReadAtInto never used the buffer it was given")
	}
	// ReadAtIntoLimit gives an object whole at its exact size and
	// refuses it one byte below, with ErrTooLarge, whether it is a base,
	// a delta or cached.
	for pass := range 2 {
		for _, e := range ents {
			w := want[e.ID]
			n := int64(len(w.data))
			typ, data, err := p.ReadAtIntoLimit(e.Offset, nil, n)
			if err != nil || typ != w.t || !bytes.Equal(data, w.data) {
				t.Fatalf("pass %d: ReadAtIntoLimit(%d, %d) of %s = %v, %d bytes, %v; want %v, %d bytes", pass, e.Offset, n, e.ID, typ, len(data), err, w.t, n)
			}
			if n == 0 {
				continue
			}
			if _, data, err := p.ReadAtIntoLimit(e.Offset, nil, n-1); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("pass %d: ReadAtIntoLimit(%d, %d) of %s = %d bytes, %v; want ErrTooLarge", pass, e.Offset, n-1, e.ID, len(data), err)
			}
		}
	}
	// ReadPrefixAt gives the start of every object, whole when short.
	for _, e := range ents {
		w := want[e.ID]
		for _, n := range []int{0, 1, 100} {
			typ, data, whole, err := p.ReadPrefixAt(e.Offset, nil, n)
			if err != nil || typ != w.t || !bytes.HasPrefix(w.data, data) ||
				whole != (len(data) == len(w.data)) || !whole && len(data) != n || len(w.data) <= n && !whole {
				t.Fatalf("ReadPrefixAt(%d, %d) of %s = %v, %d bytes, whole %v, %v; want %v, %d bytes", e.Offset, n, e.ID, typ, len(data), whole, err, w.t, len(w.data))
			}
		}
	}
	missing := oid.Zero(f)
	if _, _, err := p.ReadObject(missing); !errors.Is(err, object.ErrNotFound) {
		t.Errorf("ReadObject(null) err = %v; want ErrNotFound", err)
	}
	if _, _, err := p.StatObject(missing); !errors.Is(err, object.ErrNotFound) {
		t.Errorf("StatObject(null) err = %v; want ErrNotFound", err)
	}

	// Pack order: show-index's entries sorted by offset.
	byOffset := slices.Clone(ents)
	slices.SortFunc(byOffset, func(a, b IndexEntry) int { return cmp.Compare(a.Offset, b.Offset) })
	for k, e := range byOffset {
		if got, ok := p.PackPos(e.ID); !ok || got != k {
			t.Fatalf("PackPos(%s) = %d, %v; want %d", e.ID, got, ok, k)
		}
		if got, err := p.IDAtPackPos(k); err != nil || got != e.ID {
			t.Fatalf("IDAtPackPos(%d) = %s, %v; want %s", k, got, err, e.ID)
		}
		if got := p.OffsetAtPackPos(k); got != e.Offset {
			t.Fatalf("OffsetAtPackPos(%d) = %d; want %d", k, got, e.Offset)
		}
		if got, ok := p.IDAt(e.Offset); !ok || got != e.ID {
			t.Fatalf("IDAt(%d) = %s, %v; want %s", e.Offset, got, ok, e.ID)
		}
	}
	if _, err := p.IDAtPackPos(len(ents)); err == nil {
		t.Errorf("IDAtPackPos(%d) succeeded past the end", len(ents))
	}
	if got := p.OffsetAtPackPos(-1); got != 0 {
		t.Errorf("OffsetAtPackPos(-1) = %d; want 0", got)
	}

	// Entries as verify-pack reports them, tiling the pack.
	lines := verifyPack(t, f, dir, idxPath)
	if len(lines) != len(ents) {
		t.Fatalf("verify-pack lists %d objects; want %d", len(lines), len(ents))
	}
	end := uint64(HeaderSize)
	kinds := map[object.Type]int{}
	slices.SortFunc(lines, func(a, b verifyLine) int { return cmp.Compare(a.offset, b.offset) })
	for _, v := range lines {
		e, err := p.Entry(v.offset)
		if err != nil {
			t.Fatalf("Entry(%d): %v", v.offset, err)
		}
		if e.Offset != end || e.End-e.Offset != v.inPack {
			t.Fatalf("Entry(%d) spans %d-%d; want %d-%d", v.offset, e.Offset, e.End, end, v.offset+v.inPack)
		}
		end = e.End
		kinds[e.Type]++
		switch {
		case !v.hasDelta:
			if e.Type.String() != v.typ || e.Size != v.size {
				t.Errorf("Entry(%d) = %v %d; want %s %d", v.offset, e.Type, e.Size, v.typ, v.size)
			}
		case e.Type == object.OfsDelta:
			if base, ok := p.IDAt(e.BaseOffset); !ok || base != v.base {
				t.Errorf("Entry(%d) base at %d is %s; want %s", v.offset, e.BaseOffset, base, v.base)
			}
		case e.Type == object.RefDelta:
			if e.BaseID != v.base {
				t.Errorf("Entry(%d) base = %s; want %s", v.offset, e.BaseID, v.base)
			}
		default:
			t.Errorf("Entry(%d) type %v; verify-pack says a delta", v.offset, e.Type)
		}
		raw, err := p.Bytes(e.Offset, e.End)
		if err != nil || uint64(len(raw)) != v.inPack {
			t.Errorf("Bytes(%d, %d) = %d bytes, %v", e.Offset, e.End, len(raw), err)
		}
	}
	if trailer := uint64(p.Size()) - uint64(f.Size()); end != trailer {
		t.Errorf("entries end at %d; the trailer starts at %d", end, trailer)
	}
	if !bytes.Equal(p.Checksum(), p.Index().PackChecksum()) {
		t.Errorf("Checksum() = %x; want %x", p.Checksum(), p.Index().PackChecksum())
	}
	if _, err := p.Entry(end); err == nil {
		t.Errorf("Entry at the trailer succeeded")
	}
	if _, err := p.Bytes(0, uint64(p.Size())+1); err == nil {
		t.Errorf("Bytes past the end succeeded")
	}
	return kinds
}

// TestPackConcurrentReads reads every object from many goroutines
// sharing a cache small enough to evict all the time; run it with -race.
func TestPackConcurrentReads(t *testing.T) {
	dir, f := generated(t, "sha1")
	gittest.Git(t, dir, "repack", "-q", "-adf", "--depth=50")
	want := catAll(t, dir, f)
	p, err := Open(onePack(t, dir), f, Options{Cache: NewDeltaCache(64 << 10)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ids := make([]oid.ID, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := range ids {
				id := ids[(i*7+g*13)%len(ids)]
				typ, data, err := p.ReadObject(id)
				if err == nil && (typ != want[id].t || !bytes.Equal(data, want[id].data)) {
					err = fmt.Errorf("ReadObject(%s) differs from git", id)
				}
				if _, ok := p.PackPos(id); err == nil && !ok {
					err = fmt.Errorf("PackPos(%s) not found", id)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestOpenMismatch checks that Open refuses a pack and index that do not
// belong together, and broken pack files.
func TestOpenMismatch(t *testing.T) {
	dir, f := generated(t, "sha1")
	gittest.Git(t, dir, "repack", "-q", "-adf")
	path := onePack(t, dir)
	packData, _ := os.ReadFile(path)
	idxData, _ := os.ReadFile(strings.TrimSuffix(path, ".pack") + ".idx")
	flip := func(b []byte, i int) []byte {
		b = slices.Clone(b)
		b[i] ^= 0x40
		return b
	}
	count := func(b []byte, n uint32) []byte {
		b = slices.Clone(b)
		copy(b[8:], appendBE32(nil, n))
		return b
	}
	for _, tc := range []struct {
		name string
		pack []byte
		idx  []byte
	}{
		{"pack checksum mismatch", flip(packData, len(packData)-1), idxData},
		{"index of another pack", packData, flip(idxData, len(idxData)-f.Size()-1)},
		{"count mismatch", count(packData, uint32(len(idxData))), idxData},
		{"bad signature", flip(packData, 0), idxData},
		{"bad version", flip(packData, 7), idxData},
		{"truncated pack", packData[:HeaderSize+f.Size()-1], idxData},
		{"empty pack", []byte{}, idxData},
		{"truncated index", packData, idxData[:len(idxData)-1]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := t.TempDir()
			pp := filepath.Join(d, "pack-x.pack")
			os.WriteFile(pp, tc.pack, 0o644)
			os.WriteFile(filepath.Join(d, "pack-x.idx"), tc.idx, 0o644)
			if p, err := Open(pp, f, Options{}); err == nil {
				p.Close()
				t.Fatalf("Open succeeded; want an error")
			} else if !errors.Is(err, ErrCorrupt) {
				t.Errorf("Open err = %v; want ErrCorrupt", err)
			}
		})
	}
	if _, err := Open(filepath.Join(dir, "missing.pack"), f, Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open(missing) err = %v; want ErrNotExist", err)
	}
	if _, err := Open(strings.TrimSuffix(path, ".pack")+".idx", f, Options{}); err == nil {
		t.Errorf("Open(.idx name) succeeded")
	}
	// A broken .rev is ignored: the order is computed instead.
	os.WriteFile(strings.TrimSuffix(path, ".pack")+".rev", []byte("RIDX garbage"), 0o644)
	p, err := Open(path, f, Options{})
	if err != nil {
		t.Fatalf("Open with a broken .rev: %v", err)
	}
	defer p.Close()
	p.orderReady()
	if p.rev != nil {
		t.Errorf("broken .rev was used")
	}
	comparePack(t, dir, p, catAll(t, dir, f))
}

// BenchmarkReadObjects reads every object of a pack C Git wrote with
// deep deltas, with a delta cache as the repository layer uses one.
func BenchmarkReadObjects(b *testing.B) {
	dir := gittest.InitBare(b, "sha1")
	gittest.Generate(b, dir, gittest.History{Commits: 200, Branches: 4, Files: 40})
	gittest.Git(b, dir, "repack", "-q", "-adf", "--depth=50")
	p, err := Open(onePack(b, dir), oid.SHA1, Options{Cache: NewDeltaCache(16 << 20)})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	offs := make([]uint64, p.Count())
	for i := range offs {
		offs[i] = p.Index().Offset(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, off := range offs {
			if _, _, err := p.ReadAt(off); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func TestSortByHigh32(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 255, 256, 257, 10000} {
		keys := make([]uint64, n)
		for i := range keys {
			keys[i] = uint64(rng.Uint32())<<32 | uint64(i)
		}
		want := slices.Clone(keys)
		slices.Sort(want)
		sortByHigh32(keys)
		if !slices.Equal(keys, want) {
			t.Fatalf("n %d: sorted wrong", n)
		}
	}
}
