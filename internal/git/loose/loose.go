// Package loose reads and writes loose objects: one zlib-compressed file
// per object, "<type> <size>\x00<content>", stored as objects/xx/yyyy…
// where xxyyyy… is the object's hexadecimal id (gitrepository-layout(5),
// "objects/[0-9a-f][0-9a-f]").
//
// Reads are bounded: the declared size is checked against
// Store.MaxObjectSize before anything is inflated, buffers grow only as
// data actually inflates (a forged header cannot make the store allocate
// what it declares), and inflation stops one byte past the declared size.
package loose

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/klauspost/compress/zlib"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/perm"
)

// Store is the loose objects of one repository. Its methods are safe for
// concurrent use, and for use alongside other processes (C Git) reading
// and writing the same directory, provided the fields are set before
// first use and not changed afterwards.
type Store struct {
	// MaxObjectSize caps the declared size of objects ReadObject reads
	// (0: no cap beyond memory); a larger object is an error, reported
	// before inflating any content.
	MaxObjectSize int64
	// VerifyHash makes ReadObject hash what it read and compare it with
	// the id asked for. It is off by default, as in C Git, which verifies
	// loose objects only in fsck: ids name files, and a file that
	// inflates cleanly to its declared size is trusted.
	VerifyHash bool
	// Shared gives the permissions of the objects and directories
	// written: the repository's core.sharedRepository.
	Shared perm.Shared

	dir string
	f   oid.Format
}

// New returns the store of the objects directory objectsDir holding
// objects of format f. It does not touch the file system.
func New(objectsDir string, f oid.Format) *Store {
	return &Store{dir: filepath.Clean(objectsDir), f: f}
}

// Dir returns the objects directory.
func (s *Store) Dir() string { return s.dir }

// path returns the file name of id: dir/xx/yyyy….
func (s *Store) path(id oid.ID) string {
	var hexBuf [2 * oid.MaxSize]byte
	h := id.AppendHex(hexBuf[:0])
	var buf [256]byte
	b := append(buf[:0], s.dir...)
	b = append(b, filepath.Separator)
	b = append(b, h[:2]...)
	b = append(b, filepath.Separator)
	b = append(b, h[2:]...)
	return string(b)
}

func (s *Store) checkID(id oid.ID) error {
	if id.Format() != s.f {
		return fmt.Errorf("loose: %s id %s in a %s store", id.Format(), id, s.f)
	}
	return nil
}

// HasObject reports whether the loose object id exists. It does not read
// the file.
func (s *Store) HasObject(id oid.ID) bool {
	if id.Format() != s.f {
		return false
	}
	_, err := os.Stat(s.path(id))
	return err == nil
}

// ReadObject returns the type and content of the loose object id. A
// missing object is an error wrapping object.ErrNotFound. The file must
// inflate to exactly its declared size and end with the zlib stream.
func (s *Store) ReadObject(id oid.ID) (object.Type, []byte, error) {
	if err := s.checkID(id); err != nil {
		return object.Invalid, nil, err
	}
	f, err := s.open(id)
	if err != nil {
		return object.Invalid, nil, err
	}
	defer f.Close()
	br := getBufReader(f)
	defer putBufReader(br)
	t, data, err := decodeStream(br, s.MaxObjectSize)
	if err != nil {
		return object.Invalid, nil, fmt.Errorf("loose: object %s: %w", id, err)
	}
	if s.VerifyHash {
		got, err := object.ID(s.f, t, data)
		if err != nil {
			return object.Invalid, nil, fmt.Errorf("loose: object %s: %w", id, err)
		}
		if got != id {
			return object.Invalid, nil, fmt.Errorf("loose: object %s: content hashes to %s", id, got)
		}
	}
	return t, data, nil
}

// StatObject returns the type and declared size of the loose object id,
// inflating only its header. A missing object is an error wrapping
// object.ErrNotFound.
func (s *Store) StatObject(id oid.ID) (object.Type, int64, error) {
	if err := s.checkID(id); err != nil {
		return object.Invalid, 0, err
	}
	f, err := s.open(id)
	if err != nil {
		return object.Invalid, 0, err
	}
	defer f.Close()
	br := getBufReader(f)
	defer putBufReader(br)
	zr, err := getZReader(br)
	if err != nil {
		return object.Invalid, 0, fmt.Errorf("loose: object %s: %w", id, err)
	}
	defer zReaders.Put(zr)
	var hdr [maxHeader]byte
	t, size, _, _, err := readHeader(zr, hdr[:])
	if err != nil {
		return object.Invalid, 0, fmt.Errorf("loose: object %s: %w", id, err)
	}
	return t, size, nil
}

func (s *Store) open(id oid.ID) (*os.File, error) {
	f, err := os.Open(s.path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("loose: %s: %w", id, object.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("loose: %w", err)
	}
	return f, nil
}

// maxHeader bounds the inflated header "<type> <size>\x00": the longest
// type name, a space, the 18 digits object.ParseHeader allows and the NUL
// fit in 32 bytes.
const maxHeader = 32

// initialAlloc bounds the buffer ReadObject allocates before any content
// has inflated; beyond it the buffer grows with the data.
const initialAlloc = 256 << 10

// decode inflates a whole loose object file held in b. It is the decoder
// ReadObject uses, for tests and fuzzing.
func decode(b []byte, maxSize int64) (object.Type, []byte, error) {
	return decodeStream(bufio.NewReader(bytes.NewReader(b)), maxSize)
}

// decodeStream inflates a loose object file read through br, checks its
// header, that the content has the declared size (at most maxSize unless
// that is 0), that the zlib stream is intact and that nothing follows it.
func decodeStream(br *bufio.Reader, maxSize int64) (object.Type, []byte, error) {
	zr, err := getZReader(br)
	if err != nil {
		return object.Invalid, nil, err
	}
	defer zReaders.Put(zr)
	var hdr [maxHeader]byte
	t, size, n, hn, err := readHeader(zr, hdr[:])
	if err != nil {
		return object.Invalid, nil, err
	}
	if maxSize > 0 && size > maxSize {
		return object.Invalid, nil, fmt.Errorf("object of %d bytes exceeds the limit of %d", size, maxSize)
	}
	if uint64(size) > uint64(maxInt) {
		return object.Invalid, nil, fmt.Errorf("object of %d bytes too large for memory", size)
	}
	// What followed the header in the first read is the start of the
	// content.
	extra := hdr[hn:n]
	if int64(len(extra)) > size {
		return object.Invalid, nil, errors.New("content longer than its declared size")
	}
	data := make([]byte, len(extra), min(size, initialAlloc))
	copy(data, extra)
	for int64(len(data)) < size {
		if len(data) == cap(data) {
			// Grow by what has already inflated (doubling), never
			// by what the header merely declares.
			data = append(data, 0)[:len(data)]
			if int64(cap(data)) > size {
				data = data[:len(data):size]
			}
		}
		m, err := zr.Read(data[len(data):cap(data)])
		data = data[:len(data)+m]
		if err == io.EOF {
			if int64(len(data)) < size {
				return object.Invalid, nil, fmt.Errorf("content of %d bytes shorter than its declared size %d", len(data), size)
			}
			break
		}
		if err != nil {
			return object.Invalid, nil, fmt.Errorf("inflate: %w", err)
		}
	}
	// The stream must end here, and its checksum must match, which zlib
	// checks when it reaches the end.
	var one [1]byte
	for {
		m, err := zr.Read(one[:])
		if m > 0 {
			return object.Invalid, nil, errors.New("content longer than its declared size")
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return object.Invalid, nil, fmt.Errorf("inflate: %w", err)
		}
	}
	// C Git refuses bytes after the zlib stream ("garbage at end of
	// loose object").
	if _, err := br.Peek(1); err != io.EOF {
		if err == nil {
			return object.Invalid, nil, errors.New("garbage after the zlib stream")
		}
		return object.Invalid, nil, fmt.Errorf("read: %w", err)
	}
	return t, data, nil
}

const maxInt = int(^uint(0) >> 1)

// readHeader inflates from zr into buf until the header's NUL and parses
// it. It returns the type, the declared size, how many bytes of buf were
// filled and the header's length; buf[hn:n] is the start of the content.
func readHeader(zr io.Reader, buf []byte) (t object.Type, size int64, n, hn int, err error) {
	for {
		m, rerr := zr.Read(buf[n:])
		n += m
		if bytes.IndexByte(buf[:n], 0) >= 0 || n == len(buf) {
			break
		}
		if rerr == io.EOF {
			return object.Invalid, 0, 0, 0, errors.New("truncated header")
		}
		if rerr != nil {
			return object.Invalid, 0, 0, 0, fmt.Errorf("inflate header: %w", rerr)
		}
	}
	t, size, hn, err = object.ParseHeader(buf[:n])
	if err != nil {
		return object.Invalid, 0, 0, 0, err
	}
	return t, size, n, hn, nil
}

// Pools of zlib readers and buffered file readers: a flate decompressor
// holds a 32 KiB window, too much to allocate per object.
var (
	zReaders   sync.Pool // io.ReadCloser implementing zlib.Resetter
	bufReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 32<<10) }}
	zWriters   = sync.Pool{New: func() any {
		w, _ := zlib.NewWriterLevel(nil, compressionLevel)
		return w
	}}
)

// getZReader returns a pooled zlib reader over br (an io.ByteReader, so
// that zlib does not read past its stream). The caller returns it to
// zReaders.
func getZReader(br *bufio.Reader) (io.ReadCloser, error) {
	if zr, ok := zReaders.Get().(io.ReadCloser); ok {
		if err := zr.(zlib.Resetter).Reset(br, nil); err != nil {
			zReaders.Put(zr)
			return nil, fmt.Errorf("zlib header: %w", err)
		}
		return zr, nil
	}
	zr, err := zlib.NewReader(br)
	if err != nil {
		return nil, fmt.Errorf("zlib header: %w", err)
	}
	return zr, nil
}

func getBufReader(r io.Reader) *bufio.Reader {
	br := bufReaders.Get().(*bufio.Reader)
	br.Reset(r)
	return br
}

func putBufReader(br *bufio.Reader) {
	br.Reset(nil)
	bufReaders.Put(br)
}

// compressionLevel is C Git's default core.looseCompression (best speed).
const compressionLevel = zlib.BestSpeed

// WriteObject stores an object of type t with content data and returns
// its id. If the object exists already its modification time is
// refreshed (so that pruning keeps it, as C Git does) and nothing is
// written. Otherwise the object is written to a temporary file in the
// objects directory, compressed at C Git's default level, synced, made
// read-only (0444) and linked into place; an object another writer
// created meanwhile is kept, not replaced. Fan-out directories are
// created with mode 0755 (less the umask). The directory holding the new
// name is not synced; a caller that must survive a crash before the
// next sync of the file system (ref updates) syncs it.
func (s *Store) WriteObject(t object.Type, data []byte) (oid.ID, error) {
	if !t.IsBase() {
		return oid.ID{}, fmt.Errorf("loose: cannot write an object of type %v", t)
	}
	id, err := object.ID(s.f, t, data)
	if err != nil {
		return oid.ID{}, fmt.Errorf("loose: %w", err)
	}
	path := s.path(id)
	now := time.Now()
	if os.Chtimes(path, now, now) == nil {
		return id, nil
	}
	if err := s.Shared.Mkdir(filepath.Dir(path)); err != nil && !errors.Is(err, fs.ErrExist) {
		return oid.ID{}, fmt.Errorf("loose: %w", err)
	}
	tmp, err := os.CreateTemp(s.dir, "tmp_obj_")
	if err != nil {
		return oid.ID{}, fmt.Errorf("loose: %w", err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // after a successful link the name is stale
	if err := writeCompressed(tmp, t, data, s.Shared.File(0o444)); err != nil {
		tmp.Close()
		return oid.ID{}, fmt.Errorf("loose: write %s: %w", id, err)
	}
	if err := tmp.Close(); err != nil {
		return oid.ID{}, fmt.Errorf("loose: write %s: %w", id, err)
	}
	if err := os.Link(tmpName, path); err != nil && !errors.Is(err, fs.ErrExist) {
		// Some file systems cannot link; C Git renames then. Replacing
		// a concurrent writer's file is harmless: the content is the
		// same.
		if err := os.Rename(tmpName, path); err != nil {
			return oid.ID{}, fmt.Errorf("loose: install %s: %w", id, err)
		}
	}
	return id, nil
}

// writeCompressed writes the compressed object to f, gives it mode (a
// read-only one) and syncs it.
func writeCompressed(f *os.File, t object.Type, data []byte, mode fs.FileMode) error {
	zw := zWriters.Get().(*zlib.Writer)
	defer zWriters.Put(zw)
	zw.Reset(f)
	var hdr [maxHeader]byte
	if _, err := zw.Write(object.AppendHeader(hdr[:0], t, int64(len(data)))); err != nil {
		return err
	}
	if _, err := zw.Write(data); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := f.Chmod(mode); err != nil {
		return err
	}
	return f.Sync()
}

// ForEach calls fn with the id of every loose object, in the order of
// their file names. Files and directories whose names are not those of
// loose objects of the store's format (temporary files, "pack", "info",
// upper-case hex) are skipped. It stops at and returns the first error fn
// returns.
func (s *Store) ForEach(fn func(oid.ID) error) error {
	fanout, err := os.ReadDir(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("loose: %w", err)
	}
	hexLen := s.f.HexSize()
	var hexBuf [2 * oid.MaxSize]byte
	for _, d := range fanout {
		name := d.Name()
		if len(name) != 2 || !isLowerHex(name) || !d.IsDir() {
			continue
		}
		ents, err := os.ReadDir(filepath.Join(s.dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed by a concurrent prune
		}
		if err != nil {
			return fmt.Errorf("loose: %w", err)
		}
		for _, e := range ents {
			rest := e.Name()
			if len(rest) != hexLen-2 || !isLowerHex(rest) || !e.Type().IsRegular() {
				continue
			}
			h := append(append(hexBuf[:0], name...), rest...)
			id, err := oid.ParseHexBytes(s.f, h)
			if err != nil {
				continue
			}
			if err := fn(id); err != nil {
				return err
			}
		}
	}
	return nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Remove deletes the loose object id. A missing object is an error
// wrapping object.ErrNotFound.
func (s *Store) Remove(id oid.ID) error {
	if err := s.checkID(id); err != nil {
		return err
	}
	err := os.Remove(s.path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("loose: %s: %w", id, object.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("loose: %w", err)
	}
	return nil
}

// OpenObject returns the type and declared size of the loose object id
// and a reader of its content, for objects too large to read whole.
// The declared size is checked against MaxObjectSize before anything is
// read. The reader ends with io.EOF only after exactly the declared
// size, at the end of an intact zlib stream with nothing after it;
// otherwise it returns an error, and what was read must be discarded.
// The caller must Close the reader. A missing object is an error
// wrapping object.ErrNotFound.
func (s *Store) OpenObject(id oid.ID) (object.Type, int64, io.ReadCloser, error) {
	if err := s.checkID(id); err != nil {
		return object.Invalid, 0, nil, err
	}
	f, err := s.open(id)
	if err != nil {
		return object.Invalid, 0, nil, err
	}
	br := getBufReader(f)
	zr, err := getZReader(br)
	if err != nil {
		putBufReader(br)
		f.Close()
		return object.Invalid, 0, nil, fmt.Errorf("loose: object %s: %w", id, err)
	}
	r := &objectReader{id: id, f: f, br: br, zr: zr}
	t, size, n, hn, err := readHeader(zr, r.hdr[:])
	if err == nil && s.MaxObjectSize > 0 && size > s.MaxObjectSize {
		err = fmt.Errorf("object of %d bytes exceeds the limit of %d", size, s.MaxObjectSize)
	}
	if err == nil && int64(n-hn) > size {
		err = errors.New("content longer than its declared size")
	}
	if err != nil {
		r.Close()
		return object.Invalid, 0, nil, fmt.Errorf("loose: object %s: %w", id, err)
	}
	r.extra, r.left = r.hdr[hn:n], size
	return t, size, r, nil
}

// objectReader is the reader OpenObject returns.
type objectReader struct {
	id    oid.ID
	f     *os.File
	br    *bufio.Reader
	zr    io.ReadCloser
	hdr   [maxHeader]byte
	extra []byte // content inflated with the header
	left  int64  // content not yet returned
	err   error
}

func (r *objectReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.left == 0 {
		r.err = r.end()
		return 0, r.err
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	var n int
	if len(r.extra) > 0 {
		n = copy(p, r.extra)
		r.extra = r.extra[n:]
	} else {
		var err error
		n, err = r.zr.Read(p)
		if err != nil && (err != io.EOF || int64(n) < r.left) {
			if err == io.EOF {
				err = errors.New("content shorter than its declared size")
			}
			r.err = fmt.Errorf("loose: object %s: %w", r.id, err)
		}
	}
	r.left -= int64(n)
	return n, r.err
}

// end checks what decodeStream checks after the content: the zlib
// stream ends, with a good checksum, and nothing follows it.
func (r *objectReader) end() error {
	var one [1]byte
	for {
		m, err := r.zr.Read(one[:])
		if m > 0 {
			return fmt.Errorf("loose: object %s: content longer than its declared size", r.id)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("loose: object %s: inflate: %w", r.id, err)
		}
	}
	if _, err := r.br.Peek(1); err != io.EOF {
		if err == nil {
			return fmt.Errorf("loose: object %s: garbage after the zlib stream", r.id)
		}
		return fmt.Errorf("loose: object %s: read: %w", r.id, err)
	}
	return io.EOF
}

// Close releases the file and the pooled readers.
func (r *objectReader) Close() error {
	if r.f == nil {
		return nil
	}
	zReaders.Put(r.zr)
	putBufReader(r.br)
	err := r.f.Close()
	r.f, r.zr, r.br = nil, nil, nil
	if r.err == nil {
		r.err = errors.New("loose: read of a closed object")
	}
	return err
}
