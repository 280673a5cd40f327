package walk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gotd/internal/git/bitmap"
	"gotd/internal/git/commitgraph"
	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/pack"
	"gotd/internal/git/walk/walktest"
	"gotd/internal/gittest"
)

// extraHistory adds to main: an octopus merge of three new branches, a
// commit copying a directory (identical subtrees), and a commit bringing
// back an old file content (a blob reachable from an old and a new tree).
func extraHistory(t testing.TB, dir string) {
	t.Helper()
	var b bytes.Buffer
	when := 1800000000
	mark := 0
	c := func(ref, from, msg string, merges []string, body string) string {
		when += 60
		mark++
		fmt.Fprintf(&b, "commit %s\nmark :%d\ncommitter C <c@example.com> %d +0000\ndata %d\n%s\nfrom %s\n", ref, mark, when, len(msg), msg, from)
		for _, m := range merges {
			fmt.Fprintf(&b, "merge %s\n", m)
		}
		b.WriteString(body + "\n")
		return ":" + strconv.Itoa(mark)
	}
	var octs []string
	for i := 0; i < 3; i++ {
		octs = append(octs, c(fmt.Sprintf("refs/heads/oct%d", i), "refs/heads/main^0", fmt.Sprintf("oct %d", i),
			nil, fmt.Sprintf("M 100644 inline oct%d.txt\ndata 4\noct%d\n", i, i)))
	}
	m := c("refs/heads/main", "refs/heads/main^0", "octopus", octs, "")
	c("refs/heads/main", m, "copy", nil, "C dir0 copy-of-dir0\n")
	gittest.GitInput(t, dir, b.Bytes(), "fast-import", "--quiet")
	old := strings.TrimSpace(gittest.Git(t, dir, "rev-parse", "main~3:dir1/sub1/file1.txt"))
	b.Reset()
	mark = 0
	c("refs/heads/main", "refs/heads/main^0", "revert a file", nil, fmt.Sprintf("M 100644 %s dir1/sub1/file1.txt\n", old))
	gittest.GitInput(t, dir, b.Bytes(), "fast-import", "--quiet")
}

// repo is a generated repository and what the tests need of it.
type repo struct {
	dir    string
	f      oid.Format
	store  *walktest.Store
	graph  *commitgraph.Graph
	bitmap *bitmap.Index
	// oracle, if not nil, keeps the answers of rev and revList. Repos
	// generated alike share one to ask C Git once; a test that changes
	// the history after asking must not set it.
	oracle map[string]string
}

// query runs a read-only git command in r.dir, through r.oracle.
func (r *repo) query(t *testing.T, args ...string) string {
	t.Helper()
	key := strings.Join(args, "\x00")
	if out, ok := r.oracle[key]; ok {
		return out
	}
	out := gittest.Git(t, r.dir, args...)
	if r.oracle != nil {
		r.oracle[key] = out
	}
	return out
}

func newRepo(t *testing.T, format string, commits int) *repo {
	t.Helper()
	dir := gittest.InitBare(t, format)
	gittest.Generate(t, dir, gittest.History{Commits: commits, Branches: 4, Files: 24})
	extraHistory(t, dir)
	f, _ := oid.ParseFormat(format)
	return &repo{dir: dir, f: f}
}

func (r *repo) rev(t *testing.T, name string) oid.ID {
	t.Helper()
	id, err := oid.ParseHex(r.f, strings.TrimSpace(r.query(t, "rev-parse", name)))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// revList returns the ids git rev-list --objects prints for args.
func (r *repo) revList(t *testing.T, args ...string) map[string]bool {
	t.Helper()
	out := r.query(t, append([]string{"rev-list", "--objects"}, args...)...)
	m := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line != "" {
			m[strings.Fields(line)[0]] = true
		}
	}
	return m
}

type walkCase struct {
	name         string
	wants, haves []string // rev-parse names; "unknown" is an id no one has
}

var walkCases = []walkCase{
	{"all refs", []string{"main", "topic0", "topic1", "topic2", "topic3", "oct0", "v1.0", "light", "blob-tag", "tree-tag", "nested"}, nil},
	{"main since main~50", []string{"main"}, []string{"main~50"}},
	{"tags over topic1", []string{"main", "v1.0", "blob-tag", "tree-tag", "nested"}, []string{"topic1"}},
	{"topic over main", []string{"topic2"}, []string{"main"}},
	{"unknown have", []string{"main~3"}, []string{"main~5", "unknown"}},
	{"want is have", []string{"main"}, []string{"main"}},
	{"want below have", []string{"main~10"}, []string{"main"}},
	{"tag of tree only", []string{"tree-tag"}, nil},
	{"tag of blob over its tree", []string{"blob-tag", "main"}, []string{"main~1"}},
	{"have is a tag", []string{"main"}, []string{"nested", "main~2"}},
	{"have is a tree", []string{"main"}, []string{"tree-tag", "main~3"}},
}

func (r *repo) resolve(t *testing.T, names []string) ([]oid.ID, []string) {
	var ids []oid.ID
	var args []string
	for _, n := range names {
		if n == "unknown" {
			id, _ := oid.ParseHex(r.f, strings.Repeat("ab", r.f.Size()))
			ids = append(ids, id)
			continue
		}
		ids = append(ids, r.rev(t, n))
		args = append(args, n)
	}
	return ids, args
}

// gotObject is one object reported by the walk.
type gotObject struct {
	id   oid.ID
	t    object.Type
	path string
	nilp bool
}

func (r *repo) check(t *testing.T, w *Walker, tc walkCase, exact bool) {
	t.Helper()
	wants, wantArgs := r.resolve(t, tc.wants)
	haves, haveArgs := r.resolve(t, tc.haves)
	var got []gotObject
	err := w.Objects(context.Background(), wants, haves, func(id oid.ID, typ object.Type, path []byte) error {
		got = append(got, gotObject{id, typ, string(path), path == nil})
		return nil
	})
	if err != nil {
		t.Fatalf("Objects: %v", err)
	}
	// Bounds: everything reachable from wants and not from haves must be
	// listed; nothing git rev-list would leave out may be.
	reachW := r.revList(t, wantArgs...)
	reachH := map[string]bool{}
	if len(haveArgs) > 0 {
		reachH = r.revList(t, haveArgs...)
	}
	upper := reachW
	if len(haveArgs) > 0 {
		upper = r.revList(t, append(wantArgs, append([]string{"--not"}, haveArgs...)...)...)
	}
	gotSet := map[string]bool{}
	for _, o := range got {
		s := o.id.String()
		if gotSet[s] {
			t.Errorf("%v listed twice", o.id)
		}
		gotSet[s] = true
		if !upper[s] {
			t.Errorf("%v %v %q listed; git rev-list leaves it out", o.t, o.id, o.path)
		}
		if exact && reachH[s] {
			t.Errorf("%v %v listed; a have reaches it", o.t, o.id)
		}
		if so := r.store.Objs[o.id]; so.Type != o.t {
			t.Errorf("%v listed as %v; it is a %v", o.id, o.t, so.Type)
		}
	}
	missed := 0
	for s := range reachW {
		if !reachH[s] && !gotSet[s] {
			if missed++; missed < 5 {
				t.Errorf("%s reachable from wants and not haves; not listed", s)
			}
		}
	}
	if t.Failed() {
		t.Logf("got %d objects; exact difference %d; git rev-list %d", len(got), len(reachW)-len(reachH), len(upper))
	}
	if w.Bitmap != nil {
		return
	}
	// Order: tags and commits, then trees and blobs; each tree after the
	// commit that reaches it; paths nil only for commits and tags.
	seenTree := false
	for _, o := range got {
		switch o.t {
		case object.Commit, object.Tag:
			if seenTree {
				t.Errorf("%v %v after trees and blobs", o.t, o.id)
			}
			if !o.nilp {
				t.Errorf("%v %v has path %q; want nil", o.t, o.id, o.path)
			}
		default:
			seenTree = true
			if o.nilp {
				t.Errorf("%v %v has a nil path", o.t, o.id)
			}
		}
	}
	pos := map[oid.ID]int{}
	for i, o := range got {
		pos[o.id] = i
	}
	for _, o := range got {
		if o.t != object.Commit {
			continue
		}
		tree, _, _, err := object.CommitLinks(r.f, r.store.Objs[o.id].Data, nil)
		if err != nil {
			t.Fatal(err)
		}
		if p, ok := pos[tree]; ok && p < pos[o.id] {
			t.Errorf("tree %v listed before its commit %v", tree, o.id)
		}
	}
}

func (r *repo) withGraph(t *testing.T) {
	gittest.Git(t, r.dir, "commit-graph", "write", "--reachable")
	g, err := commitgraph.Open(filepath.Join(r.dir, "objects"), r.f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	r.graph = g
}

func (r *repo) withBitmap(t *testing.T) {
	gittest.Git(t, r.dir, "-c", "pack.writeBitmapHashCache=true", "repack", "-adb", "-q")
	lk := walktest.LoadPack(t, r.dir, r.f, walktest.HasBitmap)
	x, err := bitmap.Open(lk.Base+".bitmap", r.f, lk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	r.bitmap = x
}

func TestObjects(t *testing.T) {
	// The generated histories are the same in every mode but one: ask C
	// Git about each once.
	oracles := map[string]map[string]string{}
	for _, format := range []string{"sha1", "sha256"} {
		for _, mode := range []string{"plain", "graph", "bitmap", "bitmap+outside", "bitmap+graph"} {
			t.Run(format+"/"+mode, func(t *testing.T) {
				r := newRepo(t, format, 120)
				history := format
				if mode == "bitmap+outside" {
					history += "+outside"
				}
				if oracles[history] == nil {
					oracles[history] = map[string]string{}
				}
				r.oracle = oracles[history]
				if strings.HasPrefix(mode, "bitmap") {
					r.withBitmap(t)
				}
				if mode == "bitmap+outside" {
					// Commits added after the repack live outside the
					// bitmapped pack.
					extraHistory(t, r.dir)
				}
				if strings.HasSuffix(mode, "graph") {
					r.withGraph(t)
				}
				r.store = walktest.LoadStore(t, r.dir, r.f)
				w := &Walker{Store: r.store, Format: r.f, Graph: r.graph, Bitmap: r.bitmap}
				for _, tc := range walkCases {
					t.Run(tc.name, func(t *testing.T) {
						r.check(t, w, tc, r.bitmap != nil)
					})
				}
			})
		}
	}
}

func TestObjectsWithHash(t *testing.T) {
	r := newRepo(t, "sha1", 30)
	r.store = walktest.LoadStore(t, r.dir, r.f)
	w := &Walker{Store: r.store, Format: r.f}
	main := r.rev(t, "main")
	paths := map[oid.ID]string{}
	w.Objects(context.Background(), []oid.ID{main}, nil, func(id oid.ID, _ object.Type, path []byte) error {
		paths[id] = string(path)
		return nil
	})
	n := 0
	err := w.ObjectsWithHash(context.Background(), []oid.ID{main}, nil, func(id oid.ID, typ object.Type, h uint32) error {
		n++
		if want := pack.NameHash([]byte(paths[id])); h != want {
			t.Errorf("%v: name hash %#x; want %#x (path %q)", id, h, want, paths[id])
		}
		return nil
	})
	if err != nil || n != len(paths) {
		t.Errorf("ObjectsWithHash: %d objects, %v; want %d", n, err, len(paths))
	}

	// With bitmaps and the name-hash cache, the hashes are C Git's.
	r.withBitmap(t)
	w.Bitmap = r.bitmap
	err = w.ObjectsWithHash(context.Background(), []oid.ID{main}, nil, func(id oid.ID, typ object.Type, h uint32) error {
		if p, ok := paths[id]; ok && typ == object.Blob && h != pack.NameHash([]byte(p)) {
			t.Errorf("%v: cached name hash %#x; want %#x (path %q)", id, h, pack.NameHash([]byte(p)), p)
		}
		return nil
	})
	if err != nil {
		t.Errorf("ObjectsWithHash with bitmaps: %v", err)
	}
}

func TestNameHash(t *testing.T) {
	for _, tc := range []struct {
		path string
		want uint32
	}{
		{"", 0},
		{"a", 'a' << 24},
		{"ab", ('a'<<24)>>2 + 'b'<<24},
		{"a b", ('a'<<24)>>2 + 'b'<<24},
	} {
		if got := pack.NameHash([]byte(tc.path)); got != tc.want {
			t.Errorf("pack.NameHash(%q) = %#x; want %#x", tc.path, got, tc.want)
		}
	}
}

func TestMissingObjects(t *testing.T) {
	r := newRepo(t, "sha1", 20)
	r.store = walktest.LoadStore(t, r.dir, r.f)
	main := r.rev(t, "main")
	for _, tc := range []struct {
		name   string
		remove string
	}{
		{"commit", "main~3"},
		{"tree", "main~2^{tree}"},
		{"subtree", "main:dir0"},
		{"blob", "main:dir1/sub1/file1.txt"},
		{"want", "main"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := r.rev(t, tc.remove)
			saved := r.store.Objs[id]
			delete(r.store.Objs, id)
			defer func() { r.store.Objs[id] = saved }()
			for _, graph := range []bool{false, true} {
				w := &Walker{Store: r.store, Format: r.f}
				if graph {
					if r.graph == nil {
						r.withGraph(t)
					}
					w.Graph = r.graph
				}
				err := w.Objects(context.Background(), []oid.ID{main}, nil, func(oid.ID, object.Type, []byte) error { return nil })
				if tc.name == "commit" && graph {
					// The graph has the commit: only its tree is read.
					if err != nil {
						t.Errorf("graph walk: %v; want nil (commits come from the graph)", err)
					}
					continue
				}
				if !errors.Is(err, object.ErrNotFound) || !strings.Contains(fmt.Sprint(err), id.String()) {
					t.Errorf("graph=%v: got %v; want ErrNotFound naming %v", graph, err, id)
				}
			}
		})
	}
}

func TestCallbackError(t *testing.T) {
	r := newRepo(t, "sha1", 10)
	r.store = walktest.LoadStore(t, r.dir, r.f)
	w := &Walker{Store: r.store, Format: r.f}
	stop := errors.New("stop")
	n := 0
	err := w.Objects(context.Background(), []oid.ID{r.rev(t, "main")}, nil, func(oid.ID, object.Type, []byte) error {
		n++
		if n == 5 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 5 {
		t.Errorf("got %v after %d calls; want stop after 5", err, n)
	}
	// Walks long enough to check the context see it canceled.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r2 := linearRepo(t, 1200)
	w2 := &Walker{Store: r2.store, Format: r2.f}
	tip := []oid.ID{r2.rev(t, "main")}
	err = w2.Objects(ctx, tip, nil, func(oid.ID, object.Type, []byte) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("canceled walk: got %v; want context.Canceled", err)
	}
	if _, err := w2.Deepen(ctx, Deepen{Wants: tip, Depth: 2000}); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled Deepen by depth: got %v; want context.Canceled", err)
	}
	if _, err := w2.Deepen(ctx, Deepen{Wants: tip, Since: 1}); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled Deepen by date: got %v; want context.Canceled", err)
	}
	c := w2.NewCommon(ctx, tip)
	if ok, err := c.Have(r2.rev(t, "main~1199")); !ok || err != nil {
		t.Fatalf("Have: %v, %v", ok, err)
	}
	if _, err := c.Ready(); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled Ready: got %v; want context.Canceled", err)
	}
}

// linearRepo returns a repository whose main is n commits, each
// changing one small file, with committer times 1000+100*i; its store
// is loaded.
func linearRepo(t *testing.T, n int) *repo {
	t.Helper()
	dir := gittest.InitBare(t, "sha1")
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "commit refs/heads/main\nmark :%d\ncommitter C <c@example.com> %d +0000\ndata 0\n", i+1, 1000+100*i)
		if i > 0 {
			fmt.Fprintf(&b, "from :%d\n", i)
		}
		fmt.Fprintf(&b, "M 100644 inline f\ndata %d\n%d\n\n", len(strconv.Itoa(i)), i)
	}
	gittest.GitInput(t, dir, []byte(b.String()), "fast-import", "--quiet")
	r := &repo{dir: dir, f: oid.SHA1}
	r.store = walktest.LoadStore(t, dir, r.f)
	return r
}

func TestCommits(t *testing.T) {
	for _, graph := range []bool{false, true} {
		r := newRepo(t, "sha1", 80)
		if graph {
			r.withGraph(t)
		}
		r.store = walktest.LoadStore(t, r.dir, r.f)
		w := &Walker{Store: r.store, Format: r.f, Graph: r.graph}
		for _, tc := range walkCases {
			wants, wantArgs := r.resolve(t, tc.wants)
			haves, haveArgs := r.resolve(t, tc.haves)
			var got []string
			err := w.Commits(context.Background(), wants, haves, func(id oid.ID) error {
				got = append(got, id.String())
				return nil
			})
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			args := append([]string{"rev-list"}, wantArgs...)
			if len(haveArgs) > 0 {
				args = append(append(args, "--not"), haveArgs...)
			}
			want := strings.Fields(gittest.Git(t, r.dir, args...))
			// Same set; newest first (git rev-list's default order is by
			// date too, and the generated dates are distinct).
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("graph=%v %s: got %d commits\n%v\nwant %d (git rev-list)\n%v", graph, tc.name, len(got), got, len(want), want)
			}
		}
	}
}

// TestCommitsEqualTimes walks a history whose commits all have the same
// time, as scripted histories do: an uninteresting commit popped after
// an interesting one of the same time must still mark the ancestors they
// share (C Git's slop).
func TestCommitsEqualTimes(t *testing.T) {
	dir := gittest.InitBare(t, "sha1")
	var b strings.Builder
	commit := func(mark int, branch string, from int) {
		fmt.Fprintf(&b, "commit refs/heads/%s\nmark :%d\ncommitter C <c@example.com> 1000 +0000\ndata 0\n", branch, mark)
		if from > 0 {
			fmt.Fprintf(&b, "from :%d\n", from)
		}
		fmt.Fprintf(&b, "M 100644 inline f%d\ndata 2\n%d\n\n", mark, mark%10)
	}
	commit(1, "main", 0)
	commit(2, "main", 1)
	commit(3, "main", 2)
	commit(4, "side", 1)
	gittest.GitInput(t, dir, []byte(b.String()), "fast-import", "--quiet")
	r := &repo{dir: dir, f: oid.SHA1}
	r.store = walktest.LoadStore(t, dir, r.f)
	w := &Walker{Store: r.store, Format: r.f}
	for _, c := range [][2]string{{"side", "main"}, {"main", "side"}, {"main", "main~1"}, {"side", "main~2"}} {
		var got []string
		err := w.Commits(context.Background(), []oid.ID{r.rev(t, c[0])}, []oid.ID{r.rev(t, c[1])}, func(id oid.ID) error {
			got = append(got, id.String())
			return nil
		})
		want := strings.Fields(gittest.Git(t, dir, "rev-list", c[0], "^"+c[1]))
		slices.Sort(got)
		slices.Sort(want)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%s ^%s: %v %v, git rev-list %v", c[0], c[1], got, err, want)
		}
	}
}

func TestIsAncestor(t *testing.T) {
	r := newRepo(t, "sha1", 60)
	r.store = walktest.LoadStore(t, r.dir, r.f)
	names := []string{"main", "main~1", "main~10", "main~59", "topic0", "topic1", "topic0~1", "oct1", "main^", "main~3^2", "light"}
	// C Git's answers and the ids, asked once for all modes.
	want := map[[2]string]bool{}
	ids := map[string]oid.ID{}
	for _, a := range names {
		ids[a] = r.rev(t, a+"^{commit}")
		for _, b := range names {
			_, err := gittest.Run(t, r.dir, nil, "merge-base", "--is-ancestor", a, b)
			want[[2]string{a, b}] = err == nil
		}
	}
	for _, mode := range []string{"plain", "graph", "bitmap"} {
		switch mode {
		case "graph":
			r.withGraph(t)
		case "bitmap":
			r.graph = nil
			r.withBitmap(t)
		}
		w := &Walker{Store: r.store, Format: r.f, Graph: r.graph, Bitmap: r.bitmap}
		for _, a := range names {
			for _, b := range names {
				want := want[[2]string{a, b}]
				got, gerr := w.IsAncestor(context.Background(), ids[a], ids[b])
				if gerr != nil || got != want {
					t.Errorf("%s: IsAncestor(%s, %s) = %v, %v; want %v", mode, a, b, got, gerr, want)
				}
			}
		}
	}
}

func BenchmarkObjects(b *testing.B) {
	for _, mode := range []string{"plain", "graph", "bitmap"} {
		b.Run(mode, func(b *testing.B) {
			dir := gittest.InitBare(b, "sha1")
			gittest.Generate(b, dir, gittest.History{Commits: 3000, Branches: 10, Files: 200})
			f := oid.SHA1
			w := &Walker{Format: f}
			if mode == "graph" {
				gittest.Git(b, dir, "commit-graph", "write", "--reachable")
				g, err := commitgraph.Open(filepath.Join(dir, "objects"), f)
				if err != nil {
					b.Fatal(err)
				}
				defer g.Close()
				w.Graph = g
			}
			if mode == "bitmap" {
				gittest.Git(b, dir, "repack", "-adb", "-q")
				lk := walktest.LoadPack(b, dir, f, walktest.HasBitmap)
				x, err := bitmap.Open(lk.Base+".bitmap", f, lk)
				if err != nil {
					b.Fatal(err)
				}
				defer x.Close()
				w.Bitmap = x
			}
			w.Store = walktest.LoadStore(b, dir, f)
			out := strings.TrimSpace(gittest.Git(b, dir, "rev-parse", "main"))
			main, _ := oid.ParseHex(f, out)
			b.ResetTimer()
			b.ReportAllocs()
			n := 0
			for i := 0; i < b.N; i++ {
				n = 0
				w.Objects(context.Background(), []oid.ID{main}, nil, func(oid.ID, object.Type, []byte) error {
					n++
					return nil
				})
			}
			b.ReportMetric(float64(n), "objects")
		})
	}
}

// TestPackLookup runs the bitmap walk over a pack opened by gotd's pack
// reader and checks it lists what the walk over C Git's view of the same
// pack lists, in the same order with the same name-hashes.
func TestPackLookup(t *testing.T) {
	for _, format := range []string{"sha1", "sha256"} {
		t.Run(format, func(t *testing.T) {
			r := newRepo(t, format, 60)
			r.withBitmap(t)
			r.store = walktest.LoadStore(t, r.dir, r.f)
			lk := walktest.LoadPack(t, r.dir, r.f, walktest.HasBitmap)
			p, err := pack.Open(lk.Base+".pack", r.f, pack.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			x, err := bitmap.Open(lk.Base+".bitmap", r.f, PackLookup(p))
			if err != nil {
				t.Fatalf("bitmap.Open with PackLookup: %v", err)
			}
			defer x.Close()
			list := func(w *Walker) []string {
				var out []string
				err := w.ObjectsWithHash(context.Background(), []oid.ID{r.rev(t, "main"), r.rev(t, "nested")}, []oid.ID{r.rev(t, "main~7")},
					func(id oid.ID, typ object.Type, h uint32) error {
						out = append(out, fmt.Sprintf("%v %v %#x", id, typ, h))
						return nil
					})
				if err != nil {
					t.Fatal(err)
				}
				return out
			}
			got := list(&Walker{Store: p, Format: r.f, Bitmap: x})
			want := list(&Walker{Store: r.store, Format: r.f, Bitmap: r.bitmap})
			if len(got) == 0 || strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("with gotd's pack reader:\n%s\nwith git show-index:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// TestGraphAvoidsCommitReads checks that with a commit-graph no commit
// object is read: not by Commits, not by IsAncestor, not by the commit
// part of Objects.
func TestGraphAvoidsCommitReads(t *testing.T) {
	r := newRepo(t, "sha1", 80)
	r.withGraph(t)
	r.store = walktest.LoadStore(t, r.dir, r.f)
	w := &Walker{Store: r.store, Format: r.f, Graph: r.graph}
	ctx := context.Background()
	main, old := r.rev(t, "main"), r.rev(t, "main~40")
	n := 0
	if err := w.Commits(ctx, []oid.ID{main}, []oid.ID{old}, func(oid.ID) error { n++; return nil }); err != nil || n == 0 {
		t.Fatalf("Commits: %d, %v", n, err)
	}
	if ok, err := w.IsAncestor(ctx, old, main); !ok || err != nil {
		t.Fatalf("IsAncestor(main~40, main) = %v, %v", ok, err)
	}
	if ok, err := w.IsAncestor(ctx, main, old); ok || err != nil {
		t.Fatalf("IsAncestor(main, main~40) = %v, %v", ok, err)
	}
	if err := w.Objects(ctx, []oid.ID{main}, []oid.ID{old}, func(oid.ID, object.Type, []byte) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if got := r.store.Reads[object.Commit]; got != 0 {
		t.Errorf("%d commit objects read; want 0 with a commit-graph", got)
	}
	if r.store.Reads[object.Tree] == 0 {
		t.Errorf("no tree read by Objects; the counter is broken")
	}
}

// TestObjectsAllocs bounds the allocations of a plain walk: a few per
// map growth, not one per object.
func TestObjectsAllocs(t *testing.T) {
	r := newRepo(t, "sha1", 200)
	r.store = walktest.LoadStore(t, r.dir, r.f)
	w := &Walker{Store: r.store, Format: r.f}
	main := r.rev(t, "main")
	n := 0
	allocs := testing.AllocsPerRun(3, func() {
		n = 0
		w.Objects(context.Background(), []oid.ID{main}, nil, func(oid.ID, object.Type, []byte) error { n++; return nil })
	})
	if allocs > float64(n)/20 {
		t.Errorf("walk of %d objects: %v allocations; want at most %d", n, allocs, n/20)
	}
	t.Logf("%d objects, %v allocations", n, allocs)
}

// TestObjectsNear checks ObjectsNear against C Git's rev-list on a
// bitmapped repository, and that past its budget it says so before
// listing anything, where ObjectsFor's bitmaps answer.
func TestObjectsNear(t *testing.T) {
	r := newRepo(t, "sha1", 120)
	r.oracle = map[string]string{}
	r.withBitmap(t)
	extraHistory(t, r.dir) // commits outside the bitmapped pack too
	r.store = walktest.LoadStore(t, r.dir, r.f)
	w := &Walker{Store: r.store, Format: r.f, Bitmap: r.bitmap}
	saved := nearBudget
	t.Cleanup(func() { nearBudget = saved })
	for _, budget := range []int{saved, 1} {
		nearBudget = budget
		far := 0
		t.Cleanup(func() {
			if budget == saved && far > 0 || budget == 1 && far == 0 {
				t.Errorf("budget %d: %d walks too far", budget, far)
			}
		})
		for _, tc := range walkCases {
			if len(tc.haves) == 0 {
				continue
			}
			wants, wantArgs := r.resolve(t, tc.wants)
			haves, haveArgs := r.resolve(t, tc.haves)
			got := map[string]bool{}
			edges := 0
			list := func(id oid.ID, _ object.Type, _ uint32) error {
				got[id.String()] = true
				return nil
			}
			spec := Spec{Wants: wants, Haves: haves, Edges: func(oid.ID) { edges++ }}
			err := w.ObjectsNear(context.Background(), spec, list)
			if errors.Is(err, ErrFar) {
				far++
				if len(got) > 0 || edges > 0 {
					t.Fatalf("%s: budget %d: %d listed, %d edges before ErrFar", tc.name, budget, len(got), edges)
				}
				err = w.ObjectsFor(context.Background(), spec, list)
			}
			if err != nil {
				t.Fatalf("budget %d, %s: %v", budget, tc.name, err)
			}
			upper := r.revList(t, append(wantArgs, append([]string{"--not"}, haveArgs...)...)...)
			reachW, reachH := r.revList(t, wantArgs...), r.revList(t, haveArgs...)
			for s := range got {
				if !upper[s] {
					t.Errorf("budget %d, %s: %s listed; git rev-list leaves it out", budget, tc.name, s)
				}
			}
			for s := range reachW {
				if !reachH[s] && !got[s] {
					t.Errorf("budget %d, %s: %s reachable from wants and not haves; not listed", budget, tc.name, s)
				}
			}
		}
	}
}

// TestObjectsLastTreeModes checks the walk's matching of a tree's
// entries with those of the tree at the same path walked before (the
// newer commit's): an entry with the same name and id but another mode
// is not taken as listed. Here a newer tree has a gitlink to the id of
// a blob that an older tree at the same path holds as a file: the
// gitlink is not followed, so the blob must be listed from the older
// tree.
func TestObjectsLastTreeModes(t *testing.T) {
	dir := gittest.InitBare(t, "sha1")
	blob := strings.TrimSpace(gittest.GitInput(t, dir, []byte("hello\n"), "hash-object", "-w", "--stdin"))
	var b strings.Builder
	for i, x := range []string{"100644 " + blob, "160000 " + blob, "100755 " + blob} {
		fmt.Fprintf(&b, "commit refs/heads/main\nmark :%d\ncommitter C <c@example.com> %d +0000\ndata 0\n", i+1, 1000+100*i)
		if i > 0 {
			fmt.Fprintf(&b, "from :%d\n", i)
		}
		fmt.Fprintf(&b, "M %s d/x\nM 100644 inline d/y\ndata %d\n%d\n\n", x, len(strconv.Itoa(i)), i)
	}
	gittest.GitInput(t, dir, []byte(b.String()), "fast-import", "--quiet")
	r := &repo{dir: dir, f: oid.SHA1}
	r.store = walktest.LoadStore(t, dir, r.f)
	for _, tip := range []string{"main", "main~1"} {
		want := r.revList(t, tip)
		got := map[string]bool{}
		w := &Walker{Store: r.store, Format: r.f}
		err := w.Objects(context.Background(), []oid.ID{r.rev(t, tip)}, nil, func(id oid.ID, _ object.Type, _ []byte) error {
			got[id.String()] = true
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", tip, err)
		}
		if !got[blob] || len(got) != len(want) {
			t.Errorf("%s: got %d objects (blob listed: %v); want %d (blob listed: %v)", tip, len(got), got[blob], len(want), want[blob])
		}
		for id := range want {
			if !got[id] {
				t.Errorf("%s: %s not listed", tip, id)
			}
		}
	}
}
