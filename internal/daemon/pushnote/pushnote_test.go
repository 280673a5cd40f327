package pushnote

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gotd/internal/git/oid"
	"gotd/internal/git/repo"
	"gotd/internal/gittest"
)

// history is a work tree whose commits cover what a diffstat tells
// apart: added, modified, deleted, binary, type-changed and large files.
type history struct {
	t    *testing.T
	dir  string
	repo *repo.Repo
}

func newHistory(t *testing.T) *history {
	dir := t.TempDir()
	gittest.Git(t, dir, "-c", "init.defaultBranch=main", "init", "-q")
	return &history{t: t, dir: dir}
}

func (h *history) write(name, data string) {
	p := filepath.Join(h.dir, name)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h *history) commit(msg string) oid.ID {
	gittest.Git(h.t, h.dir, "add", "-A")
	gittest.Git(h.t, h.dir, "commit", "-q", "--allow-empty", "-m", msg)
	return h.id("HEAD")
}

func (h *history) id(rev string) oid.ID {
	id, err := oid.ParseHexAny(strings.TrimSpace(gittest.Git(h.t, h.dir, "rev-parse", rev)))
	if err != nil {
		h.t.Fatal(err)
	}
	return id
}

func (h *history) open() *repo.Repo {
	if h.repo == nil {
		r, err := repo.Open(filepath.Join(h.dir, ".git"), repo.Options{})
		if err != nil {
			h.t.Fatal(err)
		}
		h.t.Cleanup(func() { r.Close() })
		h.repo = r
	}
	return h.repo
}

func (h *history) build(u Update, others []oid.ID, lim Limits) *Document {
	h.t.Helper()
	d, err := Build(context.Background(), h.open(), oid.SHA1, Origin{Repo: "r", User: "alice"}, u, others, lim)
	if err != nil {
		h.t.Fatal(err)
	}
	return d
}

func lines(n int, prefix string) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "%s line %d\n", prefix, i)
	}
	return b.String()
}

// TestBuild checks each action, the commit lists against git rev-list
// and the diffstats against git diff --numstat.
func TestBuild(t *testing.T) {
	h := newHistory(t)
	h.write("a.txt", lines(40, "a"))
	h.write("dir/b.txt", lines(10, "b"))
	h.write("gone.txt", "bye\n")
	base := h.commit("base\n\nThe first commit.")
	h.write("a.txt", strings.Replace(lines(40, "a"), "a line 7\n", "changed\nand added\n", 1))
	h.write("bin.dat", "\x00\x01binary")
	os.Remove(filepath.Join(h.dir, "gone.txt"))
	h.write("dir/c.txt", "new\nfile\n")
	second := h.commit("second: edits")
	os.Remove(filepath.Join(h.dir, "dir/b.txt"))
	h.write("dir/b.txt/inner", "now a directory\n")
	third := h.commit("third: type change")
	gittest.Git(t, h.dir, "checkout", "-q", "-b", "side", base.String())
	h.write("side.txt", "side\n")
	side := h.commit("side work")
	gittest.Git(t, h.dir, "checkout", "-q", "main")
	gittest.Git(t, h.dir, "merge", "-q", "--no-ff", "-m", "merge side", "side")
	merge := h.id("HEAD")
	gittest.Git(t, h.dir, "tag", "-a", "-m", "release one", "v1", merge.String())
	tag := h.id("v1")

	numstat := func(id oid.ID) map[string]string {
		out := gittest.Git(t, h.dir, "diff-tree", "--no-commit-id", "-r", "--numstat", "--no-renames", "--root", id.String())
		if parent, err := gittest.Run(t, h.dir, nil, "rev-parse", "-q", "--verify", id.String()+"^1"); err == nil {
			out = gittest.Git(t, h.dir, "diff", "--numstat", "--no-renames", strings.TrimSpace(parent), id.String())
		}
		m := map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if f := strings.Split(l, "\t"); len(f) == 3 {
				m[f[2]] = f[0] + " " + f[1]
			}
		}
		return m
	}
	checkCommits := func(d *Document, rng ...string) {
		t.Helper()
		want := strings.Fields(gittest.Git(t, h.dir, append([]string{"rev-list"}, rng...)...))
		var got []string
		for _, it := range d.Notifications {
			if it.Type == TypeCommit {
				got = append(got, it.ID)
			}
		}
		// Same set; the order of commits of equal times may differ.
		slices.Sort(got)
		slices.Sort(want)
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: commits %v, git rev-list %v", d.Ref.Name, got, want)
		}
		for _, it := range d.Notifications {
			if it.Type != TypeCommit || it.Short {
				continue
			}
			id, _ := oid.ParseHexAny(it.ID)
			want := numstat(id)
			if it.Diffstat.Total.Files != len(want) || len(it.Diffstat.Files) != len(want) {
				t.Errorf("commit %s: %d files (%d listed), git %d: %+v", it.Subject, it.Diffstat.Total.Files, len(it.Diffstat.Files), len(want), want)
			}
			for _, f := range it.Diffstat.Files {
				got := fmt.Sprintf("%d %d", f.Added, f.Removed)
				if f.Binary {
					got = "- -"
				}
				if want[f.File] != got {
					t.Errorf("commit %s: %s %s, git --numstat %q", it.Subject, f.File, got, want[f.File])
				}
			}
			if it.Repo != "r" || it.User != "alice" || it.Author.Mail != "author@example.com" || it.Author.User != "author" ||
				it.Committer.Name != "C O Mitter" || it.Date != 1700000000 {
				t.Errorf("commit %s: %+v %+v %+v", it.Subject, it, it.Author, it.Committer)
			}
		}
	}

	// A new branch: the commits no other reference reaches.
	d := h.build(Update{Name: "refs/heads/main", New: merge}, nil, DefaultLimits)
	if d.Ref.Action != Created || d.Ref.Old != "" || d.Ref.New != merge.String() {
		t.Errorf("created: %+v", d.Ref)
	}
	checkCommits(d, merge.String())
	d = h.build(Update{Name: "refs/heads/topic", New: merge}, []oid.ID{side}, DefaultLimits)
	checkCommits(d, merge.String(), "^"+side.String())

	d = h.build(Update{Name: "refs/heads/main", Old: second, New: merge}, nil, DefaultLimits)
	if d.Ref.Action != FastForward {
		t.Errorf("fast-forward: %+v", d.Ref)
	}
	checkCommits(d, merge.String(), "^"+second.String())

	// Rebased on the server: a fast-forward that tells what was pushed.
	d = h.build(Update{Name: "refs/heads/main", Old: second, New: merge, Pushed: side}, nil, DefaultLimits)
	if d.Ref.Action != FastForward || d.Ref.RebasedFrom != side.String() || !strings.Contains(d.Text(), "rebased on the server: pushed as "+side.String()) {
		t.Errorf("rebased: %+v\n%s", d.Ref, d.Text())
	}

	d = h.build(Update{Name: "refs/heads/main", Old: third, New: side}, nil, DefaultLimits)
	if d.Ref.Action != Rewritten {
		t.Errorf("rewritten: %+v", d.Ref)
	}
	checkCommits(d, side.String(), "^"+third.String())
	if !strings.Contains(d.Text(), "not a fast-forward") || d.Subject() != "r: alice changed refs/heads/main: "+side.String()[:12] {
		t.Errorf("rewritten mail: %q\n%s", d.Subject(), d.Text())
	}

	// The side branch merged: main's tip reaches it by the second
	// parent. A tag of the old tip is peeled; a tree is no ancestor.
	d = h.build(Update{Name: "refs/heads/side", Old: side, New: merge}, nil, DefaultLimits)
	if d.Ref.Action != FastForward {
		t.Errorf("fast-forward through a merge: %+v", d.Ref)
	}
	tree := h.id(base.String() + "^{tree}")
	gittest.Git(t, h.dir, "tag", "-a", "-m", "old", "vbase", base.String())
	if d = h.build(Update{Name: "refs/heads/x", Old: h.id("vbase"), New: merge}, nil, DefaultLimits); d.Ref.Action != FastForward {
		t.Errorf("fast-forward from a tag: %+v", d.Ref)
	}
	if d = h.build(Update{Name: "refs/heads/x", Old: tree, New: merge}, nil, DefaultLimits); d.Ref.Action != Rewritten {
		t.Errorf("from a tree: %+v", d.Ref)
	}
	// Out of time: the reference is told, moved, with an error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d, err := Build(ctx, h.open(), oid.SHA1, Origin{Repo: "r", User: "alice"}, Update{Name: "refs/heads/main", Old: third, New: side}, nil, DefaultLimits)
	if err == nil || d.Ref.Action != Moved || d.Repo != "r" || !strings.Contains(d.Text(), "refs/heads/main moved by alice") {
		t.Errorf("cancelled: %v, %+v", err, d.Ref)
	}

	d = h.build(Update{Name: "refs/heads/side", Old: side}, nil, DefaultLimits)
	if d.Ref.Action != Deleted || len(d.Notifications) != 1 || d.Notifications[0].Type != TypeBranchDeleted ||
		d.Notifications[0].ID != side.String() || d.Subject() != "r: alice removed refs/heads/side: "+side.String()[:12] {
		t.Errorf("deleted: %+v %q", d, d.Subject())
	}

	d = h.build(Update{Name: "refs/tags/v1", New: tag}, []oid.ID{base}, DefaultLimits)
	if len(d.Notifications) != 1 || d.Notifications[0].Type != TypeTag || d.Notifications[0].Tag != "v1" ||
		d.Notifications[0].Object.ID != merge.String() || d.Notifications[0].Object.Type != "commit" ||
		!strings.Contains(d.Notifications[0].Message, "release one") {
		t.Errorf("tag: %+v", d.Notifications)
	}

	// The mail text names every commit and path.
	d = h.build(Update{Name: "refs/heads/main", Old: base, New: merge}, nil, DefaultLimits)
	text := d.Text()
	for _, want := range []string{"commit " + merge.String(), "commit " + second.String(), "from: A U Thor <author@example.com>",
		"via: C O Mitter <committer@example.com>", " M  a.txt | 2+ 1-", " A  bin.dat | binary", " D  gone.txt | 1+ 0-"[:12],
		"date: Tue Nov 14 22:13:20 2023 UTC", "\n second: edits\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("mail text lacks %q:\n%s", want, text)
		}
	}

	// Bounds: one detailed commit, two listed, the rest counted; one
	// file per commit.
	lim := DefaultLimits
	lim.Detailed, lim.Listed, lim.Files = 1, 2, 1
	d = h.build(Update{Name: "refs/heads/main", New: merge}, nil, lim)
	if len(d.Notifications) != 2 || d.Notifications[0].Short || !d.Notifications[1].Short || d.MoreCommits != 3 {
		t.Errorf("limits: %d items, more %d: %+v", len(d.Notifications), d.MoreCommits, d.Notifications)
	}
	d = h.build(Update{Name: "refs/heads/main", Old: base, New: second}, nil, lim)
	if ds := d.Notifications[0].Diffstat; len(ds.Files) != 1 || ds.Total.Files != 4 || !strings.Contains(d.Text(), "and 3 more files") {
		t.Errorf("file limit: %+v\n%s", ds, d.Text())
	}

	// The round trip through JSON keeps the document.
	b, err := d.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(b)
	if err != nil || back.Text() != d.Text() {
		t.Errorf("decode: %v\n%s\n%s", err, back.Text(), d.Text())
	}
	for _, bad := range []string{`{}`, `{"ref":{"name":"refs/heads/x","action":"bogus"}}`, `{"ref":{"name":"HEAD","action":"created"}}`, `[`} {
		if _, err := Decode([]byte(bad)); err == nil {
			t.Errorf("Decode(%s) accepted", bad)
		}
	}
}

// TestFit checks that a document over the size bound loses detail, then
// commits, oldest first, and ends within the bound.
func TestFit(t *testing.T) {
	d := &Document{Repo: "r", User: "u", Ref: Ref{Name: "refs/heads/main", Action: Created, New: strings.Repeat("1", 40)}}
	for i := range 200 {
		d.Notifications = append(d.Notifications, Item{Type: TypeCommit, ID: strconv.Itoa(i), Subject: "s", Message: strings.Repeat("m", 1000),
			Diffstat: &Diffstat{Files: []FileStat{{Action: "added", File: "f"}}}})
	}
	fit(d, 100_000)
	b, _ := d.Encode()
	if len(b) > 100_000 || len(d.Notifications) != 200 || !d.Notifications[199].Short || d.Notifications[0].Short {
		t.Errorf("size %d, %d items, more %d", len(b), len(d.Notifications), d.MoreCommits)
	}
	fit(d, 5_000)
	b, _ = d.Encode()
	if len(b) > 5_000 || len(d.Notifications)+d.MoreCommits != 200 || d.Notifications[0].ID != "0" {
		t.Errorf("size %d, %d items, more %d", len(b), len(d.Notifications), d.MoreCommits)
	}
	// A tag dropped to fit is not counted as a commit.
	d = &Document{Ref: Ref{Name: "refs/tags/v1", Action: Created, New: "1"},
		Notifications: []Item{{Type: TypeTag, Tag: "v1", Message: strings.Repeat("m", 1000)}}}
	fit(d, 200)
	if len(d.Notifications) != 0 || d.MoreCommits != 0 {
		t.Errorf("dropped tag: %d items, more %d", len(d.Notifications), d.MoreCommits)
	}
}

// FuzzDecode feeds documents to Decode and renders what it accepts: the
// notify process decodes what session_write, a process that parses
// client bytes, hands it.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"repo":"r","authenticated_user":"u","ref":{"name":"refs/heads/main","action":"created","new":"ab"},` +
		`"notifications":[{"type":"commit","id":"ab","short":true},{"type":"commit","diffstat":{"files":[{"action":"added","file":"f"}]}},` +
		`{"type":"tag","object":{"type":"commit","id":"ab"}},{"type":"branch-deleted","ref":"refs/heads/x","id":"cd"}],"more_commits":3}`))
	f.Add([]byte(`{"ref":{"name":"refs/tags/v1","action":"deleted","old":""}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Decode(b)
		if err != nil {
			return
		}
		d.SetOrigin("repo", "user")
		_ = d.Subject()
		_ = d.Text()
		if _, err := d.Encode(); err != nil {
			t.Fatal(err)
		}
	})
}
