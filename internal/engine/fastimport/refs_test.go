package fastimport

import (
	"context"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"gotd/internal/git/repo"
	"gotd/internal/gittest"
)

// files lists the files under dir with their modes and times, and the
// directories with their modes (a temporary file created and removed
// changes its directory's time, not what the directory holds).
func files(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		line := strings.TrimPrefix(path, dir) + " " + info.Mode().String()
		if !d.IsDir() {
			line += " " + info.ModTime().String()
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestRefsConflict: a stream whose references cannot be set together
// ("a" beside "a/b", a name in the way of an existing reference, a
// deleted reference with a new one below it) is refused before its pack
// is installed, and the repository is left as it was.
func TestRefsConflict(t *testing.T) {
	commit := func(name string) string {
		return "commit " + name + "\ncommitter C <c@example.com> 1700000000 +0000\ndata 1\nx\n"
	}
	// setup's commits differ from the streams', which bring new objects.
	setup := func(name string) string {
		return "commit " + name + "\ncommitter C <c@example.com> 1600000000 +0000\ndata 5\nsetup\n"
	}
	tests := []struct {
		name, setup, stream, want string
	}{
		{"branch and its directory", "", commit("refs/heads/a") + commit("refs/heads/a/b"), "cannot both exist"},
		{"tag and its directory", "", commit("refs/heads/a") + "tag x\nfrom refs/heads/a\ntagger T <t@example.com> 1 +0000\ndata 0\n" +
			"tag x/y\nfrom refs/heads/a\ntagger T <t@example.com> 1 +0000\ndata 0\n", "cannot both exist"},
		{"existing reference below", setup("refs/heads/x/y"), commit("refs/heads/x"), "refs/heads/x/y exists"},
		{"existing reference above", setup("refs/heads/x"), commit("refs/heads/x/y"), "refs/heads/x exists"},
		{"deleted with a new one below", setup("refs/heads/x"), "reset refs/heads/x\nfrom 0000000000000000000000000000000000000000\n\n" + commit("refs/heads/x/y"), "cannot both exist"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := gittest.InitBare(t, "sha1")
			r, err := repo.Open(dir, repo.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if tc.setup != "" {
				if _, err := Import(context.Background(), r, strings.NewReader(tc.setup), Options{}); err != nil {
					t.Fatalf("setup: %v", err)
				}
			}
			before := files(t, dir)
			_, err = Import(context.Background(), r, strings.NewReader(tc.stream), Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Import: got %v; want an error containing %q", err, tc.want)
			}
			if after := files(t, dir); after != before {
				t.Errorf("failed import changed the repository:\nbefore\n%s\nafter\n%s", before, after)
			}
		})
	}
}
