package receive

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/pack"
	"gotd/internal/git/repo"
	"gotd/internal/gittest"
	"gotd/internal/protocol/wire"
)

// TestIngestClosure: a pack holding every object its references reach
// is found self-contained (and taken without a walk); a pack missing
// one blob, tree, commit or tag that another of its objects names is
// not, and is refused with nothing installed, whatever kind of object
// is missing.
func TestIngestClosure(t *testing.T) {
	src := gittest.InitBare(t, "sha1")
	gittest.Generate(t, src, gittest.History{Commits: 6, Branches: 1, Files: 4})
	// A tag that only another tag names.
	gittest.Git(t, src, "tag", "-a", "-m", "inner", "inner", "main")
	gittest.Git(t, src, "tag", "-a", "-m", "outer", "outer", "inner")
	gittest.Git(t, src, "tag", "-d", "inner")
	var tips []Tip
	isTip := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(gittest.Git(t, src, "for-each-ref", "--format=%(objectname) %(refname)")), "\n") {
		hex, name, _ := strings.Cut(line, " ")
		id, err := oid.ParseHex(oid.SHA1, hex)
		if err != nil {
			t.Fatal(err)
		}
		tips = append(tips, Tip{Name: name, ID: id})
		isTip[hex] = true
	}
	// Every object, and one of each type that is no reference's tip.
	var all []string
	drop := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(gittest.GitInput(t, src, nil, "cat-file", "--batch-all-objects", "--batch-check=%(objectname) %(objecttype)")), "\n") {
		hex, typ, _ := strings.Cut(line, " ")
		all = append(all, hex)
		if _, ok := drop[typ]; !ok && !isTip[hex] {
			drop[typ] = hex
		}
	}
	for _, typ := range []string{"blob", "tree", "commit", "tag"} {
		if drop[typ] == "" {
			t.Fatalf("the history has no %s that is not a tip", typ)
		}
	}
	// packOf packs every object but skip, deltas against a base's id
	// or, with ofs, its offset.
	packOfDeltas := func(skip string, ofs bool) []byte {
		var in bytes.Buffer
		for _, hex := range all {
			if hex != skip {
				in.WriteString(hex + "\n")
			}
		}
		args := []string{"pack-objects", "-q", "--stdout"}
		if ofs {
			args = append(args, "--delta-base-offset")
		}
		return []byte(gittest.GitInput(t, src, in.Bytes(), args...))
	}
	packOf := func(skip string) []byte { return packOfDeltas(skip, false) }
	take := func(p []byte) (*repo.Repo, string, error) {
		dir := gittest.InitBare(t, "sha1")
		r, err := repo.Open(dir, repo.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		in := &Ingest{Repo: r, Limits: wire.DefaultLimits}
		_, err = in.Take(context.Background(), bytes.NewReader(p), tips)
		return r, dir, err
	}

	// The whole pack: self-contained.
	whole := packOf("")
	if _, _, err := take(whole); err != nil {
		t.Fatalf("the whole pack: %v", err)
	}
	cl := newClosure(oid.SHA1)
	res, err := IndexPack(context.Background(), bytes.NewReader(whole), t.TempDir(), PackOptions{Format: oid.SHA1, Limits: wire.DefaultLimits, closure: cl})
	if err != nil {
		t.Fatal(err)
	}
	if !closureWithin(t, cl, res.PackPath) {
		t.Errorf("the whole pack: not found self-contained")
	}
	// Naming more ids than a closure collects: not known to be
	// self-contained (walked), and taken all the same.
	defer func(n int) { maxClosure = n }(maxClosure)
	maxClosure = 4
	cl = newClosure(oid.SHA1)
	if res, err = IndexPack(context.Background(), bytes.NewReader(whole), t.TempDir(), PackOptions{Format: oid.SHA1, Limits: wire.DefaultLimits, closure: cl}); err != nil {
		t.Fatal(err)
	}
	if closureWithin(t, cl, res.PackPath) || cl.named != nil {
		t.Errorf("the whole pack, at most %d ids collected: found self-contained", maxClosure)
	}
	if _, _, err := take(whole); err != nil {
		t.Fatalf("the whole pack, at most %d ids collected: %v", maxClosure, err)
	}
	maxClosure = 1 << 20

	// What a process that did not index the pack reads to find out.
	for _, ofs := range []bool{false, true} {
		if !packSelfContained(t, packOfDeltas("", ofs)) {
			t.Errorf("the whole pack (ofs-delta %v): selfContained says not", ofs)
		}
		for typ, hex := range drop {
			if packSelfContained(t, packOfDeltas(hex, ofs)) {
				t.Errorf("pack without %s %s (ofs-delta %v): selfContained says self-contained", typ, hex, ofs)
			}
		}
	}
	for typ, hex := range drop {
		p := packOf(hex)
		cl := newClosure(oid.SHA1)
		res, err := IndexPack(context.Background(), bytes.NewReader(p), t.TempDir(), PackOptions{Format: oid.SHA1, Limits: wire.DefaultLimits, closure: cl})
		if err != nil {
			t.Fatal(err)
		}
		if closureWithin(t, cl, res.PackPath) {
			t.Errorf("pack without %s %s: found self-contained", typ, hex)
		}
		_, dir, err := take(p)
		if err == nil || !strings.Contains(err.Error(), "incomplete") {
			t.Errorf("pack without %s %s: got %v; want it refused as incomplete", typ, hex, err)
		}
		if left, _ := os.ReadDir(filepath.Join(dir, "objects", "pack")); len(left) != 0 {
			t.Errorf("pack without %s: installed %v", typ, left)
		}
	}
}

// packSelfContained indexes p and returns what selfContained says of
// it.
func packSelfContained(t *testing.T, p []byte) bool {
	t.Helper()
	res, err := IndexPack(context.Background(), bytes.NewReader(p), t.TempDir(), PackOptions{Format: oid.SHA1, Limits: wire.DefaultLimits})
	if err != nil {
		t.Fatal(err)
	}
	pk, err := pack.Open(res.PackPath, oid.SHA1, pack.Options{Cache: pack.NewDeltaCache(1 << 20)})
	if err != nil {
		t.Fatal(err)
	}
	defer pk.Close()
	ok, err := selfContained(context.Background(), pk)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// closureWithin opens the indexed pack at path and asks cl whether it
// holds every object named.
func closureWithin(t *testing.T, cl *closure, path string) bool {
	t.Helper()
	p, err := pack.Open(path, oid.SHA1, pack.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	return cl.within(p)
}

// TestIndexClosed: IndexClosed finds a pack closed when it holds every
// tip and everything its objects name, and only then: a tip the
// repository holds and the pack does not, or a pack whose named ids
// were too many to collect, is checked by a walk and not closed.
func TestIndexClosed(t *testing.T) {
	src := gittest.InitBare(t, "sha1")
	gittest.Generate(t, src, gittest.History{Commits: 6, Branches: 2, Files: 4})
	whole := []byte(gittest.GitInput(t, src, nil, "pack-objects", "-q", "--stdout", "--all", "--revs"))
	main, err := oid.ParseHex(oid.SHA1, strings.TrimSpace(gittest.Git(t, src, "rev-parse", "main")))
	if err != nil {
		t.Fatal(err)
	}
	blob := strings.TrimSpace(gittest.Git(t, src, "rev-parse", "main:"+strings.Fields(gittest.Git(t, src, "ls-tree", "--name-only", "main"))[0]))
	oneBlob := []byte(gittest.GitInput(t, src, []byte(blob+"\n"), "pack-objects", "-q", "--stdout"))
	tips := []Tip{{Name: "refs/heads/main", ID: main}}

	dir := gittest.InitBare(t, "sha1")
	r, err := repo.Open(dir, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	in := &Ingest{Repo: r, Limits: wire.DefaultLimits}
	index := func(p []byte) bool {
		t.Helper()
		q, hold, err := NewQuarantine(r.ObjectsDir())
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			os.RemoveAll(q)
			hold.Close()
		}()
		_, closed, err := in.IndexClosed(context.Background(), bytes.NewReader(p), q, tips)
		if err != nil {
			t.Fatalf("IndexClosed: %v", err)
		}
		return closed
	}
	if !index(whole) {
		t.Errorf("the whole history: got not closed; want closed")
	}
	defer func(n int) { maxClosure = n }(maxClosure)
	maxClosure = 4
	if index(whole) {
		t.Errorf("the whole history, at most %d ids collected: got closed; want not", maxClosure)
	}
	maxClosure = 1 << 20
	if _, err := in.Take(context.Background(), bytes.NewReader(whole), tips); err != nil {
		t.Fatal(err)
	}
	// main is in the repository now, not in the pack: the walk finds
	// it there.
	if index(oneBlob) {
		t.Errorf("a pack of one blob, main in the repository: got closed; want not")
	}
}

// TestClosureSizedByCount: a closure's table is sized once from the
// object count of the pack header, about a quarter more slots than
// objects (git.git: 10 MB where a growing set took 21), and a pack
// whose objects name more distinct ids than it holds objects is found
// not self-contained at the first id too many, whatever it holds.
func TestClosureSizedByCount(t *testing.T) {
	tree := func(n int) []byte {
		var b []byte
		for i := range n {
			b = append(b, []byte("100644 f"+strings.Repeat("x", i)+"\x00")...)
			id := make([]byte, 20)
			id[0], id[19] = byte(i+1), 7
			b = append(b, id...)
		}
		return b
	}
	for _, tc := range []struct {
		count, named int
		broken       bool
	}{
		{3, 3, false},
		{3, 4, true},
		{1000, 1000, false},
		{1000, 1001, true},
	} {
		c := newClosure(oid.SHA1)
		c.begin(uint32(tc.count))
		if got, max := c.named.TableBytes(), (tc.count+tc.count/4+1)*20; got > max {
			t.Errorf("count %d: got a table of %d bytes; want at most %d", tc.count, got, max)
		}
		c.add(object.Tree, tree(min(tc.named, 255)))
		if tc.named > 255 {
			for i := 255; i < tc.named; i++ {
				var id [20]byte
				id[0], id[1], id[19] = byte(i), byte(i>>8), 9
				c.flush(id[:], 20)
			}
		}
		if c.broken != tc.broken {
			t.Errorf("count %d, %d ids named: got broken %v; want %v", tc.count, tc.named, c.broken, tc.broken)
		}
	}
	// An id named before the count is known: no table to prove it.
	c := newClosure(oid.SHA1)
	c.add(object.Tree, tree(1))
	if !c.broken {
		t.Errorf("an id named before begin: got not broken; want broken")
	}
}

// TestSelfContainedRefuses: packs that a process writing the quarantine
// could leave, indexed by C Git without checks, whose objects name an
// id no object has: selfContained must not find them self-contained
// (then the walk refuses them). The null id as a commit's parent, a
// tree's entry or a tag's object passed once, an empty slot of found
// ids taking it for found; so did a parent line with a malformed id,
// which ended the list of parents.
func TestSelfContainedRefuses(t *testing.T) {
	null := strings.Repeat("0", 40)
	absent := "1234567890123456789012345678901234567890"
	const emptyTree = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
	const sig = "author A <a@example.org> 1 +0000\ncommitter A <a@example.org> 1 +0000\n\nm\n"
	nullEntry := "100644 f\x00" + string(make([]byte, 20))
	for name, objs := range map[string][][2]string{
		"null parent":         {{"tree", ""}, {"commit", "tree " + emptyTree + "\nparent " + null + "\n" + sig}},
		"parent id too long":  {{"tree", ""}, {"commit", "tree " + emptyTree + "\nparent " + absent + "0\n" + sig}},
		"parent id and space": {{"tree", ""}, {"commit", "tree " + emptyTree + "\nparent " + absent + " \n" + sig}},
		"null tree entry":     {{"tree", nullEntry}},
		"null tag object":     {{"tag", "object " + null + "\ntype commit\ntag v\ntagger A <a@example.org> 1 +0000\n\nm\n"}},
	} {
		src := gittest.InitBare(t, "sha1")
		var ids []string
		for _, o := range objs {
			ids = append(ids, strings.TrimSpace(gittest.GitInput(t, src, []byte(o[1]), "hash-object", "-t", o[0], "-w", "--stdin", "--literally")))
		}
		p := gittest.GitInput(t, src, []byte(strings.Join(ids, "\n")+"\n"), "pack-objects", "-q", "--stdout")
		path := filepath.Join(t.TempDir(), "pack-x.pack")
		if err := os.WriteFile(path, []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
		gittest.Git(t, filepath.Dir(path), "index-pack", "--rev-index", path)
		pk, err := pack.Open(path, oid.SHA1, pack.Options{Cache: pack.NewDeltaCache(1 << 20)})
		if err != nil {
			t.Fatal(err)
		}
		ok, err := selfContained(context.Background(), pk)
		pk.Close()
		if ok || err != nil {
			t.Errorf("%s: selfContained says %v, %v; want not self-contained", name, ok, err)
		}
	}
}
