package loose

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/gittest"
)

var formats = []oid.Format{oid.SHA1, oid.SHA256}

func newStore(t *testing.T, f oid.Format) (*Store, string) {
	t.Helper()
	dir := gittest.InitBare(t, f.String())
	return New(filepath.Join(dir, "objects"), f), dir
}

// TestWriteReadByGit writes objects with WriteObject and checks that C Git
// reads them and that git fsck accepts the repository.
func TestWriteReadByGit(t *testing.T) {
	for _, f := range formats {
		t.Run(f.String(), func(t *testing.T) {
			s, dir := newStore(t, f)
			blob, err := s.WriteObject(object.Blob, []byte("hello\n"))
			if err != nil {
				t.Fatal(err)
			}
			big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
			bigID, err := s.WriteObject(object.Blob, big)
			if err != nil {
				t.Fatal(err)
			}
			empty, err := s.WriteObject(object.Blob, nil)
			if err != nil {
				t.Fatal(err)
			}
			tree := object.AppendTreeEntry(nil, object.ModeBlob, []byte("big"), bigID)
			tree = object.AppendTreeEntry(tree, object.ModeBlob, []byte("empty"), empty)
			tree = object.AppendTreeEntry(tree, object.ModeBlob, []byte("hello"), blob)
			treeID, err := s.WriteObject(object.Tree, tree)
			if err != nil {
				t.Fatal(err)
			}
			commit := fmt.Sprintf("tree %s\nauthor A <a@b> 1 +0000\ncommitter C <c@d> 2 +0000\n\nmsg\n", treeID)
			commitID, err := s.WriteObject(object.Commit, []byte(commit))
			if err != nil {
				t.Fatal(err)
			}
			tag := fmt.Sprintf("object %s\ntype commit\ntag v1\ntagger T <t@t> 3 +0000\n\nrelease\n", commitID)
			tagID, err := s.WriteObject(object.Tag, []byte(tag))
			if err != nil {
				t.Fatal(err)
			}
			gittest.Git(t, dir, "update-ref", "refs/tags/v1", tagID.String())
			gittest.Git(t, dir, "update-ref", "refs/heads/main", commitID.String())

			for _, c := range []struct {
				id   oid.ID
				typ  string
				want []byte
			}{
				{blob, "blob", []byte("hello\n")},
				{bigID, "blob", big},
				{empty, "blob", nil},
				{treeID, "tree", tree},
				{commitID, "commit", []byte(commit)},
				{tagID, "tag", []byte(tag)},
			} {
				if got := strings.TrimSpace(gittest.Git(t, dir, "cat-file", "-t", c.id.String())); got != c.typ {
					t.Errorf("git cat-file -t %s: got %s; want %s", c.id, got, c.typ)
				}
				if got := gittest.Git(t, dir, "cat-file", c.typ, c.id.String()); got != string(c.want) {
					t.Errorf("git cat-file %s %s: content differs (%d bytes; want %d)", c.typ, c.id, len(got), len(c.want))
				}
			}
			gittest.Git(t, dir, "fsck", "--full", "--strict")

			// Files are read-only and, the store's zero perm.Shared
			// being private, closed to others (issue 19: 0444 whatever
			// the umask); fan-out directories searchable.
			fi, err := os.Stat(s.path(blob))
			if err != nil || fi.Mode().Perm() != 0o440 {
				t.Errorf("object file mode: got %v, %v; want 0440", fi.Mode().Perm(), err)
			}
			di, err := os.Stat(filepath.Dir(s.path(blob)))
			if err != nil || di.Mode().Perm()&0o700 != 0o700 {
				t.Errorf("fan-out directory mode: got %v, %v", di.Mode().Perm(), err)
			}
			// Writing again keeps the file and leaves no temporary file.
			if id, err := s.WriteObject(object.Blob, []byte("hello\n")); err != nil || id != blob {
				t.Errorf("rewrite: got %v, %v; want %v", id, err, blob)
			}
			ents, _ := os.ReadDir(s.Dir())
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), "tmp_") {
					t.Errorf("temporary file left behind: %s", e.Name())
				}
			}
		})
	}
}

// TestReadWhatGitWrote reads objects written by git hash-object -w and
// compares them with git cat-file.
func TestReadWhatGitWrote(t *testing.T) {
	for _, f := range formats {
		t.Run(f.String(), func(t *testing.T) {
			s, dir := newStore(t, f)
			contents := []string{"", "a\n", strings.Repeat("line of text\n", 10000), "\x00\x01\x02binary"}
			var ids []oid.ID
			for _, c := range contents {
				hex := strings.TrimSpace(gittest.GitInput(t, dir, []byte(c), "hash-object", "-w", "--stdin"))
				id, err := oid.ParseHex(f, hex)
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, id)
			}
			// A commit and a tree, written by git itself.
			treeHex := strings.TrimSpace(gittest.GitInput(t, dir,
				[]byte(fmt.Sprintf("100644 blob %s\ta\n", ids[1])), "mktree"))
			commitHex := strings.TrimSpace(gittest.Git(t, dir, "commit-tree", "-m", "msg", treeHex))
			for _, hex := range []string{treeHex, commitHex} {
				id, _ := oid.ParseHex(f, hex)
				ids = append(ids, id)
			}
			s.VerifyHash = true
			for _, id := range ids {
				typ, data, err := s.ReadObject(id)
				if err != nil {
					t.Fatalf("ReadObject(%s): %v", id, err)
				}
				wantType := strings.TrimSpace(gittest.Git(t, dir, "cat-file", "-t", id.String()))
				want := gittest.Git(t, dir, "cat-file", wantType, id.String())
				if typ.String() != wantType || string(data) != want {
					t.Errorf("ReadObject(%s) = %v, %d bytes; want %s, %d bytes", id, typ, len(data), wantType, len(want))
				}
				st, size, err := s.StatObject(id)
				if err != nil || st != typ || size != int64(len(data)) {
					t.Errorf("StatObject(%s) = %v %d %v; want %v %d", id, st, size, err, typ, len(data))
				}
				if !s.HasObject(id) {
					t.Errorf("HasObject(%s) = false", id)
				}
			}
			var listed []oid.ID
			if err := s.ForEach(func(id oid.ID) error { listed = append(listed, id); return nil }); err != nil {
				t.Fatal(err)
			}
			slices.SortFunc(ids, oid.ID.Compare)
			if !slices.Equal(listed, ids) {
				t.Errorf("ForEach listed %v; want %v", listed, ids)
			}
		})
	}
}

func TestMissing(t *testing.T) {
	s, _ := newStore(t, oid.SHA1)
	id, _ := object.ID(oid.SHA1, object.Blob, []byte("absent"))
	if s.HasObject(id) {
		t.Error("HasObject of a missing object: got true")
	}
	if _, _, err := s.ReadObject(id); !errors.Is(err, object.ErrNotFound) {
		t.Errorf("ReadObject: got %v; want ErrNotFound", err)
	}
	if _, _, err := s.StatObject(id); !errors.Is(err, object.ErrNotFound) {
		t.Errorf("StatObject: got %v; want ErrNotFound", err)
	}
	if err := s.Remove(id); !errors.Is(err, object.ErrNotFound) {
		t.Errorf("Remove: got %v; want ErrNotFound", err)
	}
	other, _ := object.ID(oid.SHA256, object.Blob, []byte("absent"))
	if _, _, err := s.ReadObject(other); err == nil || errors.Is(err, object.ErrNotFound) {
		t.Errorf("ReadObject of a SHA-256 id in a SHA-1 store: got %v; want a format error", err)
	}
	if _, err := s.WriteObject(object.OfsDelta, nil); err == nil {
		t.Error("WriteObject(OfsDelta): got nil error")
	}
}

func TestRemoveAndForEachSkips(t *testing.T) {
	s, _ := newStore(t, oid.SHA1)
	a, _ := s.WriteObject(object.Blob, []byte("a"))
	b, _ := s.WriteObject(object.Blob, []byte("b"))
	// Things that are not loose objects.
	junk := []string{
		"tmp_obj_123456",
		"ab/tmp_obj_abcdef",
		"ab/" + strings.Repeat("c", 37),
		"ab/" + strings.Repeat("c", 39),
		"ab/" + strings.ToUpper(strings.Repeat("c", 38)),
		"ab/" + strings.Repeat("g", 38),
		"AB/" + strings.Repeat("c", 38),
		"xy/" + strings.Repeat("c", 38),
		"abc/" + strings.Repeat("c", 38),
	}
	for _, j := range junk {
		p := filepath.Join(s.Dir(), j)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("junk"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(s.Dir(), "cd", strings.Repeat("e", 38)), 0o755) // a directory, not a file
	var got []oid.ID
	s.ForEach(func(id oid.ID) error { got = append(got, id); return nil })
	want := []oid.ID{a, b}
	slices.SortFunc(want, oid.ID.Compare)
	if !slices.Equal(got, want) {
		t.Errorf("ForEach: got %v; want %v", got, want)
	}
	stop := errors.New("stop")
	n := 0
	if err := s.ForEach(func(oid.ID) error { n++; return stop }); err != stop || n != 1 {
		t.Errorf("ForEach stopping: got %v after %d calls; want stop after 1", err, n)
	}
	if err := s.Remove(a); err != nil {
		t.Fatal(err)
	}
	if s.HasObject(a) || !s.HasObject(b) {
		t.Errorf("after Remove: HasObject(a)=%v HasObject(b)=%v", s.HasObject(a), s.HasObject(b))
	}
	empty := New(filepath.Join(t.TempDir(), "nonexistent"), oid.SHA1)
	if err := empty.ForEach(func(oid.ID) error { return nil }); err != nil {
		t.Errorf("ForEach on a missing directory: %v", err)
	}
}

// compress returns raw zlib-compressed.
func compress(t testing.TB, raw []byte) []byte {
	var b bytes.Buffer
	w := zlib.NewWriter(&b)
	w.Write(raw)
	w.Close()
	return b.Bytes()
}

// writeRaw installs file content for id directly.
func writeRaw(t *testing.T, s *Store, id oid.ID, content []byte) {
	t.Helper()
	p := s.path(id)
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.Remove(p)
	if err := os.WriteFile(p, content, 0o444); err != nil {
		t.Fatal(err)
	}
}

func TestMalformedFiles(t *testing.T) {
	good := compress(t, []byte("blob 5\x00hello"))
	corrupt := slices.Clone(good)
	corrupt[len(corrupt)/2] ^= 0xff
	badSum := slices.Clone(good)
	badSum[len(badSum)-1] ^= 0x01
	for _, tc := range []struct {
		name string
		file []byte
	}{
		{"empty file", nil},
		{"not zlib", []byte("blob 5\x00hello")},
		{"truncated", good[:len(good)-6]},
		{"truncated checksum", good[:len(good)-2]},
		{"corrupted", corrupt},
		{"bad checksum", badSum},
		{"garbage after stream", append(slices.Clone(good), 'x')},
		{"second stream", append(slices.Clone(good), good...)},
		{"content longer", compress(t, []byte("blob 4\x00hello"))},
		{"content longer in header read", compress(t, []byte("blob 1\x00hello"))},
		{"content shorter", compress(t, []byte("blob 6\x00hello"))},
		{"no NUL", compress(t, []byte("blob 5 hello"))},
		{"no header", compress(t, []byte(""))},
		{"unknown type", compress(t, []byte("blub 5\x00hello"))},
		{"delta type", compress(t, []byte("ofs-delta 5\x00hello"))},
		{"negative size", compress(t, []byte("blob -5\x00hello"))},
		{"zero-padded size", compress(t, []byte("blob 05\x00hello"))},
		{"size overflow", compress(t, []byte("blob 99999999999999999999\x00hello"))},
		{"long header", compress(t, []byte("blob "+strings.Repeat("1", 40)+"\x00"))},
		{"two spaces", compress(t, []byte("blob  5\x00hello"))},
	} {
		s, _ := newStore(t, oid.SHA1)
		id, _ := object.ID(oid.SHA1, object.Blob, []byte("hello"))
		writeRaw(t, s, id, tc.file)
		if typ, data, err := s.ReadObject(id); err == nil {
			t.Errorf("%s: ReadObject = %v %q; want error", tc.name, typ, data)
		} else if errors.Is(err, object.ErrNotFound) {
			t.Errorf("%s: ReadObject error %v wraps ErrNotFound", tc.name, err)
		}
		if _, _, err := decode(tc.file, 0); err == nil {
			t.Errorf("%s: decode: got nil error", tc.name)
		}
		if typ, data, err := readOpened(s, id); err == nil {
			t.Errorf("%s: OpenObject = %v %q; want error", tc.name, typ, data)
		}
	}
}

// readOpened reads id whole through OpenObject.
func readOpened(s *Store, id oid.ID) (object.Type, []byte, error) {
	typ, size, r, err := s.OpenObject(id)
	if err != nil {
		return 0, nil, err
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err == nil && int64(len(data)) != size {
		err = fmt.Errorf("read %d bytes of %d", len(data), size)
	}
	return typ, data, err
}

// TestOpenObject: OpenObject reads what ReadObject reads, within
// MaxObjectSize, without holding the object.
func TestOpenObject(t *testing.T) {
	s, _ := newStore(t, oid.SHA1)
	for _, n := range []int{0, 1, maxHeader, 100 << 10, 3 << 20} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(i * 7 / 5)
		}
		id, err := s.WriteObject(object.Blob, data)
		if err != nil {
			t.Fatal(err)
		}
		typ, got, err := readOpened(s, id)
		if err != nil || typ != object.Blob || !bytes.Equal(got, data) {
			t.Errorf("%d bytes: OpenObject = %v, %d bytes, %v", n, typ, len(got), err)
		}
		if n > 1 {
			s.MaxObjectSize = int64(n - 1)
			if _, _, _, err := s.OpenObject(id); err == nil {
				t.Errorf("%d bytes: OpenObject under a limit of %d: no error", n, n-1)
			}
			s.MaxObjectSize = 0
		}
	}
	if _, _, _, err := s.OpenObject(oid.MustFromBytes(oid.SHA1, make([]byte, 20))); !errors.Is(err, object.ErrNotFound) {
		t.Errorf("OpenObject of a missing object: %v; want ErrNotFound", err)
	}
}

func TestVerifyHash(t *testing.T) {
	s, _ := newStore(t, oid.SHA1)
	id, _ := object.ID(oid.SHA1, object.Blob, []byte("hello"))
	writeRaw(t, s, id, compress(t, []byte("blob 5\x00HELLO")))
	if _, data, err := s.ReadObject(id); err != nil || string(data) != "HELLO" {
		t.Errorf("without VerifyHash: got %q, %v; want the content as stored", data, err)
	}
	s.VerifyHash = true
	if _, _, err := s.ReadObject(id); err == nil {
		t.Error("with VerifyHash: got nil error for a file whose content hashes elsewhere")
	}
}

// allocatedDuring returns the bytes allocated while fn runs.
func allocatedDuring(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestHostileSizes(t *testing.T) {
	s, _ := newStore(t, oid.SHA1)
	id, _ := object.ID(oid.SHA1, object.Blob, []byte("x"))

	// A header declaring 1 TiB in front of a few bytes must not make the
	// reader allocate what it declares.
	writeRaw(t, s, id, compress(t, []byte("blob "+strconv.Itoa(1<<40)+"\x00short")))
	n := allocatedDuring(func() {
		if _, _, err := s.ReadObject(id); err == nil {
			t.Error("declared 1 TiB, 5 bytes present: got nil error")
		}
	})
	if n > 4<<20 {
		t.Errorf("declared 1 TiB: allocated %d bytes; want under 4 MiB", n)
	}

	// A zlib bomb: 10 bytes declared, 64 MiB inflated. The reader must
	// stop right after the declared size.
	var bomb bytes.Buffer
	w, _ := zlib.NewWriterLevel(&bomb, zlib.BestSpeed)
	w.Write([]byte("blob 10\x00"))
	zeros := make([]byte, 1<<20)
	for i := 0; i < 64; i++ {
		w.Write(zeros)
	}
	w.Close()
	writeRaw(t, s, id, bomb.Bytes())
	n = allocatedDuring(func() {
		if _, _, err := s.ReadObject(id); err == nil {
			t.Error("zlib bomb: got nil error")
		}
	})
	if n > 4<<20 {
		t.Errorf("zlib bomb: allocated %d bytes; want under 4 MiB", n)
	}

	// MaxObjectSize refuses before inflating the content.
	big := bytes.Repeat([]byte("z"), 100000)
	bigID, err := s.WriteObject(object.Blob, big)
	if err != nil {
		t.Fatal(err)
	}
	s.MaxObjectSize = 99999
	if _, _, err := s.ReadObject(bigID); err == nil {
		t.Error("object above MaxObjectSize: got nil error")
	}
	s.MaxObjectSize = 100000
	if _, data, err := s.ReadObject(bigID); err != nil || !bytes.Equal(data, big) {
		t.Errorf("object at MaxObjectSize: got %d bytes, %v", len(data), err)
	}
	// StatObject reports the declared size without inflating content.
	writeRaw(t, s, id, compress(t, []byte("blob "+strconv.Itoa(1<<40)+"\x00short")))
	if typ, size, err := s.StatObject(id); err != nil || typ != object.Blob || size != 1<<40 {
		t.Errorf("StatObject = %v %d %v; want blob %d", typ, size, err, 1<<40)
	}
}

func TestReadAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	s, _ := newStore(t, oid.SHA1)
	id, err := s.WriteObject(object.Blob, bytes.Repeat([]byte("abc"), 1000))
	if err != nil {
		t.Fatal(err)
	}
	s.ReadObject(id) // warm the pools
	allocs := testing.AllocsPerRun(50, func() {
		if _, _, err := s.ReadObject(id); err != nil {
			panic(err)
		}
	})
	// The file, its name, and the content buffer.
	if allocs > 8 {
		t.Errorf("ReadObject: got %v allocations; want at most 8", allocs)
	}
}

// TestConcurrentWrite writes the same objects from several goroutines.
func TestConcurrentWrite(t *testing.T) {
	s, dir := newStore(t, oid.SHA1)
	done := make(chan error)
	for g := 0; g < 4; g++ {
		go func() {
			var err error
			for i := 0; i < 20 && err == nil; i++ {
				_, err = s.WriteObject(object.Blob, []byte(strconv.Itoa(i)))
			}
			done <- err
		}()
	}
	for g := 0; g < 4; g++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	out := gittest.Git(t, dir, "count-objects", "-v")
	if !strings.Contains(out, "count: 20\n") {
		t.Errorf("git count-objects: %s", out)
	}
}
