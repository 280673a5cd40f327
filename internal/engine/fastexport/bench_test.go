package fastexport

import (
	"bytes"
	"context"
	"io"
	"testing"

	"gotd/internal/engine/fastimport"
	"gotd/internal/git/repo"
	"gotd/internal/gittest"
)

// BenchmarkExport writes the stream of a generated history of 2,000
// commits; BenchmarkImport reads it back into an empty repository.
func BenchmarkExport(b *testing.B) {
	src := gittest.InitBare(b, "sha1")
	gittest.GitInput(b, src, []byte(history(1, 2000, false)), "fast-import", "--quiet")
	r, err := repo.Open(src, repo.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	b.ResetTimer()
	for range b.N {
		if err := Export(context.Background(), r, io.Discard, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkImport(b *testing.B) {
	stream := []byte(history(1, 2000, false))
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		dst := gittest.InitBare(b, "sha1")
		r, err := repo.Open(dst, repo.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := fastimport.Import(context.Background(), r, bytes.NewReader(stream), fastimport.Options{}); err != nil {
			b.Fatal(err)
		}
		r.Close()
	}
}
