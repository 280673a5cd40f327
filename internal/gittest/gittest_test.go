package gittest

import (
	"strings"
	"testing"
)

func TestGenerateIsValid(t *testing.T) {
	for _, format := range []string{"sha1", "sha256"} {
		t.Run(format, func(t *testing.T) {
			dir := InitBare(t, format)
			Generate(t, dir, History{Commits: 20, Branches: 2, Files: 12})
			Git(t, dir, "fsck", "--full", "--strict")
			refs := Git(t, dir, "for-each-ref", "--format=%(refname) %(objecttype)")
			for _, want := range []string{"refs/heads/main commit", "refs/heads/topic1 commit",
				"refs/tags/v1.0 tag", "refs/tags/light commit", "refs/tags/blob-tag tag",
				"refs/tags/tree-tag tag", "refs/tags/nested tag"} {
				if !strings.Contains(refs, want+"\n") {
					t.Errorf("refs = %q; want a line %q", refs, want)
				}
			}
			if n := len(Objects(t, dir)); n < 60 {
				t.Errorf("got %d objects; want at least 60", n)
			}
		})
	}
}
