package bundle

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotd/internal/git/oid"
	"gotd/internal/gittest"
)

var (
	id1 = strings.Repeat("1", 40)
	id2 = strings.Repeat("2", 40)
	id6 = strings.Repeat("6", 64)
)

func TestRead(t *testing.T) {
	tests := []struct {
		name, in  string
		version   int
		format    oid.Format
		prereqs   int
		refs      []string
		rest      string // what br holds after the header
		wantError string
	}{
		{name: "v2", in: "# v2 git bundle\n" + id1 + " refs/heads/main\n" + id2 + " HEAD\n\nPACK",
			version: 2, format: oid.SHA1, refs: []string{"refs/heads/main", "HEAD"}, rest: "PACK"},
		{name: "prerequisites", in: "# v2 git bundle\n-" + id1 + " a subject line\n-" + id2 + "\n" + id1 + " refs/tags/v1\n\n",
			version: 2, format: oid.SHA1, prereqs: 2, refs: []string{"refs/tags/v1"}},
		{name: "v3 sha256", in: "# v3 git bundle\n@object-format=sha256\n" + id6 + " refs/heads/main\n\nPACK",
			version: 3, format: oid.SHA256, refs: []string{"refs/heads/main"}, rest: "PACK"},
		{name: "v3 sha1", in: "# v3 git bundle\n@object-format=sha1\n" + id1 + " refs/heads/main\n\n",
			version: 3, format: oid.SHA1, refs: []string{"refs/heads/main"}},
		{name: "no refs", in: "# v2 git bundle\n\n", version: 2, format: oid.SHA1},

		{name: "empty", in: "", wantError: "line 1"},
		{name: "v1", in: "# v1 git bundle\n\n", wantError: "not a v2 or v3"},
		{name: "no end", in: "# v2 git bundle\n" + id1 + " refs/heads/main\n", wantError: "unexpected EOF"},
		{name: "capability in v2", in: "# v2 git bundle\n@object-format=sha1\n\n", wantError: "out of place"},
		{name: "unknown capability", in: "# v3 git bundle\n@frobnicate\n\n", wantError: "unknown capability"},
		{name: "filter", in: "# v3 git bundle\n@filter=blob:none\n\n", wantError: "filtered"},
		{name: "repeated capability", in: "# v3 git bundle\n@object-format=sha1\n@object-format=sha1\n\n", wantError: "repeated"},
		{name: "unknown format", in: "# v3 git bundle\n@object-format=md5\n\n", wantError: "unknown object format"},
		{name: "sha1 id in sha256", in: "# v3 git bundle\n@object-format=sha256\n" + id1 + " refs/heads/main\n\n", wantError: "bad object id"},
		{name: "upper-case id", in: "# v2 git bundle\n" + strings.Repeat("A", 40) + " refs/heads/main\n\n", wantError: "bad object id"},
		{name: "short id", in: "# v2 git bundle\n-1234\n\n", wantError: "bad object id"},
		{name: "no name", in: "# v2 git bundle\n" + id1 + "\n\n", wantError: "without a name"},
		{name: "bad name", in: "# v2 git bundle\n" + id1 + " refs/heads/a..b\n\n", wantError: "invalid reference name"},
		{name: "name with space", in: "# v2 git bundle\n" + id1 + " refs/heads/a b\n\n", wantError: "invalid reference name"},
		{name: "prerequisite after ref", in: "# v2 git bundle\n" + id1 + " refs/heads/main\n-" + id2 + "\n\n", wantError: "after a reference"},
		{name: "long line", in: "# v2 git bundle\n" + id1 + " refs/heads/" + strings.Repeat("x", 5000) + "\n\n", wantError: "line too long: over"},
		{name: "CRLF", in: "# v2 git bundle\r\n\n", wantError: "not a v2 or v3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			br := bufio.NewReaderSize(strings.NewReader(tt.in), 64)
			h, err := Read(br, Limits{})
			if tt.wantError != "" {
				if err == nil || !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tt.wantError) {
					t.Fatalf("Read: got %v; want an ErrFormat saying %q", err, tt.wantError)
				}
				return
			}
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if h.Version != tt.version || h.Format != tt.format || len(h.Prerequisites) != tt.prereqs {
				t.Errorf("got v%d %v %d prerequisites; want v%d %v %d", h.Version, h.Format, len(h.Prerequisites), tt.version, tt.format, tt.prereqs)
			}
			var names []string
			for _, r := range h.Refs {
				names = append(names, r.Name)
			}
			if strings.Join(names, ",") != strings.Join(tt.refs, ",") {
				t.Errorf("got refs %v; want %v", names, tt.refs)
			}
			rest, _ := io.ReadAll(br)
			if string(rest) != tt.rest {
				t.Errorf("after the header: got %q; want %q", rest, tt.rest)
			}
		})
	}
}

func TestReadLimits(t *testing.T) {
	in := "# v2 git bundle\n" + strings.Repeat(id1+" refs/heads/main\n", 10) + "\n"
	_, err := Read(bufio.NewReader(strings.NewReader(in)), Limits{MaxLines: 5})
	if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "more than 5 lines") {
		t.Errorf("got %v; want more than 5 lines", err)
	}
	_, err = Read(bufio.NewReader(strings.NewReader(in)), Limits{MaxBytes: 200})
	if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "longer than 200 bytes") {
		t.Errorf("got %v; want longer than 200 bytes", err)
	}
}

// TestCGitBundles: headers C Git writes are read as git bundle
// list-heads lists them, and Write writes what C Git verifies.
func TestCGitBundles(t *testing.T) {
	for _, format := range []string{"sha1", "sha256"} {
		t.Run(format, func(t *testing.T) {
			dir := gittest.InitBare(t, format)
			gittest.Generate(t, dir, gittest.History{Commits: 3, Branches: 1})
			path := filepath.Join(t.TempDir(), "b.bundle")
			gittest.Git(t, dir, "bundle", "create", "-q", path, "--all", "^main~1")
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			h, err := Read(bufio.NewReader(bytes.NewReader(data)), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			var got strings.Builder
			for _, r := range h.Refs {
				got.WriteString(r.ID.String() + " " + r.Name + "\n")
			}
			if want := gittest.Git(t, dir, "bundle", "list-heads", path); got.String() != want {
				t.Errorf("refs:\n%s\nwant (git bundle list-heads):\n%s", got.String(), want)
			}
			if len(h.Prerequisites) == 0 {
				t.Errorf("no prerequisites read from a bundle made with ^main~1")
			}
			if f, _ := oid.ParseFormat(format); h.Format != f {
				t.Errorf("format %v; want %v", h.Format, f)
			}
			// Our header on C Git's pack: the same bundle to git.
			var b bytes.Buffer
			if err := Write(&b, h); err != nil {
				t.Fatal(err)
			}
			packAt := bytes.Index(data, []byte("\nPACK")) + 1
			b.Write(data[packAt:])
			ours := filepath.Join(t.TempDir(), "ours.bundle")
			if err := os.WriteFile(ours, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			gittest.Git(t, dir, "bundle", "verify", "-q", ours)
		})
	}
}
