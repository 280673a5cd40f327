package archive

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"

	"gotd/internal/git/oid"
	"gotd/internal/git/repo"
)

// Tar layout, as archive-tar.c writes it.
const (
	tarRecord   = 512            // a header or a block of content
	tarBlock    = 20 * tarRecord // the output is padded to a multiple of this
	ustarMax    = 0o77777777777  // the largest size or time an 11-digit field holds
	tarUmask    = 0o002          // tar.umask's default
	typeReg     = '0'
	typeSymlink = '2'
	typeDir     = '5'
	typeGlobal  = 'g'
	typeExt     = 'x'
)

// WriteTar writes the tree named by id (a commit, a tag of one, or a
// tree) to w as `git archive --format=tar` would, byte for byte. It
// stops at the first error, leaving a truncated archive in w.
func WriteTar(ctx context.Context, w io.Writer, r *repo.Repo, id oid.ID, opts Options) error {
	s, err := resolve(r, id, opts)
	if err != nil {
		return err
	}
	t := &tarWriter{w: bufio.NewWriterSize(w, 64<<10), mtime: s.mtime}
	if err := t.globalHeader(s.commit); err != nil {
		return err
	}
	if err := s.walk(ctx, t); err != nil {
		return err
	}
	return t.trailer()
}

// tarWriter writes tar records and counts them, for the trailer.
type tarWriter struct {
	w     *bufio.Writer
	n     int64
	mtime int64
	buf   [32 << 10]byte
}

// globalHeader writes the pax global header holding the commit id, and
// the time when it does not fit the ustar field.
func (t *tarWriter) globalHeader(commit oid.ID) error {
	var ext []byte
	if commit.Valid() {
		ext = appendPax(ext, "comment", commit.String())
	}
	if t.mtime > ustarMax {
		ext = appendPax(ext, "mtime", strconv.FormatInt(t.mtime, 10))
		t.mtime = ustarMax
	}
	if len(ext) == 0 {
		return nil
	}
	var h [tarRecord]byte
	h[156] = typeGlobal
	copy(h[:100], "pax_global_header")
	t.prepare(&h, 0o100666, int64(len(ext)))
	return t.content(h[:], ext)
}

// appendPax appends a pax record "<len> key=value\n", whose length
// counts its own digits.
func appendPax(dst []byte, key, value string) []byte {
	n := 1 + 1 + len(key) + 1 + len(value) + 1
	for tmp := 1; n/10 >= tmp; tmp *= 10 {
		n++
	}
	dst = strconv.AppendInt(dst, int64(n), 10)
	dst = append(dst, ' ')
	dst = append(dst, key...)
	dst = append(dst, '=')
	dst = append(dst, value...)
	return append(dst, '\n')
}

// prepare fills the fields of a header every entry shares and its
// checksum; size is written for regular files only.
func (t *tarWriter) prepare(h *[tarRecord]byte, mode uint32, size int64) {
	octal(h[100:108], int64(mode&0o7777))
	if mode&0o170000 != 0o100000 {
		size = 0
	}
	octal(h[124:136], size)
	octal(h[136:148], t.mtime)
	octal(h[108:116], 0)
	octal(h[116:124], 0)
	copy(h[265:297], "root")
	copy(h[297:329], "root")
	octal(h[329:337], 0)
	octal(h[337:345], 0)
	copy(h[257:263], "ustar\x00")
	copy(h[263:265], "00")
	sum := 0
	for i, c := range h {
		if i >= 148 && i < 156 {
			c = ' '
		}
		sum += int(c)
	}
	octal(h[148:156], int64(sum))
}

// octal writes v zero-padded in all but the last byte of field, which
// stays NUL.
func octal(field []byte, v int64) {
	s := strconv.FormatInt(v, 8)
	n := len(field) - 1
	for i := 0; i < n-len(s); i++ {
		field[i] = '0'
	}
	copy(field[max(0, n-len(s)):n], s)
	field[n] = 0
}

// content writes a header and data padded to a record.
func (t *tarWriter) content(h, data []byte) error {
	if err := t.blocked(h); err != nil {
		return err
	}
	return t.blocked(data)
}

// blocked writes b and the zeros that pad it to a record.
func (t *tarWriter) blocked(b []byte) error {
	if _, err := t.w.Write(b); err != nil {
		return fmt.Errorf("archive: write: %w", err)
	}
	t.n += int64(len(b))
	return t.pad()
}

func (t *tarWriter) pad() error {
	var zero [tarRecord]byte
	if rest := t.n % tarRecord; rest != 0 {
		if _, err := t.w.Write(zero[:tarRecord-rest]); err != nil {
			return fmt.Errorf("archive: write: %w", err)
		}
		t.n += tarRecord - rest
	}
	return nil
}

func (t *tarWriter) write(e entry, size int64, open func() (io.ReadCloser, error)) error {
	var h [tarRecord]byte
	var ext []byte
	mode := e.mode
	var link []byte
	switch mode & 0o170000 {
	case 0o040000, 0o160000:
		h[156] = typeDir
		mode = (mode | 0o777) &^ tarUmask
	case 0o120000:
		h[156] = typeSymlink
		mode |= 0o777
		rc, err := open()
		if err != nil {
			return err
		}
		link, err = io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("archive: read %s: %w", e.id, err)
		}
	case 0o100000:
		h[156] = typeReg
		if mode&0o100 != 0 {
			mode |= 0o777
		} else {
			mode |= 0o666
		}
		mode &^= tarUmask
	default:
		return fmt.Errorf("archive: %s: unsupported file mode %o", e.id, mode)
	}
	path := e.path
	if len(path) > 100 {
		plen := pathPrefix(path, 155)
		rest := len(path) - plen - 1
		if plen > 0 && rest <= 100 {
			copy(h[345:500], path[:plen])
			copy(h[:100], path[plen+1:])
		} else {
			copy(h[:100], e.id.String()+".data")
			ext = appendPax(ext, "path", path)
		}
	} else {
		copy(h[:100], path)
	}
	if link != nil {
		if len(link) > 100 {
			copy(h[157:257], "see "+e.id.String()+".paxheader")
			ext = appendPax(ext, "linkpath", string(link))
		} else {
			copy(h[157:257], link)
		}
	}
	inHeader := size
	if mode&0o170000 == 0o100000 && size > ustarMax {
		inHeader = 0
		ext = appendPax(ext, "size", strconv.FormatInt(size, 10))
	}
	t.prepare(&h, mode, inHeader)
	if len(ext) > 0 {
		var x [tarRecord]byte
		x[156] = typeExt
		copy(x[:100], e.id.String()+".paxheader")
		t.prepare(&x, 0o100666, int64(len(ext)))
		if err := t.content(x[:], ext); err != nil {
			return err
		}
	}
	if err := t.blocked(h[:]); err != nil {
		return err
	}
	if mode&0o170000 != 0o100000 || size == 0 {
		return nil
	}
	rc, err := open()
	if err != nil {
		return err
	}
	defer rc.Close()
	n, err := io.CopyBuffer(t.w, io.LimitReader(rc, size), t.buf[:])
	t.n += n
	if err != nil {
		return fmt.Errorf("archive: copy %s: %w", e.id, err)
	}
	if n != size {
		return fmt.Errorf("archive: %s: %d bytes, want %d", e.id, n, size)
	}
	return t.pad()
}

// pathPrefix returns where to split a path too long for the name field
// into the prefix field: at the last '/' within max bytes, ignoring a
// trailing one, as archive-tar.c's get_path_prefix.
func pathPrefix(path string, max int) int {
	i := len(path)
	if i > 1 && path[i-1] == '/' {
		i--
	}
	if i > max {
		i = max
	}
	for {
		i--
		if i <= 0 || path[i] == '/' {
			break
		}
	}
	return i
}

// trailer pads the archive to a block with at least two zero records.
func (t *tarWriter) trailer() error {
	tail := tarBlock - t.n%tarBlock
	if tail < 2*tarRecord {
		tail += tarBlock
	}
	zero := make([]byte, tail)
	if _, err := t.w.Write(zero); err != nil {
		return fmt.Errorf("archive: write: %w", err)
	}
	if err := t.w.Flush(); err != nil {
		return fmt.Errorf("archive: write: %w", err)
	}
	return nil
}
