package receive

import (
	"bytes"
	"context"
	"testing"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/pack"
	"gotd/internal/gittest"
)

// FuzzSelfContained feeds selfContained the packs the indexer takes
// from arbitrary bytes (the fuzzed pack's trailer is made to match, so
// that changes to its entries reach the indexer's checks), and compares
// its answer with a closure collected over every object of the pack:
// selfContained reads the pack as a process that did not index it
// reads what another wrote, finding types through delta chains and
// remembering ids it found, and must say what the closure says.
func FuzzSelfContained(f *testing.F) {
	src := gittest.InitBare(f, "sha1")
	gittest.Generate(f, src, gittest.History{Commits: 4, Files: 3})
	all := gittest.GitInput(f, src, nil, "pack-objects", "-q", "--stdout", "--all", "--revs")
	ofs := gittest.GitInput(f, src, nil, "pack-objects", "-q", "--stdout", "--all", "--revs", "--delta-base-offset")
	tip := gittest.Git(f, src, "rev-parse", "main")
	one := gittest.GitInput(f, src, []byte(tip), "pack-objects", "-q", "--stdout")
	for _, p := range []string{all, ofs, one} {
		f.Add([]byte(p[:len(p)-oid.SHA1.Size()]))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		h := oid.SHA1.New()
		h.Write(body)
		in := append(bytes.Clone(body), h.Sum(nil)...)
		dir := t.TempDir()
		res, err := IndexPack(context.Background(), bytes.NewReader(in), dir, PackOptions{Format: oid.SHA1, Limits: fuzzLimits})
		if err != nil || res.Count == 0 {
			return
		}
		p, err := pack.Open(res.PackPath, oid.SHA1, pack.Options{Cache: pack.NewDeltaCache(1 << 20)})
		if err != nil {
			t.Fatalf("open the indexed pack: %v", err)
		}
		defer p.Close()
		got, err := selfContained(context.Background(), p)
		if err != nil {
			t.Fatalf("selfContained on a pack the indexer took: %v", err)
		}
		cl := newClosure(oid.SHA1)
		cl.begin(uint32(p.Count()))
		for pos := range p.Count() {
			typ, data, err := p.ReadAt(p.OffsetAtPackPos(pos))
			if err != nil {
				return
			}
			if typ != object.Blob {
				cl.add(typ, data)
			}
		}
		if want := cl.within(p); got != want {
			t.Fatalf("selfContained says %v; the closure of every object says %v", got, want)
		}
	})
}
