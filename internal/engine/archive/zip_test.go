package archive

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gotd/internal/gittest"
)

// TestZipMatchesGit checks WriteZip against git archive --format=zip:
// both pass unzip -t, list the same entries with the same modes, sizes
// and times (zipinfo, without the columns of compression), carry the
// same comment, and extract to the same files.
func TestZipMatchesGit(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("unzip"); err != nil {
		t.Skip("unzip not installed")
	}
	dir, r := fixture(t, "sha1", streamedSize)
	tests := []struct {
		rev    string
		prefix string
		paths  []string
	}{
		{rev: "extra"},
		{rev: "v-extra", prefix: "snap/"},
		{rev: "extra", prefix: "p/", paths: []string{"dir1", "link", "bin/run.sh", "vendor/sub"}},
		{rev: "main~2"},
	}
	for _, tt := range tests {
		args := []string{"--format=zip"}
		if tt.prefix != "" {
			args = append(args, "--prefix="+tt.prefix)
		}
		args = append(args, tt.rev)
		if len(tt.paths) > 0 {
			args = append(args, "--")
			args = append(args, tt.paths...)
		}
		work := t.TempDir()
		wantFile := filepath.Join(work, "want.zip")
		gotFile := filepath.Join(work, "got.zip")
		if err := os.WriteFile(wantFile, gitArchive(t, dir, args...), 0o644); err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if err := WriteZip(context.Background(), &got, r, resolveID(t, dir, r, tt.rev), Options{Prefix: tt.prefix, Paths: tt.paths}); err != nil {
			t.Fatalf("WriteZip %v: %v", args, err)
		}
		if err := os.WriteFile(gotFile, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		run(t, work, "unzip", "-tq", gotFile)
		if g, w := zipListing(t, work, gotFile), zipListing(t, work, wantFile); g != w {
			t.Errorf("zipinfo of WriteZip %v:\n%s\nwant (git archive):\n%s", args, g, w)
		}
		if g, w := run(t, work, "unzip", "-zq", gotFile), run(t, work, "unzip", "-zq", wantFile); g != w {
			t.Errorf("comment of WriteZip %v: got %q; want %q", args, g, w)
		}
		run(t, work, "unzip", "-q", "-d", filepath.Join(work, "got"), gotFile)
		run(t, work, "unzip", "-q", "-d", filepath.Join(work, "want"), wantFile)
		if out, err := exec.Command("diff", "-r", "--no-dereference", filepath.Join(work, "got"), filepath.Join(work, "want")).CombinedOutput(); err != nil {
			t.Errorf("WriteZip %v extracts differently from git archive: %v\n%s", args, err, out)
		}
	}
}

// zipListing is zipinfo's listing of file without the columns that
// depend on the compressor (version, creating system, text/binary and
// method) and the summary lines.
func zipListing(t *testing.T, dir, file string) string {
	var b strings.Builder
	for _, line := range strings.Split(run(t, dir, "zipinfo", file), "\n") {
		f := strings.Fields(line)
		if len(f) < 9 || strings.HasPrefix(line, "Archive:") || strings.HasPrefix(line, "Zip file size") || strings.Contains(line, "compressed:") {
			continue
		}
		b.WriteString(strings.Join(append([]string{f[0], f[3], f[6], f[7]}, f[8:]...), " "))
		b.WriteByte('\n')
	}
	return b.String()
}

func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = gittest.Env(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestZipLevels: ZipStore stores every file as git archive -0 does;
// levels 1 and 9 deflate the files (symbolic links are stored), 9 no
// smaller than 1; other levels are refused.
func TestZipLevels(t *testing.T) {
	t.Parallel()
	dir, r := fixture(t, "sha1", streamedSize)
	id := resolveID(t, dir, r, "extra")
	methods := func(b []byte) (map[uint16]int, uint64) {
		zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		m, size := map[uint16]int{}, uint64(0)
		for _, f := range zr.File {
			if f.UncompressedSize64 > 0 {
				m[f.Method]++
			}
			if f.Name != "big.bin" { // random bytes: no level shrinks them
				size += f.CompressedSize64
			}
		}
		return m, size
	}
	write := func(level int) []byte {
		var b bytes.Buffer
		if err := WriteZip(context.Background(), &b, r, id, Options{ZipLevel: level}); err != nil {
			t.Fatalf("WriteZip level %d: %v", level, err)
		}
		return b.Bytes()
	}
	stored, _ := methods(write(ZipStore))
	want, _ := methods(gitArchive(t, dir, "--format=zip", "-0", "extra"))
	if stored[zip.Deflate] != 0 || stored[zip.Store] != want[zip.Store] || want[zip.Deflate] != 0 {
		t.Errorf("ZipStore: methods %v; git archive -0: %v", stored, want)
	}
	fast, fastSize := methods(write(1))
	best, bestSize := methods(write(9))
	if fast[zip.Deflate] != best[zip.Deflate] || fast[zip.Deflate] <= stored[zip.Deflate] || bestSize >= fastSize {
		t.Errorf("levels 1 and 9: methods %v %v, sizes %d %d", fast, best, fastSize, bestSize)
	}
	for _, level := range []int{-2, 10} {
		if err := WriteZip(context.Background(), io.Discard, r, id, Options{ZipLevel: level}); err == nil {
			t.Errorf("WriteZip level %d: no error", level)
		}
	}
}
