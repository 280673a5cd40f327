package e2enet

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotd/internal/gittest"
)

// TestMirrorNamespaces: a pull mirror of git daemon whose refs option
// names refs/heads, refs/tags and refs/notes follows the upstream's
// notes, created, moved and deleted, and never takes its refs/pull
// references nor touches a reference of its own outside those
// namespaces; a mirror without the option takes branches and tags
// only; a hidden namespace of a mirror is kept from its readers.
func TestMirrorNamespaces(t *testing.T) {
	root := mirrorRoot(t)
	up := filepath.Join(root, "up.git")
	run(t, "git", "init", "-q", "--bare", "-b", "main", up)
	gittest.Generate(t, up, gittest.History{Commits: 6, Files: 3})
	git := func(args ...string) string {
		return run(t, "git", append([]string{"--git-dir", up, "-c", "safe.directory=*", "-c", "user.name=u", "-c", "user.email=u@example.org"}, args...)...)
	}
	git("notes", "add", "-m", "a note", "main~1")
	git("update-ref", "refs/pull/1/head", "main~2")
	gitBase, _ := gitUpstreams(t, root)
	url := gitBase + "/up.git"
	refsOption := ` refs "refs/heads/*" "refs/tags/*" refs/notes/*`
	mirrors := []struct{ name, option, extra string }{
		{"ns-default", "", ""},
		{"ns-notes", refsOption, ""},
		{"ns-hidden", refsOption, "\thide namespace \"refs/notes/\"\n"},
	}
	var blocks string
	for _, m := range mirrors {
		path := filepath.Join(root, m.name+".git")
		mirrorRepo(t, path)
		blocks += fmt.Sprintf("repository %q {\n\tpath %q\n\tpermit ro anonymous\n\tmirror from %q every 1h%s\n%s}\n", m.name, path, url, m.option, m.extra)
	}
	s := start(t, options{extraTop: blocks})
	// every lists a repository's references in the namespaces given
	// (all if none) with their ids.
	every := func(dir string, namespaces ...string) string {
		return run(t, "git", append([]string{"--git-dir", dir, "-c", "safe.directory=*", "for-each-ref", "--format=%(refname) %(objectname)"}, namespaces...)...)
	}
	sync := func(stage string) {
		t.Helper()
		for _, m := range mirrors {
			if out, err := s.sync(m.name); err != nil {
				t.Fatalf("%s: gotctl sync %s: %v\n%s", stage, m.name, err, out)
			}
		}
	}
	notes := filepath.Join(root, "ns-notes.git")
	check := func(stage string) {
		t.Helper()
		if got, want := every(notes, "refs/heads", "refs/tags", "refs/notes"), every(up, "refs/heads", "refs/tags", "refs/notes"); got != want {
			t.Errorf("%s: ns-notes: references\n%s\nwant\n%s", stage, got, want)
		}
		for _, name := range []string{"ns-default", "ns-notes", "ns-hidden"} {
			if got := every(filepath.Join(root, name+".git"), "refs/pull"); got != "" {
				t.Errorf("%s: %s took the upstream's refs/pull: %s", stage, name, got)
			}
		}
		if got, want := every(filepath.Join(root, "ns-default.git")), every(up, "refs/heads", "refs/tags"); got != want {
			t.Errorf("%s: ns-default: references\n%s\nwant the branches and tags only\n%s", stage, got, want)
		}
	}
	sync("first sync")
	check("first sync")
	if every(notes, "refs/notes") == "" {
		t.Fatal("first sync: ns-notes has no notes")
	}
	// A reference of the mirror's own, outside its namespaces.
	own := strings.TrimSpace(every(notes, "refs/heads/main"))
	run(t, "git", "--git-dir", notes, "-c", "safe.directory=*", "update-ref", "refs/keep/x", strings.Fields(own)[1])
	if os.Geteuid() == 0 {
		run(t, "chown", "-R", rootDaemon, notes)
	}

	// Hidden from readers, there nonetheless.
	hidden := filepath.Join(root, "ns-hidden.git")
	if every(hidden, "refs/notes") == "" {
		t.Error("ns-hidden has no notes")
	}
	if out := s.mustGit("", nil, "ls-remote", s.gitURL("ns-hidden")); strings.Contains(out, "refs/notes/") || !strings.Contains(out, "refs/heads/main") {
		t.Errorf("ls-remote of ns-hidden:\n%s\nwant its branches without its hidden notes", out)
	}

	// Notes moved, then deleted; refs/pull moved.
	git("notes", "add", "-m", "another", "main")
	git("update-ref", "refs/pull/1/head", "main")
	sync("notes moved")
	check("notes moved")
	git("update-ref", "-d", "refs/notes/commits")
	sync("notes deleted")
	check("notes deleted")
	if got := every(notes, "refs/notes"); got != "" {
		t.Errorf("notes deleted upstream: ns-notes still has %s", got)
	}
	if got := every(notes, "refs/keep"); !strings.HasPrefix(got, "refs/keep/x ") {
		t.Errorf("the mirror's own refs/keep/x: got %q; want it left alone", got)
	}
	fsck(t, notes)
}
