package walk

import (
	"context"
	"testing"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/walk/walktest"
)

// TestObjectsForFilter compares filtered listings with git rev-list
// --filter for the same wants and haves.
func TestObjectsForFilter(t *testing.T) {
	r := newRepo(t, "sha1", 40)
	r.store = walktest.LoadStore(t, r.dir, r.f)
	w := &Walker{Store: r.store, Format: r.f}
	specs := []string{"blob:none", "blob:limit=1k", "blob:limit=2100", "tree:0", "tree:1", "tree:2", "tree:3",
		"object:type=blob", "object:type=tree", "object:type=commit", "object:type=tag"}
	cases := []walkCase{
		{"all", []string{"main", "topic1", "v1.0", "blob-tag", "tree-tag", "nested"}, nil},
		{"incremental", []string{"main"}, []string{"main~10"}},
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
		"blob:none":          {Kind: FilterBlobNone},
		"blob:limit=0":       {Kind: FilterBlobLimit},
		"blob:limit=5k":      {Kind: FilterBlobLimit, Limit: 5 << 10},
		"blob:limit=2M":      {Kind: FilterBlobLimit, Limit: 2 << 20},
		"tree:0":             {Kind: FilterTreeDepth},
		"tree:12":            {Kind: FilterTreeDepth, Depth: 12},
		"object:type=commit": {Kind: FilterObjectType, Type: object.Commit},
	}
	for in, want := range good {
		got, err := ParseFilter(in)
		if err != nil || got != want {
			t.Errorf("ParseFilter(%q) = %+v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "blob:limit=", "blob:limit=-1", "blob:limit=k", "blob:limit=99999999999999999999",
		"tree:-1", "tree:x", "object:type=ofs-delta", "combine:blob:none+tree:0", "sparse:oid=main:x", "blob:nonE"} {
		if _, err := ParseFilter(in); err == nil {
			t.Errorf("ParseFilter(%q) accepted", in)
		}
	}
}

func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{"blob:none", "blob:limit=1k", "tree:3", "object:type=tag", "combine:x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := ParseFilter(s)
		if err != nil {
			return
		}
		again, err := ParseFilter(flt.String())
		if err != nil || again != flt {
			t.Fatalf("%q parsed to %+v, whose string %q parses to %+v, %v", s, flt, flt.String(), again, err)
		}
	})
}
