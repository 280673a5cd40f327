package object

import (
	"bytes"
	"slices"
	"strconv"
	"testing"

	"gotd/internal/git/oid"
	"gotd/internal/gittest"
)

// fuzzSeeds returns the objects of checkCases in both formats, the objects
// of a small generated repository, and crafted overflows.
func fuzzSeeds(f *testing.F) []struct {
	t    Type
	data []byte
} {
	f.Helper()
	var seeds []struct {
		t    Type
		data []byte
	}
	add := func(t Type, data []byte) {
		seeds = append(seeds, struct {
			t    Type
			data []byte
		}{t, data})
	}
	for _, format := range []oid.Format{oid.SHA1, oid.SHA256} {
		for _, tc := range checkCases {
			add(tc.t, expand(format, tc.data))
		}
	}
	dir := gittest.InitBare(f, "sha1")
	gittest.Generate(f, dir, gittest.History{Commits: 3, Branches: 1, Files: 4})
	n := 0
	forEachObjectTB(f, dir, func(_ string, t Type, data []byte) {
		if t != Blob && n < 40 {
			add(t, data)
			n++
		}
	})
	add(Tree, []byte("77777777777777777777777777 a\x00"+string(make([]byte, 20))))
	add(Commit, expand(oid.SHA1, commitWith("A <a@b> 18446744073709551616 +0000")))
	return seeds
}

// forEachObjectTB is forEachObject for fuzz targets.
func forEachObjectTB(tb testing.TB, dir string, fn func(string, Type, []byte)) {
	t, ok := tb.(*testing.T)
	if ok {
		forEachObject(t, dir, fn)
		return
	}
	for _, id := range gittest.Objects(tb, dir) {
		typ, _ := ParseType([]byte(bytes.TrimSpace([]byte(gittest.Git(tb, dir, "cat-file", "-t", id)))))
		data := gittest.Git(tb, dir, "cat-file", typ.String(), id)
		fn(id, typ, []byte(data))
	}
}

func FuzzParseSignature(f *testing.F) {
	for _, s := range []string{
		"A U Thor <a@example.com> 1700000000 +0100",
		" <> 0 -0000",
		"A <a@b>  \t 1 +9999",
		"A <a@b> 9223372036854775807 +0000",
		"A <a@b> 9223372036854775808 +0000",
		"A <a@b> 99999999999999999999999 +0000",
		"A <a@b> 01 +0000",
		"<a@b> 1 +0000",
		"A <a<b> 1 +0000",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSignature(b)
		lenient := parseIdentLenient(b)
		if err != nil {
			return
		}
		if !bytes.Equal(s.Raw, b) || s.When < 0 || s.TZ < -(99*60+99) || s.TZ > 99*60+99 {
			t.Fatalf("ParseSignature(%q) = %+v", b, s)
		}
		if !bytes.Equal(lenient.Name, s.Name) || !bytes.Equal(lenient.Email, s.Email) || lenient.When != s.When || lenient.TZ != s.TZ {
			t.Fatalf("lenient parse of a valid identity %q differs: %+v vs %+v", b, lenient, s)
		}
		// Re-encoding the fields gives an identity with the same fields.
		sign := byte('+')
		tz := s.TZ
		if tz < 0 || (tz == 0 && bytes.HasSuffix(b, []byte("-0000"))) {
			sign, tz = '-', -tz
		}
		var out []byte
		out = append(out, s.Name...)
		out = append(out, " <"...)
		out = append(out, s.Email...)
		out = append(out, "> "...)
		out = strconv.AppendInt(out, s.When, 10)
		if hh, mm := tz/60, tz%60; hh <= 99 {
			out = append(out, ' ', sign, byte('0'+hh/10), byte('0'+hh%10), byte('0'+mm/10), byte('0'+mm%10))
		} else {
			// "+9999" is 99*60+99 minutes, which has no canonical
			// spelling; keep the original.
			out = append(out, b[len(b)-6:]...)
		}
		s2, err := ParseSignature(out)
		if err != nil || !bytes.Equal(s2.Name, s.Name) || !bytes.Equal(s2.Email, s.Email) || s2.When != s.When || s2.TZ != s.TZ {
			t.Fatalf("re-encoded %q as %q: got %+v, %v", b, out, s2, err)
		}
	})
}

func FuzzParseCommit(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		if s.t == Commit {
			f.Add(s.data, false)
			f.Add(s.data, true)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, sha256 bool) {
		format := oid.SHA1
		if sha256 {
			format = oid.SHA256
		}
		c, err := ParseCommit(format, data)
		tree, parents, when, lerr := CommitLinks(format, data, nil)
		if (err == nil) != (lerr == nil) {
			t.Fatalf("ParseCommit error %v, CommitLinks error %v", err, lerr)
		}
		// Every prefix that settles the links settles them as the
		// whole commit does.
		for n := range len(data) {
			ptree, pparents, pwhen, ok := CommitLinksPrefix(format, data[:n], nil)
			if ok && (lerr != nil || ptree != tree || !slices.Equal(pparents, parents) || pwhen != when) {
				t.Fatalf("CommitLinksPrefix of %d bytes = %v %v %d; CommitLinks = %v %v %d, %v", n, ptree, pparents, pwhen, tree, parents, when, lerr)
			}
		}
		if err != nil {
			return
		}
		if tree != c.Tree || !slices.Equal(parents, c.Parents) || when != c.Committer.When {
			t.Fatalf("CommitLinks = %v %v %d; ParseCommit = %v %v %d", tree, parents, when, c.Tree, c.Parents, c.Committer.When)
		}
		if c.Tree.Format() != format {
			t.Fatalf("tree id of format %v", c.Tree.Format())
		}
		if c.Message != nil && !bytes.HasSuffix(data, c.Message) {
			t.Fatalf("message is not the end of the data")
		}
		for _, e := range c.Extra {
			if len(e) == 0 || !bytes.Contains(data, e) {
				t.Fatalf("extra header %q not in the data", e)
			}
		}
		// Parsing into a used value gives the same result.
		var reused ParsedCommit
		reused.Parse(format, []byte("tree "+c.Tree.String()+"\nparent "+c.Tree.String()+"\nx 1\n"))
		if err := reused.Parse(format, data); err != nil || reused.Tree != c.Tree ||
			!slices.Equal(reused.Parents, c.Parents) || len(reused.Extra) != len(c.Extra) ||
			!bytes.Equal(reused.Message, c.Message) || !bytes.Equal(reused.Author.Raw, c.Author.Raw) {
			t.Fatalf("reused Parse differs: %+v vs %+v (%v)", reused, c, err)
		}
	})
}

func FuzzParseTag(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		if s.t == Tag {
			f.Add(s.data, false)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, sha256 bool) {
		format := oid.SHA1
		if sha256 {
			format = oid.SHA256
		}
		tg, err := ParseTag(format, data)
		if err != nil {
			return
		}
		if tg.Object.Format() != format || !tg.Type.IsBase() || bytes.IndexByte(tg.Name, '\n') >= 0 {
			t.Fatalf("ParseTag = %+v", tg)
		}
		// The first three lines re-encode to the start of the data.
		head := "object " + tg.Object.String() + "\ntype " + tg.Type.String() + "\ntag " + string(tg.Name) + "\n"
		if !bytes.EqualFold(data[:min(len(head), len(data))], []byte(head)) {
			t.Fatalf("re-encoded head %q does not start %q", head, data)
		}
		if tg.Message != nil && !bytes.HasSuffix(data, tg.Message) {
			t.Fatalf("message is not the end of the data")
		}
	})
}

func FuzzTreeIter(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		if s.t == Tree {
			f.Add(s.data, false)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, sha256 bool) {
		format := oid.SHA1
		if sha256 {
			format = oid.SHA256
		}
		it := NewTreeIter(format, data)
		var out []byte
		zeroPadded := false
		for {
			start := it.Offset()
			e, ok := it.Next()
			if !ok {
				break
			}
			if len(e.Name) == 0 || bytes.IndexByte(e.Name, 0) >= 0 || e.ID.Format() != format {
				t.Fatalf("bad entry %+v", e)
			}
			zeroPadded = zeroPadded || data[start] == '0'
			out = AppendTreeEntry(out, e.Mode, e.Name, e.ID)
			// Each entry re-parses from its own encoding.
			one := AppendTreeEntry(nil, e.Mode, e.Name, e.ID)
			mode, name, id, n, err := parseTreeEntry(format, one)
			if err != nil || n != len(one) || mode != e.Mode || !bytes.Equal(name, e.Name) || !bytes.Equal(id, e.ID.Bytes()) {
				t.Fatalf("entry %+v re-parsed as %o %q %x, %v", e, mode, name, id, err)
			}
		}
		if it.Err() != nil {
			if it.Offset() >= len(data) {
				t.Fatalf("error %v at the end of the data", it.Err())
			}
			return
		}
		if it.Offset() != len(data) {
			t.Fatalf("stopped at %d of %d without error", it.Offset(), len(data))
		}
		if !zeroPadded && !bytes.Equal(out, data) {
			t.Fatalf("re-encoded tree differs")
		}
	})
}

func FuzzCheck(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(uint8(s.t), s.data, false)
	}
	f.Fuzz(func(t *testing.T, typ uint8, data []byte, sha256 bool) {
		format := oid.SHA1
		if sha256 {
			format = oid.SHA256
		}
		ty := Type(typ % 5)
		err := Check(format, ty, data)
		strict := Checker{Strict: true}
		if serr := strict.Check(format, ty, data); serr != nil && err == nil && !isStrictOnly(serr) {
			t.Fatalf("strict check fails with %v where the default accepts", serr)
		}
		if err != nil {
			if _, ok := err.(*Problem); !ok && ty != Invalid {
				t.Fatalf("Check error %v is not a *Problem", err)
			}
			if ty == Tree {
				// An order or duplicate error must be real.
				if p := err.(*Problem); p.ID == MsgTreeNotSorted || p.ID == MsgDuplicateEntries {
					sorted, unique := independentOrder(format, data)
					if sorted && unique {
						t.Fatalf("Check says %v of a sorted tree without duplicates", p.ID)
					}
				}
			}
			return
		}
		if perr := parseAs(format, ty, data); perr != nil {
			t.Fatalf("Check accepts, parser fails: %v", perr)
		}
		switch ty {
		case Tree:
			if sorted, unique := independentOrder(format, data); !sorted || !unique {
				t.Fatalf("Check accepts a tree that is sorted=%v unique=%v", sorted, unique)
			}
		case Commit:
			c, _ := ParseCommit(format, data)
			if _, err := ParseSignature(c.Author.Raw); err != nil {
				t.Fatalf("Check accepts an author ParseSignature rejects: %v", err)
			}
			if _, err := ParseSignature(c.Committer.Raw); err != nil {
				t.Fatalf("Check accepts a committer ParseSignature rejects: %v", err)
			}
		case Tag:
			tg, _ := ParseTag(format, data)
			if tg.Tagger != nil {
				if _, err := ParseSignature(tg.Tagger.Raw); err != nil {
					t.Fatalf("Check accepts a tagger ParseSignature rejects: %v", err)
				}
			}
		}
	})
}

// isStrictOnly reports whether err is a problem only strict mode raises.
func isStrictOnly(err error) bool {
	p, ok := err.(*Problem)
	return ok && p.ID.DefaultSeverity() == SevWarn
}

// independentOrder checks tree order the slow, obvious way: every name
// with a '/' appended for directories must sort strictly after the
// previous one, and no name may appear twice anywhere.
func independentOrder(format oid.Format, data []byte) (sorted, unique bool) {
	sorted, unique = true, true
	seen := map[string]bool{}
	var prev []byte
	it := NewTreeIter(format, data)
	for {
		e, ok := it.Next()
		if !ok {
			break
		}
		key := slices.Clone(e.Name)
		if e.Mode&modeTypeMask == ModeTree {
			key = append(key, '/')
		}
		if prev != nil && bytes.Compare(prev, key) >= 0 {
			sorted = false
		}
		if seen[string(e.Name)] {
			unique = false
		}
		seen[string(e.Name)] = true
		prev = key
	}
	return sorted, unique
}
