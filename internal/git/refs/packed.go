package refs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"gotd/internal/git/oid"
)

// The packed-refs file (git-pack-refs(1); C Git's refs/packed-backend.c
// is the reference for the format) is an optional header line
// "# pack-refs with: <traits> \n" followed by records: "<hex> <name>\n",
// each optionally followed by "^<hex>\n", the id an annotated tag peels
// to.
const packedHeaderPrefix = "# pack-refs with: "

// peelTrait says which records without a "^" line are known not to peel.
type peelTrait uint8

const (
	peelNone peelTrait = iota // nothing is known beyond "^" lines
	peelTags                  // "peeled": records under refs/tags/ are known
	peelFull                  // "fully-peeled": every record is known
)

const (
	// maxPackedSize bounds the packed-refs file we map: some 50 million
	// references, far beyond any real repository.
	maxPackedSize = 1 << 32
	// mmapThreshold is the size from which the file is mapped instead
	// of read; small files are cheaper to read.
	mmapThreshold = 64 << 10
)

// ErrCorruptPacked is wrapped by errors for a packed-refs file that does
// not follow the format.
var ErrCorruptPacked = errors.New("refs: corrupt packed-refs file")

// packed is a read-only view of one version of the packed-refs file. The
// caller must close it; names it returns alias the view and must be
// copied before then.
type packed struct {
	format oid.Format
	data   []byte
	body   int // offset of the first record
	trait  peelTrait
	sorted bool
	mapped bool
	order  []int // record offsets in name order, built lazily when !sorted
}

// record is one parsed packed-refs entry. name aliases the file.
type record struct {
	name      []byte
	id        oid.ID
	peeled    oid.ID
	hasPeeled bool
}

// openPacked opens the current packed-refs file; a missing file is an
// empty view.
func (s *Store) openPacked() (*packed, error) {
	p, err := openPackedFile(filepath.Join(s.gitDir, "packed-refs"), s.format)
	if err != nil {
		return nil, fmt.Errorf("refs: %w", err)
	}
	return p, nil
}

func openPackedFile(path string, f oid.Format) (*packed, error) {
	p := &packed{format: f, sorted: true}
	fd, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return p, nil
	}
	if err != nil {
		return nil, err
	}
	defer fd.Close()
	st, err := fd.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	switch {
	case size == 0:
		return p, nil
	case size > maxPackedSize:
		return nil, fmt.Errorf("%w: %d bytes is too large", ErrCorruptPacked, size)
	case size < mmapThreshold:
		p.data = make([]byte, size)
		// The file may shrink under a writer that does not rename;
		// a short read leaves a truncated view that parse rejects.
		n, err := io.ReadFull(fd, p.data)
		if err != nil && err != io.ErrUnexpectedEOF {
			return nil, err
		}
		p.data = p.data[:n]
	default:
		p.data, err = unix.Mmap(int(fd.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			return nil, fmt.Errorf("mmap packed-refs: %w", err)
		}
		p.mapped = true
	}
	if err := p.parseHeader(); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// parsePacked is openPackedFile for data already in memory.
func parsePacked(f oid.Format, data []byte) (*packed, error) {
	p := &packed{format: f, data: data, sorted: true}
	if len(data) == 0 {
		return p, nil
	}
	if err := p.parseHeader(); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *packed) close() {
	if p.mapped {
		unix.Munmap(p.data)
		p.mapped = false
	}
	p.data = nil
}

func (p *packed) parseHeader() error {
	if p.data[len(p.data)-1] != '\n' {
		return fmt.Errorf("%w: unterminated last line", ErrCorruptPacked)
	}
	p.sorted = false
	if p.data[0] != '#' {
		return nil
	}
	eol := bytes.IndexByte(p.data, '\n')
	line := p.data[:eol]
	if !bytes.HasPrefix(line, []byte(packedHeaderPrefix)) {
		return fmt.Errorf("%w: unexpected header %q", ErrCorruptPacked, clip(line))
	}
	for _, t := range strings.Fields(string(line[len(packedHeaderPrefix):])) {
		switch t {
		case "fully-peeled":
			p.trait = peelFull
		case "peeled":
			if p.trait == peelNone {
				p.trait = peelTags
			}
		case "sorted":
			p.sorted = true
		}
	}
	p.body = eol + 1
	return nil
}

func clip(b []byte) []byte {
	if len(b) > 80 {
		return b[:80]
	}
	return b
}

// parseRecord parses the record starting at off and returns it with the
// offset of the next record.
func (p *packed) parseRecord(off int) (record, int, error) {
	var r record
	data := p.data
	eol := bytes.IndexByte(data[off:], '\n')
	if eol < 0 {
		return r, 0, fmt.Errorf("%w: unterminated line at offset %d", ErrCorruptPacked, off)
	}
	line := data[off : off+eol]
	hs := p.format.HexSize()
	if len(line) < hs+2 || line[hs] != ' ' {
		return r, 0, fmt.Errorf("%w: bad line %q", ErrCorruptPacked, clip(line))
	}
	id, err := parseHexLower(p.format, line[:hs])
	if err != nil {
		return r, 0, fmt.Errorf("%w: bad line %q", ErrCorruptPacked, clip(line))
	}
	r.id, r.name = id, line[hs+1:]
	next := off + eol + 1
	if next < len(data) && data[next] == '^' {
		eol := bytes.IndexByte(data[next:], '\n')
		if eol < 0 || eol != hs+1 {
			return r, 0, fmt.Errorf("%w: bad peeled line after %q", ErrCorruptPacked, clip(r.name))
		}
		if r.peeled, err = parseHexLower(p.format, data[next+1:next+eol]); err != nil {
			return r, 0, fmt.Errorf("%w: bad peeled line after %q", ErrCorruptPacked, clip(r.name))
		}
		r.hasPeeled = true
		next += eol + 1
	}
	return r, next, nil
}

// knowsPeeled reports whether the file says what r peels to.
func (p *packed) knowsPeeled(r *record) bool {
	return r.hasPeeled || p.trait == peelFull || p.trait == peelTags && hasPrefixBytes(r.name, "refs/tags/")
}

// ref converts a record to a Ref, filling Peeled when the file knows it.
func (p *packed) ref(r *record) Ref {
	ref := Ref{Name: string(r.name), ID: r.id}
	switch {
	case r.hasPeeled:
		ref.Peeled = r.peeled
	case p.knowsPeeled(r):
		ref.Peeled = r.id
	}
	return ref
}

// recordStart returns the offset of the record holding the byte at pos,
// not looking before lo, which must be a record boundary.
func (p *packed) recordStart(lo, pos int) int {
	for pos > lo && p.data[pos-1] != '\n' {
		pos--
	}
	if pos > lo && p.data[pos] == '^' {
		pos--
		for pos > lo && p.data[pos-1] != '\n' {
			pos--
		}
	}
	return pos
}

// seek returns the offset of the first record whose name is not less
// than key (len(data) if none) in a sorted file.
func (p *packed) seek(key string) (int, error) {
	lo, hi := p.body, len(p.data)
	for lo < hi {
		mid := p.recordStart(lo, lo+(hi-lo)/2)
		r, next, err := p.parseRecord(mid)
		if err != nil {
			return 0, err
		}
		if compareBytesString(r.name, key) < 0 {
			lo = next
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// buildOrder indexes the records of an unsorted file by name.
func (p *packed) buildOrder() error {
	if p.order != nil {
		return nil
	}
	type span struct{ off, name, end int }
	var spans []span
	for off := p.body; off < len(p.data); {
		r, next, err := p.parseRecord(off)
		if err != nil {
			return err
		}
		start := off + p.format.HexSize() + 1
		spans = append(spans, span{off, start, start + len(r.name)})
		off = next
	}
	slices.SortStableFunc(spans, func(a, b span) int {
		return bytes.Compare(p.data[a.name:a.end], p.data[b.name:b.end])
	})
	p.order = make([]int, len(spans))
	for i, s := range spans {
		p.order[i] = s.off
	}
	if p.order == nil {
		p.order = []int{}
	}
	return nil
}

// read returns the packed reference name: a binary search in a sorted
// file, a scan of an unsorted one (sorting it would cost more).
func (p *packed) read(name string) (Ref, error) {
	if !p.sorted && p.order == nil {
		return p.scan(name)
	}
	it, err := p.iter(name)
	if err != nil {
		return Ref{}, err
	}
	r, ok, err := it.next()
	if err != nil {
		return Ref{}, err
	}
	if !ok || string(r.name) != name {
		return Ref{}, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	return p.ref(&r), nil
}

// scan looks name up by reading every record of the file.
func (p *packed) scan(name string) (Ref, error) {
	var found record
	ok := false
	hs := p.format.HexSize()
	for off := p.body; off < len(p.data); {
		// Only a line that names the reference is parsed in full;
		// the others are only checked for shape.
		eol := bytes.IndexByte(p.data[off:], '\n')
		if eol < hs+2 || p.data[off] == '^' || string(p.data[off+hs+1:off+eol]) != name {
			if eol < 0 {
				return Ref{}, fmt.Errorf("%w: unterminated line at offset %d", ErrCorruptPacked, off)
			}
			if p.data[off] == '^' && eol != hs+1 || p.data[off] != '^' && (eol < hs+2 || p.data[off+hs] != ' ') {
				return Ref{}, fmt.Errorf("%w: bad line %q", ErrCorruptPacked, clip(p.data[off:off+eol]))
			}
			off += eol + 1
			continue
		}
		r, next, err := p.parseRecord(off)
		if err != nil {
			return Ref{}, err
		}
		if ok {
			return Ref{}, fmt.Errorf("%w: %q duplicated", ErrCorruptPacked, clip(r.name))
		}
		found, ok = r, true
		off = next
	}
	if !ok {
		return Ref{}, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	return p.ref(&found), nil
}

// has reports whether some record's name starts with prefix.
func (p *packed) has(prefix string) (bool, error) {
	it, err := p.iter(prefix)
	if err != nil {
		return false, err
	}
	r, ok, err := it.next()
	return ok && bytes.HasPrefix(r.name, []byte(prefix)), err
}

// packedIter walks records in name order from a starting key. It checks
// that names strictly increase, so a file that claims to be sorted and
// is not, or holds a name twice, is reported as corrupt.
type packedIter struct {
	p    *packed
	off  int // next record, sorted files
	i    int // next index into p.order, unsorted files
	prev []byte
}

// iter returns an iterator over the records whose names are not less
// than key.
func (p *packed) iter(key string) (*packedIter, error) {
	it := &packedIter{p: p}
	if p.sorted {
		off, err := p.seek(key)
		if err != nil {
			return nil, err
		}
		it.off = off
		return it, nil
	}
	if err := p.buildOrder(); err != nil {
		return nil, err
	}
	it.i, _ = slices.BinarySearchFunc(p.order, key, func(off int, key string) int {
		start := off + p.format.HexSize() + 1
		end := start + bytes.IndexByte(p.data[start:], '\n')
		return compareBytesString(p.data[start:end], key)
	})
	return it, nil
}

func (it *packedIter) next() (record, bool, error) {
	p := it.p
	var off int
	if p.sorted {
		if it.off >= len(p.data) {
			return record{}, false, nil
		}
		off = it.off
	} else {
		if it.i >= len(p.order) {
			return record{}, false, nil
		}
		off = p.order[it.i]
		it.i++
	}
	r, next, err := p.parseRecord(off)
	if err != nil {
		return record{}, false, err
	}
	if it.prev != nil && bytes.Compare(it.prev, r.name) >= 0 {
		return record{}, false, fmt.Errorf("%w: %q out of order or duplicated", ErrCorruptPacked, clip(r.name))
	}
	it.prev = r.name
	it.off = next
	return r, true, nil
}

// compareBytesString is bytes.Compare for a byte slice and a string,
// without converting either.
func compareBytesString(a []byte, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	}
	return 0
}

// appendHeader appends the packed-refs header line for the given traits.
func appendHeader(b []byte, trait peelTrait) []byte {
	b = append(b, packedHeaderPrefix...)
	switch trait {
	case peelFull:
		b = append(b, "peeled fully-peeled "...)
	case peelTags:
		b = append(b, "peeled "...)
	}
	return append(b, "sorted \n"...)
}

// appendRecord appends one record, with its peeled line if it has one.
func appendRecord(b []byte, name []byte, id, peeled oid.ID, hasPeeled bool) []byte {
	b = id.AppendHex(b)
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, '\n')
	if hasPeeled {
		b = append(b, '^')
		b = peeled.AppendHex(b)
		b = append(b, '\n')
	}
	return b
}

// packedWriter streams a packed-refs file into a lock file: the header,
// then records gathered in batches of 32 KiB.
type packedWriter struct {
	l   *lockFile
	w   *bufio.Writer
	buf []byte
}

func newPackedWriter(l *lockFile, trait peelTrait) *packedWriter {
	return &packedWriter{l: l, w: bufio.NewWriterSize(l.f, 64<<10), buf: appendHeader(nil, trait)}
}

// add appends one record.
func (pw *packedWriter) add(name []byte, id, peeled oid.ID, hasPeeled bool) error {
	pw.buf = appendRecord(pw.buf, name, id, peeled, hasPeeled)
	if len(pw.buf) >= 32<<10 {
		if _, err := pw.w.Write(pw.buf); err != nil {
			return fmt.Errorf("refs: write packed-refs.lock: %w", err)
		}
		pw.buf = pw.buf[:0]
	}
	return nil
}

// finish writes what is left, syncs and closes the lock file; the caller
// commits it.
func (pw *packedWriter) finish() error {
	if _, err := pw.w.Write(pw.buf); err != nil {
		return fmt.Errorf("refs: write packed-refs.lock: %w", err)
	}
	if err := pw.w.Flush(); err != nil {
		return fmt.Errorf("refs: write packed-refs.lock: %w", err)
	}
	if err := pw.l.write(nil); err != nil {
		return fmt.Errorf("refs: write packed-refs.lock: %w", err)
	}
	return nil
}
