package refs

import (
	"bytes"
	"hash/crc32"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gotd/internal/git/oid"
)

// FuzzCheckName checks names against invariants that follow from the
// rules, and on a deterministic sample of inputs against C Git's
// `git check-ref-format` (running git for every input would make the
// fuzzer too slow to explore).
func FuzzCheckName(f *testing.F) {
	for _, tc := range nameTests {
		f.Add(tc.name)
	}
	f.Add("refs/heads/" + strings.Repeat("a/", 200) + "b")
	f.Add("refs/heads/a.lock/b.lock")
	f.Add("refs/heads/@{-1}")
	_, noGit := exec.LookPath("git")
	f.Fuzz(func(t *testing.T, name string) {
		err := CheckName(name)
		if err != nil {
			if strings.HasPrefix(name, "refs/") && checkFormat(name) == "" {
				t.Fatalf("CheckName(%q) = %v; checkFormat accepts it", name, err)
			}
		} else {
			for _, bad := range []string{"..", "@{", "//", "/.", ".lock/", " ", "\\", "~", "^", ":", "?", "*", "["} {
				if strings.Contains(name, bad) {
					t.Fatalf("CheckName(%q) accepted %q", name, bad)
				}
			}
			if !strings.HasPrefix(name, "refs/") || strings.HasSuffix(name, "/") || strings.HasSuffix(name, ".") ||
				strings.HasSuffix(name, ".lock") || strings.IndexFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
				t.Fatalf("CheckName(%q) accepted a bad name", name)
			}
		}
		if noGit != nil || !strings.HasPrefix(name, "refs/") || strings.IndexByte(name, 0) >= 0 ||
			crc32.ChecksumIEEE([]byte(name))%16 != 0 {
			return
		}
		if git := gitCheckRefFormat(t, name); git != (err == nil) {
			t.Fatalf("CheckName(%q) = %v; git check-ref-format valid=%v", name, err, git)
		}
	})
}

// FuzzParseLoose checks that whatever the loose file parser accepts is
// exactly what C Git writes for that value.
func FuzzParseLoose(f *testing.F) {
	f.Add([]byte(strings.Repeat("0123456789", 4) + "\n"))
	f.Add([]byte(strings.Repeat("0123456789abcdef", 4) + "\n"))
	f.Add([]byte("ref: refs/heads/main\n"))
	f.Add([]byte("ref: refs/heads/main"))
	f.Add([]byte("ref:refs/heads/main\n"))
	f.Add([]byte(strings.Repeat("A", 40) + "\n"))
	f.Add([]byte(strings.Repeat("a", 40) + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, format := range formats {
			checkLoose(t, format, data)
		}
	})
}

func checkLoose(t *testing.T, format oid.Format, data []byte) {
	{
		ref, err := parseLoose(format, data)
		if err != nil {
			return
		}
		var back []byte
		switch {
		case ref.Target != "" && !ref.ID.Valid():
			back = []byte("ref: " + ref.Target + "\n")
			if CheckName(ref.Target) != nil {
				t.Fatalf("parseLoose(%q) accepted target %q", data, ref.Target)
			}
		case ref.Target == "" && ref.ID.Format() == format:
			back = append(ref.ID.AppendHex(nil), '\n')
		default:
			t.Fatalf("parseLoose(%q) = %+v", data, ref)
		}
		if !bytes.Equal(back, data) {
			t.Fatalf("parseLoose(%q) = %+v, which C Git writes as %q", data, ref, back)
		}
	}
}

// FuzzPacked parses packed-refs files. A file the full iteration
// accepts must list names in strictly increasing order, every record
// must be found by a lookup (binary search or scan) with the same
// values, and writing the records back and parsing them again must give
// the same records; for a file already in the canonical form the bytes
// must round-trip exactly.
func FuzzPacked(f *testing.F) {
	a, b, c := hexA, hexB, hexC
	f.Add([]byte("# pack-refs with: peeled fully-peeled sorted \n" + a + " refs/heads/main\n" + b + " refs/tags/v1\n^" + c + "\n"))
	f.Add([]byte(b + " refs/tags/v1\n^" + c + "\n" + a + " refs/heads/main\n"))
	f.Add([]byte("# pack-refs with: peeled \n" + a + " refs/tags/x\n"))
	f.Add([]byte("# pack-refs with: sorted \n" + a + " refs/heads/a\n" + a + " refs/heads/a\n"))
	f.Add([]byte("^" + a + "\n"))
	f.Add([]byte(a + " refs/heads/x"))
	f.Add([]byte("# pack-refs with: peeled fully-peeled sorted \n" + strings.Repeat("e", 64) + " refs/heads/main\n"))
	f.Add([]byte("# pack-refs with: peeled fully-peeled sorted \n" + a + " refs/heads/a\n" + a + " refs/heads/a-b\n" + a + " refs/heads/a/b\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, format := range formats {
			checkPacked(t, format, data)
		}
	})
}

func checkPacked(t *testing.T, format oid.Format, data []byte) {
	{
		p, err := parsePacked(format, data)
		if err != nil {
			return
		}
		var recs []record
		it, err := p.iter("")
		if err != nil {
			return
		}
		for {
			r, ok, err := it.next()
			if err != nil {
				return
			}
			if !ok {
				break
			}
			if len(recs) > 0 && bytes.Compare(recs[len(recs)-1].name, r.name) >= 0 {
				t.Fatalf("names out of order: %q then %q", recs[len(recs)-1].name, r.name)
			}
			recs = append(recs, r)
		}
		for i := range recs {
			r := &recs[i]
			got, err := p.read(string(r.name))
			if want := p.ref(r); err != nil || got != want {
				t.Fatalf("read(%q) = %+v, %v; want %+v", r.name, got, err, want)
			}
			if ok, err := p.has(string(r.name)); !ok || err != nil {
				t.Fatalf("has(%q) = %v, %v", r.name, ok, err)
			}
		}
		out := appendHeader(nil, p.trait)
		for _, r := range recs {
			out = appendRecord(out, r.name, r.id, r.peeled, r.hasPeeled)
		}
		if p.sorted && bytes.HasPrefix(data, appendHeader(nil, p.trait)) && !bytes.Equal(out, data) {
			t.Fatalf("canonical file %q written back as %q", data, out)
		}
		q, err := parsePacked(format, out)
		if err != nil {
			t.Fatalf("written file %q: %v", out, err)
		}
		it, err = q.iter("")
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; ; i++ {
			r, ok, err := it.next()
			if err != nil {
				t.Fatalf("written file %q: %v", out, err)
			}
			if !ok {
				if i != len(recs) {
					t.Fatalf("written file has %d records; want %d", i, len(recs))
				}
				break
			}
			w := recs[i]
			if !bytes.Equal(r.name, w.name) || r.id != w.id || r.hasPeeled != w.hasPeeled || r.peeled != w.peeled {
				t.Fatalf("record %d written back as %+v; want %+v", i, r, w)
			}
			if q.ref(&r) != p.ref(&w) {
				t.Fatalf("record %d: Ref %+v after writing; want %+v", i, q.ref(&r), p.ref(&w))
			}
		}
	}
}

// FuzzJournaledLock: a journal's names come from a process that may be
// compromised; whatever it writes, a name accepted for removal is a
// reference's or packed-refs' lock file inside the git directory.
func FuzzJournaledLock(f *testing.F) {
	for _, s := range []string{"refs/heads/a.lock", "packed-refs.lock", "HEAD.lock", "../x.lock", "/etc/x.lock",
		"refs/heads/../../config.lock", "refs//a.lock", "refs/heads/a", "config", "refs/heads/a.lock.lock", "./refs/a.lock"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rel string) {
		if !journaledLock(rel) {
			return
		}
		gitDir := "/repo.git"
		p := filepath.Join(gitDir, filepath.FromSlash(rel))
		if !strings.HasPrefix(p, gitDir+"/") || !strings.HasSuffix(p, ".lock") {
			t.Fatalf("accepted %q: %s", rel, p)
		}
		name := strings.TrimSuffix(rel, ".lock")
		if name != "HEAD" && name != "packed-refs" && !strings.HasPrefix(name, "refs/") {
			t.Fatalf("accepted %q, not a reference's lock", rel)
		}
	})
}
