package walk

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/walk/walktest"
	"gotd/internal/gittest"
)

// TestObjectsForFilter compares filtered listings with git rev-list
// --filter for the same wants and haves.
func TestObjectsForFilter(t *testing.T) {
	r := newRepo(t, "sha1", 40)
	r.store = walktest.LoadStore(t, r.dir, r.f)
	r.oracle = map[string]string{} // the history does not change
	w := &Walker{Store: r.store, Format: r.f}
	specs := []string{"blob:none", "blob:limit=1k", "blob:limit=2100", "tree:0", "tree:1", "tree:2", "tree:3",
		"object:type=blob", "object:type=tree", "object:type=commit", "object:type=tag"}
	cases := []walkCase{
		{"all", []string{"main", "topic1", "v1.0", "blob-tag", "tree-tag", "nested"}, nil},
		{"incremental", []string{"main"}, []string{"main~10"}},
		// Objects the wants name, directly or through tags, are
		// listed whatever the filter; a tree among them that is also
		// the root tree of a wanted commit is filtered as a root tree.
		{"tag of a tree", []string{"tree-tag"}, nil},
		{"tag of a tag", []string{"nested"}, nil},
		{"tag of a blob", []string{"blob-tag"}, nil},
		{"tag of a tree and its commit", []string{"tree-tag", "v1.0"}, nil},
		{"tag of a tree and an older commit", []string{"tree-tag", "main~5"}, nil},
		{"a tree", []string{"main~2^{tree}"}, nil},
		{"a subtree and a blob", []string{"main:dir0", "main:dir1/sub1/file1.txt", "main~3"}, nil},
		{"a tree over its commit", []string{"main~1^{tree}"}, []string{"main~1"}},
	}
	for _, spec := range specs {
		f, err := ParseFilter(spec)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range cases {
			t.Run(spec+"/"+tc.name, func(t *testing.T) {
				wants, wantArgs := r.resolve(t, tc.wants)
				haves, haveArgs := r.resolve(t, tc.haves)
				got := map[string]bool{}
				err := w.ObjectsFor(context.Background(), Spec{Wants: wants, Haves: haves, Filter: f}, func(id oid.ID, typ object.Type, _ uint32) error {
					if got[id.String()] {
						t.Errorf("%v listed twice", id)
					}
					got[id.String()] = true
					if so := r.store.Objs[id]; so.Type != typ {
						t.Errorf("%v listed as %v; it is a %v", id, typ, so.Type)
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				args := append([]string{"--filter=" + spec}, wantArgs...)
				upper := r.revList(t, append(args, append([]string{"--not"}, haveArgs...)...)...)
				lower := r.revList(t, args...)
				if len(haveArgs) > 0 {
					for s := range r.revList(t, haveArgs...) {
						delete(lower, s)
					}
				}
				for s := range got {
					if !upper[s] {
						t.Errorf("%s listed; rev-list --filter=%s leaves it out", s, spec)
					}
				}
				for s := range lower {
					if !got[s] {
						t.Errorf("%s not listed; rev-list --filter=%s lists it", s, spec)
					}
				}
			})
		}
	}
}

func TestParseFilter(t *testing.T) {
	good := map[string]Filter{
		"blob:none":                       {Kind: FilterBlobNone},
		"blob:limit=0":                    {Kind: FilterBlobLimit},
		"blob:limit=1":                    {Kind: FilterBlobLimit, Limit: 1},
		"blob:limit=5k":                   {Kind: FilterBlobLimit, Limit: 5 << 10},
		"blob:limit=5K":                   {Kind: FilterBlobLimit, Limit: 5 << 10},
		"blob:limit=2m":                   {Kind: FilterBlobLimit, Limit: 2 << 20},
		"blob:limit=2M":                   {Kind: FilterBlobLimit, Limit: 2 << 20},
		"blob:limit=3g":                   {Kind: FilterBlobLimit, Limit: 3 << 30},
		"blob:limit=3G":                   {Kind: FilterBlobLimit, Limit: 3 << 30},
		"blob:limit=9223372036854775807":  {Kind: FilterBlobLimit, Limit: 1<<63 - 1},
		"blob:limit=18446744073709551615": {Kind: FilterBlobLimit, Limit: 1<<63 - 1}, // clamped
		"blob:limit=17179869183g":         {Kind: FilterBlobLimit, Limit: 1<<63 - 1}, // clamped
		"tree:0":                          {Kind: FilterTreeDepth},
		"tree:12":                         {Kind: FilterTreeDepth, Depth: 12},
		"tree:1k":                         {Kind: FilterTreeDepth, Depth: 1024},
		"tree:4294967296":                 {Kind: FilterTreeDepth, Depth: 1<<31 - 1}, // clamped
		"object:type=blob":                {Kind: FilterObjectType, Type: object.Blob},
		"object:type=tree":                {Kind: FilterObjectType, Type: object.Tree},
		"object:type=commit":              {Kind: FilterObjectType, Type: object.Commit},
		"object:type=tag":                 {Kind: FilterObjectType, Type: object.Tag},
	}
	for in, want := range good {
		got, err := ParseFilter(in)
		if err != nil || got != want {
			t.Errorf("ParseFilter(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{
		"", "blob", "blob:", "blob:nonE", "Blob:none", "blob:none ", " blob:none",
		"blob:limit", "blob:limit=", "blob:limit=k", "blob:limit=-1", "blob:limit=+1", "blob:limit= 1", "blob:limit=1 ",
		"blob:limit=1kk", "blob:limit=1t", "blob:limit=1.5k", "blob:limit=99999999999999999999",
		"blob:limit=18446744073709551616", "blob:limit=17179869184g",
		"blob:limit=010", "blob:limit=0x10", "blob:limit=00",
		"tree:", "tree:-1", "tree:x", "tree:01", "tree:1 ", "tree:99999999999999999999",
		"object:type=", "object:type=ofs-delta", "object:type=Blob", "object:type=blob ", "object:typ=blob",
		"combine:blob:none+tree:0", "sparse:oid=main:x", "sparse:path=/etc/passwd", "nonsense",
	} {
		f, err := ParseFilter(in)
		if err == nil {
			t.Errorf("ParseFilter(%q) = %+v; want an error", in, f)
			continue
		}
		if !errors.Is(err, ErrFilter) {
			t.Errorf("ParseFilter(%q): %v does not wrap ErrFilter", in, err)
		}
		if len(in) > 3 && strings.Contains(err.Error(), in) {
			t.Errorf("ParseFilter(%q): error %q quotes the input", in, err)
		}
	}
}

// TestParseFilterAgainstGit checks ParseFilter against C Git's parser
// (git rev-list --filter): every spec it accepts, C Git accepts; every
// spec it refuses, C Git refuses too, but for the filters gotd does not
// support and the numbers C Git reads as octal or hex.
func TestParseFilterAgainstGit(t *testing.T) {
	dir := gittest.InitBare(t, "sha1")
	gittest.Generate(t, dir, gittest.History{Commits: 2})
	for _, tc := range []struct {
		spec       string
		gitAccepts bool
	}{
		{"blob:none", true}, {"blob:limit=0", true}, {"blob:limit=7", true}, {"blob:limit=1k", true},
		{"blob:limit=2M", true}, {"blob:limit=3g", true}, {"blob:limit=18446744073709551615", true},
		{"tree:0", true}, {"tree:3", true}, {"tree:2k", true},
		{"object:type=blob", true}, {"object:type=tag", true},
		{"blob:limit=-1", false}, {"blob:limit=", false}, {"blob:limit=1x", false}, {"blob:limit=18446744073709551616", false},
		{"tree:", false}, {"tree:x", false}, {"object:type=ofs-delta", false}, {"object:type=", false},
		{"blob:nonE", false}, {"nonsense", false},
		// Deliberately refused, accepted by C Git.
		{"combine:blob:none+tree:0", true}, {"blob:limit=010", true}, {"blob:limit=0x10", true}, {"blob:limit=+1", true},
	} {
		_, gerr := gittest.Run(t, dir, nil, "rev-list", "--objects", "--max-count=1", "--filter="+tc.spec, "main")
		if (gerr == nil) != tc.gitAccepts {
			t.Errorf("git rev-list --filter=%s: %v; the table says C Git accepts: %v", tc.spec, gerr, tc.gitAccepts)
		}
		if _, err := ParseFilter(tc.spec); err == nil && gerr != nil {
			t.Errorf("ParseFilter(%q) accepts what C Git refuses: %v", tc.spec, gerr)
		}
	}
}

// readOnlyStore hides the optional methods of a walktest.Store.
type readOnlyStore struct{ s *walktest.Store }

func (r readOnlyStore) ReadObject(id oid.ID) (object.Type, []byte, error) { return r.s.ReadObject(id) }

// TestBlobLimitSizes checks that blob:limit takes blob sizes from
// StatObject when the store has it, reading no blob, and from
// ReadObject when it does not, with the same result.
func TestBlobLimitSizes(t *testing.T) {
	r := newRepo(t, "sha1", 20)
	r.store = walktest.LoadStore(t, r.dir, r.f)
	spec := Spec{Wants: []oid.ID{r.rev(t, "main")}, Filter: Filter{Kind: FilterBlobLimit, Limit: 2100}}
	list := func(s Store) []string {
		var out []string
		err := (&Walker{Store: s, Format: r.f}).ObjectsFor(context.Background(), spec, func(id oid.ID, _ object.Type, _ uint32) error {
			out = append(out, id.String())
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(out)
		return out
	}
	withStat := list(r.store)
	if r.store.Reads[object.Blob] != 0 || r.store.Stats == 0 {
		t.Errorf("with StatObject: %d blobs read, %d stats; want 0 read", r.store.Reads[object.Blob], r.store.Stats)
	}
	withRead := list(readOnlyStore{r.store})
	if r.store.Reads[object.Blob] == 0 {
		t.Errorf("without StatObject: no blob read")
	}
	if !slices.Equal(withStat, withRead) {
		t.Errorf("with StatObject %d objects, with ReadObject %d", len(withStat), len(withRead))
	}
	all := r.revList(t, "main")
	if len(withStat) == 0 || len(withStat) >= len(all) {
		t.Errorf("blob:limit=2100 listed %d of %d objects; the limit should cut some blobs and keep others", len(withStat), len(all))
	}
}

// TestWantedBlobNotRead: a walk that starts from a blob (a want naming
// it, a tip of a reachability check, a shallow line) learns its type
// from StatObject and never reads it: a blob may be gigabytes, and
// reading one only to learn it is a blob cost a fetch that much memory
// (issue 18).
func TestWantedBlobNotRead(t *testing.T) {
	r := newRepo(t, "sha1", 5)
	r.store = walktest.LoadStore(t, r.dir, r.f)
	first, _, _ := strings.Cut(r.query(t, "ls-tree", "-r", "--name-only", "main"), "\n")
	blob := r.rev(t, "main:"+first)
	if tp, _, _ := r.store.StatObject(blob); tp != object.Blob {
		t.Fatalf("%v is a %v; want a blob", blob, tp)
	}
	w := &Walker{Store: r.store, Format: r.f}
	ctx := context.Background()
	main := r.rev(t, "main")
	for _, tt := range []struct {
		name string
		run  func() error
	}{
		{"ObjectsFor", func() error {
			return w.ObjectsFor(ctx, Spec{Wants: []oid.ID{blob}}, func(oid.ID, object.Type, uint32) error { return nil })
		}},
		{"ObjectsFor blob:limit", func() error {
			spec := Spec{Wants: []oid.ID{blob}, Filter: Filter{Kind: FilterBlobLimit, Limit: 1}}
			return w.ObjectsFor(ctx, spec, func(oid.ID, object.Type, uint32) error { return nil })
		}},
		{"Objects", func() error {
			return w.Objects(ctx, []oid.ID{blob}, nil, func(oid.ID, object.Type, []byte) error { return nil })
		}},
		{"Reachable", func() error {
			_, err := w.Reachable(ctx, []oid.ID{blob, main}, []oid.ID{r.rev(t, "main~1")})
			return err
		}},
		{"peelCommitOK", func() error {
			if _, ok := w.peelCommitOK(blob); ok {
				t.Errorf("peelCommitOK of a blob: ok")
			}
			return nil
		}},
	} {
		clear(r.store.Reads)
		if err := tt.run(); err != nil {
			t.Errorf("%s: %v", tt.name, err)
		}
		if n := r.store.Reads[object.Blob]; n != 0 {
			t.Errorf("%s: read %d blobs; want 0", tt.name, n)
		}
	}
}
