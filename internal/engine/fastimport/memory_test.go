package fastimport

import (
	"context"
	"io"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"gotd/internal/git/repo"
	"gotd/internal/gittest"
)

// patternReader yields n bytes of a repeating pattern.
type patternReader struct{ n, off int64 }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	if int64(len(b)) > p.n-p.off {
		b = b[:p.n-p.off]
	}
	for i := range b {
		b[i] = byte((p.off + int64(i)) * 7 % 251)
	}
	p.off += int64(len(b))
	return len(b), nil
}

// TestLargeBlobStreamed: an exact-length blob is hashed and compressed
// as it is read, never held: importing an 80 MiB blob allocates far
// less than 80 MiB, and git reads the blob back whole.
func TestLargeBlobStreamed(t *testing.T) {
	const size = 80 << 20
	in := io.MultiReader(
		strings.NewReader("blob\nmark :1\ndata "+strconv.Itoa(size)+"\n"),
		&patternReader{n: size},
		strings.NewReader("\ncommit refs/heads/main\ncommitter C <c@example.com> 1700000000 +0000\ndata 3\nbig\nM 100644 :1 big.bin\n\n"),
	)
	dir := gittest.InitBare(t, "sha1")
	r, err := repo.Open(dir, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := Import(context.Background(), r, in, Options{MaxObjectSize: 100 << 20}); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 32<<20 {
		t.Errorf("import allocated %d MiB for an 80 MiB blob, want under 32", got>>20)
	}
	got := gittest.Git(t, dir, "cat-file", "-s", "main:big.bin")
	if strings.TrimSpace(got) != strconv.Itoa(size) {
		t.Errorf("size of big.bin: got %s, want %d", got, size)
	}
	gittest.Git(t, dir, "fsck", "--full", "--strict")
}
