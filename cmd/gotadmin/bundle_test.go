package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"gotd/internal/gittest"
)

// dump runs gotadmin dump with args and writes the bundle to a file.
func dump(t *testing.T, args ...string) string {
	t.Helper()
	out := mustGotadmin(t, append([]string{"dump", "-q"}, args...)...)
	path := filepath.Join(t.TempDir(), "dump.bundle")
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// branchesAndTags lists refs/heads and refs/tags of dir as git does.
func branchesAndTags(t *testing.T, dir string) string {
	t.Helper()
	return gittest.Git(t, dir, "for-each-ref", "--format=%(objectname) %(refname)", "refs/heads", "refs/tags")
}

// snapshot lists every file under dir with its size: what a failed
// load must leave unchanged.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, _ := d.Info()
		lines = append(lines, strings.TrimPrefix(path, dir)+" "+info.ModTime().String())
		return nil
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func TestDumpLoad(t *testing.T) {
	for _, format := range formats {
		t.Run(format, func(t *testing.T) {
			src := generated(t, format)
			want := branchesAndTags(t, src)
			b := dump(t, "-r", src)
			if _, err := gittest.Run(t, src, nil, "bundle", "verify", "-q", b); err != nil {
				t.Fatalf("git bundle verify refuses what dump wrote: %v", err)
			}
			head, _ := os.ReadFile(b)
			sig := "# v2 git bundle\n"
			if format == "sha256" {
				sig = "# v3 git bundle\n@object-format=sha256\n"
			}
			if !bytes.HasPrefix(head, []byte(sig)) {
				t.Errorf("bundle starts %q; want %q", head[:min(len(head), 40)], sig)
			}
			clone := filepath.Join(t.TempDir(), "clone")
			gittest.Git(t, "", "clone", "-q", "--mirror", b, clone)
			gittest.Git(t, clone, "fsck", "--full", "--strict")
			if got := branchesAndTags(t, clone); got != want {
				t.Errorf("git clone of the dump has\n%s\nwant\n%s", got, want)
			}
			work := filepath.Join(t.TempDir(), "work")
			gittest.Git(t, "", "clone", "-q", b, work)
			if got, want := gittest.Git(t, work, "rev-parse", "HEAD"), gittest.Git(t, src, "rev-parse", "main"); got != want {
				t.Errorf("checkout of the clone is %s; want main, %s", got, want)
			}

			// What gotadmin dump wrote, gotadmin load reads.
			dst := filepath.Join(t.TempDir(), "dst.git")
			mustGotadmin(t, "init", "-A", format, dst)
			mustGotadmin(t, "load", "-q", "-l", b, "-r", dst)
			gittest.Git(t, dst, "fsck", "--full", "--strict")
			if got := branchesAndTags(t, dst); got != want {
				t.Errorf("after load:\n%s\nwant\n%s", got, want)
			}

			// What git bundle create writes (with HEAD, and an
			// incremental one with prerequisites), gotadmin load reads.
			cg := filepath.Join(t.TempDir(), "cgit.bundle")
			gittest.Git(t, src, "bundle", "create", "-q", cg, "--all")
			dst2 := filepath.Join(t.TempDir(), "dst2.git")
			mustGotadmin(t, "init", "-A", format, dst2)
			if out := mustGotadmin(t, "load", "-n", "-l", cg, "-r", dst2); !strings.Contains(out, "refs/heads/main") {
				t.Errorf("load -n lists:\n%s", out)
			}
			if got := branchesAndTags(t, dst2); got != "" {
				t.Errorf("load -n set references:\n%s", got)
			}
			mustGotadmin(t, "load", "-q", "-l", cg, "-r", dst2)
			gittest.Git(t, dst2, "fsck", "--full", "--strict")
			if got := branchesAndTags(t, dst2); got != want {
				t.Errorf("after loading git's bundle:\n%s\nwant\n%s", got, want)
			}
			tree := strings.TrimSpace(gittest.Git(t, src, "rev-parse", "main^{tree}"))
			next := strings.TrimSpace(gittest.Git(t, src, "commit-tree", tree, "-p", "main", "-m", "next"))
			gittest.Git(t, src, "update-ref", "refs/heads/main", next)
			inc := filepath.Join(t.TempDir(), "inc.bundle")
			gittest.Git(t, src, "bundle", "create", "-q", inc, "main^..main")
			mustGotadmin(t, "load", "-q", "-l", inc, "-r", dst2)
			if got := strings.TrimSpace(gittest.Git(t, dst2, "rev-parse", "main")); got != next {
				t.Errorf("main after the incremental bundle: %s; want %s", got, next)
			}
			gittest.Git(t, dst2, "fsck", "--full", "--strict")

			// -x and names.
			x := dump(t, "-r", src, "-x", "topic0", "main", "refs/tags/v1.0", "topic0")
			heads := gittest.Git(t, src, "bundle", "list-heads", x)
			if !strings.Contains(heads, " refs/heads/main\n") || !strings.Contains(heads, " refs/tags/v1.0\n") || strings.Contains(heads, "topic0") {
				t.Errorf("dump -x topic0 main v1.0 topic0 lists:\n%s", heads)
			}
		})
	}
}

// TestLoadCorrupt: a damaged, truncated or incomplete bundle is refused
// and leaves the repository as it was, not a file changed.
func TestLoadCorrupt(t *testing.T) {
	src := generated(t, "sha1")
	good := filepath.Join(t.TempDir(), "good.bundle")
	gittest.Git(t, src, "bundle", "create", "-q", good, "--all")
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	packAt := bytes.Index(data, []byte("\nPACK")) + 1
	flipped := bytes.Clone(data)
	flipped[packAt+(len(data)-packAt)/2] ^= 0x40
	inc := filepath.Join(t.TempDir(), "inc.bundle")
	gittest.Git(t, src, "bundle", "create", "-q", inc, "main~2..main")
	incData, _ := os.ReadFile(inc)

	// A commit C Git's fsck refuses (an author without an email),
	// which a push would not accept either.
	tree := strings.TrimSpace(gittest.Git(t, src, "rev-parse", "main^{tree}"))
	badCommit := strings.TrimSpace(gittest.GitInput(t, src, []byte("tree "+tree+"\nauthor nobody 1700000000 +0000\ncommitter C O Mitter <c@example.com> 1700000000 +0000\n\nbad\n"),
		"hash-object", "-t", "commit", "--literally", "-w", "--stdin"))
	gittest.Git(t, src, "update-ref", "refs/heads/bad", badCommit)
	invalid := filepath.Join(t.TempDir(), "invalid.bundle")
	gittest.Git(t, src, "bundle", "create", "-q", invalid, "refs/heads/bad")
	invalidData, _ := os.ReadFile(invalid)
	var unlisted []byte // the incremental bundle without its prerequisites
	for _, line := range bytes.SplitAfter(incData[:bytes.Index(incData, []byte("\nPACK"))+1], []byte("\n")) {
		if !bytes.HasPrefix(line, []byte("-")) {
			unlisted = append(unlisted, line...)
		}
	}
	unlisted = append(unlisted, incData[bytes.Index(incData, []byte("\nPACK"))+1:]...)

	// A pack of the tip commit alone: its tree and parents are nowhere.
	tip := strings.TrimSpace(gittest.Git(t, src, "rev-parse", "main"))
	lone := gittest.GitInput(t, src, []byte(tip+"\n"), "pack-objects", "-q", "--stdout")
	incomplete := append([]byte("# v2 git bundle\n"+tip+" refs/heads/main\n\n"), lone...)

	cases := map[string][]byte{
		"incomplete":             incomplete,
		"invalid commit":         invalidData,
		"unlisted prerequisites": unlisted,
		"flipped byte":           flipped,
		"truncated pack":         data[:packAt+(len(data)-packAt)/2],
		"no pack":                data[:packAt],
		"bad header":             append([]byte("# v2 git bundle\nzz refs/heads/main\n\n"), data[packAt:]...),
		"missing prerequisite":   incData,
		"ref to absent object":   append([]byte("# v2 git bundle\n"+strings.Repeat("1", 40)+" refs/heads/main\n\n"), data[packAt:]...),
	}
	for name, bad := range cases {
		t.Run(name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "dst.git")
			mustGotadmin(t, "init", dst)
			before := snapshot(t, dst)
			path := filepath.Join(t.TempDir(), "bad.bundle")
			os.WriteFile(path, bad, 0o644)
			_, errs, status := gotadmin(t, "load", "-q", "-l", path, "-r", dst)
			if status == 0 {
				t.Fatalf("load of a bad bundle succeeded")
			}
			t.Logf("refused: %s", strings.TrimSpace(errs))
			if after := snapshot(t, dst); after != before {
				t.Errorf("load failed (%s) but changed the repository:\nbefore:\n%s\nafter:\n%s", strings.TrimSpace(errs), before, after)
			}
		})
	}
}

// TestLoadStdin: without -l, load reads the bundle from standard input.
func TestLoadStdin(t *testing.T) {
	src := generated(t, "sha1")
	b := dump(t, "-r", src, "main")
	f, err := os.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stdin := os.Stdin
	os.Stdin = f
	defer func() { os.Stdin = stdin }()
	dst := filepath.Join(t.TempDir(), "dst.git")
	mustGotadmin(t, "init", dst)
	out := mustGotadmin(t, "load", "-r", dst)
	main := strings.TrimSpace(gittest.Git(t, src, "rev-parse", "main"))
	if want := "refs/heads/main: - -> " + main + "\n"; out != want {
		t.Errorf("load printed %q; want %q", out, want)
	}
	gittest.Git(t, dst, "fsck", "--full", "--strict")
}

// TestLoadRefsRefused: a bundle whose references cannot all be set (a
// name twice, "a" beside "a/b", a name in the way of the repository's
// references, a symbolic reference) is refused before its pack is
// installed: the repository is left as it was, not a file changed.
func TestLoadRefsRefused(t *testing.T) {
	src := generated(t, "sha1")
	good := filepath.Join(t.TempDir(), "good.bundle")
	gittest.Git(t, src, "bundle", "create", "-q", good, "--all")
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	pack := data[bytes.Index(data, []byte("\nPACK"))+1:]
	tip := strings.TrimSpace(gittest.Git(t, src, "rev-parse", "main"))
	parent := strings.TrimSpace(gittest.Git(t, src, "rev-parse", "main~1"))
	bundle := func(refs ...string) []byte {
		return append([]byte("# v2 git bundle\n"+strings.Join(refs, "\n")+"\n\n"), pack...)
	}
	tests := []struct {
		name   string
		setup  func(dst string)
		bundle []byte
		want   string
	}{
		{"name twice", nil, bundle(tip+" refs/heads/a", parent+" refs/heads/a"), "twice"},
		{"name and its directory", nil, bundle(tip+" refs/heads/a", parent+" refs/heads/a/b"), "cannot both exist"},
		{"existing reference below", func(dst string) {
			gittest.Git(t, dst, "update-ref", "refs/heads/x/y", tip)
		}, bundle(tip + " refs/heads/x"), "refs/heads/x/y exists"},
		{"existing reference above", func(dst string) {
			gittest.Git(t, dst, "update-ref", "refs/heads/x", tip)
		}, bundle(tip + " refs/heads/x/y"), "refs/heads/x exists"},
		{"packed reference above", func(dst string) {
			gittest.Git(t, dst, "update-ref", "refs/heads/x", tip)
			gittest.Git(t, dst, "pack-refs", "--all")
		}, bundle(tip + " refs/heads/x/y"), "refs/heads/x exists"},
		{"symbolic reference", func(dst string) {
			gittest.Git(t, dst, "symbolic-ref", "refs/heads/sym", "refs/heads/main")
		}, bundle(tip + " refs/heads/sym"), "symbolic reference"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "dst.git")
			mustGotadmin(t, "init", dst)
			if tc.setup != nil {
				// The objects the setup's references name.
				gittest.Git(t, dst, "fetch", "-q", src, "main")
				tc.setup(dst)
			}
			before := snapshot(t, dst)
			path := filepath.Join(t.TempDir(), "bad.bundle")
			if err := os.WriteFile(path, tc.bundle, 0o644); err != nil {
				t.Fatal(err)
			}
			_, errs, status := gotadmin(t, "load", "-q", "-l", path, "-r", dst)
			if status == 0 || !strings.Contains(errs, tc.want) {
				t.Fatalf("load: status %d, stderr %q; want a failure naming %q", status, errs, tc.want)
			}
			if after := snapshot(t, dst); after != before {
				t.Errorf("load failed (%s) but changed the repository:\nbefore:\n%s\nafter:\n%s", strings.TrimSpace(errs), before, after)
			}
		})
	}
}
