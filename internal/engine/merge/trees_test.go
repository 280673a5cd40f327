package merge

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/repo"
	"gotd/internal/gittest"
)

// file is one path of a generated tree.
type file struct {
	mode uint32
	data string // contents, link target, or a gitlink's hex id
}

// tree is a generated tree: path → file.
type tree map[string]file

// vocabulary of the generated paths: few enough that both sides touch
// the same paths, directories and files under the same names.
var (
	genDirs  = []string{"", "", "a", "b", "a/c", "a/c/d", "e"}
	genNames = []string{"f1", "f2", "f3", "x.txt", "c", "d"}
)

type generator struct {
	r     *rand.Rand
	n     int
	round int
}

func (g *generator) line() string { g.n++; return fmt.Sprintf("line %d.%d\n", g.round, g.n) }

func (g *generator) text(lines int) string {
	var b strings.Builder
	for range lines {
		b.WriteString(g.line())
	}
	return b.String()
}

func (g *generator) gitlink() string {
	g.n++
	id, _ := oid.Sum(oid.SHA1, []byte(fmt.Sprintf("commit %d.%d", g.round, g.n)))
	return id.String()
}

// fits tells whether path can be added to t: no file where a directory
// of path would be, and no directory at path.
func (t tree) fits(path string) bool {
	for p := range t {
		if p == path || strings.HasPrefix(path, p+"/") || strings.HasPrefix(p, path+"/") {
			return false
		}
	}
	return true
}

func (g *generator) newFile() file {
	switch g.r.IntN(10) {
	case 0:
		return file{object.ModeSymlink, "target-" + g.line()[:8]}
	case 1:
		return file{object.ModeGitlink, g.gitlink()}
	case 2:
		return file{object.ModeBlob, "bin\x00" + g.line()}
	case 3:
		return file{object.ModeExec, g.text(1 + g.r.IntN(8))}
	}
	return file{object.ModeBlob, g.text(g.r.IntN(12))}
}

func (g *generator) randomPath() string {
	d := genDirs[g.r.IntN(len(genDirs))]
	n := genNames[g.r.IntN(len(genNames))]
	if d == "" {
		return n
	}
	return d + "/" + n
}

// edit returns t with a few random changes.
func (g *generator) edit(t tree) tree {
	out := maps.Clone(t)
	for range 1 + g.r.IntN(4) {
		paths := slices.Sorted(maps.Keys(out))
		if len(paths) == 0 || g.r.IntN(6) == 0 {
			if p := g.randomPath(); out.fits(p) {
				out[p] = g.newFile()
			}
			continue
		}
		p := paths[g.r.IntN(len(paths))]
		f := out[p]
		switch g.r.IntN(8) {
		case 0, 1, 2, 3: // edit the contents
			switch f.mode {
			case object.ModeBlob, object.ModeExec:
				if strings.HasPrefix(f.data, "bin\x00") {
					f.data += g.line()
				} else {
					lines := strings.SplitAfter(f.data, "\n")
					if lines[len(lines)-1] == "" {
						lines = lines[:len(lines)-1]
					}
					f.data = strings.Join(editLines(g.r, lines, g.line), "")
				}
			case object.ModeSymlink:
				f.data = "target-" + g.line()[:8]
			case object.ModeGitlink:
				f.data = g.gitlink()
			}
			out[p] = f
		case 4: // delete
			delete(out, p)
		case 5: // mode
			switch f.mode {
			case object.ModeBlob:
				f.mode = object.ModeExec
			case object.ModeExec:
				f.mode = object.ModeBlob
			default:
				f = g.newFile()
			}
			out[p] = f
		case 6: // rename: a deletion and an addition
			if q := g.randomPath(); q != p {
				delete(out, p)
				if out.fits(q) {
					out[q] = f
				} else {
					out[p] = f
				}
			}
		case 7: // a directory deleted whole
			if i := strings.LastIndexByte(p, '/'); i > 0 {
				for q := range out {
					if strings.HasPrefix(q, p[:i+1]) {
						delete(out, q)
					}
				}
			}
		}
	}
	return out
}

// write writes t into r and returns its tree id.
func write(t *testing.T, r *repo.Repo, tr tree) oid.ID {
	t.Helper()
	type node struct {
		files map[string]file
		dirs  map[string]*node
	}
	root := &node{files: map[string]file{}, dirs: map[string]*node{}}
	for p, f := range tr {
		n := root
		parts := strings.Split(p, "/")
		for _, d := range parts[:len(parts)-1] {
			if n.dirs[d] == nil {
				n.dirs[d] = &node{files: map[string]file{}, dirs: map[string]*node{}}
			}
			n = n.dirs[d]
		}
		n.files[parts[len(parts)-1]] = f
	}
	var put func(n *node) oid.ID
	put = func(n *node) oid.ID {
		type ent struct {
			name string
			mode uint32
			id   oid.ID
		}
		var es []ent
		for name, f := range n.files {
			var id oid.ID
			var err error
			if f.mode == object.ModeGitlink {
				id, err = oid.ParseHex(oid.SHA1, f.data)
			} else {
				id, err = r.WriteObject(object.Blob, []byte(f.data))
			}
			if err != nil {
				t.Fatal(err)
			}
			es = append(es, ent{name, f.mode, id})
		}
		for name, d := range n.dirs {
			es = append(es, ent{name, object.ModeTree, put(d)})
		}
		slices.SortFunc(es, func(a, b ent) int {
			return object.CompareTreeNames(a.name, a.mode == object.ModeTree, b.name, b.mode == object.ModeTree)
		})
		var data []byte
		for _, e := range es {
			data = object.AppendTreeEntry(data, e.mode, []byte(e.name), e.id)
		}
		id, err := r.WriteObject(object.Tree, data)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	return put(root)
}

func commit(t *testing.T, r *repo.Repo, tree oid.ID, parent oid.ID, msg string) oid.ID {
	t.Helper()
	s := "tree " + tree.String() + "\n"
	if parent.Valid() {
		s += "parent " + parent.String() + "\n"
	}
	s += "author A <a@example.com> 1700000000 +0000\ncommitter C <c@example.com> 1700000000 +0000\n\n" + msg + "\n"
	id, err := r.WriteObject(object.Commit, []byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestTreesMatchGit merges random changes of random trees made on two
// sides with Trees and with C Git's `git merge-tree --write-tree`
// (merge-ort, rename detection off, since Trees does not follow
// renames): wherever C Git merges cleanly, Trees must produce the same
// tree, and wherever C Git reports a conflict, Trees must refuse.
func TestTreesMatchGit(t *testing.T) {
	dir := gittest.InitBare(t, "sha1")
	if out, err := gittest.Run(t, dir, nil, "merge-tree", "-h"); !strings.Contains(out+fmt.Sprint(err), "--write-tree") {
		t.Skip("git merge-tree has no --write-tree (C Git older than 2.38)")
	}
	r, err := repo.Open(dir, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rounds := 150
	if testing.Short() {
		rounds = 80
	}
	g := &generator{r: rand.New(rand.NewPCG(7, 4))}
	clean, conflicts, renames := 0, 0, 0
	whys := map[string]int{}
	for round := range rounds {
		g.round = round
		base := tree{}
		for range 2 + g.r.IntN(8) {
			if p := g.randomPath(); base.fits(p) {
				base[p] = g.newFile()
			}
		}
		ours := g.edit(base)
		theirs := g.edit(base)
		if g.r.IntN(6) == 0 {
			theirs = g.edit(ours)
		}
		bt, ot, tt := write(t, r, base), write(t, r, ours), write(t, r, theirs)
		bc := commit(t, r, bt, oid.ID{}, "base")
		oc, tc := commit(t, r, ot, bc, "ours"), commit(t, r, tt, bc, "theirs")

		out, gitErr := gittest.Run(t, dir, nil, "-c", "merge.renames=false", "merge-tree", "--write-tree", "--no-messages", oc.String(), tc.String())
		gitClean := gitErr == nil
		if gitErr != nil && !strings.Contains(gitErr.Error(), "exit status 1") {
			t.Fatalf("round %d: git merge-tree: %v", round, gitErr)
		}
		got, err := Trees(context.Background(), r, oid.SHA1, bt, ot, tt, DefaultLimits)
		var c *Conflict
		if err != nil && !errors.As(err, &c) {
			t.Fatalf("round %d: %v", round, err)
		}
		// C Git 2.39's merge-tree always detects renames (it ignores
		// merge.renames): where a side's deletion and addition look like
		// a rename, the two may differ on purpose, and the round is
		// only counted.
		if renameLike(base, ours) || renameLike(base, theirs) {
			if gitClean != (c == nil) || gitClean && got.String() != strings.TrimSpace(out) {
				renames++
			}
			continue
		}
		describe := func() string {
			return describeTrees(base, ours, theirs) + "git merge-tree: " + out
		}
		switch {
		case gitClean && c != nil:
			t.Fatalf("round %d: refused (%v); C Git merges cleanly\n%s", round, c, describe())
		case !gitClean && c == nil:
			t.Fatalf("round %d: merged to %s; C Git reports a conflict\n%s", round, got, describe())
		case gitClean:
			if want := strings.TrimSpace(out); got.String() != want {
				t.Fatalf("round %d: got tree %s; want %s (C Git)\n%s", round, got, want, describe())
			}
			clean++
		default:
			conflicts++
			whys[c.Why]++
		}
	}
	t.Logf("%d rounds: %d clean, %d conflicts, as C Git: %v; %d rounds with renames that C Git follows merged otherwise", rounds, clean, conflicts, whys, renames)
	if clean < rounds/10 || conflicts < rounds/10 {
		t.Errorf("the corpus is one-sided: %d clean, %d conflicts", clean, conflicts)
	}
}

// describeTrees lists the paths of three trees side by side: mode and
// a digest of the contents of each.
func describeTrees(ts ...tree) string {
	paths := map[string]bool{}
	for _, t := range ts {
		for p := range t {
			paths[p] = true
		}
	}
	var b strings.Builder
	for _, p := range slices.Sorted(maps.Keys(paths)) {
		fmt.Fprintf(&b, "%-12s", p)
		for _, t := range ts {
			if f, ok := t[p]; ok {
				id, _ := oid.Sum(oid.SHA1, []byte(f.data))
				fmt.Fprintf(&b, " %06o %.7s", f.mode, id)
			} else {
				fmt.Fprintf(&b, " %-14s", "-")
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// renameLike tells whether side deleted a path of base and added one
// whose contents share at least half their lines with it: what C Git's
// rename detection may pair.
func renameLike(base, side tree) bool {
	for p, f := range base {
		if _, ok := side[p]; ok {
			continue
		}
		for q, g := range side {
			if _, ok := base[q]; ok || object.ModeType(f.mode) != object.ModeType(g.mode) {
				continue
			}
			if similar(f.data, g.data) {
				return true
			}
		}
	}
	return false
}

func similar(a, b string) bool {
	if a == b {
		return true
	}
	la, lb := strings.SplitAfter(a, "\n"), strings.SplitAfter(b, "\n")
	in := map[string]bool{}
	for _, l := range la {
		in[l] = true
	}
	shared := 0
	for _, l := range lb {
		if in[l] {
			shared++
		}
	}
	return 2*shared >= max(len(la), len(lb))
}

// countingStore counts the objects a merge reads.
type countingStore struct {
	Store
	reads int
}

func (c *countingStore) ReadObject(id oid.ID) (object.Type, []byte, error) {
	c.reads++
	return c.Store.ReadObject(id)
}

// TestTreesRepeated merges trees whose entries all name one subtree,
// level after level: each three-way merge of the same trees is made
// once (a stranger's finding: with 40 entries four levels deep, 2.56
// million paths in a few hundred bytes of trees, one commit took
// minutes), the result is C Git's (8 entries, 3 levels: its merge-tree
// follows every path), and past MaxEntries or a cancelled context a
// merge is refused as too large.
func TestTreesRepeated(t *testing.T) {
	dir := gittest.InitBare(t, "sha1")
	r, err := repo.Open(dir, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	nest := func(leaf string, other bool, width, depth int) oid.ID {
		blob, _ := r.WriteObject(object.Blob, []byte(leaf))
		var data []byte
		data = object.AppendTreeEntry(data, object.ModeBlob, []byte("f"), blob)
		if other {
			o, _ := r.WriteObject(object.Blob, []byte("other\n"))
			data = object.AppendTreeEntry(data, object.ModeBlob, []byte("g"), o)
		}
		id, _ := r.WriteObject(object.Tree, data)
		for range depth {
			var d []byte
			for k := range width {
				d = object.AppendTreeEntry(d, object.ModeTree, []byte(fmt.Sprintf("d%02d", k)), id)
			}
			id, _ = r.WriteObject(object.Tree, d)
		}
		return id
	}
	three := func(width, depth int) (base, ours, theirs oid.ID) {
		return nest("1\n2\n3\n4\n", false, width, depth), nest("one\n2\n3\n4\n", false, width, depth), nest("1\n2\n3\nfour\n", true, width, depth)
	}
	base, ours, theirs := three(40, 4)
	cs := &countingStore{Store: r}
	if _, err := Trees(context.Background(), cs, oid.SHA1, base, ours, theirs, DefaultLimits); err != nil {
		t.Fatal(err)
	}
	if cs.reads > 100 {
		t.Errorf("the merge of 2.56 million repeated paths read %d objects; want each distinct tree and file read once (at most 100)", cs.reads)
	}

	base, ours, theirs = three(8, 3)
	got, err := Trees(context.Background(), r, oid.SHA1, base, ours, theirs, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	bc := commit(t, r, base, oid.ID{}, "base")
	out, err := gittest.Run(t, dir, nil, "merge-tree", "--write-tree", "--no-messages", commit(t, r, ours, bc, "ours").String(), commit(t, r, theirs, bc, "theirs").String())
	if err != nil {
		t.Fatalf("git merge-tree: %v", err)
	}
	if want := strings.TrimSpace(out); got.String() != want {
		t.Errorf("got tree %s; want %s (git merge-tree)", got, want)
	}
	lim := DefaultLimits
	lim.MaxEntries = 10
	if _, err := Trees(context.Background(), r, oid.SHA1, base, ours, theirs, lim); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over MaxEntries: got %v; want ErrTooLarge", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Trees(ctx, r, oid.SHA1, base, ours, theirs, DefaultLimits); !errors.Is(err, ErrTooLarge) {
		t.Errorf("cancelled: got %v; want ErrTooLarge", err)
	}
}
