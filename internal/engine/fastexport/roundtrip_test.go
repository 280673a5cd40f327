package fastexport

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"os/exec"
	"sort"
	"strings"
	"testing"

	"gotd/internal/engine/fastimport"
	"gotd/internal/git/repo"
	"gotd/internal/gittest"
)

// history writes a fast-import stream of a random but reproducible
// history: branches and merges (octopus too), files added, changed,
// deleted, renamed and copied, directories renamed, files becoming
// directories, modes changed, symbolic links, gitlinks, deleteall,
// messages with bytes that are not UTF-8, with and without a final
// newline, encoding headers, a nameless author, annotated tags with and
// without tagger, signed-looking tags, a tag of a blob, a tag of a tag
// and lightweight tags. git fast-export (2.39) refuses tags of tags and
// of blobs no commit holds, and writes "M f/inner" before "D f" when a
// file becomes a directory, so that its stream does not rebuild the
// history: forGit leaves those out.
func history(seed int64, commits int, forGit bool) string {
	rng := rand.New(rand.NewSource(seed))
	var b strings.Builder
	mark := 0
	next := func() int { mark++; return mark }
	type file struct {
		mode string
		mark int
	}
	type branch struct {
		name  string
		files map[string]file
		tip   int
	}
	when := int64(1700000000)
	blob := func() int {
		m := next()
		content := fmt.Sprintf("content %d\n%s", m, strings.Repeat(fmt.Sprintf("line %d of a file\n", rng.Intn(50)), 1+rng.Intn(30)))
		if rng.Intn(10) == 0 {
			content += "\x00binary\xff"
		}
		fmt.Fprintf(&b, "blob\nmark :%d\ndata %d\n%s\n", m, len(content), content)
		return m
	}
	randPath := func() string {
		depth := 1 + rng.Intn(3)
		parts := make([]string, depth)
		for i := range parts[:depth-1] {
			parts[i] = fmt.Sprintf("d%d", rng.Intn(4))
		}
		parts[depth-1] = fmt.Sprintf("f%d.txt", rng.Intn(20))
		if rng.Intn(15) == 0 {
			parts[depth-1] = "name with space"
		}
		return strings.Join(parts, "/")
	}
	pick := func(br *branch) string {
		keys := make([]string, 0, len(br.files))
		for k := range br.files {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if len(keys) == 0 {
			return ""
		}
		return keys[rng.Intn(len(keys))]
	}
	// conflicts reports whether p clashes with a file or directory of br.
	conflicts := func(br *branch, p string) bool {
		for k := range br.files {
			if k == p || strings.HasPrefix(k, p+"/") || strings.HasPrefix(p, k+"/") {
				return true
			}
		}
		return false
	}
	var branches []*branch
	var allTips []int
	for c := 0; c < commits; c++ {
		var br *branch
		if len(branches) == 0 || (len(branches) < 4 && rng.Intn(8) == 0) {
			br = &branch{name: fmt.Sprintf("refs/heads/b%d", len(branches)), files: map[string]file{}}
			if len(branches) > 0 && rng.Intn(3) > 0 {
				src := branches[rng.Intn(len(branches))]
				br.tip = src.tip
				for k, v := range src.files {
					br.files[k] = v
				}
			}
			branches = append(branches, br)
		} else {
			br = branches[rng.Intn(len(branches))]
		}
		var ops strings.Builder
		for n := 1 + rng.Intn(4); n > 0; n-- {
			switch op := rng.Intn(12); {
			case op < 4 || len(br.files) == 0:
				p := randPath()
				if _, ok := br.files[p]; !ok && conflicts(br, p) {
					continue
				}
				f := file{"100644", blob()}
				if rng.Intn(6) == 0 {
					f.mode = "100755"
				}
				br.files[p] = f
				fmt.Fprintf(&ops, "M %s :%d %s\n", f.mode, f.mark, p)
			case op == 4:
				p := pick(br)
				delete(br.files, p)
				fmt.Fprintf(&ops, "D %s\n", p)
			case op == 5:
				p, q := pick(br), randPath()
				if conflicts(br, q) {
					continue
				}
				br.files[q] = br.files[p]
				delete(br.files, p)
				fmt.Fprintf(&ops, "R \"%s\" %s\n", p, q)
			case op == 6:
				p, q := pick(br), randPath()
				if conflicts(br, q) {
					continue
				}
				br.files[q] = br.files[p]
				fmt.Fprintf(&ops, "C \"%s\" \"%s\"\n", p, q)
			case op == 7:
				// Rename a whole top-level directory.
				from, to := fmt.Sprintf("d%d", rng.Intn(4)), fmt.Sprintf("d%d", 4+rng.Intn(4))
				has := false
				for k := range br.files {
					has = has || strings.HasPrefix(k, from+"/")
					if strings.HasPrefix(k, to+"/") || k == to {
						has, k = false, ""
						break
					}
				}
				if !has {
					continue
				}
				moved := map[string]file{}
				for k, v := range br.files {
					if strings.HasPrefix(k, from+"/") {
						moved[to+k[len(from):]] = v
						delete(br.files, k)
					}
				}
				for k, v := range moved {
					br.files[k] = v
				}
				fmt.Fprintf(&ops, "R %s %s\n", from, to)
			case op == 8:
				p := pick(br)
				f := br.files[p]
				if f.mode == "120000" || f.mode == "160000" {
					continue
				}
				if f.mode == "100644" {
					f.mode = "100755"
				} else {
					f.mode = "100644"
				}
				br.files[p] = f
				fmt.Fprintf(&ops, "M %s :%d %s\n", f.mode, f.mark, p)
			case op == 9:
				p := fmt.Sprintf("links/l%d", rng.Intn(5))
				if conflicts(br, p) {
					continue
				}
				m := next()
				target := pick(br)
				fmt.Fprintf(&b, "blob\nmark :%d\ndata %d\n%s\n", m, len(target), target)
				br.files[p] = file{"120000", m}
				fmt.Fprintf(&ops, "M 120000 :%d %s\n", m, p)
			case op == 10:
				p := fmt.Sprintf("vendor/mod%d", rng.Intn(3))
				if conflicts(br, p) {
					continue
				}
				br.files[p] = file{"160000", 0}
				fmt.Fprintf(&ops, "M 160000 %040x %s\n", rng.Int63(), p)
			case op == 11:
				// A file becomes a directory.
				p := pick(br)
				if forGit || strings.HasPrefix(p, "vendor/") || strings.HasPrefix(p, "links/") {
					continue
				}
				delete(br.files, p)
				f := file{"100644", blob()}
				br.files[p+"/inner"] = f
				fmt.Fprintf(&ops, "D %s\nM 100644 :%d %s/inner\n", p, f.mark, p)
			}
		}
		if rng.Intn(40) == 0 {
			// Start over from an empty tree.
			br.files = map[string]file{}
			ops.Reset()
			ops.WriteString("deleteall\n")
			f := file{"100644", blob()}
			br.files["fresh"] = f
			fmt.Fprintf(&ops, "M 100644 :%d fresh\n", f.mark)
		}
		m := next()
		when += int64(1 + rng.Intn(3600))
		fmt.Fprintf(&b, "commit %s\nmark :%d\n", br.name, m)
		switch rng.Intn(20) {
		case 0:
			fmt.Fprintf(&b, "author <nameless@example.com> %d +0000\n", when)
		case 1:
		default:
			fmt.Fprintf(&b, "author Au Thor %d <a%d@example.com> %d -0%d00\n", rng.Intn(3), rng.Intn(3), when, rng.Intn(10))
		}
		fmt.Fprintf(&b, "committer Com Mitter <c@example.com> %d +0530\n", when)
		msg := fmt.Sprintf("commit %d on %s\n\nbody\n", m, br.name)
		switch rng.Intn(8) {
		case 0:
			fmt.Fprintf(&b, "encoding ISO-8859-1\n")
			msg = "caf\xe9 " + msg
		case 1:
			msg = "no final newline \xff\xfe" + strings.TrimSuffix(msg, "\n")
		}
		fmt.Fprintf(&b, "data %d\n%s\n", len(msg), msg)
		if br.tip != 0 {
			fmt.Fprintf(&b, "from :%d\n", br.tip)
		}
		if br.tip != 0 && len(allTips) > 2 && rng.Intn(6) == 0 {
			fmt.Fprintf(&b, "merge :%d\n", allTips[rng.Intn(len(allTips))])
			if rng.Intn(3) == 0 {
				fmt.Fprintf(&b, "merge :%d\n", allTips[rng.Intn(len(allTips))])
			}
		}
		b.WriteString(ops.String())
		b.WriteString("\n")
		br.tip = m
		allTips = append(allTips, m)
		if rng.Intn(10) == 0 {
			tm := next()
			name := fmt.Sprintf("v%d", tm)
			msg := fmt.Sprintf("release %s\n", name)
			if rng.Intn(2) == 0 {
				msg += "-----BEGIN PGP SIGNATURE-----\n\niQEzBAABCAAdFiEE" + name + "\n=ab\xffcd\n-----END PGP SIGNATURE-----\n"
			}
			fmt.Fprintf(&b, "tag %s\nmark :%d\nfrom :%d\n", name, tm, m)
			if rng.Intn(5) > 0 {
				fmt.Fprintf(&b, "tagger Tag Ger <t@example.com> %d +0000\n", when)
			}
			fmt.Fprintf(&b, "data %d\n%s\n", len(msg), msg)
			if !forGit && rng.Intn(3) == 0 {
				fmt.Fprintf(&b, "tag nested-%s\nfrom :%d\ntagger Tag Ger <t@example.com> %d +0000\ndata 7\nnested\n\n", name, tm, when)
			}
		}
		if rng.Intn(15) == 0 {
			fmt.Fprintf(&b, "reset refs/tags/light%d\nfrom :%d\n\n", m, m)
		}
	}
	// A second root, merged into the first branch: its commits are
	// reached through the merge and written on that branch, so the
	// root must start from nothing there.
	om := blob()
	orphan := next()
	fmt.Fprintf(&b, "commit refs/heads/orphan\nmark :%d\ncommitter Com Mitter <c@example.com> %d +0000\ndata 7\norphan\nM 100644 :%d orphan.txt\n\n", orphan, when+1, om)
	merge := next()
	fmt.Fprintf(&b, "commit %s\nmark :%d\ncommitter Com Mitter <c@example.com> %d +0000\ndata 6\nmerge\nfrom :%d\nmerge :%d\nM 100644 :%d orphan.txt\n\n",
		branches[0].name, merge, when+2, branches[0].tip, orphan, om)
	fmt.Fprintf(&b, "reset refs/heads/orphan\nfrom 0000000000000000000000000000000000000000\n\n")
	if forGit {
		return b.String()
	}
	bm := blob()
	fmt.Fprintf(&b, "tag blob-tag\nfrom :%d\ntagger Tag Ger <t@example.com> %d +0000\ndata 5\nblob\n\n", bm, when)
	return b.String()
}

// reachable lists the references and every object reachable from them.
func reachable(t *testing.T, dir string) (string, string) {
	t.Helper()
	refs := gittest.Git(t, dir, "for-each-ref", "--format=%(objectname) %(objecttype) %(refname)")
	objs := strings.Fields(gittest.Git(t, dir, "rev-list", "--objects", "--all"))
	var ids []string
	for _, o := range objs {
		if len(o) == 40 {
			ids = append(ids, o)
		}
	}
	sort.Strings(ids)
	return refs, strings.Join(ids, "\n")
}

func importOurs(t *testing.T, stream []byte) string {
	t.Helper()
	dir := gittest.InitBare(t, "sha1")
	r, err := repo.Open(dir, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := fastimport.Import(context.Background(), r, bytes.NewReader(stream), fastimport.Options{}); err != nil {
		t.Fatalf("fastimport: %v", err)
	}
	return dir
}

func exportOurs(t *testing.T, dir string, warn func(string)) []byte {
	t.Helper()
	r, err := repo.Open(dir, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out bytes.Buffer
	if err := Export(context.Background(), r, &out, Options{Warn: warn}); err != nil {
		t.Fatalf("Export: %v", err)
	}
	return out.Bytes()
}

func same(t *testing.T, what, want, got string) {
	t.Helper()
	wantRefs, wantObjs := reachable(t, want)
	gotRefs, gotObjs := reachable(t, got)
	if gotRefs != wantRefs {
		t.Errorf("%s: references differ:\ngot\n%s\nwant\n%s", what, gotRefs, wantRefs)
	}
	if gotObjs != wantObjs {
		t.Errorf("%s: reachable objects differ: got %d, want %d", what, strings.Count(gotObjs, "\n")+1, strings.Count(wantObjs, "\n")+1)
	}
	gittest.Git(t, got, "fsck", "--full", "--strict", "--no-dangling")
}

// TestRoundTrips builds histories with C Git's fast-import and checks,
// with C Git as the oracle, that: git fast-export's stream imported by
// fastimport, Export's stream imported by git fast-import, and Export's
// stream imported by fastimport all give the source's ids.
func TestRoundTrips(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	for _, seed := range []int64{1, 2, 3} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			src := gittest.InitBare(t, "sha1")
			gittest.GitInput(t, src, []byte(history(seed, 150, true)), "fast-import", "--quiet")
			gitStream := gittest.Git(t, src, "fast-export", "--all", "--signed-tags=verbatim", "--reencode=no")
			same(t, "git fast-export | fastimport", src, importOurs(t, []byte(gitStream)))

			src = gittest.InitBare(t, "sha1")
			gittest.GitInput(t, src, []byte(history(seed, 150, false)), "fast-import", "--quiet")

			var warns []string
			ours := exportOurs(t, src, func(m string) { warns = append(warns, m) })
			if len(warns) > 0 {
				t.Errorf("Export warned: %q", warns)
			}
			dst := gittest.InitBare(t, "sha1")
			gittest.GitInput(t, dst, ours, "fast-import", "--quiet")
			same(t, "Export | git fast-import", src, dst)

			same(t, "Export | fastimport", src, importOurs(t, ours))
		})
	}
}
