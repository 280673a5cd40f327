package upload

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"gotd/internal/git/pack"
	"gotd/internal/git/refs"
	"gotd/internal/git/repo"
	"gotd/internal/git/walk"
	"gotd/internal/protocol/pktline"
	"gotd/internal/protocol/sideband"
)

// isWholePack reports whether p, the pack that leads the bitmap's order
// (openWalker), as stored, is the answer to req: a fetch with nothing
// in common, not shallow, not filtered, that wants exactly the objects
// of p, the bitmap's objects all (which a full clone of a repository
// packed with `gotadmin pack -a` or `git repack -adb` does). The pack
// can then be sent without listing, reading, hashing or compressing a
// single object.
func isWholePack(ctx context.Context, r *repo.Repo, wk *walk.Walker, p *pack.Pack, req *PackRequest) (bool, error) {
	if p == nil || wk.Bitmap == nil || p.Count() != wk.Bitmap.Lookup().Count() || !canLead(req) {
		return false, nil
	}
	if req.IncludeTag {
		// A tag outside the pack could have its target in it and
		// would then have to be added.
		outside := errors.New("outside")
		err := r.Refs.List("refs/tags/", func(ref refs.Ref) error {
			if !p.HasObject(ref.ID) {
				return outside
			}
			return nil
		})
		if err != nil {
			return false, nil
		}
	}
	ok, err := wk.WholePack(ctx, req.Wants)
	if err != nil {
		return false, fmt.Errorf("upload: list objects: %w", err)
	}
	return ok, nil
}

// sendWholePack writes the stored pack p unchanged to raw, the writer
// under bw, framed as f, with a line of
// progress to prog when not nil. The file's bytes go from the page
// cache to the client's stream without passing through this process
// where the system allows (copyFile).
func sendWholePack(ctx context.Context, p *pack.Pack, f Framing, bw *bufio.Writer, raw io.Writer, prog io.Writer) error {
	file, err := os.Open(p.Path())
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	defer file.Close()
	// The file must still be the pack the bitmap describes: same size,
	// same trailing checksum.
	size := p.Size()
	sum := make([]byte, len(p.Checksum()))
	if fi, err := file.Stat(); err != nil || fi.Size() != size {
		return fmt.Errorf("upload: %s changed while in use", p.Path())
	}
	if _, err := file.ReadAt(sum, size-int64(len(sum))); err != nil || !bytes.Equal(sum, p.Checksum()) {
		return fmt.Errorf("upload: %s changed while in use", p.Path())
	}
	if prog != nil {
		fmt.Fprintf(prog, "Enumerating objects: %d, done.\n", p.Count())
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("upload: write: %w", err)
	}
	out := raw
	cork(out, true)
	defer cork(out, false)
	chunk := size
	if f.Sideband != 0 {
		chunk = int64(f.Sideband - 5) // length and band byte
	}
	var hdr [5]byte
	var buf []byte // copyFile's, if it needs one
	for off := int64(0); off < size; off += chunk {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(chunk, size-off)
		if f.Sideband != 0 {
			pktline.PutLen(hdr[:4], int(n)+5)
			hdr[4] = sideband.Data
			if _, err := out.Write(hdr[:]); err != nil {
				return fmt.Errorf("upload: write: %w", err)
			}
		}
		if err := copyFile(out, file, off, n, &buf); err != nil {
			return fmt.Errorf("upload: write: %w", err)
		}
	}
	if prog != nil {
		cork(out, false)
		fmt.Fprintf(prog, "Total %d, pack-reused %d\n", p.Count(), p.Count())
	}
	return nil
}

// FileSender is a writer that sends a range of a file itself, with
// sendfile(2) or otherwise: one that must see every byte written to it
// (a stream with a minimum rate) rather than have copyFile write to
// its descriptor behind its back.
type FileSender interface {
	SendFile(src *os.File, off, n int64) error
}

// copyFileBuffered copies n bytes of src from off to dst through *buf,
// made on first use and kept for the next call: copyFile where the
// system offers nothing better.
func copyFileBuffered(dst io.Writer, src *os.File, off, n int64, buf *[]byte) error {
	if *buf == nil {
		*buf = make([]byte, 64<<10)
	}
	_, err := io.CopyBuffer(dst, io.NewSectionReader(src, off, n), *buf)
	return err
}
