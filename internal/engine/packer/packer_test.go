package packer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/pack"
	"gotd/internal/git/repo"
	"gotd/internal/gittest"
)

// testSource is a Source over a C Git repository: stored copies are
// found in its packs with pack.Open, and contents are read with
// `git cat-file --batch`, so that what the writer sends is checked
// against C Git's reading of the objects.
type testSource struct {
	t     testing.TB
	f     oid.Format
	packs []*pack.Pack

	mu    sync.Mutex
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *bufio.Reader
	reads atomic.Int64
}

func newTestSource(t testing.TB, dir string, f oid.Format) *testSource {
	t.Helper()
	s := &testSource{t: t, f: f}
	names, err := filepath.Glob(filepath.Join(dir, "objects", "pack", "*.pack"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		p, err := pack.Open(name, f, pack.Options{})
		if err != nil {
			t.Fatalf("open %s: %v", name, err)
		}
		t.Cleanup(func() { p.Close() })
		s.packs = append(s.packs, p)
	}
	s.cmd = exec.Command("git", "cat-file", "--batch")
	s.cmd.Dir = dir
	s.cmd.Env = gittest.Env(t)
	s.in, err = s.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.out = bufio.NewReader(stdout)
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.in.Close()
		s.cmd.Wait()
	})
	return s
}

func (s *testSource) LocateObject(id oid.ID) (*pack.Pack, uint64, bool) {
	for _, p := range s.packs {
		if off, ok := p.OffsetOf(id); ok {
			return p, off, true
		}
	}
	return nil, 0, false
}

func (s *testSource) ReadObject(id oid.ID) (object.Type, []byte, error) {
	s.reads.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := fmt.Fprintf(s.in, "%s\n", id); err != nil {
		return 0, nil, err
	}
	line, err := s.out.ReadString('\n')
	if err != nil {
		return 0, nil, err
	}
	f := strings.Fields(line)
	if len(f) != 3 {
		return 0, nil, fmt.Errorf("%s: %w", strings.TrimSpace(line), object.ErrNotFound)
	}
	t, err := object.ParseType([]byte(f[1]))
	if err != nil {
		return 0, nil, err
	}
	size, err := strconv.Atoi(f[2])
	if err != nil {
		return 0, nil, err
	}
	data := make([]byte, size+1)
	if _, err := io.ReadFull(s.out, data); err != nil {
		return 0, nil, err
	}
	return t, data[:size], nil
}

// sizedSource is a testSource that is also an ObjectSizer, answering
// from `git cat-file --batch-check`.
type sizedSource struct {
	*testSource
	dir   string
	sizes atomic.Int64
}

func (s *sizedSource) StatObject(id oid.ID) (object.Type, int64, error) {
	s.sizes.Add(1)
	out, err := gittest.Run(s.t, s.dir, []byte(id.String()+"\n"), "cat-file", "--batch-check")
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(out)
	if len(f) != 3 {
		return 0, 0, fmt.Errorf("%s: %w", strings.TrimSpace(out), object.ErrNotFound)
	}
	t, err := object.ParseType([]byte(f[1]))
	if err != nil {
		return 0, 0, err
	}
	size, err := strconv.ParseInt(f[2], 10, 64)
	return t, size, err
}

// The repository, the packer's Source in the daemon, gives sizes without
// reading loose objects whole.
var _ ObjectSizer = (*repo.Repo)(nil)

// listObjects returns the objects `git rev-list --objects` lists for
// revs, with their types and the name hashes of their paths, in
// rev-list's (recency) order.
func listObjects(t testing.TB, dir string, f oid.Format, revs ...string) []Object {
	t.Helper()
	out := gittest.Git(t, dir, append([]string{"rev-list", "--objects"}, revs...)...)
	var ids bytes.Buffer
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		id, name, _ := strings.Cut(line, " ")
		ids.WriteString(id + "\n")
		names = append(names, name)
	}
	if len(names) == 0 {
		return nil
	}
	types := strings.Fields(gittest.GitInput(t, dir, ids.Bytes(), "cat-file", "--batch-check=%(objectname) %(objecttype)"))
	var objs []Object
	for i := 0; i+1 < len(types); i += 2 {
		id, err := oid.ParseHex(f, types[i])
		if err != nil {
			t.Fatal(err)
		}
		typ, err := object.ParseType([]byte(types[i+1]))
		if err != nil {
			t.Fatal(err)
		}
		var h uint32
		if names[i/2] != "" {
			h = NameHash([]byte(names[i/2]))
		}
		objs = append(objs, Object{ID: id, Type: typ, NameHash: h})
	}
	if len(objs) != len(names) {
		t.Fatalf("got %d types for %d objects", len(objs), len(names))
	}
	return objs
}

func formatOf(name string) oid.Format {
	if name == "sha256" {
		return oid.SHA256
	}
	return oid.SHA1
}

// newRepo returns a bare repository with a generated history. With
// loose set, fast-import leaves every object loose.
func newRepo(t testing.TB, format string, h gittest.History, loose bool) string {
	t.Helper()
	dir := gittest.InitBare(t, format)
	if loose {
		gittest.Git(t, dir, "config", "fastimport.unpackLimit", "1000000")
	}
	gittest.Generate(t, dir, h)
	return dir
}

func writePack(t testing.TB, src Source, objs []Object, opts Options) []byte {
	t.Helper()
	var buf bytes.Buffer
	sum, err := Write(context.Background(), &buf, src, objs, opts)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	b := buf.Bytes()
	if len(b) < pack.HeaderSize+len(sum) || !bytes.Equal(b[len(b)-len(sum):], sum) {
		t.Fatalf("got a pack not ending with the checksum Write returned")
	}
	return b
}

// received is a repository that indexed a pack written by Write.
type received struct {
	dir      string
	packPath string
}

// receive indexes data into a new (or the given) repository with `git
// index-pack`, checks it with `git verify-pack`, points refs at the tips
// of the source repository and runs `git fsck --full`.
func receive(t *testing.T, format, srcDir, dir string, data []byte, thin bool) received {
	t.Helper()
	if dir == "" {
		dir = gittest.InitBare(t, format)
	}
	args := []string{"index-pack", "--stdin", "--strict"}
	if thin {
		args = append(args, "--fix-thin")
	}
	out := strings.Fields(gittest.GitInput(t, dir, data, args...))
	if len(out) != 2 || out[0] != "pack" {
		t.Fatalf("got index-pack output %q; want pack <hash>", out)
	}
	path := filepath.Join(dir, "objects", "pack", "pack-"+out[1]+".pack")
	gittest.Git(t, dir, "verify-pack", path)
	refs := gittest.Git(t, srcDir, "for-each-ref", "--format=%(objectname) %(refname)")
	for _, line := range strings.Split(strings.TrimSpace(refs), "\n") {
		id, ref, _ := strings.Cut(line, " ")
		gittest.Git(t, dir, "update-ref", ref, id)
	}
	gittest.Git(t, dir, "fsck", "--full", "--strict", "--no-dangling")
	return received{dir: dir, packPath: path}
}

// packStats summarises `git verify-pack -v` of a pack.
type packStats struct {
	objects, deltas, maxChain int
}

func verifyPackStats(t *testing.T, dir, path string) packStats {
	t.Helper()
	out := gittest.Git(t, dir, "verify-pack", "-v", path)
	var st packStats
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 5 && (f[1] == "commit" || f[1] == "tree" || f[1] == "blob" || f[1] == "tag"):
			st.objects++
			if len(f) >= 7 {
				st.deltas++
				d, _ := strconv.Atoi(f[5])
				st.maxChain = max(st.maxChain, d)
			}
		}
	}
	return st
}

// entryTypes counts the stored entry types of a pack, using the index
// C Git wrote for it.
func entryTypes(t *testing.T, path string, f oid.Format, objs []Object) map[object.Type]int {
	t.Helper()
	p, err := pack.Open(path, f, pack.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	n := map[object.Type]int{}
	for _, o := range objs {
		off, ok := p.OffsetOf(o.ID)
		if !ok {
			continue
		}
		e, err := p.Entry(off)
		if err != nil {
			t.Fatal(err)
		}
		n[e.Type]++
	}
	return n
}

func TestWrite(t *testing.T) {
	tests := []struct {
		name   string
		format string
		loose  bool // objects loose rather than in fast-import's pack
		repack string
		sizer  bool // the source is an ObjectSizer
		opts   Options
		// checks on the result
		wantOfs, wantRef bool
		maxChain         int
	}{
		{name: "reuse sha1", format: "sha1", repack: "-adf", opts: Options{OfsDelta: true, ReuseDeltas: true}, wantOfs: true},
		{name: "reuse sha256", format: "sha256", repack: "-adf", opts: Options{OfsDelta: true, ReuseDeltas: true}, wantOfs: true},
		{name: "reuse as ref-delta", format: "sha1", repack: "-adf", opts: Options{ReuseDeltas: true}, wantRef: true},
		{name: "reuse depth 3", format: "sha1", repack: "-adf --depth=50", opts: Options{OfsDelta: true, ReuseDeltas: true, Depth: 3}, wantOfs: true, maxChain: 3},
		{name: "fast-import pack, ref-deltas", format: "sha1", opts: Options{OfsDelta: true, ReuseDeltas: true}, wantOfs: true},
		{name: "loose sha1", format: "sha1", loose: true, opts: Options{OfsDelta: true, ReuseDeltas: true}, wantOfs: true},
		{name: "loose sha256", format: "sha256", loose: true, opts: Options{OfsDelta: true, ReuseDeltas: true}, wantOfs: true},
		{name: "loose ref-delta", format: "sha1", loose: true, opts: Options{ReuseDeltas: true}, wantRef: true},
		{name: "loose depth 2 one thread", format: "sha1", loose: true, opts: Options{OfsDelta: true, Depth: 2, Threads: 1}, wantOfs: true, maxChain: 2},
		{name: "no reuse", format: "sha1", repack: "-adf", opts: Options{OfsDelta: true}, wantOfs: true},
		{name: "tiny delta memory", format: "sha1", loose: true, opts: Options{OfsDelta: true, DeltaMemory: 64 << 10}, wantOfs: true},
		{name: "no search", format: "sha1", loose: true, opts: Options{OfsDelta: true, Window: -1}},
		{name: "loose with sizer", format: "sha1", loose: true, sizer: true, opts: Options{OfsDelta: true, ReuseDeltas: true}, wantOfs: true},
		{name: "no compression", format: "sha256", loose: true, opts: Options{OfsDelta: true, Compression: NoCompression}, wantOfs: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := formatOf(tt.format)
			dir := newRepo(t, tt.format, gittest.History{Commits: 40, Branches: 2, Files: 12}, tt.loose)
			if tt.repack != "" {
				gittest.Git(t, dir, append([]string{"repack", "-q"}, strings.Fields(tt.repack)...)...)
			}
			objs := listObjects(t, dir, f, "--all")
			var src Source = newTestSource(t, dir, f)
			if tt.sizer {
				src = &sizedSource{testSource: src.(*testSource), dir: dir}
			}
			opts := tt.opts
			opts.Format = f
			var stages []string
			opts.Progress = func(stage string, done, total int) {
				if done == total {
					stages = append(stages, stage)
				}
			}
			data := writePack(t, src, objs, opts)
			if !slicesContain(stages, stageWrite) {
				t.Errorf("got progress %q; want %q to complete", stages, stageWrite)
			}
			r := receive(t, tt.format, dir, "", data, false)
			st := verifyPackStats(t, r.dir, r.packPath)
			if st.objects != len(objs) {
				t.Errorf("got %d objects in the pack; want %d", st.objects, len(objs))
			}
			if tt.opts.Window >= 0 && st.deltas == 0 {
				t.Errorf("got no deltas in the pack; want some")
			}
			if tt.opts.Window < 0 && tt.loose && st.deltas != 0 {
				t.Errorf("got %d deltas without a search; want 0", st.deltas)
			}
			if ss, ok := src.(*sizedSource); ok && ss.sizes.Load() == 0 {
				t.Errorf("got no ObjectSize calls; want the sizes of loose objects asked")
			}
			if tt.maxChain > 0 && st.maxChain > tt.maxChain {
				t.Errorf("got delta chain of %d; want at most %d", st.maxChain, tt.maxChain)
			}
			types := entryTypes(t, r.packPath, f, objs)
			if got := types[object.OfsDelta] > 0; got != tt.wantOfs {
				t.Errorf("got %d ofs-deltas; want some: %v", types[object.OfsDelta], tt.wantOfs)
			}
			if got := types[object.RefDelta] > 0; got != tt.wantRef {
				t.Errorf("got %d ref-deltas; want some: %v", types[object.RefDelta], tt.wantRef)
			}
		})
	}
}

func slicesContain(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestWriteReuseCopies checks that a fully packed repository is sent
// from its stored bytes: no object is read, and the pack is the stored
// pack's size give or take the ofs-delta encodings.
func TestWriteReuseCopies(t *testing.T) {
	for _, format := range []string{"sha1", "sha256"} {
		t.Run(format, func(t *testing.T) {
			f := formatOf(format)
			dir := newRepo(t, format, gittest.History{Commits: 60, Branches: 3, Files: 20}, false)
			gittest.Git(t, dir, "repack", "-q", "-adf")
			objs := listObjects(t, dir, f, "--all")
			src := newTestSource(t, dir, f)
			data := writePack(t, src, objs, Options{Format: f, OfsDelta: true, ReuseDeltas: true})
			if n := src.reads.Load(); n != 0 {
				t.Errorf("got %d objects read; want 0 (all copied)", n)
			}
			stored := src.packs[0].Size()
			if diff := int64(len(data)) - int64(stored); diff < -int64(stored)/100 || diff > int64(stored)/100 {
				t.Errorf("got a %d-byte pack; want about the stored %d bytes", len(data), stored)
			}
			receive(t, format, dir, "", data, false)
		})
	}
}

func TestWriteEmpty(t *testing.T) {
	for _, format := range []string{"sha1", "sha256"} {
		f := formatOf(format)
		var buf bytes.Buffer
		sum, err := Write(context.Background(), &buf, nil, nil, Options{Format: f})
		if err != nil {
			t.Fatalf("%s: Write: %v", format, err)
		}
		want := pack.AppendHeader(nil, 0)
		h := trailerHash(f)
		h.Write(want)
		want = h.Sum(want)
		if !bytes.Equal(buf.Bytes(), want) || !bytes.Equal(sum, want[pack.HeaderSize:]) {
			t.Errorf("%s: got %x; want %x", format, buf.Bytes(), want)
		}
		dir := gittest.InitBare(t, format)
		gittest.GitInput(t, dir, buf.Bytes(), "index-pack", "--stdin")
	}
}

// TestWriteMixed sends a packed history and loose objects added on top,
// some of which are stored deltas against objects not sent.
func TestWriteMixed(t *testing.T) {
	for _, format := range []string{"sha1", "sha256"} {
		t.Run(format, func(t *testing.T) {
			f := formatOf(format)
			dir := newRepo(t, format, gittest.History{Commits: 30, Files: 10}, false)
			gittest.Git(t, dir, "repack", "-q", "-adf")
			// More history, left loose.
			gittest.Git(t, dir, "config", "fastimport.unpackLimit", "1000000")
			more := fastImportMore(t, dir, 10)
			gittest.GitInput(t, dir, more, "fast-import", "--quiet")
			if n := countLoose(t, dir); n == 0 {
				t.Fatalf("got no loose objects; want some")
			}
			objs := listObjects(t, dir, f, "--all")
			src := newTestSource(t, dir, f)
			data := writePack(t, src, objs, Options{Format: f, OfsDelta: true, ReuseDeltas: true})
			r := receive(t, format, dir, "", data, false)
			if st := verifyPackStats(t, r.dir, r.packPath); st.objects != len(objs) {
				t.Errorf("got %d objects; want %d", st.objects, len(objs))
			}
			// Only part of the history: stored deltas whose bases are
			// not sent must be resolved.
			part := listObjects(t, dir, f, "main", "^main~8")
			data = writePack(t, src, part, Options{Format: f, OfsDelta: true, ReuseDeltas: true})
			have := haveRepo(t, dir, format, "main~8")
			gittest.GitInput(t, have, data, "index-pack", "--stdin")
			gittest.Git(t, have, "update-ref", "refs/heads/main", strings.TrimSpace(gittest.Git(t, dir, "rev-parse", "main")))
			gittest.Git(t, have, "fsck", "--full", "--strict", "--no-dangling")
		})
	}
}

func countLoose(t *testing.T, dir string) int {
	out := gittest.Git(t, dir, "count-objects", "-v")
	for _, line := range strings.Split(out, "\n") {
		if n, ok := strings.CutPrefix(line, "count: "); ok {
			c, _ := strconv.Atoi(n)
			return c
		}
	}
	return 0
}

// fastImportMore returns a fast-import stream of n commits on main that
// edit files generated by gittest.Generate.
func fastImportMore(t *testing.T, dir string, n int) []byte {
	t.Helper()
	var b bytes.Buffer
	tip := strings.TrimSpace(gittest.Git(t, dir, "rev-parse", "main"))
	for c := range n {
		fmt.Fprintf(&b, "commit refs/heads/main\ncommitter C O Mitter <c@example.com> %d +0000\ndata 6\nmore %d\n", 1800000000+c, c%10)
		if c == 0 {
			fmt.Fprintf(&b, "from %s\n", tip)
		}
		for k := range 2 {
			i := (c*3 + k) % 10
			var s strings.Builder
			for line := range 40 {
				fmt.Fprintf(&s, "file %d line %d: the quick brown fox jumps over the lazy dog\n", i, line)
				if line == c%40 {
					fmt.Fprintf(&s, "later revision %d\n", c)
				}
			}
			fmt.Fprintf(&b, "M 100644 inline dir%d/sub%d/file%d.txt\ndata %d\n%s\n", i%3, i%2, i, s.Len(), s.String())
		}
		b.WriteString("\n")
	}
	return b.Bytes()
}

// TestWriteThin sends the objects main~10..main as a thin pack against
// the objects of main~10, which the receiver has.
func TestWriteThin(t *testing.T) {
	for _, format := range []string{"sha1", "sha256"} {
		t.Run(format, func(t *testing.T) {
			f := formatOf(format)
			dir := newRepo(t, format, gittest.History{Commits: 40, Files: 12}, false)
			gittest.Git(t, dir, "repack", "-q", "-adf")
			old := strings.TrimSpace(gittest.Git(t, dir, "rev-parse", "main~10"))
			haveObjs := listObjects(t, dir, f, old)
			objs := listObjects(t, dir, f, "main", "^"+old)
			var bases []oid.ID
			for _, o := range haveObjs {
				bases = append(bases, o.ID)
			}
			src := newTestSource(t, dir, f)
			data := writePack(t, src, objs, Options{Format: f, OfsDelta: true, ReuseDeltas: true, Thin: true, Bases: bases})

			// Without the bases the pack cannot be indexed: it is thin.
			bare := gittest.InitBare(t, format)
			if _, err := gittest.Run(t, bare, data, "index-pack", "--stdin"); err == nil {
				t.Errorf("got a pack C Git indexes without bases; want a thin pack")
			}
			// A receiver holding main~10 completes it.
			have := haveRepo(t, dir, format, old)
			out := strings.Fields(gittest.GitInput(t, have, data, "index-pack", "--stdin", "--fix-thin"))
			gittest.Git(t, have, "update-ref", "refs/heads/main", strings.TrimSpace(gittest.Git(t, dir, "rev-parse", "main")))
			gittest.Git(t, have, "fsck", "--full", "--strict", "--no-dangling")
			if len(out) != 2 {
				t.Fatalf("got index-pack output %q", out)
			}
		})
	}
}

// haveRepo returns a new repository holding what rev reaches in dir,
// with refs/heads/old pointing at it.
func haveRepo(t *testing.T, dir, format, rev string) string {
	t.Helper()
	have := gittest.InitBare(t, format)
	list := gittest.Git(t, dir, "rev-list", "--objects", rev)
	var ids bytes.Buffer
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		id, _, _ := strings.Cut(line, " ")
		ids.WriteString(id + "\n")
	}
	basePack := gittest.GitInput(t, dir, ids.Bytes(), "pack-objects", "--stdout", "-q")
	gittest.GitInput(t, have, []byte(basePack), "index-pack", "--stdin")
	gittest.Git(t, have, "update-ref", "refs/heads/old", strings.TrimSpace(gittest.Git(t, dir, "rev-parse", rev)))
	return have
}

func TestCopyPack(t *testing.T) {
	for _, format := range []string{"sha1", "sha256"} {
		dir := newRepo(t, format, gittest.History{Commits: 10}, false)
		src := newTestSource(t, dir, formatOf(format))
		p := src.packs[0]
		var buf bytes.Buffer
		if err := CopyPack(&buf, p); err != nil {
			t.Fatalf("%s: CopyPack: %v", format, err)
		}
		want, err := os.ReadFile(p.Path())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), want) {
			t.Errorf("%s: got %d bytes; want the %d bytes of %s", format, buf.Len(), len(want), p.Path())
		}
	}
}

func TestWriteErrors(t *testing.T) {
	dir := newRepo(t, "sha1", gittest.History{Commits: 5}, false)
	src := newTestSource(t, dir, oid.SHA1)
	objs := listObjects(t, dir, oid.SHA1, "--all")
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	missing := oid.Zero(oid.SHA1)
	wrongType := append([]Object(nil), objs...)
	for i := range wrongType {
		if wrongType[i].Type == object.Commit {
			wrongType[i].Type = object.Blob
			break
		}
	}
	tests := []struct {
		name string
		ctx  context.Context
		objs []Object
		opts Options
		want string
	}{
		{"no format", context.Background(), objs, Options{}, "invalid object format"},
		{"bad compression", context.Background(), objs, Options{Format: oid.SHA1, Compression: 12}, "invalid compression"},
		{"canceled", canceled, objs, Options{Format: oid.SHA1}, "context canceled"},
		{"sha256 id in sha1 pack", context.Background(), []Object{{ID: oid.Zero(oid.SHA256), Type: object.Blob}}, Options{Format: oid.SHA1}, "is not a sha1 id"},
		{"invalid type", context.Background(), []Object{{ID: missing, Type: object.OfsDelta}}, Options{Format: oid.SHA1}, "invalid type"},
		{"missing object", context.Background(), []Object{{ID: missing, Type: object.Blob}}, Options{Format: oid.SHA1}, "read 0000"},
		{"wrong type", context.Background(), wrongType, Options{Format: oid.SHA1, ReuseDeltas: true}, "not a blob"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Write(tt.ctx, io.Discard, src, tt.objs, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "packer: ") {
				t.Errorf("got error %v; want one containing %q prefixed packer:", err, tt.want)
			}
		})
	}
}

// TestLimitReusedChains covers what repositories made by C Git rarely
// show: stored deltas from two packs forming a cycle, and chains longer
// than the depth limit.
func TestLimitReusedChains(t *testing.T) {
	type ent struct {
		kind kind
		base int32
	}
	tests := []struct {
		name       string
		depth      int
		in         []ent
		wantKind   []kind
		wantDepth  []uint16
		wantHeight []uint16
	}{
		{
			name:       "chain within depth",
			depth:      5,
			in:         []ent{{kindReuse, 1}, {kindReuse, 2}, {kindWhole, -1}},
			wantKind:   []kind{kindReuse, kindReuse, kindWhole},
			wantDepth:  []uint16{2, 1, 0},
			wantHeight: []uint16{0, 1, 2},
		},
		{
			name:       "cycle of two",
			depth:      5,
			in:         []ent{{kindReuse, 1}, {kindReuse, 0}},
			wantKind:   []kind{kindWhole, kindReuse},
			wantDepth:  []uint16{0, 1},
			wantHeight: []uint16{1, 0},
		},
		{
			name:       "self cycle",
			depth:      5,
			in:         []ent{{kindReuse, 0}},
			wantKind:   []kind{kindWhole},
			wantDepth:  []uint16{0},
			wantHeight: []uint16{0},
		},
		{
			name:       "chain over depth",
			depth:      2,
			in:         []ent{{kindReuse, 1}, {kindReuse, 2}, {kindReuse, 3}, {kindReuse, 4}, {kindWhole, -1}},
			wantKind:   []kind{kindReuse, kindWhole, kindReuse, kindReuse, kindWhole},
			wantDepth:  []uint16{1, 0, 2, 1, 0},
			wantHeight: []uint16{0, 1, 0, 1, 2},
		},
		{
			name:       "base is a thin base",
			depth:      5,
			in:         []ent{{kindReuse, 1}},
			wantKind:   []kind{kindReuse},
			wantDepth:  []uint16{1},
			wantHeight: []uint16{0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wr := &writer{opts: Options{Depth: tt.depth}}
			for _, e := range tt.in {
				wr.ents = append(wr.ents, entry{kind: e.kind, base: e.base})
			}
			sent := len(tt.in)
			if tt.name == "base is a thin base" {
				wr.ents = append(wr.ents, entry{external: true, base: -1})
			}
			wr.limitReusedChains(sent)
			for i := range sent {
				e := wr.ents[i]
				if e.kind != tt.wantKind[i] || e.depth != tt.wantDepth[i] || e.height != tt.wantHeight[i] {
					t.Errorf("entry %d: got kind %d depth %d height %d; want kind %d depth %d height %d",
						i, e.kind, e.depth, e.height, tt.wantKind[i], tt.wantDepth[i], tt.wantHeight[i])
				}
			}
		})
	}
}

// TestNameHash checks NameHash against the name-hash cache C Git writes
// in reachability bitmaps: one 32-bit value per object, in index order,
// just before the trailer of the .bitmap file.
func TestNameHash(t *testing.T) {
	dir := newRepo(t, "sha1", gittest.History{Commits: 10, Files: 30}, false)
	gittest.Git(t, dir, "-c", "pack.writeBitmapHashCache=true", "-c", "pack.writeBitmapLookupTable=false", "repack", "-q", "-adb")
	bitmaps, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "*.bitmap"))
	if len(bitmaps) != 1 {
		t.Fatalf("got bitmaps %q; want one", bitmaps)
	}
	bm, err := os.ReadFile(bitmaps[0])
	if err != nil {
		t.Fatal(err)
	}
	ids := strings.Fields(gittest.Git(t, dir, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)"))
	cache := bm[len(bm)-20-4*len(ids) : len(bm)-20]
	byID := map[string]uint32{}
	for i, id := range ids {
		byID[id] = binary.BigEndian.Uint32(cache[4*i:])
	}
	// Objects reached by a single path, so the name is unambiguous.
	out := gittest.Git(t, dir, "rev-list", "--objects", "--all")
	seen := map[string]int{}
	names := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		id, name, ok := strings.Cut(line, " ")
		if ok && name != "" {
			seen[id]++
			names[id] = name
		}
	}
	checked := 0
	for id, name := range names {
		if seen[id] != 1 {
			continue
		}
		want, ok := byID[id]
		if !ok {
			t.Fatalf("object %s not in the bitmap's pack", id)
		}
		if got := NameHash([]byte(name)); got != want {
			t.Errorf("NameHash(%q) = %#x; want %#x", name, got, want)
		}
		checked++
	}
	if checked < 20 {
		t.Errorf("got %d names checked; want at least 20", checked)
	}
	for _, tt := range []struct {
		path string
		want uint32
	}{
		{"", 0},
		{"a", 'a' << 24},
		{"a b", NameHash([]byte("ab"))},
		{"x\t\r\n", 'x' << 24},
	} {
		if got := NameHash([]byte(tt.path)); got != tt.want {
			t.Errorf("NameHash(%q) = %#x; want %#x", tt.path, got, tt.want)
		}
	}
}

// TestWritePrefix: with Options.Prefix the pack begins with the prefix
// pack's entries as stored, holds every object once, and keeps as
// offset deltas into the prefix the stored deltas of another pack whose
// bases the prefix holds (a thin pack completed by index-pack
// --fix-thin holds ref-deltas against copies of such bases): C Git
// indexes it strictly whether objs lists the prefix's objects or not.
// Without ofs-delta, or with OnEntry, Write refuses a prefix.
func TestWritePrefix(t *testing.T) {
	for _, format := range []string{"sha1", "sha256"} {
		t.Run(format, func(t *testing.T) {
			f := formatOf(format)
			dir := newRepo(t, format, gittest.History{Commits: 30, Files: 10}, false)
			gittest.Git(t, dir, "repack", "-q", "-adf")
			first, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "*.pack"))
			if len(first) != 1 {
				t.Fatalf("%d packs after repack", len(first))
			}
			old := strings.TrimSpace(gittest.Git(t, dir, "rev-parse", "main"))
			// More history made in a clone, sent back thin and
			// completed with copies of its bases.
			work := filepath.Join(t.TempDir(), "work.git")
			gittest.Git(t, "", "clone", "-q", "--bare", "--no-local", dir, work)
			gittest.GitInput(t, work, fastImportMore(t, work, 10), "fast-import", "--quiet")
			thin := gittest.GitInput(t, work, []byte("main\n^"+old+"\n"), "pack-objects", "--thin", "--stdout", "--revs", "-q")
			gittest.GitInput(t, dir, []byte(thin), "index-pack", "--stdin", "--fix-thin")
			gittest.Git(t, dir, "update-ref", "refs/heads/main", strings.TrimSpace(gittest.Git(t, work, "rev-parse", "main")))

			src := newTestSource(t, dir, f)
			var prefix, second *pack.Pack
			for _, p := range src.packs {
				if p.Path() == first[0] {
					prefix = p
				} else {
					second = p
				}
			}
			// The second pack's ref-deltas against copies of objects
			// of the prefix.
			var across []Object
			objs := listObjects(t, dir, f, "--all")
			var rest []Object // objs without the prefix's
			for _, o := range objs {
				if !prefix.HasObject(o.ID) {
					rest = append(rest, o)
				}
				off, ok := second.OffsetOf(o.ID)
				if !ok {
					continue
				}
				e, err := second.Entry(off)
				if err != nil {
					t.Fatal(err)
				}
				if e.Type == object.RefDelta && prefix.HasObject(e.BaseID) {
					across = append(across, o)
				}
			}
			if len(across) == 0 {
				t.Fatal("the completed thin pack has no ref-deltas against the prefix's objects")
			}
			stored, err := prefix.Bytes(pack.HeaderSize, uint64(prefix.Size())-uint64(len(prefix.Checksum())))
			if err != nil {
				t.Fatal(err)
			}
			for _, list := range [][]Object{objs, rest} {
				data := writePack(t, src, list, Options{Format: f, OfsDelta: true, ReuseDeltas: true, Prefix: prefix})
				if len(data) < pack.HeaderSize+len(stored) || !bytes.Equal(data[pack.HeaderSize:pack.HeaderSize+len(stored)], stored) {
					t.Fatalf("listing %d objects: the pack does not begin with the prefix's entries", len(list))
				}
				if got := binary.BigEndian.Uint32(data[8:12]); int(got) != len(objs) {
					t.Errorf("listing %d objects: header counts %d objects; want %d", len(list), got, len(objs))
				}
				r := receive(t, format, dir, "", data, false)
				if st := verifyPackStats(t, r.dir, r.packPath); st.objects != len(objs) {
					t.Errorf("listing %d objects: got %d objects; want %d", len(list), st.objects, len(objs))
				}
				if n := entryTypes(t, r.packPath, f, across)[object.OfsDelta]; n != len(across) {
					t.Errorf("listing %d objects: %d of the %d deltas against the prefix kept as offset deltas", len(list), n, len(across))
				}
			}

			var buf bytes.Buffer
			if _, err := Write(context.Background(), &buf, src, rest, Options{Format: f, ReuseDeltas: true, Prefix: prefix}); err == nil {
				t.Error("Write took a prefix without ofs-delta")
			}
			onEntry := func(pack.IndexEntry) {}
			if _, err := Write(context.Background(), &buf, src, rest, Options{Format: f, OfsDelta: true, Prefix: prefix, OnEntry: onEntry}); err == nil {
				t.Error("Write took a prefix with OnEntry")
			}
		})
	}
}
