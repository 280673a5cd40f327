package repo

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/refs"
	"gotd/internal/git/walk"
	"gotd/internal/gittest"
)

// layouts are the ways C Git stores a repository that gotd must read.
var layouts = []struct {
	name  string
	setup func(t *testing.T, dir string)
}{
	{"fast-import pack", func(t *testing.T, dir string) {}},
	{"loose objects", func(t *testing.T, dir string) {
		// Explode the pack into loose objects in a fresh repository and
		// swap it in.
		packs, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "*.pack"))
		for _, p := range packs {
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			base := strings.TrimSuffix(p, ".pack")
			for _, ext := range []string{".pack", ".idx", ".rev"} {
				os.Remove(base + ext)
			}
			gittest.GitInput(t, dir, data, "unpack-objects", "-q")
		}
	}},
	{"several packs and packed-refs", func(t *testing.T, dir string) {
		gittest.Git(t, dir, "repack", "-adf", "-q")
		blob := gittest.GitInput(t, dir, []byte("loose after repack\n"), "hash-object", "-w", "--stdin")
		gittest.Git(t, dir, "update-ref", "refs/heads/extra", strings.TrimSpace(commitOf(t, dir, blob)))
		gittest.Git(t, dir, "repack", "-d", "-q")
		gittest.Git(t, dir, "pack-refs", "--all")
		gittest.GitInput(t, dir, []byte("left loose\n"), "hash-object", "-w", "--stdin")
	}},
	{"bitmap, commit-graph, rev index", func(t *testing.T, dir string) {
		gittest.Git(t, dir, "-c", "pack.writeReverseIndex=true", "-c", "pack.writeBitmapHashCache=true",
			"repack", "-adb", "-q")
		gittest.Git(t, dir, "commit-graph", "write", "--reachable")
	}},
	{"multi-pack-index and split commit-graph", func(t *testing.T, dir string) {
		gittest.Git(t, dir, "repack", "-adf", "-q")
		blob := gittest.GitInput(t, dir, []byte("second pack\n"), "hash-object", "-w", "--stdin")
		gittest.Git(t, dir, "update-ref", "refs/heads/extra", strings.TrimSpace(commitOf(t, dir, blob)))
		gittest.Git(t, dir, "repack", "-d", "-q")
		gittest.Git(t, dir, "multi-pack-index", "write")
		gittest.Git(t, dir, "commit-graph", "write", "--reachable", "--split")
	}},
}

// commitOf makes a commit whose tree holds blob and whose parent is main.
func commitOf(t *testing.T, dir, blob string) string {
	tree := gittest.GitInput(t, dir, []byte("100644 blob "+strings.TrimSpace(blob)+"\textra.txt\n"), "mktree")
	return gittest.Git(t, dir, "commit-tree", strings.TrimSpace(tree), "-p", "main", "-m", "extra")
}

func TestReadWhatCGitWrote(t *testing.T) {
	for _, format := range []string{"sha1", "sha256"} {
		for _, layout := range layouts {
			t.Run(format+"/"+layout.name, func(t *testing.T) {
				dir := gittest.InitBare(t, format)
				gittest.Generate(t, dir, gittest.History{Commits: 30, Branches: 2, Files: 10})
				layout.setup(t, dir)

				r, err := Open(dir, Options{})
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				defer r.Close()
				if got := r.Format.String(); got != format {
					t.Errorf("Format = %s; want %s", got, format)
				}
				checkObjects(t, r, dir)
				checkRefs(t, r, dir)
				checkWalk(t, r, dir)
			})
		}
	}
}

// checkObjects compares every object with what git cat-file prints.
func checkObjects(t *testing.T, r *Repo, dir string) {
	t.Helper()
	ids := gittest.Objects(t, dir)
	out := gittest.GitInput(t, dir, []byte(strings.Join(ids, "\n")+"\n"), "cat-file", "--batch")
	br := bufio.NewReader(strings.NewReader(out))
	for range ids {
		hdr, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading cat-file output: %v", err)
		}
		f := strings.Fields(hdr)
		size, _ := strconv.Atoi(f[2])
		want := make([]byte, size+1)
		if _, err := io.ReadFull(br, want); err != nil {
			t.Fatal(err)
		}
		want = want[:size]
		id, err := oid.ParseHex(r.Format, f[0])
		if err != nil {
			t.Fatal(err)
		}
		typ, data, err := r.ReadObject(id)
		if err != nil {
			t.Errorf("ReadObject(%s): %v", id, err)
			continue
		}
		if typ.String() != f[1] || !bytes.Equal(data, want) {
			t.Errorf("ReadObject(%s) = %s, %d bytes; want %s, %d bytes", id, typ, len(data), f[1], size)
		}
		st, n, err := r.StatObject(id)
		if err != nil || st != typ || n != int64(size) {
			t.Errorf("StatObject(%s) = %s, %d, %v; want %s, %d", id, st, n, err, f[1], size)
		}
		if !r.HasObject(id) {
			t.Errorf("HasObject(%s) = false", id)
		}
		ot, on, rc, err := r.OpenObject(id)
		if err != nil {
			t.Errorf("OpenObject(%s): %v", id, err)
			continue
		}
		streamed, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || ot != typ || on != int64(size) || !bytes.Equal(streamed, want) {
			t.Errorf("OpenObject(%s) = %s, %d, %d bytes read, %v; want %s, %d bytes", id, ot, on, len(streamed), err, f[1], size)
		}
	}
	missing := oid.Zero(r.Format)
	if _, _, err := r.ReadObject(missing); !errors.Is(err, object.ErrNotFound) {
		t.Errorf("ReadObject(null id) err = %v; want object.ErrNotFound", err)
	}
}

// checkRefs compares the references with git show-ref, peeled tags
// included.
func checkRefs(t *testing.T, r *Repo, dir string) {
	t.Helper()
	want := gittest.Git(t, dir, "show-ref", "--head", "-d")
	var got strings.Builder
	if head, err := r.Refs.Resolve("HEAD"); err == nil {
		fmt.Fprintf(&got, "%s HEAD\n", head.ID)
	}
	err := r.Refs.List("refs/", func(ref refs.Ref) error {
		fmt.Fprintf(&got, "%s %s\n", ref.ID, ref.Name)
		peeled := ref.Peeled
		if !peeled.Valid() {
			// Peel by reading: a loose tag ref carries no peeled value.
			id := ref.ID
			for {
				typ, data, err := r.ReadObject(id)
				if err != nil || typ != object.Tag {
					break
				}
				tag, err := object.ParseTag(r.Format, data)
				if err != nil {
					return err
				}
				id = tag.Object
				peeled = id
			}
		}
		if peeled.Valid() && peeled != ref.ID {
			fmt.Fprintf(&got, "%s %s^{}\n", peeled, ref.Name)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if got.String() != want {
		t.Errorf("refs:\n%s\nwant (git show-ref --head -d):\n%s", got.String(), want)
	}
}

// checkWalk compares the objects reachable from all refs with git
// rev-list --objects --all.
func checkWalk(t *testing.T, r *Repo, dir string) {
	t.Helper()
	var tips []oid.ID
	r.Refs.List("refs/", func(ref refs.Ref) error {
		tips = append(tips, ref.ID)
		return nil
	})
	w := &walk.Walker{Store: r, Format: r.Format}
	var got []string
	err := w.Objects(context.Background(), tips, nil, func(id oid.ID, t object.Type, path []byte) error {
		got = append(got, id.String())
		return nil
	})
	if err != nil {
		t.Fatalf("walk: %v", err)
	}
	var want []string
	for _, line := range strings.Split(strings.TrimSpace(gittest.Git(t, dir, "rev-list", "--objects", "--all")), "\n") {
		want = append(want, strings.Fields(line)[0])
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("walk found %d objects; git rev-list --objects --all lists %d", len(got), len(want))
	}
}

// TestSeesPacksOfOtherWriters opens a repository, then lets C Git add a
// pack and later replace every pack: objects stay readable throughout.
func TestSeesPacksOfOtherWriters(t *testing.T) {
	dir := gittest.InitBare(t, "sha1")
	gittest.Generate(t, dir, gittest.History{Commits: 5, Files: 4})
	r, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	before := len(r.Packs())

	blob := strings.TrimSpace(gittest.GitInput(t, dir, []byte("added later\n"), "hash-object", "-w", "--stdin"))
	gittest.Git(t, dir, "tag", "later", blob)
	gittest.Git(t, dir, "repack", "-dq") // a new pack beside the old one
	id, _ := oid.ParseHex(oid.SHA1, blob)
	if _, data, err := r.ReadObject(id); err != nil || string(data) != "added later\n" {
		t.Fatalf("ReadObject of an object in a new pack = %q, %v", data, err)
	}
	if got := len(r.Packs()); got != before+1 {
		t.Errorf("packs after git repack -d: %d; want %d", got, before+1)
	}

	gittest.Git(t, dir, "repack", "-adfq") // every old pack removed
	head, err := r.Refs.Resolve("HEAD")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Rescan(); err != nil {
		t.Fatal(err)
	}
	if got := len(r.Packs()); got != 1 {
		t.Errorf("packs after git repack -adf: %d; want 1", got)
	}
	for _, want := range []oid.ID{id, head.ID} {
		if !r.HasObject(want) {
			t.Errorf("HasObject(%s) = false after the repack", want)
		}
	}
}

// TestPacksOpenedLazily: Open reads no pack file, so that a process
// that only lists references (ls-remote) never maps an index; the
// first object read opens them. An index that cannot be used shows
// then, not at Open.
func TestPacksOpenedLazily(t *testing.T) {
	dir := gittest.InitBare(t, "sha1")
	gittest.Generate(t, dir, gittest.History{Commits: 3, Files: 2})
	gittest.Git(t, dir, "repack", "-adq")
	idx, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "*.idx"))
	if len(idx) != 1 {
		t.Fatalf("packs: %v; want one", idx)
	}
	good, err := os.ReadFile(idx[0])
	if err != nil {
		t.Fatal(err)
	}
	// Not an index at all: opening it fails.
	os.Chmod(idx[0], 0o644)
	if err := os.WriteFile(idx[0], []byte("not an index"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open with an unusable index: %v; want the index left for later", err)
	}
	defer r.Close()
	head, err := r.Refs.Resolve("HEAD")
	if err != nil {
		t.Fatalf("references of a repository whose index is unusable: %v", err)
	}
	if _, _, err := r.ReadObject(head.ID); err == nil {
		t.Errorf("ReadObject(HEAD) with an unusable index succeeded")
	}
	if err := r.Rescan(); err == nil {
		t.Errorf("Rescan with an unusable index succeeded; want its error")
	}

	// With the index restored, a new Repo reads the pack on first use.
	if err := os.WriteFile(idx[0], good, 0o644); err != nil {
		t.Fatal(err)
	}
	r2, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if typ, _, err := r2.ReadObject(head.ID); err != nil || typ != object.Commit {
		t.Errorf("ReadObject(HEAD) = %v, %v; want a commit", typ, err)
	}
}
