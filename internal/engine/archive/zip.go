package archive

import (
	"archive/zip"
	"bufio"
	"compress/flate"
	"context"
	"fmt"
	"io"
	"time"

	"gotd/internal/git/oid"
	"gotd/internal/git/repo"
)

// WriteZip writes the tree named by id (a commit, a tag of one, or a
// tree) to w as a zip file holding the entries `git archive
// --format=zip` writes, in its order, with the same names, contents,
// modification times (the DOS time in the local time zone and an
// extended timestamp), Unix modes for executables and symbolic links,
// and the commit id as the archive's comment. Its bytes differ from C
// Git's: files are deflated by compress/flate rather than zlib, sizes
// follow in data descriptors for every file (C Git writes them in the
// local header of files it did not have to stream), and the fields
// "version made by" and "version needed" are those archive/zip writes.
// It stops at the first error, leaving a truncated archive in w.
func WriteZip(ctx context.Context, w io.Writer, r *repo.Repo, id oid.ID, opts Options) error {
	s, err := resolve(r, id, opts)
	if err != nil {
		return err
	}
	if opts.ZipLevel < ZipStore || opts.ZipLevel > flate.BestCompression {
		return fmt.Errorf("archive: zip level %d out of range", opts.ZipLevel)
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	z := &zipWriter{z: zip.NewWriter(bw), mtime: time.Unix(s.mtime, 0), store: opts.ZipLevel == ZipStore}
	if level := opts.ZipLevel; level > 0 {
		z.z.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) {
			return flate.NewWriter(w, level)
		})
	}
	if s.commit.Valid() {
		if err := z.z.SetComment(s.commit.String()); err != nil {
			return fmt.Errorf("archive: %w", err)
		}
	}
	if err := s.walk(ctx, z); err != nil {
		return err
	}
	if err := z.z.Close(); err != nil {
		return fmt.Errorf("archive: write: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("archive: write: %w", err)
	}
	return nil
}

// zipWriter adds entries to a zip file.
type zipWriter struct {
	z     *zip.Writer
	mtime time.Time
	store bool // files are stored, not deflated
	buf   [32 << 10]byte
}

// Attributes of zip entries as archive-zip.c sets them: MS-DOS's
// directory bit for directories and gitlinks, a Unix mode (and Unix as
// the creating system) only for executables and symbolic links.
const (
	zipDOSDir      = 0x10
	zipCreatorUnix = 3 << 8
)

func (z *zipWriter) write(e entry, size int64, open func() (io.ReadCloser, error)) error {
	h := &zip.FileHeader{Name: e.path, Modified: z.mtime, Method: zip.Store}
	switch e.mode & 0o170000 {
	case 0o040000, 0o160000:
		h.ExternalAttrs = zipDOSDir
	case 0o120000:
		h.CreatorVersion = zipCreatorUnix
		h.ExternalAttrs = (e.mode | 0o777) << 16
	case 0o100000:
		if e.mode&0o111 != 0 {
			h.CreatorVersion = zipCreatorUnix
			h.ExternalAttrs = e.mode << 16
		}
		if size > 0 && !z.store {
			h.Method = zip.Deflate
		}
	default:
		return fmt.Errorf("archive: %s: unsupported file mode %o", e.id, e.mode)
	}
	fw, err := z.z.CreateHeader(h)
	if err != nil {
		return fmt.Errorf("archive: write: %w", err)
	}
	if open == nil || size == 0 {
		return nil
	}
	rc, err := open()
	if err != nil {
		return err
	}
	defer rc.Close()
	n, err := io.CopyBuffer(fw, io.LimitReader(rc, size), z.buf[:])
	if err != nil {
		return fmt.Errorf("archive: copy %s: %w", e.id, err)
	}
	if n != size {
		return fmt.Errorf("archive: %s: %d bytes, want %d", e.id, n, size)
	}
	return nil
}
