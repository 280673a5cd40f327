package remote

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotd/internal/git/repo"
	"gotd/internal/gittest"
)

// TestFetchRefsConflict: an upstream whose references cannot be set
// together, or not beside the mirror's own, sends a valid pack; the
// fetch fails before the pack is installed and the mirror is left
// exactly as it was.
func TestFetchRefsConflict(t *testing.T) {
	src := gittest.InitBare(t, "sha1")
	gittest.Generate(t, src, gittest.History{Commits: 3})
	tip := strings.TrimSpace(gittest.Git(t, src, "rev-parse", "main"))
	pack := []byte(gittest.GitInput(t, src, []byte(tip+"\n"), "pack-objects", "--revs", "-q", "--stdout"))
	for _, c := range []struct {
		name  string
		local string // a reference the mirror has
		refs  []string
		want  string
	}{
		{"name and its directory", "", []string{tip + " refs/heads/a", tip + " refs/heads/a/b"}, "cannot both exist"},
		{"local reference below", "refs/heads/x/y", []string{tip + " refs/heads/x"}, "refs/heads/x/y exists"},
		{"local reference above", "refs/heads/x", []string{tip + " refs/heads/x/y"}, "refs/heads/x exists"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "mirror.git")
			r, err := repo.Init(dir, repo.InitOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if c.local != "" {
				// A commit of the mirror's own, so that the upstream's
				// pack brings new objects.
				tree := strings.TrimSpace(gittest.GitInput(t, dir, nil, "mktree"))
				own := strings.TrimSpace(gittest.Git(t, dir, "commit-tree", tree, "-m", "own"))
				gittest.Git(t, dir, "update-ref", c.local, own)
			}
			before := snapshot(t, dir)
			_, err = Fetch(context.Background(), FetchOptions{URL: liar(t, c.refs, pack), Repo: r, Timeout: 20 * time.Second})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v; want an error holding %q", err, c.want)
			}
			if after := snapshot(t, dir); after != before {
				t.Errorf("the mirror changed:\n%s\nwant\n%s", after, before)
			}
		})
	}
}
