package walk

import (
	"context"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/walk/walktest"
	"gotd/internal/gittest"
)

// negotiationRepo writes a small history with chosen committer times:
// main is c1 (time 1000) to c6 (6000); branch b forks at c4 with b1
// (4500, older than c5) and b2 (9000); branch zero is one commit dated
// 0 on c2; branch x is x1 (500) on c1 and x2 (3500); v1 is an
// annotated tag of c6, blob-tag a tag of a blob.
func negotiationRepo(t *testing.T) *repo {
	t.Helper()
	dir := gittest.InitBare(t, "sha1")
	var b strings.Builder
	commit := func(ref string, mark, when int, from string) {
		fmt.Fprintf(&b, "commit %s\nmark :%d\ncommitter C <c@example.com> %d +0000\ndata 3\nc%d\n", ref, mark, when, mark)
		if from != "" {
			fmt.Fprintf(&b, "from %s\n", from)
		}
		fmt.Fprintf(&b, "M 100644 inline f\ndata 2\n%d\n\n", mark)
	}
	for i := 1; i <= 6; i++ {
		from := ""
		if i > 1 {
			from = fmt.Sprintf(":%d", i-1)
		}
		commit("refs/heads/main", i, i*1000, from)
	}
	commit("refs/heads/b", 7, 4500, ":4")
	commit("refs/heads/b", 8, 9000, ":7")
	commit("refs/heads/zero", 10, 0, ":2")
	commit("refs/heads/x", 11, 500, ":1")
	commit("refs/heads/x", 12, 3500, ":11")
	b.WriteString("blob\nmark :9\ndata 5\nblob\n\n")
	b.WriteString("tag v1\nfrom :6\ntagger T <t@example.com> 7000 +0000\ndata 3\nv1\n\n")
	b.WriteString("tag blob-tag\nfrom :9\ntagger T <t@example.com> 7000 +0000\ndata 2\nb\n\n")
	gittest.GitInput(t, dir, []byte(b.String()), "fast-import", "--quiet")
	f, _ := oid.ParseFormat("sha1")
	r := &repo{dir: dir, f: f}
	r.store = walktest.LoadStore(t, dir, f)
	return r
}

// TestCommonSteps plays negotiations have by have and checks Have,
// Count and Ready after each step against what C Git's upload-pack
// does (do_got_oid, ok_to_give_up).
func TestCommonSteps(t *testing.T) {
	r := negotiationRepo(t)
	// A step is "have NAME", expecting Have's result and then Count, or
	// "ready", expecting Ready's result.
	type step struct {
		op    string
		ok    bool
		count int
	}
	have := func(name string, ok bool, count int) step { return step{"have " + name, ok, count} }
	ready := func(ok bool) step { return step{op: "ready", ok: ok} }
	for _, tc := range []struct {
		name  string
		wants []string
		steps []step
	}{
		{"nothing had", []string{"main"}, []step{ready(false), have("unknown", false, 0), ready(false)}},
		{"no commit wanted, nothing had", []string{"blob-tag"}, []step{ready(false)}},
		{"no commit wanted", []string{"blob-tag"}, []step{ready(false), have("blob-tag", true, 1), ready(true)}},
		{"a had parent", []string{"main"}, []step{have("main~1", true, 1), ready(true)}},
		{"the want itself", []string{"main"}, []step{have("main", true, 1), ready(true)}},
		{"a tag is not peeled", []string{"main"}, []step{have("v1", true, 1), ready(false), have("main~2", true, 2), ready(true)}},
		{"counted as C Git counts", []string{"main"}, []step{
			have("blob-tag", true, 1), have("blob-tag", true, 2), // a non-commit every time
			have("main~3", true, 3), have("main~3", true, 3), // a commit once
			have("main~4", true, 3), // already had as a parent of main~3
			have("main~1", true, 4), ready(true),
		}},
		// b2 reaches c4, a parent of c5, only through b1, which is older
		// than c5: C Git does not walk it until an older have lowers the
		// cut-off.
		{"cut-off by the oldest have", []string{"b"}, []step{
			have("main~1", true, 1), ready(false),
			have("main~1", true, 1), ready(false),
			have("main~2", true, 1), ready(true),
		}},
		{"several haves", []string{"b", "main", "blob-tag", "v1"}, []step{
			have("unknown", false, 0), ready(false),
			have("main", true, 1), ready(false),
			have("b~1", true, 2), ready(true),
			have("main~5", true, 3), ready(true),
		}},
		{"ready stays ready", []string{"main~2"}, []step{have("main~3", true, 1), ready(true), have("main", true, 2), ready(true)}},
		// C Git takes the oldest have time 0 for unset, so a commit
		// dated 0 lets the walk go everywhere until the next have
		// raises the cut-off again.
		{"a have dated 0", []string{"b", "x"}, []step{
			have("zero", true, 1), ready(false), // b reaches c2; x does not reach c1
			have("main~1", true, 2), ready(false), // the cut-off rises to c5's time
			have("main~5", true, 3), ready(false), // c1 is had, but x1 is older
			have("x~1", true, 4), ready(true),
		}},
		// Once found to reach, a want stays reached (C Git would walk
		// again and, with the cut-off raised, not find c2 from b).
		{"reached before the cut-off rose", []string{"b"}, []step{
			have("zero", true, 1), ready(true), have("main~1", true, 2), ready(true),
		}},
	} {
		for _, mode := range []string{"plain", "graph"} {
			if mode == "graph" && r.graph == nil {
				r.withGraph(t)
			}
			w := &Walker{Store: r.store, Format: r.f}
			if mode == "graph" {
				w.Graph = r.graph
			}
			var wants []oid.ID
			for _, n := range tc.wants {
				wants = append(wants, r.rev(t, n))
			}
			c := w.NewCommon(context.Background(), wants)
			for i, st := range tc.steps {
				if st.op == "ready" {
					got, err := c.Ready()
					if err != nil || got != st.ok {
						t.Errorf("%s/%s: step %d: Ready = %v, %v; want %v", tc.name, mode, i, got, err, st.ok)
					}
					continue
				}
				name := strings.TrimPrefix(st.op, "have ")
				id, _ := oid.ParseHex(r.f, strings.Repeat("ab", 20))
				if name != "unknown" {
					id = r.rev(t, name)
				}
				got, err := c.Have(id)
				if err != nil || got != st.ok || c.Count() != st.count {
					t.Errorf("%s/%s: step %d: Have(%s) = %v, %v, Count %d; want %v, Count %d", tc.name, mode, i, name, got, err, c.Count(), st.ok, st.count)
				}
			}
		}
	}
}

// refCommon is C Git's do_got_oid and ok_to_give_up written plainly, a
// whole walk per call, to check the incremental Common against.
type refCommon struct {
	r      *repo
	wants  []oid.ID
	had    map[oid.ID]bool
	count  int
	oldest int64
}

func (rc *refCommon) commit(id oid.ID) ([]oid.ID, int64, bool) {
	o, ok := rc.r.store.Objs[id]
	if !ok || o.Type != object.Commit {
		return nil, 0, false
	}
	_, ps, when, err := object.CommitLinks(rc.r.f, o.Data, nil)
	if err != nil {
		panic(err)
	}
	return ps, when, true
}

func (rc *refCommon) have(id oid.ID) (bool, int) {
	o, ok := rc.r.store.Objs[id]
	if !ok {
		return false, rc.count
	}
	if o.Type != object.Commit {
		rc.count++
		return true, rc.count
	}
	ps, when, _ := rc.commit(id)
	if !rc.had[id] {
		rc.had[id] = true
		rc.count++
	}
	if rc.oldest == 0 || when < rc.oldest {
		rc.oldest = when
	}
	for _, p := range ps {
		rc.had[p] = true
	}
	return true, rc.count
}

func (rc *refCommon) ready() bool {
	if rc.count == 0 {
		return false
	}
	for _, want := range rc.wants {
		if !rc.reaches(want) {
			return false
		}
	}
	return true
}

// reaches walks from start as can_all_from_reach_with_flag does when a
// commit-graph orders the wants oldest first: a want met on the way
// counts if it reaches, whatever its time.
func (rc *refCommon) reaches(start oid.ID) bool {
	if rc.had[start] {
		return true
	}
	seen := map[oid.ID]bool{start: true}
	stack := []oid.ID{start}
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		ps, _, _ := rc.commit(c)
		for _, p := range ps {
			if rc.had[p] || slices.Contains(rc.wants, p) && rc.reaches(p) {
				return true
			}
			if seen[p] {
				continue
			}
			seen[p] = true
			if _, when, ok := rc.commit(p); ok && when >= rc.oldest {
				stack = append(stack, p)
			}
		}
	}
	return false
}

// TestCommonAgainstReference plays random negotiations on a generated
// history, with and without a commit-graph, and checks Have, Count and
// Ready after every have against refCommon.
func TestCommonAgainstReference(t *testing.T) {
	r := newRepo(t, "sha1", 40)
	skewHistory(t, r.dir) // committer times out of order
	r.store = walktest.LoadStore(t, r.dir, r.f)
	r.withGraph(t)
	var commits, others []oid.ID
	for id, o := range r.store.Objs {
		if o.Type == object.Commit {
			commits = append(commits, id)
		} else {
			others = append(others, id)
		}
	}
	slices.SortFunc(commits, oid.ID.Compare)
	slices.SortFunc(others, oid.ID.Compare)
	unknown, _ := oid.ParseHex(r.f, strings.Repeat("ab", 20))
	var tips []oid.ID
	for _, n := range []string{"main", "topic0", "topic1", "topic2", "topic3", "oct0", "skew", "v1.0", "nested", "blob-tag", "tree-tag"} {
		tips = append(tips, r.rev(t, n))
	}
	rnd := rand.New(rand.NewSource(1))
	for round := 0; round < 40; round++ {
		var wants []oid.ID
		for _, i := range rnd.Perm(len(tips))[:1+rnd.Intn(4)] {
			wants = append(wants, tips[i])
		}
		w := &Walker{Store: r.store, Format: r.f}
		if round%2 == 1 {
			w.Graph = r.graph
		}
		c := w.NewCommon(context.Background(), wants)
		rc := &refCommon{r: r, had: map[oid.ID]bool{}}
		for _, id := range wants {
			if p, ok := w.peelCommitOK(id); ok {
				rc.wants = append(rc.wants, p)
			}
		}
		var hist []oid.ID
		for i := 0; i < 12; i++ {
			var id oid.ID
			switch k := rnd.Intn(10); {
			case k == 0:
				id = unknown
			case k == 1:
				id = others[rnd.Intn(len(others))]
			default:
				id = commits[rnd.Intn(len(commits))]
			}
			hist = append(hist, id)
			got, err := c.Have(id)
			want, count := rc.have(id)
			if err != nil || got != want || c.Count() != count {
				t.Fatalf("round %d, have %d (%v): Have = %v, %v, Count %d; want %v, Count %d", round, i, id, got, err, c.Count(), want, count)
			}
			if rnd.Intn(3) == 0 {
				continue // Ready is not asked after every have
			}
			ready, err := c.Ready()
			if err != nil || ready != rc.ready() {
				t.Fatalf("round %d, have %d: Ready = %v, %v; want %v\nwants %v\nhaves %v", round, i, ready, err, rc.ready(), wants, hist)
			}
		}
	}
}

// TestCommonIncremental plays a negotiation C Git's ok_to_give_up
// would answer with a walk per call, each deeper than the last (about
// n*n/2 commits in all), and checks that Ready walks each commit once.
// main has n commits; side forks at the root, its commits dated between
// main's; the client sends side from the tip down, and only its last
// have, whose parent is the root, makes main ready.
func TestCommonIncremental(t *testing.T) {
	const n = 300
	r := linearRepo(t, n)
	var b strings.Builder
	root := strings.TrimSpace(gittest.Git(t, r.dir, "rev-parse", fmt.Sprintf("main~%d", n-1)))
	for i := 0; i < n/2; i++ {
		from := root
		if i > 0 {
			from = fmt.Sprintf(":%d", i)
		}
		fmt.Fprintf(&b, "commit refs/heads/side\nmark :%d\ncommitter C <c@example.com> %d +0000\ndata 0\nfrom %s\n\n", i+1, 1050+200*i, from)
	}
	gittest.GitInput(t, r.dir, []byte(b.String()), "fast-import", "--quiet")
	r.store = walktest.LoadStore(t, r.dir, r.f)
	side := strings.Fields(gittest.Git(t, r.dir, "rev-list", "side", "--not", "main"))
	if len(side) != n/2 {
		t.Fatalf("side has %d commits", len(side))
	}
	w := &Walker{Store: r.store, Format: r.f}
	c := w.NewCommon(context.Background(), []oid.ID{r.rev(t, "main")})
	for i, s := range side {
		id, _ := oid.ParseHex(r.f, s)
		if ok, err := c.Have(id); !ok || err != nil {
			t.Fatalf("Have(side~%d) = %v, %v", i, ok, err)
		}
		ready, err := c.Ready()
		if err != nil || ready != (i == len(side)-1) {
			t.Fatalf("after side~%d: Ready = %v, %v", i, ready, err)
		}
	}
	if c.steps > n+1 {
		t.Errorf("%d commits expanded over %d Ready calls; want each of main's %d at most once", c.steps, len(side), n)
	}
	// One read per commit, and one more of main to peel the want.
	if got := r.store.Reads[object.Commit]; got > n+n/2+1 {
		t.Errorf("%d commit reads; want at most one per commit (%d) and one to peel the want", got, n+n/2)
	}
}
