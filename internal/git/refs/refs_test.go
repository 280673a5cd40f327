package refs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"gotd/internal/git/oid"
	"gotd/internal/gittest"
)

var formats = []oid.Format{oid.SHA1, oid.SHA256}

// testRepo is a bare repository built by C Git with a history, branches,
// tags of every kind, and references in every storage form.
type testRepo struct {
	dir     string
	f       oid.Format
	s       *Store
	commits []string // commits of main, newest first
}

func newTestRepo(t *testing.T, f oid.Format) *testRepo {
	t.Helper()
	dir := gittest.InitBare(t, f.String())
	gittest.Generate(t, dir, gittest.History{Commits: 6, Branches: 2})
	r := &testRepo{dir: dir, f: f, s: New(dir, f)}
	r.commits = strings.Fields(gittest.Git(t, dir, "rev-list", "main"))
	return r
}

func (r *testRepo) id(t testing.TB, hex string) oid.ID {
	t.Helper()
	id, err := oid.ParseHex(r.f, hex)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (r *testRepo) gitT(t testing.TB, args ...string) string {
	t.Helper()
	return gittest.Git(t, r.dir, args...)
}

// listRefs returns List's output as "id name" lines and the peeled
// values it knows as "peeled name" lines.
func listRefs(t testing.TB, s *Store, prefix string) (refs, peeled []string) {
	t.Helper()
	err := s.List(prefix, func(ref Ref) error {
		refs = append(refs, ref.ID.String()+" "+ref.Name)
		if ref.Peeled.Valid() && ref.Peeled != ref.ID {
			peeled = append(peeled, ref.Peeled.String()+" "+ref.Name)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return refs, peeled
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

func same(a, b []string) bool {
	return strings.Join(a, "\n") == strings.Join(b, "\n")
}

// gitList lists references under prefix as C Git sees them.
func gitList(t testing.TB, dir, prefix string) []string {
	t.Helper()
	out := lines(gittest.Git(t, dir, "for-each-ref", "--format=%(objectname) %(refname)"))
	var keep []string
	for _, l := range out {
		if strings.HasPrefix(l[strings.IndexByte(l, ' ')+1:], prefix) {
			keep = append(keep, l)
		}
	}
	return keep
}

// gitPeeled returns the "^{}" lines of `git show-ref -d`, without the
// suffix.
func gitPeeled(t testing.TB, dir string) []string {
	t.Helper()
	out, _ := gittest.Run(t, dir, nil, "show-ref", "-d")
	var peeled []string
	for _, l := range lines(out) {
		if strings.HasSuffix(l, "^{}") {
			peeled = append(peeled, strings.TrimSuffix(l, "^{}"))
		}
	}
	return peeled
}

func TestListMatchesGit(t *testing.T) {
	for _, f := range formats {
		t.Run(f.String(), func(t *testing.T) {
			r := newTestRepo(t, f)
			r.populateT(t)
			for _, prefix := range []string{"", "refs/", "refs/heads/", "refs/heads/a", "refs/heads/b", "refs/heads/b/",
				"refs/tags/", "refs/remotes/", "refs/nothing/", "re", "x"} {
				got, _ := listRefs(t, r.s, prefix)
				want := gitList(t, r.dir, prefix)
				if prefix == "x" {
					want = nil
				}
				if !same(got, want) {
					t.Errorf("List(%q):\ngot  %q\nwant %q", prefix, got, want)
				}
			}
			// Peeled values known from packed-refs must agree with
			// what C Git computes; the overridden v1.0 must have none.
			_, peeled := listRefs(t, r.s, "refs/")
			want := gitPeeled(t, r.dir)
			for _, p := range peeled {
				if !contains(want, p) {
					t.Errorf("peeled %q not in git show-ref -d %q", p, want)
				}
				if strings.HasSuffix(p, " refs/tags/v1.0") {
					t.Errorf("peeled %q for a loose override", p)
				}
			}
		})
	}
}

// populateT adds references in every form on top of Generate's: nested
// names that sort differently from their directories, a symbolic
// reference under refs/, packed references overridden by loose ones,
// packed-only and loose-only references.
func (r *testRepo) populateT(t *testing.T) {
	t.Helper()
	c := r.commits
	for i, name := range []string{"refs/heads/a", "refs/heads/a-b", "refs/heads/b/c", "refs/heads/b.c", "refs/heads/b-c/d",
		"refs/notes/x", "refs/heads/fu\xc3\x9f", "refs/pull/1/head", "refs/heads/z/y/x/w"} {
		r.gitT(t, "update-ref", name, c[i%len(c)])
	}
	r.gitT(t, "symbolic-ref", "refs/remotes/origin/HEAD", "refs/heads/main")
	r.gitT(t, "pack-refs", "--all")
	r.gitT(t, "update-ref", "refs/heads/topic0", c[1])
	r.gitT(t, "update-ref", "refs/tags/v1.0", c[2])
	r.gitT(t, "update-ref", "refs/heads/loose/only", c[3])
	r.gitT(t, "update-ref", "refs/heads/a0", c[0])
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

func TestListFullyPacked(t *testing.T) {
	for _, f := range formats {
		t.Run(f.String(), func(t *testing.T) {
			r := newTestRepo(t, f)
			r.gitT(t, "pack-refs", "--all")
			got, peeled := listRefs(t, r.s, "refs/")
			if want := gitList(t, r.dir, "refs/"); !same(got, want) {
				t.Errorf("List:\ngot  %q\nwant %q", got, want)
			}
			if want := gitPeeled(t, r.dir); !same(peeled, want) {
				t.Errorf("peeled:\ngot  %q\nwant %q", peeled, want)
			}
			// fully-peeled: every reference knows its peeled value.
			r.s.List("refs/", func(ref Ref) error {
				if !ref.Peeled.Valid() {
					t.Errorf("%s: Peeled unknown in a fully-peeled file", ref.Name)
				}
				return nil
			})
		})
	}
}

func TestListStopsOnError(t *testing.T) {
	r := newTestRepo(t, oid.SHA1)
	stop := errors.New("stop")
	n := 0
	err := r.s.List("refs/", func(Ref) error { n++; return stop })
	if err != stop || n != 1 {
		t.Errorf("got %v after %d calls; want stop after 1", err, n)
	}
}

func TestListSkipsBroken(t *testing.T) {
	r := newTestRepo(t, oid.SHA1)
	r.gitT(t, "pack-refs", "--all")
	c := r.commits
	write := func(name, content string) {
		p := filepath.Join(r.dir, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o777)
		if err := os.WriteFile(p, []byte(content), 0o666); err != nil {
			t.Fatal(err)
		}
	}
	write("refs/heads/broken", "garbage\n")
	write("refs/heads/main", "not an id\n") // broken loose over a packed ref
	write("refs/heads/x.lock", c[0]+"\n")
	write("refs/heads/.hidden", c[0]+"\n")
	write("refs/heads/dangling", "ref: refs/heads/nowhere\n")
	write("refs/heads/good", c[1]+"\n")
	os.Symlink("good", filepath.Join(r.dir, "refs/heads/link"))
	got, _ := listRefs(t, r.s, "refs/heads/")
	var names []string
	for _, l := range got {
		names = append(names, l[strings.IndexByte(l, ' ')+1:])
	}
	want := []string{"refs/heads/good", "refs/heads/topic0", "refs/heads/topic1"}
	if !same(names, want) {
		t.Errorf("got %q; want %q", names, want)
	}
}

func TestReadResolve(t *testing.T) {
	for _, f := range formats {
		t.Run(f.String(), func(t *testing.T) {
			r := newTestRepo(t, f)
			r.populateT(t)
			s := r.s
			head, err := s.Read("HEAD")
			if err != nil || head.Target != "refs/heads/main" || head.ID.Valid() || head.Name != "HEAD" {
				t.Errorf("Read(HEAD) = %+v, %v; want symbolic to refs/heads/main", head, err)
			}
			res, err := s.Resolve("HEAD")
			want := strings.TrimSpace(r.gitT(t, "rev-parse", "HEAD"))
			if err != nil || res.ID.String() != want || res.Target != "refs/heads/main" || res.Name != "HEAD" {
				t.Errorf("Resolve(HEAD) = %+v, %v; want %s", res, err, want)
			}
			// Every reference C Git lists reads back the same, one level
			// and resolved.
			for _, l := range gitList(t, r.dir, "refs/") {
				id, name, _ := strings.Cut(l, " ")
				ref, err := s.Resolve(name)
				if err != nil || ref.ID.String() != id {
					t.Errorf("Resolve(%s) = %v, %v; want %s", name, ref.ID, err, id)
				}
				one, err := s.Read(name)
				if err != nil || (one.Target == "" && one.ID.String() != id) {
					t.Errorf("Read(%s) = %+v, %v; want %s", name, one, err, id)
				}
			}
			sym, err := s.Read("refs/remotes/origin/HEAD")
			if err != nil || sym.Target != "refs/heads/main" {
				t.Errorf("Read(origin/HEAD) = %+v, %v", sym, err)
			}
			// Packed and annotated: Peeled comes from the file.
			nested, err := s.Read("refs/tags/nested")
			wantPeeled := strings.TrimSpace(r.gitT(t, "rev-parse", "refs/tags/nested^{}"))
			if err != nil || nested.Peeled.String() != wantPeeled {
				t.Errorf("Read(nested).Peeled = %v, %v; want %s", nested.Peeled, err, wantPeeled)
			}
			for _, name := range []string{"refs/heads/nope", "refs/heads/b", "refs/heads/z/y", "refs/heads/a/x"} {
				if _, err := s.Read(name); !errors.Is(err, ErrNotFound) {
					t.Errorf("Read(%s) = %v; want ErrNotFound", name, err)
				}
				if _, err := s.Resolve(name); !errors.Is(err, ErrNotFound) {
					t.Errorf("Resolve(%s) = %v; want ErrNotFound", name, err)
				}
			}
			for _, name := range []string{"refs/heads/../../config", "heads/main", "refs/heads/a.lock", "FETCH_HEAD", "", "/etc/passwd"} {
				if _, err := s.Read(name); err == nil || errors.Is(err, ErrNotFound) {
					t.Errorf("Read(%q) = %v; want a name error", name, err)
				}
			}
		})
	}
}

func TestResolveUnbornAndLoops(t *testing.T) {
	dir := gittest.InitBare(t, "sha1")
	s := New(dir, oid.SHA1)
	if _, err := s.Resolve("HEAD"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Resolve(HEAD) in an empty repo = %v; want ErrNotFound", err)
	}
	if ref, err := s.Read("HEAD"); err != nil || ref.Target != "refs/heads/main" {
		t.Errorf("Read(HEAD) = %+v, %v", ref, err)
	}
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(name)), []byte(content), 0o666); err != nil {
			t.Fatal(err)
		}
	}
	write("refs/heads/loop1", "ref: refs/heads/loop2\n")
	write("refs/heads/loop2", "ref: refs/heads/loop1\n")
	if _, err := s.Resolve("refs/heads/loop1"); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("Resolve(loop) = %v; want a loop error", err)
	}
	id := strings.Repeat("ab", 20)
	write("refs/heads/c0", id+"\n")
	for i := 1; i <= 6; i++ {
		write(fmt.Sprintf("refs/heads/c%d", i), fmt.Sprintf("ref: refs/heads/c%d\n", i-1))
	}
	// Five reads, as C Git does: c4 resolves, c5 is too deep.
	if ref, err := s.Resolve("refs/heads/c4"); err != nil || ref.ID.String() != id || ref.Target != "refs/heads/c3" {
		t.Errorf("Resolve(c4) = %+v, %v; want %s via c3", ref, err, id)
	}
	if _, err := s.Resolve("refs/heads/c5"); err == nil {
		t.Errorf("Resolve(c5) succeeded; want too deep")
	}
	for _, name := range []string{"c4", "c5", "c6"} {
		_, gitErr := gittest.Run(t, dir, nil, "rev-parse", "--verify", "-q", "refs/heads/"+name)
		_, err := s.Resolve("refs/heads/" + name)
		if (gitErr == nil) != (err == nil) {
			t.Errorf("Resolve(%s) = %v; git rev-parse error %v", name, err, gitErr)
		}
	}
}

func TestParseLoose(t *testing.T) {
	hex1 := strings.Repeat("0123456789", 4)
	hex256 := strings.Repeat("0123456789abcdef", 4)
	for _, tc := range []struct {
		f      oid.Format
		in     string
		id     string
		target string
	}{
		{oid.SHA1, hex1 + "\n", hex1, ""},
		{oid.SHA256, hex256 + "\n", hex256, ""},
		{oid.SHA1, "ref: refs/heads/main\n", "", "refs/heads/main"},
		{oid.SHA1, "", "", ""},
		{oid.SHA1, "\n", "", ""},
		{oid.SHA1, hex1, "", ""},
		{oid.SHA1, hex1 + "\n\n", "", ""},
		{oid.SHA1, hex1 + " \n", "", ""},
		{oid.SHA1, hex1 + "0\n", "", ""},
		{oid.SHA1, hex1[1:] + "\n", "", ""},
		{oid.SHA1, strings.ToUpper(hex1[:39]) + "A\n", "", ""},
		{oid.SHA1, hex256 + "\n", "", ""},
		{oid.SHA256, hex1 + "\n", "", ""},
		{oid.SHA1, "g" + hex1[1:] + "\n", "", ""},
		{oid.SHA1, "ref: refs/heads/main", "", ""},
		{oid.SHA1, "ref:refs/heads/main\n", "", ""},
		{oid.SHA1, "ref:  refs/heads/main\n", "", ""},
		{oid.SHA1, "ref: \n", "", ""},
		{oid.SHA1, "ref: HEAD\n", "", ""},
		{oid.SHA1, "ref: refs/heads/a..b\n", "", ""},
		{oid.SHA1, "ref: ../../etc/passwd\n", "", ""},
		{oid.SHA1, "ref: refs/heads/main\r\n", "", ""},
	} {
		ref, err := parseLoose(tc.f, []byte(tc.in))
		ok := tc.id != "" || tc.target != ""
		if (err == nil) != ok || ref.ID.String() != tc.id && ok || ref.Target != tc.target {
			t.Errorf("parseLoose(%s, %q) = %+v, %v; want id %q target %q", tc.f, tc.in, ref, err, tc.id, tc.target)
		}
	}
}

// tree records every file (with contents) and directory under dir.
func tree(t testing.TB, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			m[rel] = "<dir>"
			return nil
		}
		b, err := os.ReadFile(p)
		m[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func diffTrees(a, b map[string]string) []string {
	var d []string
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			d = append(d, "changed or removed: "+k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			d = append(d, "added: "+k)
		}
	}
	sort.Strings(d)
	return d
}

func TestChainAny(t *testing.T) {
	r := newTestRepo(t, oid.SHA1)
	r.populateT(t)
	s := r.s
	r.gitT(t, "update-ref", "refs/internal/x", "HEAD")
	r.gitT(t, "symbolic-ref", "refs/heads/hb", "refs/internal/x")
	r.gitT(t, "symbolic-ref", "refs/heads/ha", "refs/heads/hb")
	r.gitT(t, "symbolic-ref", "refs/heads/dangling", "refs/heads/nothing") // unborn
	r.gitT(t, "symbolic-ref", "refs/heads/unborn-hidden", "refs/internal/nothing")
	hidden := func(name string) bool { return strings.HasPrefix(name, "refs/internal/") }
	for name, want := range map[string]bool{
		"refs/internal/x": true, "refs/heads/hb": true, "refs/heads/ha": true, "refs/heads/dangling": false,
		"refs/heads/main": false, "HEAD": false, "refs/heads/unborn-hidden": true,
	} {
		ref, err := s.Read(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.ChainAny(ref, hidden); got != want {
			t.Errorf("ChainAny(%s) = %v, want %v", name, got, want)
		}
	}
}
