package object

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"gotd/internal/git/oid"
)

func TestParseCommit(t *testing.T) {
	for _, f := range []oid.Format{oid.SHA1, oid.SHA256} {
		data := expand(f, "tree <T>\nparent <X>\nparent <TU>\n"+
			"author A U Thor <a@example.com> 1700000000 +0100\n"+
			"committer C O Mitter <c@example.com> 1700000001 -0130\n"+
			"encoding ISO-8859-1\n"+
			"gpgsig -----BEGIN PGP SIGNATURE-----\n \n abc\n -----END PGP SIGNATURE-----\n"+
			"mergetag object <X>\n type commit\n"+
			"\nsubject\n\nbody\n")
		c, err := ParseCommit(f, data)
		if err != nil {
			t.Fatalf("%v: %v", f, err)
		}
		empty, _ := ID(f, Tree, nil)
		other, _ := ID(f, Blob, []byte("other\n"))
		if c.Tree != empty || !slices.Equal(c.Parents, []oid.ID{other, empty}) {
			t.Errorf("%v: got tree %v parents %v", f, c.Tree, c.Parents)
		}
		if string(c.Author.Name) != "A U Thor" || c.Author.When != 1700000000 || c.Author.TZ != 60 ||
			string(c.Committer.Email) != "c@example.com" || c.Committer.When != 1700000001 || c.Committer.TZ != -90 {
			t.Errorf("%v: got author %+v committer %+v", f, c.Author, c.Committer)
		}
		if string(c.Encoding) != "ISO-8859-1" || string(c.Message) != "subject\n\nbody\n" {
			t.Errorf("%v: got encoding %q message %q", f, c.Encoding, c.Message)
		}
		wantExtra := []string{
			"gpgsig -----BEGIN PGP SIGNATURE-----\n \n abc\n -----END PGP SIGNATURE-----",
			"mergetag object " + other.String() + "\n type commit",
		}
		if len(c.Extra) != len(wantExtra) {
			t.Fatalf("%v: got %d extra headers; want %d", f, len(c.Extra), len(wantExtra))
		}
		for i := range wantExtra {
			if string(c.Extra[i]) != wantExtra[i] {
				t.Errorf("%v: extra %d: got %q; want %q", f, i, c.Extra[i], wantExtra[i])
			}
		}
		tree, ps, when, err := CommitLinks(f, data, make([]oid.ID, 0, 4))
		if err != nil || tree != c.Tree || !slices.Equal(ps, c.Parents) || when != 1700000001 {
			t.Errorf("%v: CommitLinks = %v %v %d %v", f, tree, ps, when, err)
		}
	}
}

func TestParseCommitLenient(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		when       int64
		msg        string
	}{
		{"no idents", "tree <T>\n", 0, ""},
		{"no newline at end", "tree <T>\nauthor A <a> 1 +0000\ncommitter C <c> 2 +0000", 2, ""},
		{"bad committer date", "tree <T>\ncommitter C <c> 0x12 +0000\n\nm", 0, "m"},
		{"zero-padded date", "tree <T>\ncommitter C <c> 007 +0000\n\nm", 7, "m"},
		{"blank after tree", "tree <T>\n\ncommitter C <c> 5 +0000\n", 0, "committer C <c> 5 +0000\n"},
		{"NUL in message", "tree <T>\ncommitter C <c> 5 +0000\n\na\x00b", 5, "a\x00b"},
		{"committer with newline in ident", "tree <T>\ncommitter C <c> 5 +0000\n x\n\nm", 5, "m"},
	} {
		data := expand(oid.SHA1, tc.data)
		c, err := ParseCommit(oid.SHA1, data)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if c.Committer.When != tc.when || string(c.Message) != tc.msg {
			t.Errorf("%s: got when %d message %q; want %d %q", tc.name, c.Committer.When, c.Message, tc.when, tc.msg)
		}
		_, _, when, err := CommitLinks(oid.SHA1, data, nil)
		if err != nil || when != tc.when {
			t.Errorf("%s: CommitLinks when = %d, %v; want %d", tc.name, when, err, tc.when)
		}
	}
}

func TestParseCommitMalformed(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    oid.Format
		data string
	}{
		{"empty", oid.SHA1, ""},
		{"no tree", oid.SHA1, "parent <X>\n"},
		{"tree unterminated", oid.SHA1, "tree <T>"},
		{"tree bad hex", oid.SHA1, "tree <G>\n"},
		{"tree short", oid.SHA1, "tree <S>\n"},
		{"tree long", oid.SHA1, "tree <T>0\n"},
		{"tree of other format", oid.SHA256, "tree " + strings.Repeat("a", 40) + "\n"},
		{"tree space", oid.SHA1, "tree  <T>\n"},
		{"parent bad", oid.SHA1, "tree <T>\nparent <G>\n"},
		{"parent unterminated", oid.SHA1, "tree <T>\nparent <X>"},
		{"parent empty", oid.SHA1, "tree <T>\nparent \n"},
		{"invalid format", 0, "tree <T>\n"},
	} {
		f := tc.f
		if f == 0 {
			f = oid.SHA1
		}
		data := expand(f, tc.data)
		if _, err := ParseCommit(tc.f, data); err == nil {
			t.Errorf("%s: ParseCommit: got nil error", tc.name)
		}
		if _, _, _, err := CommitLinks(tc.f, data, nil); err == nil {
			t.Errorf("%s: CommitLinks: got nil error", tc.name)
		}
	}
}

func TestCommitParseReuse(t *testing.T) {
	a := expand(oid.SHA1, "tree <T>\nparent <X>\nparent <X>\nx-a 1\n\nm")
	b := expand(oid.SHA1, "tree <T>\nx-b 2\n")
	var c ParsedCommit
	if err := c.Parse(oid.SHA1, a); err != nil {
		t.Fatal(err)
	}
	if err := c.Parse(oid.SHA1, b); err != nil {
		t.Fatal(err)
	}
	if len(c.Parents) != 0 || len(c.Extra) != 1 || !bytes.Equal(c.Extra[0], []byte("x-b 2")) || c.Message != nil {
		t.Errorf("after reuse: parents %v extra %q message %q", c.Parents, c.Extra, c.Message)
	}
	allocs := testing.AllocsPerRun(100, func() { c.Parse(oid.SHA1, a) })
	if allocs != 0 {
		t.Errorf("Parse into a used ParsedCommit: got %v allocations; want 0", allocs)
	}
}

func TestCommitLinksAllocs(t *testing.T) {
	data := expand(oid.SHA1, "tree <T>\nparent <X>\nparent <X>\n"+okAuthor+okCommitter+"\nmsg\n")
	parents := make([]oid.ID, 0, 2)
	allocs := testing.AllocsPerRun(100, func() {
		_, ps, _, err := CommitLinks(oid.SHA1, data, parents)
		if err != nil || len(ps) != 2 {
			panic("CommitLinks failed")
		}
	})
	if allocs != 0 {
		t.Errorf("CommitLinks: got %v allocations; want 0", allocs)
	}
}

// TestCommitLinksPrefix checks which prefixes of some commits settle
// their links: those holding the committer line whole, and those
// holding the end of headers that have none.
func TestCommitLinksPrefix(t *testing.T) {
	tree := strings.Repeat("a", 40)
	parent := strings.Repeat("b", 40)
	for _, tc := range []struct {
		name, commit string
		settleAt     string // the shortest prefix that settles ends with this
		when         int64
	}{
		{"plain", "tree " + tree + "\nparent " + parent + "\nauthor A <a> 1 +0000\ncommitter C <c> 7 +0000\n\nmsg\n", "committer C <c> 7 +0000\n", 7},
		{"signed first", "tree " + tree + "\ngpgsig -----BEGIN\n x\n -----END\nauthor A <a> 1 +0000\ncommitter C <c> 8 +0000\n\nmsg\n", "committer C <c> 8 +0000\n", 8},
		{"no committer", "tree " + tree + "\nauthor A <a> 1 +0000\n\ncommitter C <c> 9 +0000\n", "+0000\n\n", 0},
	} {
		data := []byte(tc.commit)
		first := strings.Index(tc.commit, tc.settleAt) + len(tc.settleAt)
		for n := range len(data) + 1 {
			_, ps, when, ok := CommitLinksPrefix(oid.SHA1, data[:n], nil)
			if ok != (n >= first) {
				t.Errorf("%s: prefix of %d bytes settles: %v; want %v (from %d)", tc.name, n, ok, n >= first, first)
			}
			if ok && when != tc.when {
				t.Errorf("%s: prefix of %d bytes: time %d; want %d", tc.name, n, when, tc.when)
			}
			if ok && tc.name == "plain" && (len(ps) != 1 || ps[0].String() != parent) {
				t.Errorf("%s: parents %v", tc.name, ps)
			}
		}
	}
}
