package loose

import (
	"bytes"
	"compress/zlib"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotd/internal/git/object"
	"gotd/internal/gittest"
)

// FuzzDecode feeds decode whole loose object files. Seeds are files C Git
// wrote and crafted malformed ones. Whatever decode accepts must agree
// with a separate, non-streaming inflate of the same bytes, and must
// re-encode to a file that decodes to the same object.
func FuzzDecode(f *testing.F) {
	dir := gittest.InitBare(f, "sha1")
	for _, c := range []string{"", "hello\n", strings.Repeat("x", 5000)} {
		gittest.GitInput(f, dir, []byte(c), "hash-object", "-w", "--stdin")
	}
	tree := strings.TrimSpace(gittest.GitInput(f, dir, []byte("100644 blob e69de29bb2d1d6434b8b29ae775ad8c2e48c5391\tempty\n"), "mktree"))
	gittest.Git(f, dir, "commit-tree", "-m", "m", tree)
	filepath.Walk(filepath.Join(dir, "objects"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
		return nil
	})
	for _, raw := range []string{
		"blob 5\x00hello",
		"blob 4\x00hello",
		"blob 6\x00hello",
		"blob 99999999999999999999\x00x",
		"blob 1099511627776\x00x",
		"commit 0\x00",
		"tag 3\x00abc",
	} {
		f.Add(compressBytes([]byte(raw)))
	}
	f.Add(append(compressBytes([]byte("blob 1\x00a")), 'x'))
	f.Fuzz(func(t *testing.T, file []byte) {
		typ, data, err := decode(file, 1<<20)
		if err != nil {
			return
		}
		if !typ.IsBase() {
			t.Fatalf("decoded type %v", typ)
		}
		// A separate inflate of the whole file must give the header
		// and the content, and consume the file exactly.
		br := bytes.NewReader(file)
		zr, err := zlib.NewReader(br)
		if err != nil {
			t.Fatalf("decode accepted what zlib.NewReader rejects: %v", err)
		}
		all, err := io.ReadAll(io.LimitReader(zr, 2<<20))
		if err != nil {
			t.Fatalf("decode accepted a stream that does not inflate: %v", err)
		}
		if br.Len() != 0 {
			t.Fatalf("decode accepted %d bytes after the stream", br.Len())
		}
		want := object.AppendHeader(nil, typ, int64(len(data)))
		want = append(want, data...)
		if !bytes.Equal(all, want) {
			t.Fatalf("decode gave %v %q; the file inflates to %q", typ, data, all)
		}
		// Re-encoding gives a file that decodes to the same object.
		typ2, data2, err := decode(compressBytes(want), 0)
		if err != nil || typ2 != typ || !bytes.Equal(data2, data) {
			t.Fatalf("re-encoded object decodes to %v %q, %v", typ2, data2, err)
		}
		// A limit below the size is refused (a limit of 0 is none; the
		// regression input 0cb2b795d3b72234 is a one-byte blob).
		if len(data) > 1 {
			if _, _, err := decode(file, int64(len(data)-1)); err == nil {
				t.Fatalf("decode with a limit below the size accepted the object")
			}
		}
	})
}

func compressBytes(raw []byte) []byte {
	var b bytes.Buffer
	w := zlib.NewWriter(&b)
	w.Write(raw)
	w.Close()
	return b.Bytes()
}
