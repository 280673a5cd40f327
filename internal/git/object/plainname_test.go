package object

import (
	"bytes"
	"testing"
)

// specialWords are the names specialName looks for, with the prefixes of
// their NTFS fall-back short names.
var specialWords = [...][2]string{
	{"gitmodules", "gi7eba"},
	{"gitignore", "gi250a"},
	{"gitattributes", "gi7d29"},
	{"mailmap", "maba30"},
}

// special reports whether any check that plainName lets checkTree skip
// would take name for something: what checkTree ran on every name
// before plainName.
func special(name []byte) bool {
	if len(name) == 0 || string(name) == "." || string(name) == ".." ||
		bytes.ContainsAny(name, `/\`) || isHFSDotGit(name) || isNTFSDotGit(name) {
		return true
	}
	for _, w := range specialWords {
		if isHFSDot(name, w[0]) || isNTFSDotGeneric(name, w[0], w[1]) {
			return true
		}
	}
	return false
}

// plain is checkTree's test for a name it need not look at further.
func plain(name []byte) bool { return plainName(name) && !hasSlashes(name) }

func TestPlainName(t *testing.T) {
	for _, name := range []string{
		".git", ".GIT", ".git.", "\u200c.git", "\ufeff.gitmodules", "git~1", "GIT~1",
		".gitmodules", "gitmod~1", "GITMOD~4", "gi7eba~9", "~1234567", "~9", ".mailmap",
		"mailma~1", "maba30~1", "MABA30~1", ".gitignore", "gi250a~1", ".gitattributes",
		"gi7d29~1", "gitmod~1.", "GI7EBA~12", "Mailma~4:x", "gi~1", "~1", "a/b", `a\.git`, `x\gitmod~1`, "long-name-with/slash-past-a-word",
		`long-name-with\backslash-past-a-word`, ".", "..", "",
	} {
		if plain([]byte(name)) {
			t.Errorf("%q taken for a plain name", name)
		}
	}
	for _, name := range []string{"Documentation", "README.md", "t0001-init.sh", "0", "a.git", "git.c", "mailmap.c", "Makefile", "gitmodule~1", "GIT-VERSION-GEN"} {
		if !plain([]byte(name)) {
			t.Errorf("%q not taken for a plain name", name)
		}
	}
}

// FuzzPlainName holds plainName and hasSlashes to the checks they let
// checkTree skip: no name they clear is special.
func FuzzPlainName(f *testing.F) {
	for _, s := range []string{".git", "git~1", "~1234567", "gi7eba~1", "\u200c.git", "a/b", `a\b`, "Makefile", "Documentation", "12345678/", "gitmod~1", "mailma~1", "gi250a~9", "x~1", "abcdef~1", "gitmodule~1"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, name []byte) {
		if got, want := hasSlashes(name), bytes.ContainsAny(name, `/\`); got != want {
			t.Fatalf("hasSlashes(%q) = %v, want %v", name, got, want)
		}
		if i := bytes.IndexByte(name, 0); indexNul(name) != i {
			t.Fatalf("indexNul(%q) = %d, want %d", name, indexNul(name), i)
		}
		if plain(name) && special(name) {
			t.Fatalf("%q taken for plain but special", name)
		}
	})
}
