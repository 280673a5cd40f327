package web

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"mime"
	"path"
	"strings"

	"gotd/internal/engine/archive"
)

// readFull reads into b until it is full or the reader ends.
func readFull(r io.Reader, b []byte) (int, error) {
	n, err := io.ReadFull(r, b)
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		err = nil
	}
	return n, err
}

// copyCtx copies src to dst until ctx is done.
func copyCtx(ctx context.Context, dst io.Writer, src io.Reader) (int64, error) {
	return io.Copy(ctxWriter{ctx, dst}, src)
}

// ctxWriter fails its writes once its context is done.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// disposition is a Content-Disposition header downloading a file
// called name (encoded as RFC 2231 says when it is not plain ASCII).
func disposition(name string) string {
	if d := mime.FormatMediaType("attachment", map[string]string{"filename": name}); d != "" {
		return d
	}
	return "attachment"
}

// snapshot streams the tree of a commit as .tar.gz or .zip, the tar as
// git archive --format=tar --prefix=NAME-REV/ writes it.
func (rq *request) snapshot() error {
	rp := rq.repo
	res, err := rp.resolve(rq.ctx, rq.rt.rev)
	if err != nil {
		return err
	}
	c, err := rp.readCommit(res.id)
	if err != nil {
		return err
	}
	base := snapshotBase(rp.Name, rq.rt.rev)
	h := rq.w.Header()
	h.Set("Content-Disposition", disposition(base+"."+rq.rt.format))
	h.Set("Last-Modified", when(c.Committer).UTC().Format(timeFormat))
	if res.full {
		h.Set("ETag", `"`+c.ID.String()+"-"+rq.rt.format+`"`)
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	ctype := "application/gzip"
	if rq.rt.format == "zip" {
		ctype = "application/zip"
	}
	h.Set("Content-Type", ctype)
	if match := rq.r.Header.Get("If-None-Match"); res.full && match != "" && strings.Contains(match, h.Get("ETag")) {
		rq.w.WriteHeader(304)
		return nil
	}
	if rq.r.Method == "HEAD" {
		return nil
	}
	opts := archive.Options{Prefix: base + "/"}
	w := ctxWriter{rq.ctx, rq.w}
	if rq.rt.format == "zip" {
		err = archive.WriteZip(rq.ctx, w, rp.R, c.ID, opts)
	} else {
		zw := gzip.NewWriter(w)
		err = archive.WriteTar(rq.ctx, zw, rp.R, c.ID, opts)
		if err == nil {
			err = zw.Close()
		}
	}
	if err != nil {
		return fmt.Errorf("%w: snapshot: %v", errSent, err)
	}
	return nil
}

// snapshotBase is the name of a snapshot of rev, without its
// extension, and the directory it unpacks into: the repository's base
// name and the revision, with the characters a file name cannot hold
// replaced.
func snapshotBase(repo, rev string) string {
	name := strings.TrimSuffix(path.Base(repo), ".git") + "-" + rev
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r < ' ' || r == 0x7f || r == '"' {
			return '-'
		}
		return r
	}, name)
}
