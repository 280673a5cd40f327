package receive

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotd/internal/git/oid"
	"gotd/internal/git/repo"
	"gotd/internal/gittest"
	"gotd/internal/protocol/wire"
)

// TestIngestMinFree: an Ingest whose MinFree the file system cannot
// leave refuses the pack, saying so, and leaves the repository as it
// was; with a MinFree it can leave, the same pack is taken.
func TestIngestMinFree(t *testing.T) {
	src := gittest.InitBare(t, "sha1")
	gittest.Generate(t, src, gittest.History{Commits: 3})
	tip := strings.TrimSpace(gittest.Git(t, src, "rev-parse", "main"))
	pack := []byte(gittest.GitInput(t, src, []byte(tip+"\n"), "pack-objects", "--revs", "-q", "--stdout"))
	id, err := oid.ParseHex(oid.SHA1, tip)
	if err != nil {
		t.Fatal(err)
	}
	dir := gittest.InitBare(t, "sha1")
	r, err := repo.Open(dir, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tips := []Tip{{Name: "refs/heads/main", ID: id}}
	in := &Ingest{Repo: r, Limits: wire.DefaultLimits, MinFree: 1 << 60}
	_, err = in.Take(context.Background(), bytes.NewReader(pack), tips)
	var werr *wire.Error
	if !errors.Is(err, ErrNoSpace) || !errors.As(err, &werr) || !strings.Contains(werr.Error(), "disk space") {
		t.Fatalf("Take with MinFree 1 EiB: got %v; want ErrNoSpace saying so", err)
	}
	if left, _ := os.ReadDir(filepath.Join(dir, "objects", "pack")); len(left) != 0 {
		t.Errorf("pack directory after the refusal: %v", left)
	}
	if q, _ := filepath.Glob(filepath.Join(dir, "objects", "incoming-*")); len(q) != 0 {
		t.Errorf("quarantine left: %v", q)
	}
	in.MinFree = 1 << 10
	if path, err := in.Take(context.Background(), bytes.NewReader(pack), tips); err != nil || path == "" {
		t.Fatalf("Take with MinFree 1 KiB: %q, %v", path, err)
	}
}

// TestIngestStopsAtReferences: the connectivity check of a push stops
// at what the repository's references reach, by a loose branch or by
// an annotated tag whose peeled value packed-refs records. The
// repository lacks the history below them (as a repository whose old
// objects a check would never need): a walk that went past them, had
// the references not been taken as had, would miss it and refuse the
// push.
func TestIngestStopsAtReferences(t *testing.T) {
	src := gittest.InitBare(t, "sha1")
	gittest.Generate(t, src, gittest.History{Commits: 4, Files: 3})
	rev := func(name string) string { return strings.TrimSpace(gittest.Git(t, src, "rev-parse", name)) }
	old, base, tip := rev("main~3"), rev("main~1"), rev("main")
	packOf := func(revs string) []byte {
		return []byte(gittest.GitInput(t, src, []byte(revs), "pack-objects", "--revs", "-q", "--stdout"))
	}
	for _, tc := range []struct {
		name string
		refs func(dir string)
	}{
		{"loose branch", func(dir string) {
			gittest.Git(t, dir, "update-ref", "refs/heads/main", base)
		}},
		{"packed annotated tag", func(dir string) {
			gittest.Git(t, dir, "-c", "user.name=u", "-c", "user.email=u@example.org", "tag", "-a", "-m", "base", "v1", base)
			gittest.Git(t, dir, "pack-refs", "--all")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := gittest.InitBare(t, "sha1")
			// The history from old (excluded) to base: old and what
			// only it holds are missing.
			gittest.GitInput(t, dir, packOf(base+"\n^"+old+"\n"), "unpack-objects", "-q")
			tc.refs(dir)
			r, err := repo.Open(dir, repo.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			id, err := oid.ParseHex(oid.SHA1, tip)
			if err != nil {
				t.Fatal(err)
			}
			in := &Ingest{Repo: r, Limits: wire.DefaultLimits}
			if _, err := in.Take(context.Background(), bytes.NewReader(packOf(tip+"\n^"+base+"\n")), []Tip{{Name: "refs/heads/next", ID: id}}); err != nil {
				t.Fatalf("a push on top of %s: got %v; want it taken", tc.name, err)
			}
		})
	}
}
