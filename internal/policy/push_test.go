package policy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotd/internal/git/oid"
	"gotd/internal/git/refs"
	"gotd/internal/git/repo"
	"gotd/internal/gittest"
	"gotd/internal/protocol/receive"
	"gotd/internal/protocol/wire"
)

func TestPushCheckRef(t *testing.T) {
	p := &Push{Refs: []RefRule{
		{Deny: true, Namespace: "refs/tags/"},
		{Namespace: "refs/tags/nightly/"},
		{Deny: true, Delete: true, Namespace: "refs/heads/"},
		{Delete: true, Namespace: "refs/heads/tmp/"},
		{Deny: true, Namespace: "refs/heads/main"},
	}}
	null := oid.Zero(oid.SHA1)
	one := id(t, strings.Repeat("1", 40))
	for _, c := range []struct {
		name     string
		old, new oid.ID
		refused  string
	}{
		{"refs/tags/v1", null, one, "create"},
		{"refs/tags/nightly/2026-11-23", null, one, ""},
		{"refs/tags/v1", one, null, ""},
		{"refs/tags/v1", one, one, ""}, // an update: not theirs
		{"refs/heads/topic", one, null, "delete"},
		{"refs/heads/tmp/x", one, null, ""},
		{"refs/heads/topic", null, one, ""},
		{"refs/heads/main", null, one, "create"},
		{"refs/heads/mainline", null, one, ""},
	} {
		err := p.CheckRef(&receive.Command{Name: c.name, Old: c.old, New: c.new})
		switch {
		case c.refused == "" && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.refused != "" && !strings.Contains(wire.ClientMessage(err), c.refused):
			t.Errorf("%s: %v; want a refusal to %s", c.name, err, c.refused)
		}
	}
}

func TestPushCheckContent(t *testing.T) {
	dir := t.TempDir()
	gittest.Git(t, dir, "init", "-q", "-b", "main", "work")
	work := filepath.Join(dir, "work")
	commit := func(file, data string) oid.ID {
		if file != "" {
			os.MkdirAll(filepath.Dir(filepath.Join(work, file)), 0o755)
			if err := os.WriteFile(filepath.Join(work, file), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		gittest.Git(t, work, "add", "-A")
		gittest.Git(t, work, "commit", "-q", "--allow-empty", "-m", "c "+file)
		return id(t, gittest.Git(t, work, "rev-parse", "HEAD"))
	}
	base := commit("small.txt", "small\n")
	big := commit("dir/big.txt", strings.Repeat("x", 2000))
	gittest.Git(t, work, "checkout", "-q", "-b", "side", base.String())
	bin := commit("img.png", "\x89PNG\x00\x01")
	gittest.Git(t, work, "checkout", "-q", "main")
	gittest.Git(t, work, "merge", "-q", "--no-ff", "-m", "merge", "side")
	merge := id(t, gittest.Git(t, work, "rev-parse", "HEAD"))
	text := commit("more.txt", "text\n")
	r, err := repo.Open(work, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	null := oid.Zero(r.Format)

	p := &Push{MaxBlobSize: 1000, DenyBinary: true, NoMerges: []string{"refs/heads/main", "refs/heads/release/"}}
	for _, c := range []struct {
		name     string
		old, new oid.ID
		before   []refs.Ref
		refused  string
	}{
		{"refs/heads/main", base, big, heads(base), "larger than 1000 bytes: dir/big.txt (2000 bytes)"},
		{"refs/heads/side", base, bin, heads(base), "binary file: img.png"},
		// What the repository had is not checked again.
		{"refs/heads/main", big, text, heads(big, bin), "merge commit on this branch: " + merge.String()},
		{"refs/heads/other", big, text, heads(big, bin), ""},
		{"refs/heads/release/2", null, text, heads(big, bin), "merge commit"},
		{"refs/heads/main", merge, text, heads(merge), ""},
		// A merge pushed to another branch first is still one main
		// gains.
		{"refs/heads/main", big, text, heads(big, text), "merge commit on this branch: " + merge.String()},
		// refs/heads/t0 is no release branch: the new one gains its
		// merge; beside a release branch that has it, it does not.
		{"refs/heads/release/3", null, text, heads(text), "merge commit"},
		{"refs/heads/release/3", null, text, []refs.Ref{{Name: "refs/heads/release/1", ID: text}}, ""},
		{"refs/heads/side", bin, null, heads(bin), ""},
	} {
		cmd := &receive.Command{Name: c.name, Old: c.old, New: c.new}
		err := p.CheckContent(context.Background(), cmd, r, r.Format, func() []refs.Ref { return c.before })
		switch {
		case c.refused == "" && err != nil:
			t.Errorf("%s %v..%v: refused: %v", c.name, c.old, c.new, err)
		case c.refused != "" && !strings.Contains(wire.ClientMessage(err), c.refused):
			t.Errorf("%s %v..%v: %v; want %q", c.name, c.old, c.new, err, c.refused)
		}
	}
	lax := &Push{MaxBlobSize: 4000}
	if err := lax.CheckContent(context.Background(), &receive.Command{Name: "refs/heads/main", Old: base, New: text}, r, r.Format, func() []refs.Ref { return heads(base) }); err != nil {
		t.Errorf("within the bounds: %v", err)
	}
	if Size(10<<20) != "10M" || Size(1500) != "1500 bytes" || Size(2<<30) != "2G" {
		t.Errorf("Size: %s %s %s", Size(10<<20), Size(1500), Size(2<<30))
	}
}

// heads names ids as branches refs/heads/t0, t1, ...
func heads(ids ...oid.ID) []refs.Ref {
	var rs []refs.Ref
	for i, id := range ids {
		rs = append(rs, refs.Ref{Name: fmt.Sprintf("refs/heads/t%d", i), ID: id})
	}
	return rs
}
