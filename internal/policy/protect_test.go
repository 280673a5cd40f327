package policy

import (
	"context"
	"strings"
	"testing"

	"gotd/internal/git/oid"
	"gotd/internal/git/repo"
	"gotd/internal/gittest"
	"gotd/internal/protocol/receive"
	"gotd/internal/protocol/wire"
)

func TestProtectionCheck(t *testing.T) {
	dir := t.TempDir()
	gittest.Git(t, dir, "init", "-q", "-b", "main", "work")
	work := dir + "/work"
	commit := func(msg string) oid.ID {
		gittest.Git(t, work, "commit", "-q", "--allow-empty", "-m", msg)
		return id(t, gittest.Git(t, work, "rev-parse", "HEAD"))
	}
	a := commit("a")
	b := commit("b")
	gittest.Git(t, work, "checkout", "-q", "-b", "side", a.String())
	c := commit("c")
	r, err := repo.Open(work, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	null := oid.Zero(r.Format)

	p := &Protection{
		Branches:         []string{"refs/heads/main"},
		BranchNamespaces: []string{"refs/heads/release/"},
		TagNamespaces:    []string{"refs/tags/"},
	}
	cases := []struct {
		name     string
		old, new oid.ID
		refused  string
	}{
		{"refs/heads/main", a, b, ""},
		{"refs/heads/main", b, a, "non-fast-forward"},
		{"refs/heads/main", b, c, "non-fast-forward"},
		{"refs/heads/main", b, null, "delete"},
		{"refs/heads/main", null, a, ""},
		{"refs/heads/release/1.0", b, c, "non-fast-forward"},
		{"refs/heads/release/1.0", b, null, "delete"},
		{"refs/heads/releases", b, c, ""},
		{"refs/heads/side", b, null, ""},
		{"refs/heads/side", b, c, ""},
		{"refs/tags/v1", null, a, ""},
		{"refs/tags/v1", a, b, "tag"},
		{"refs/tags/v1", a, null, "delete"},
		{"refs/notes/x", a, null, ""},
	}
	for _, c := range cases {
		cmd := &receive.Command{Name: c.name, Old: c.old, New: c.new}
		err := p.Check(context.Background(), cmd, r, r.Format)
		switch {
		case c.refused == "" && err != nil:
			t.Errorf("%s %v..%v: refused: %v", c.name, c.old, c.new, err)
		case c.refused != "" && err == nil:
			t.Errorf("%s %v..%v: allowed, want refusal (%s)", c.name, c.old, c.new, c.refused)
		case c.refused != "" && !strings.Contains(wire.ClientMessage(err), c.refused):
			t.Errorf("%s: message %q lacks %q", c.name, wire.ClientMessage(err), c.refused)
		}
	}
	if !(&Protection{}).IsZero() || p.IsZero() {
		t.Error("IsZero wrong")
	}
}

func id(t *testing.T, s string) oid.ID {
	t.Helper()
	v, err := oid.ParseHexAny(strings.TrimSpace(s))
	if err != nil {
		t.Fatal(err)
	}
	return v
}
