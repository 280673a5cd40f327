package walk

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/walk/walktest"
	"gotd/internal/gittest"
)

// skewSince is a time between the generated history (1.7e9 on) and
// extraHistory (1.8e9 on), for --shallow-since.
const skewSince = 1740000000

// skewHistory adds branch skew, whose committer times go backwards:
// N (newer than skewSince) on main, O (older) on N, P (newer) on N, and
// the tip merging O and P. C Git's rev-list keeps N when asked only for
// commits since skewSince (P leads to it), and drops it when also
// excluding a reference (the limited walk drops every ancestor of O).
func skewHistory(t testing.TB, dir string) {
	t.Helper()
	var b strings.Builder
	commit := func(ref string, mark int, when int64, from string, merge string) {
		fmt.Fprintf(&b, "commit %s\nmark :%d\ncommitter C <c@example.com> %d +0000\ndata 5\nskew%d\nfrom %s\n", ref, mark, when, mark, from)
		if merge != "" {
			fmt.Fprintf(&b, "merge %s\n", merge)
		}
		fmt.Fprintf(&b, "M 100644 inline skew.txt\ndata 2\n%d\n\n", mark)
	}
	commit("refs/heads/skew", 1, 1750000000, "refs/heads/main^0", "")
	commit("refs/heads/skew", 2, 1600000000, ":1", "")
	commit("refs/heads/skew-p", 3, 1755000000, ":1", "")
	commit("refs/heads/skew", 4, 1760000000, ":2", ":3")
	gittest.GitInput(t, dir, []byte(b.String()), "fast-import", "--quiet")
	gittest.Git(t, dir, "update-ref", "-d", "refs/heads/skew-p")
}

// fetchRun is one git clone or fetch as its packet trace shows it: what
// the client sent and the shallow lines the server answered.
type fetchRun struct {
	wants, haves, shallows []oid.ID
	depth                  int
	relative               bool
	since                  int64
	not                    []string
	filter                 string
	includeTag             bool
	gotShallow, gotUnshall []oid.ID
	packCount              int // objects in the pack C Git sent
}

var tracePacket = regexp.MustCompile(`packet:\s+(?:clone|fetch)([<>]) (.*)$`)

// gitTraced runs git with args in dir with GIT_TRACE_PACKET and
// GIT_TRACE_PACKFILE on, and parses the traces.
func (r *repo) gitTraced(t *testing.T, dir string, args ...string) fetchRun {
	t.Helper()
	tmp := t.TempDir()
	trace, packTrace := filepath.Join(tmp, "trace"), filepath.Join(tmp, "pack")
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(gittest.Env(t), "GIT_TRACE_PACKET="+trace, "GIT_TRACE_PACKFILE="+packTrace)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	var run fetchRun
	// The pack as received: its header counts the objects.
	if p, err := os.ReadFile(packTrace); err == nil {
		if len(p) < 12 || string(p[:4]) != "PACK" {
			t.Fatalf("traced pack starts %q", p[:min(len(p), 12)])
		}
		run.packCount = int(binary.BigEndian.Uint32(p[8:12]))
	} else if !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	f, err := os.Open(trace)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]bool{}
	id := func(s string) oid.ID {
		x, err := oid.ParseHex(r.f, s)
		if err != nil {
			t.Fatalf("trace: %q: %v", s, err)
		}
		return x
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		m := tracePacket.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		way, fs := m[1], strings.Fields(m[2])
		if len(fs) == 0 || seen[way+m[2]] {
			continue // protocol v2 repeats a request's lines each round
		}
		seen[way+m[2]] = true
		if way == "<" {
			switch {
			case fs[0] == "shallow" && len(fs) == 2:
				run.gotShallow = append(run.gotShallow, id(fs[1]))
			case fs[0] == "unshallow" && len(fs) == 2:
				run.gotUnshall = append(run.gotUnshall, id(fs[1]))
			}
			continue
		}
		switch fs[0] {
		case "want":
			if !seen["want "+fs[1]] {
				seen["want "+fs[1]] = true
				run.wants = append(run.wants, id(fs[1]))
			}
			// Protocol v0 sends these as capabilities.
			if slices.Contains(fs[2:], "deepen-relative") {
				run.relative = true
			}
			if slices.Contains(fs[2:], "include-tag") {
				run.includeTag = true
			}
		case "have":
			run.haves = append(run.haves, id(fs[1]))
		case "shallow":
			run.shallows = append(run.shallows, id(fs[1]))
		case "deepen":
			run.depth, _ = strconv.Atoi(fs[1])
		case "deepen-relative":
			run.relative = true
		case "include-tag":
			run.includeTag = true
		case "deepen-since":
			run.since, _ = strconv.ParseInt(fs[1], 10, 64)
		case "deepen-not":
			run.not = append(run.not, fs[1])
		case "filter":
			run.filter = fs[1]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return run
}

// objectSet returns the ids of every object in the repository dir.
func objectSet(t *testing.T, dir string) map[string]bool {
	t.Helper()
	m := map[string]bool{}
	for _, s := range gittest.Objects(t, dir) {
		m[s] = true
	}
	return m
}

// shallowFile returns the sorted lines of the shallow file of the bare
// repository dir.
func shallowFile(t *testing.T, dir string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "shallow"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	l := strings.Fields(string(data))
	slices.Sort(l)
	return l
}

func idStrings(ids []oid.ID) []string {
	var l []string
	for _, id := range ids {
		l = append(l, id.String())
	}
	slices.Sort(l)
	return l
}

// TestDeepenAndObjectsForAgainstGit runs real shallow and partial
// clones and fetches from a generated repository with C Git on both
// sides, and checks for each that Deepen, given what the client sent,
// answers the shallow and unshallow lines C Git's upload-pack sent and
// leaves the client's shallow file as it is after the fetch; and that
// ObjectsFor lists each object the client received, nothing the client
// lacks after the fetch, nothing twice, and as many objects as C Git's
// pack holds (with what --include-tag adds).
func TestDeepenAndObjectsForAgainstGit(t *testing.T) {
	r := newRepo(t, "sha1", 40)
	skewHistory(t, r.dir)
	gittest.Git(t, r.dir, "tag", "old", "main~10")
	gittest.Git(t, r.dir, "config", "uploadpack.allowFilter", "true")
	since15 := strings.TrimSpace(gittest.Git(t, r.dir, "log", "-1", "--format=%ct", "main~15"))
	url := "file://" + r.dir

	type step struct {
		name string
		args []string // "DST" stands for the client repository
	}
	sequences := [][]step{
		{{"clone depth 1", []string{"clone", "--depth=1", "--no-single-branch"}}},
		{
			{"clone depth 4", []string{"clone", "--depth=4", "--no-single-branch"}},
			{"fetch deepen 2", []string{"-C", "DST", "fetch", "--no-tags", "--deepen=2"}},
			{"fetch depth 12", []string{"-C", "DST", "fetch", "--no-tags", "--depth=12"}},
			{"fetch since", []string{"-C", "DST", "fetch", "--no-tags", "--shallow-since=@" + since15}},
			{"fetch unshallow", []string{"-C", "DST", "fetch", "--no-tags", "--unshallow"}},
		},
		{{"clone depth 6 main only", []string{"clone", "--depth=6", "--no-tags"}}},
		{{"clone since", []string{"clone", "--shallow-since=@" + since15, "--no-single-branch"}}},
		{{"clone since skew", []string{"clone", "--shallow-since=@" + strconv.Itoa(skewSince), "--no-single-branch"}}},
		{{"clone since and exclude skew", []string{"clone", "--shallow-since=@" + strconv.Itoa(skewSince), "--shallow-exclude=light", "--no-single-branch"}}},
		{
			{"clone exclude", []string{"clone", "--shallow-exclude=old", "--no-single-branch"}},
			{"fetch deepen 3", []string{"-C", "DST", "fetch", "--no-tags", "--deepen=3"}},
		},
		{{"clone depth 2 blob:none", []string{"clone", "--depth=2", "--filter=blob:none", "--no-single-branch"}}},
		{{"clone depth 3 tree:1", []string{"clone", "--depth=3", "--filter=tree:1", "--no-tags"}}},
	}
	// Protocol v2 with a plain walk; protocol v0 with a commit-graph and
	// bitmaps, which ObjectsFor must set aside for shallow fetches.
	for _, mode := range []string{"v2", "v0"} {
		t.Run(mode, func(t *testing.T) {
			proto := "2"
			if mode == "v0" {
				proto = "0"
				r.withBitmap(t)
				r.withGraph(t)
			}
			r.store = walktest.LoadStore(t, r.dir, r.f)
			w := &Walker{Store: r.store, Format: r.f, Graph: r.graph, Bitmap: r.bitmap}
			for i, seq := range sequences {
				dst := filepath.Join(t.TempDir(), fmt.Sprintf("dst%d.git", i))
				for _, st := range seq {
					args := []string{"-c", "protocol.version=" + proto}
					before := map[string]bool{}
					if st.args[0] == "clone" {
						args = append(append(args, st.args...), "-q", "--bare", "--no-local", url, dst)
					} else {
						before = objectSet(t, dst)
						for _, a := range st.args {
							args = append(args, strings.ReplaceAll(a, "DST", dst))
						}
						args = append(args, "-q", "origin")
					}
					run := r.gitTraced(t, "", args...)
					r.checkDeepen(t, w, st.name, run, dst, before)
				}
			}
		})
	}
}

// checkDeepen checks Deepen and ObjectsFor against one traced fetch.
func (r *repo) checkDeepen(t *testing.T, w *Walker, name string, run fetchRun, dst string, before map[string]bool) {
	t.Helper()
	ctx := context.Background()
	d := Deepen{Wants: run.wants, ClientShallow: run.shallows, Depth: run.depth, Relative: run.relative, Since: run.since}
	for _, n := range run.not {
		d.Not = append(d.Not, r.rev(t, n))
	}
	sh, err := w.Deepen(ctx, d)
	if err != nil {
		t.Fatalf("%s: Deepen: %v", name, err)
	}
	if got, want := idStrings(sh.Shallow), idStrings(run.gotShallow); !slices.Equal(got, want) {
		t.Errorf("%s: Shallow\n%v\nC Git sent shallow\n%v", name, got, want)
	}
	if got, want := idStrings(sh.Unshallow), idStrings(run.gotUnshall); !slices.Equal(got, want) {
		t.Errorf("%s: Unshallow\n%v\nC Git sent unshallow\n%v", name, got, want)
	}
	if got, want := idStrings(sh.Boundary), shallowFile(t, dst); !slices.Equal(got, want) {
		t.Errorf("%s: Boundary\n%v\nthe client's shallow file\n%v", name, got, want)
	}
	if len(sh.Shallow) == 0 && len(sh.Unshallow) == 0 {
		t.Errorf("%s: no shallow or unshallow lines; the case tests nothing", name)
	}

	spec := Spec{Wants: run.wants, Haves: run.haves, Shallow: sh.Boundary, ClientShallow: run.shallows}
	if run.filter != "" {
		if spec.Filter, err = ParseFilter(run.filter); err != nil {
			t.Fatal(err)
		}
	}
	after := objectSet(t, dst)
	got := map[string]bool{}
	err = w.ObjectsFor(ctx, spec, func(id oid.ID, typ object.Type, _ uint32) error {
		s := id.String()
		if got[s] {
			t.Errorf("%s: %v listed twice", name, id)
		}
		if !before[s] && !after[s] {
			t.Errorf("%s: %v %v listed; C Git did not send it", name, typ, id)
		}
		got[s] = true
		return nil
	})
	if err != nil {
		t.Fatalf("%s: ObjectsFor: %v", name, err)
	}
	n := len(got)
	if run.includeTag {
		// What C Git's pack-objects --include-tag adds, which is the
		// caller's business, not the walk's.
		for _, chain := range r.tagChains(t) {
			if got[chain[len(chain)-1].String()] {
				for _, id := range chain[:len(chain)-1] {
					if s := id.String(); !got[s] {
						got[s] = true
						n++
					}
				}
			}
		}
	}
	// Objects the client had may be in both packs (C Git's walk, like
	// ObjectsFor, stops at what the haves reach, not at what the client
	// has); the counts tell whether they are the same.
	if n != run.packCount {
		t.Errorf("%s: %d objects listed; C Git sent %d", name, n, run.packCount)
	}
	missed := 0
	for s := range after {
		if !before[s] && !got[s] {
			if missed++; missed <= 5 {
				t.Errorf("%s: %s sent by C Git; not listed", name, s)
			}
		}
	}
}

// tagChains returns, for each annotated tag of r, the tags from it down
// to the object they end at, and that object last.
func (r *repo) tagChains(t *testing.T) [][]oid.ID {
	t.Helper()
	var chains [][]oid.ID
	for _, line := range strings.Split(strings.TrimSpace(gittest.Git(t, r.dir, "for-each-ref", "--format=%(objectname)", "refs/tags")), "\n") {
		id, err := oid.ParseHex(r.f, line)
		if err != nil {
			t.Fatal(err)
		}
		var chain []oid.ID
		for {
			chain = append(chain, id)
			o := r.store.Objs[id]
			if o.Type != object.Tag {
				break
			}
			tag, err := object.ParseTag(r.f, o.Data)
			if err != nil {
				t.Fatal(err)
			}
			id = tag.Object
		}
		if len(chain) > 1 {
			chains = append(chains, chain)
		}
	}
	return chains
}

// TestDeepenErrors checks the requests C Git's upload-pack refuses.
func TestDeepenErrors(t *testing.T) {
	r := newRepo(t, "sha1", 10)
	r.store = walktest.LoadStore(t, r.dir, r.f)
	w := &Walker{Store: r.store, Format: r.f}
	main := r.rev(t, "main")
	for _, tc := range []struct {
		name string
		d    Deepen
		want string
	}{
		{"depth and since", Deepen{Wants: []oid.ID{main}, Depth: 2, Since: 1}, "cannot be used together"},
		{"depth and not", Deepen{Wants: []oid.ID{main}, Depth: 2, Not: []oid.ID{main}}, "cannot be used together"},
		{"negative depth", Deepen{Wants: []oid.ID{main}, Depth: -1}, "negative"},
		{"nothing since", Deepen{Wants: []oid.ID{main}, Since: 1 << 40}, "no commits selected"},
		{"all excluded", Deepen{Wants: []oid.ID{main}, Not: []oid.ID{main}}, "no commits selected"},
		{"only a blob", Deepen{Wants: []oid.ID{r.rev(t, "blob-tag")}, Not: []oid.ID{r.rev(t, "light")}}, "no commits selected"},
	} {
		_, err := w.Deepen(context.Background(), tc.d)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v; want an error saying %q", tc.name, err, tc.want)
		}
	}
}

// TestDeepenDepth checks the depth rules on a branch of three commits
// on the root: the boundary is at distance depth-1 from the nearest
// want, a root is shallow too when the depth ends on it, a want of a
// blob is ignored, and a client shallow commit the walk passes is
// unshallowed.
func TestDeepenDepth(t *testing.T) {
	r := newRepo(t, "sha1", 12)
	r.store = walktest.LoadStore(t, r.dir, r.f)
	w := &Walker{Store: r.store, Format: r.f}
	ids := func(names ...string) []oid.ID {
		var l []oid.ID
		for _, n := range names {
			l = append(l, r.rev(t, n))
		}
		slices.SortFunc(l, oid.ID.Compare)
		return l
	}
	tip := ids("topic1")
	for _, tc := range []struct {
		name                         string
		d                            Deepen
		shallow, unshallow, boundary []oid.ID
	}{
		{"depth 1", Deepen{Wants: ids("topic1", "blob-tag"), Depth: 1}, tip, nil, tip},
		{"depth 3", Deepen{Wants: tip, Depth: 3}, ids("topic1~2"), nil, ids("topic1~2")},
		{"depth 4 ends on the root", Deepen{Wants: tip, Depth: 4}, ids("topic1~3"), nil, ids("topic1~3")},
		{"depth 5 beyond the root", Deepen{Wants: tip, Depth: 5}, nil, nil, nil},
		{"two wants", Deepen{Wants: ids("topic1", "topic1~1"), Depth: 2}, ids("topic1~2"), nil, ids("topic1~2")},
		{"relative", Deepen{Wants: tip, ClientShallow: ids("topic1~1"), Depth: 1, Relative: true},
			ids("topic1~2"), ids("topic1~1"), ids("topic1~2")},
		{"unshallow", Deepen{Wants: tip, ClientShallow: ids("topic1~1"), Depth: InfiniteDepth}, nil, ids("topic1~1"), nil},
		{"already shallow there", Deepen{Wants: tip, ClientShallow: ids("topic1~1"), Depth: 2}, nil, nil, ids("topic1~1")},
		{"deeper than the client", Deepen{Wants: tip, ClientShallow: ids("topic1"), Depth: 2}, ids("topic1~1"), ids("topic1"), ids("topic1~1")},
		{"shallower than the client", Deepen{Wants: tip, ClientShallow: ids("topic1~2"), Depth: 1}, tip, nil, ids("topic1", "topic1~2")},
	} {
		sh, err := w.Deepen(context.Background(), tc.d)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !slices.Equal(sh.Shallow, tc.shallow) || !slices.Equal(sh.Unshallow, tc.unshallow) || !slices.Equal(sh.Boundary, tc.boundary) {
			t.Errorf("%s: got shallow %v, unshallow %v, boundary %v; want %v, %v, %v",
				tc.name, sh.Shallow, sh.Unshallow, sh.Boundary, tc.shallow, tc.unshallow, tc.boundary)
		}
	}
}
