package remote

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"testing"

	"gotd/internal/git/repo"
)

// canned is a transport whose advertisement and command responses are
// fixed bytes.
type canned struct{ adv, lsRefs, fetch []byte }

func (c *canned) advertisement(context.Context) (io.Reader, error) {
	return bytes.NewReader(c.adv), nil
}

func (c *canned) command(_ context.Context, r io.Reader) (io.ReadCloser, error) {
	req, _ := io.ReadAll(r)
	if bytes.Contains(req, []byte("command=ls-refs")) {
		return io.NopCloser(bytes.NewReader(c.lsRefs)), nil
	}
	return io.NopCloser(bytes.NewReader(c.fetch)), nil
}

func (c *canned) close() {}

// FuzzUpstream runs a fetch against upstream answers made of arbitrary
// bytes: it must end, with an error or not, without a panic.
func FuzzUpstream(f *testing.F) {
	f.Add([]byte("000eversion 2\n000bls-refs\n000afetch\n0000"), []byte("0032"+"1111111111111111111111111111111111111111 refs/heads/main\n"[:0]+"0000"), []byte("000dpackfile\n0000"))
	f.Add([]byte("001e# service=git-upload-pack\n0000000eversion 2\n0000"), []byte("0000"), []byte(""))
	f.Add([]byte("000eversion 2\n000bls-refs\n000afetch\n0000"),
		[]byte("003f1111111111111111111111111111111111111111 refs/heads/main\n0000"), []byte("000dpackfile\n0015\x01PACK\x00\x00\x00\x02\x00\x00\x00\x000000"))
	r, err := repo.Init(filepath.Join(f.TempDir(), "m.git"), repo.InitOptions{})
	if err != nil {
		f.Fatal(err)
	}
	defer r.Close()
	f.Fuzz(func(t *testing.T, adv, lsRefs, pack []byte) {
		fe := &fetcher{opts: FetchOptions{Repo: r, MaxRefs: 1000, Take: func(string) bool { return true }}, t: &canned{adv, lsRefs, pack}, format: r.Format}
		fe.opts.Limits = fe.opts.Limits.WithDefaults()
		fe.run(context.Background())
	})
}
