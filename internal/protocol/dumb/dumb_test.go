package dumb

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotd/internal/git/repo"
	"gotd/internal/gittest"
	"gotd/internal/policy"
)

// fixture is a generated repository with an annotated tag, two packs
// and loose objects; info/refs and objects/info/packs written by C
// Git's update-server-info are read as the oracle, then removed so
// that what Open serves is generated.
func fixture(t testing.TB, format string) (string, *repo.Repo, map[string]string) {
	t.Helper()
	dir := gittest.InitBare(t, format)
	gittest.Generate(t, dir, gittest.History{Commits: 6, Branches: 1, Files: 8})
	tree := strings.TrimSpace(gittest.Git(t, dir, "rev-parse", "main^{tree}"))
	c := strings.TrimSpace(gittest.GitInput(t, dir, []byte("loose\n"), "commit-tree", tree, "-p", "main"))
	gittest.Git(t, dir, "update-ref", "refs/heads/loose", c)
	gittest.Git(t, dir, "symbolic-ref", "refs/remotes/origin/HEAD", "refs/heads/main")
	gittest.Git(t, dir, "repack", "-q") // a second pack of the loose objects
	blob := strings.TrimSpace(gittest.GitInput(t, dir, []byte("a loose blob\n"), "hash-object", "-w", "--stdin"))
	gittest.Git(t, dir, "update-server-info")
	want := map[string]string{"loose": blob}
	for _, f := range []string{"info/refs", "objects/info/packs"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		want[f] = string(b)
		os.Remove(filepath.Join(dir, f))
	}
	r, err := repo.Open(dir, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return dir, r, want
}

func read(t *testing.T, r *repo.Repo, path string, hidden func(string) bool) (*File, string, error) {
	t.Helper()
	f, err := Open(r, path, hidden)
	if err != nil {
		return nil, "", err
	}
	defer f.Body.Close()
	b, err := io.ReadAll(f.Body)
	if err != nil {
		t.Fatal(err)
	}
	if f.Size != int64(len(b)) {
		t.Errorf("%s: size %d; read %d bytes", path, f.Size, len(b))
	}
	return f, string(b), nil
}

// TestOpen compares the generated files with update-server-info's,
// objects and packs with the repository's files, and checks what is
// not served.
func TestOpen(t *testing.T) {
	for _, format := range []string{"sha1", "sha256"} {
		t.Run(format, func(t *testing.T) {
			dir, r, want := fixture(t, format)
			for _, p := range []string{"info/refs", "objects/info/packs"} {
				_, got, err := read(t, r, p, nil)
				if err != nil || got != want[p] {
					t.Errorf("%s: got %q (%v); want update-server-info's %q", p, got, err, want[p])
				}
			}
			if _, got, err := read(t, r, "HEAD", nil); err != nil || got != "ref: refs/heads/main\n" {
				t.Errorf("HEAD: got %q, %v", got, err)
			}
			blob := want["loose"]
			served := []string{"objects/" + blob[:2] + "/" + blob[2:]}
			for _, l := range strings.Split(strings.TrimSpace(want["objects/info/packs"]), "\n") {
				name := strings.TrimPrefix(l, "P ")
				served = append(served, "objects/pack/"+name, "objects/pack/"+strings.TrimSuffix(name, ".pack")+".idx")
			}
			for _, p := range served {
				f, got, err := read(t, r, p, nil)
				if err != nil {
					t.Fatalf("%s: %v", p, err)
				}
				file, _ := os.ReadFile(filepath.Join(dir, p))
				if got != string(file) || !f.Immutable {
					t.Errorf("%s: %d bytes, immutable %v; want the file's %d, immutable", p, len(got), f.Immutable, len(file))
				}
			}
			pack := strings.TrimPrefix(strings.SplitN(want["objects/info/packs"], "\n", 2)[0], "P ")
			for _, p := range []string{
				"config", "objects/../config", "objects/" + blob[:2] + "/../../config", "objects/" + blob[:2] + "/" + strings.ToUpper(blob[2:]),
				"objects/" + blob[:2] + "/" + blob[2:] + "x", "objects/" + blob[:2] + "/" + blob[2:len(blob)-1],
				"objects/info/alternates", "objects/info/http-alternates", "objects/pack/" + strings.TrimSuffix(pack, ".pack") + ".keep",
				"objects/pack/" + strings.TrimSuffix(pack, ".pack") + ".rev", "objects/pack/pack-" + strings.Repeat("0", len(blob)) + ".pack",
				"info/refs/x", "hooks/pre-receive", "", "/etc/passwd", strings.Repeat("a", MaxPath+1),
			} {
				if _, err := Open(r, p, nil); !errors.Is(err, ErrNotFound) {
					t.Errorf("Open(%.60q): %v; want not found", p, err)
				}
			}
			// Hidden references: out of info/refs; no object served.
			hidden := policy.Hidden{"refs/heads/loose"}.Func()
			_, got, _ := read(t, r, "info/refs", hidden)
			if strings.Contains(got, "refs/heads/loose") || !strings.Contains(got, "refs/heads/main") {
				t.Errorf("info/refs with refs/heads/loose hidden:\n%s", got)
			}
			for _, p := range served {
				if _, err := Open(r, p, hidden); !errors.Is(err, ErrHidden) {
					t.Errorf("Open(%s) with hidden references: %v; want ErrHidden", p, err)
				}
			}
			if _, _, err := read(t, r, "HEAD", policy.Hidden{"refs/heads/main"}.Func()); !errors.Is(err, ErrNotFound) {
				t.Errorf("HEAD through a hidden reference: %v; want not found", err)
			}
		})
	}
}

// TestFrames round-trips the frames and refuses malformed ones.
func TestFrames(t *testing.T) {
	var b bytes.Buffer
	WriteRequest(&b, "objects/info/packs")
	if p, err := ReadRequest(&b); err != nil || p != "objects/info/packs" {
		t.Errorf("request: got %q, %v", p, err)
	}
	for _, f := range []*File{nil, {ContentType: TypePack, Size: 1 << 40, Immutable: true}, {ContentType: TypeText, Size: 0}} {
		b.Reset()
		WriteHeader(&b, f)
		h, err := ReadHeader(&b)
		if err != nil || h.Found != (f != nil) || f != nil && (h.Size != f.Size || h.Immutable != f.Immutable || h.ContentType != f.ContentType) {
			t.Errorf("header of %+v: got %+v, %v", f, h, err)
		}
	}
	for _, s := range []string{"found", "found -1 0 text/plain", "found 1 2 text/plain", "found 1 0 text/html", "found x 0 text/plain", "gone"} {
		b.Reset()
		b.WriteString(strings.Repeat("0", 4-len(hexLen(len(s)+4))) + hexLen(len(s)+4) + s)
		if h, err := ReadHeader(&b); err == nil {
			t.Errorf("ReadHeader(%q) = %+v; want an error", s, h)
		}
	}
}

func hexLen(n int) string {
	const digits = "0123456789abcdef"
	s := ""
	for ; n > 0; n >>= 4 {
		s = string(digits[n&15]) + s
	}
	return s
}
