package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"gotd/internal/gittest"
)

// gotadmin runs a gotadmin command in-process and returns its output.
func gotadmin(t *testing.T, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	var out, errb bytes.Buffer
	status = run(args, &out, &errb)
	return out.String(), errb.String(), status
}

func mustGotadmin(t *testing.T, args ...string) string {
	t.Helper()
	out, errs, status := gotadmin(t, args...)
	if status != 0 {
		t.Fatalf("gotadmin %s: status %d: %s", strings.Join(args, " "), status, errs)
	}
	return out
}

var formats = []string{"sha1", "sha256"}

func TestInit(t *testing.T) {
	for _, format := range formats {
		t.Run(format, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "new.git")
			mustGotadmin(t, "init", "-A", format, "-b", "trunk", dir)
			if got := strings.TrimSpace(gittest.Git(t, dir, "rev-parse", "--show-object-format")); got != format {
				t.Errorf("object format = %s; want %s", got, format)
			}
			if got := strings.TrimSpace(gittest.Git(t, dir, "symbolic-ref", "HEAD")); got != "refs/heads/trunk" {
				t.Errorf("HEAD = %s; want refs/heads/trunk", got)
			}
			if got := strings.TrimSpace(gittest.Git(t, dir, "rev-parse", "--is-bare-repository")); got != "true" {
				t.Errorf("bare = %s; want true", got)
			}
			gittest.Git(t, dir, "fsck", "--full", "--strict")

			// A history written by C Git into it is readable by both.
			gittest.Generate(t, dir, gittest.History{Commits: 5, Files: 4})
			gittest.Git(t, dir, "fsck", "--full", "--strict")
		})
	}
}

// TestInitPermissions: a repository gotadmin makes grants other users
// nothing whatever the umask (issue 19: directories were 0755); one
// made with -s group is shared with the group as git init --shared
// makes it, and C Git reads the setting.
func TestInitPermissions(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	tests := []struct {
		shared     string
		dir, file  os.FileMode
		gitSetting string
	}{
		{"", 0o750, 0o640, ""},
		{"group", 0o2770, 0o660, "group"},
		{"0640", 0o2750, 0o640, "0640"},
	}
	for _, tt := range tests {
		dir := filepath.Join(t.TempDir(), "new.git")
		args := []string{"init", dir}
		if tt.shared != "" {
			args = []string{"init", "-s", tt.shared, dir}
		}
		mustGotadmin(t, args...)
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			want := tt.file
			if d.IsDir() {
				want = tt.dir
			}
			if got := fi.Mode() & (fs.ModePerm | fs.ModeSetgid); got != fsMode(want) {
				t.Errorf("-s %q: %s is %v; want %v", tt.shared, path, got, fsMode(want))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := exec.Command("git", "--git-dir", dir, "config", "core.sharedRepository").Output()
		if strings.TrimSpace(string(got)) != tt.gitSetting {
			t.Errorf("-s %q: core.sharedRepository = %q; want %q", tt.shared, got, tt.gitSetting)
		}
		gittest.Git(t, dir, "fsck", "--full", "--strict")
	}
	if _, errs, status := gotadmin(t, "init", "-s", "0440", filepath.Join(t.TempDir(), "x.git")); status == 0 || !strings.Contains(errs, "owner") {
		t.Errorf("-s 0440: status %d, stderr %q; want a refusal", status, errs)
	}
}

// fsMode turns a Unix mode with 02000 into an fs.FileMode.
func fsMode(m os.FileMode) os.FileMode {
	if m&0o2000 != 0 {
		return m&^0o2000 | fs.ModeSetgid
	}
	return m
}

func TestInitRefuses(t *testing.T) {
	nonEmpty := t.TempDir()
	os.WriteFile(filepath.Join(nonEmpty, "file"), []byte("x"), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"non-empty directory", []string{"init", nonEmpty}, "not empty"},
		{"bad format", []string{"init", "-A", "md5", filepath.Join(t.TempDir(), "x")}, "unknown object format"},
		{"bad branch", []string{"init", "-b", "a..b", filepath.Join(t.TempDir(), "y")}, "invalid branch name"},
		{"no path", []string{"init"}, "usage: gotadmin init"},
		{"unknown flag", []string{"init", "-z", "x"}, "usage: gotadmin init"},
	} {
		_, errs, status := gotadmin(t, tc.args...)
		if status == 0 || !strings.Contains(errs, tc.want) {
			t.Errorf("%s: status %d, stderr %q; want failure mentioning %q", tc.name, status, errs, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(nonEmpty, "HEAD")); err == nil {
		t.Errorf("init into a non-empty directory left HEAD behind")
	}
}

func TestUsage(t *testing.T) {
	out, _, status := gotadmin(t, "-h")
	if status != 0 || !strings.Contains(out, "listpack [-hs] packfile-path") {
		t.Errorf("gotadmin -h: status %d, output %q", status, out)
	}
	out, _, status = gotadmin(t, "pack", "-h")
	if status != 0 || !strings.Contains(out, "usage: gotadmin pack") {
		t.Errorf("gotadmin pack -h: status %d, output %q", status, out)
	}
	if _, errs, status := gotadmin(t, "frobnicate"); status == 0 || !strings.Contains(errs, "unknown command") {
		t.Errorf("unknown command: status %d, stderr %q", status, errs)
	}
}

// generated returns a bare repository initialised by gotadmin and filled
// by C Git, with a few loose objects besides the fast-import pack.
func generated(t *testing.T, format string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo.git")
	mustGotadmin(t, "init", "-A", format, dir)
	gittest.Generate(t, dir, gittest.History{Commits: 60, Branches: 3, Files: 16})
	blob := strings.TrimSpace(gittest.GitInput(t, dir, []byte("a loose blob\n"), "hash-object", "-w", "--stdin"))
	tree := strings.TrimSpace(gittest.GitInput(t, dir, []byte("100644 blob "+blob+"\tloose.txt\n"), "mktree"))
	commit := strings.TrimSpace(gittest.Git(t, dir, "commit-tree", tree, "-p", "main", "-m", "loose commit"))
	gittest.Git(t, dir, "update-ref", "refs/heads/loose", commit)
	return dir
}

func TestPackAll(t *testing.T) {
	for _, format := range formats {
		t.Run(format, func(t *testing.T) {
			dir := generated(t, format)
			before := gittest.Git(t, dir, "rev-list", "--objects", "--all")
			mustGotadmin(t, "pack", "-a", "-q", "-r", dir)

			packs, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "pack-*.pack"))
			if len(packs) != 1 {
				t.Fatalf("packs after pack -a: %v; want exactly one", packs)
			}
			gittest.Git(t, dir, "fsck", "--full", "--strict")
			gittest.Git(t, dir, "verify-pack", "-v", strings.TrimSuffix(packs[0], ".pack")+".idx")
			// A commit-graph of every reachable commit, which C Git
			// accepts.
			if _, err := os.Stat(filepath.Join(dir, "objects", "info", "commit-graphs", "commit-graph-chain")); err != nil {
				t.Errorf("no commit-graph chain after pack -a: %v", err)
			}
			gittest.Git(t, dir, "commit-graph", "verify")
			// The .idx and .rev, written from what the pack writer
			// reported, are what git index-pack makes of the pack.
			gitIdx := filepath.Join(t.TempDir(), "git.idx")
			gittest.Git(t, dir, "index-pack", "--rev-index", "-o", gitIdx, packs[0])
			for _, ext := range []string{".idx", ".rev"} {
				got, _ := os.ReadFile(strings.TrimSuffix(packs[0], ".pack") + ext)
				want, _ := os.ReadFile(strings.TrimSuffix(gitIdx, ".idx") + ext)
				if len(want) == 0 || !bytes.Equal(got, want) {
					t.Errorf("%s written by pack -a (%d bytes) differs from git index-pack's (%d bytes)", ext, len(got), len(want))
				}
			}
			if got := gittest.Git(t, dir, "count-objects", "-v"); !strings.Contains(got, "count: 0\n") {
				t.Errorf("loose objects remain after pack -a:\n%s", got)
			}
			if after := gittest.Git(t, dir, "rev-list", "--objects", "--all"); after != before {
				t.Errorf("reachable objects changed by pack -a")
			}
			// C Git must accept our bitmap: --test-bitmap checks it
			// against a real walk, and counting with it must agree.
			bm := strings.TrimSuffix(packs[0], ".pack") + ".bitmap"
			if _, err := os.Stat(bm); err != nil {
				t.Fatalf("no bitmap written: %v", err)
			}
			for _, ref := range []string{"main", "topic1", "loose"} {
				gittest.Git(t, dir, "rev-list", "--test-bitmap", ref)
			}
			plain := gittest.Git(t, dir, "rev-list", "--count", "--objects", "--all")
			withBitmap := gittest.Git(t, dir, "rev-list", "--use-bitmap-index", "--count", "--objects", "--all")
			if plain != withBitmap {
				t.Errorf("object count with bitmap = %s; without = %s", withBitmap, plain)
			}
			// A clone from it is complete.
			clone := filepath.Join(t.TempDir(), "clone")
			gittest.Git(t, "", "clone", "-q", "--mirror", "--no-local", dir, clone)
			gittest.Git(t, clone, "fsck", "--full")

			info := mustGotadmin(t, "info", "-r", dir)
			for _, want := range []string{"object format: " + format, "loose objects: 0\n", "pack files: 1\n", "bitmaps: yes", "commit-graph: yes"} {
				if !strings.Contains(info, want) {
					t.Errorf("info output lacks %q:\n%s", want, info)
				}
			}
		})
	}
}

func TestPackLoose(t *testing.T) {
	for _, format := range formats {
		t.Run(format, func(t *testing.T) {
			dir := generated(t, format)
			var nloose int
			fmt.Sscanf(gittest.Git(t, dir, "count-objects", "-v"), "count: %d", &nloose)
			if nloose == 0 {
				t.Fatalf("setup has no loose objects")
			}
			want := fmt.Sprintf("(%d objects)", nloose)
			oldPacks, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "pack-*.pack"))
			out := mustGotadmin(t, "pack", "-q", "-r", dir)
			if !strings.Contains(out, want) {
				t.Errorf("pack output %q; want %s", out, want)
			}
			packs, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "pack-*.pack"))
			if len(packs) != len(oldPacks)+1 {
				t.Fatalf("packs = %v; want one more than %v", packs, oldPacks)
			}
			for _, p := range packs {
				gittest.Git(t, dir, "verify-pack", "-v", strings.TrimSuffix(p, ".pack")+".idx")
			}
			gittest.Git(t, dir, "fsck", "--full", "--strict")
			if out := mustGotadmin(t, "pack", "-q", "-r", dir); !strings.Contains(out, want) {
				// Loose objects stay until pack -a; packing them again is
				// harmless and yields the same pack.
				t.Errorf("second pack: %q", out)
			}
		})
	}
}

func TestIndexPackMatchesGit(t *testing.T) {
	for _, format := range formats {
		for _, variant := range []struct {
			name string
			args []string
		}{
			{"ofs-delta", []string{"pack-objects", "--all", "--delta-base-offset", "-q"}},
			{"ref-delta", []string{"pack-objects", "--all", "-q"}},
			{"deep chains", []string{"pack-objects", "--all", "--delta-base-offset", "--depth=200", "--window=50", "-q"}},
		} {
			t.Run(format+"/"+variant.name, func(t *testing.T) {
				dir := generated(t, format)
				out := t.TempDir()
				name := strings.TrimSpace(gittest.GitInput(t, dir, []byte{}, append(variant.args, filepath.Join(out, "p"))...))
				packPath := filepath.Join(out, "p-"+name+".pack")
				ours := filepath.Join(out, "ours.pack")
				data, err := os.ReadFile(packPath)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(ours, data, 0o644); err != nil {
					t.Fatal(err)
				}
				gitIdx := filepath.Join(out, "git.idx")
				gittest.Git(t, out, "index-pack", "--object-format="+format, "-o", gitIdx, packPath)

				printed := mustGotadmin(t, "indexpack", "-A", format, ours)
				if strings.TrimSpace(printed) != name {
					t.Errorf("indexpack printed %q; want pack hash %s", printed, name)
				}
				got, err := os.ReadFile(filepath.Join(out, "ours.idx"))
				if err != nil {
					t.Fatal(err)
				}
				want, _ := os.ReadFile(gitIdx)
				if !bytes.Equal(got, want) {
					t.Errorf("ours.idx (%d bytes) differs from git index-pack's (%d bytes)", len(got), len(want))
				}
				// listpack lists exactly what verify-pack lists.
				list := mustGotadmin(t, "listpack", ours)
				var listed, verified []string
				for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
					listed = append(listed, strings.Fields(line)[0])
				}
				for _, line := range strings.Split(gittest.Git(t, dir, "verify-pack", "-v", strings.TrimSuffix(packPath, ".pack")+".idx"), "\n") {
					if f := strings.Fields(line); len(f) > 3 && len(f[0]) == len(name) {
						verified = append(verified, f[0])
					}
				}
				sort.Strings(listed)
				sort.Strings(verified)
				if strings.Join(listed, " ") != strings.Join(verified, " ") {
					t.Errorf("listpack lists %d objects; verify-pack %d", len(listed), len(verified))
				}
				stats := mustGotadmin(t, "listpack", "-s", "-h", ours)
				if !strings.Contains(stats, "checksum: "+name) {
					t.Errorf("listpack -s output lacks the checksum:\n%s", stats)
				}
			})
		}
	}
}

func TestIndexPackRejectsCorruption(t *testing.T) {
	dir := generated(t, "sha1")
	out := t.TempDir()
	name := strings.TrimSpace(gittest.GitInput(t, dir, []byte{}, "pack-objects", "--all", "-q", filepath.Join(out, "p")))
	data, err := os.ReadFile(filepath.Join(out, "p-"+name+".pack"))
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), data...)
	bad[len(bad)/2] ^= 0x40
	path := filepath.Join(out, "bad.pack")
	os.WriteFile(path, bad, 0o644)
	if _, errs, status := gotadmin(t, "indexpack", path); status == 0 || errs == "" {
		t.Errorf("indexpack of a corrupted pack: status %d, stderr %q; want an error", status, errs)
	}
	if _, err := os.Stat(filepath.Join(out, "bad.idx")); err == nil {
		t.Errorf("indexpack of a corrupted pack left an .idx behind")
	}
}
