package uploadarchive

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"gotd/internal/git/repo"
	"gotd/internal/gittest"
	"gotd/internal/policy"
	"gotd/internal/protocol/pktline"
)

// TestMain doubles as the upload-archive program that the tests' git
// clients run: with GOTD_TEST_UPLOADARCHIVE set, the test binary
// serves the repository named by its last argument on standard input
// and output, hiding the comma-separated reference namespaces of the
// variable's value.
func TestMain(m *testing.M) {
	if hidden, ok := os.LookupEnv("GOTD_TEST_UPLOADARCHIVE"); ok {
		os.Exit(serveForGit(hidden))
	}
	os.Exit(m.Run())
}

func serveForGit(hidden string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	r, err := repo.Open(os.Args[len(os.Args)-1], repo.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "test upload-archive:", err)
		return 1
	}
	defer r.Close()
	opts := Options{Repo: r, Log: log}
	if hidden != "" {
		opts.Hidden = policy.Hidden(strings.Split(hidden, ",")).Func()
	}
	if _, err := Serve(context.Background(), os.Stdin, os.Stdout, opts); err != nil {
		return 1
	}
	return 0
}

// fixture is a generated repository with a hidden branch and a commit
// no reference reaches.
func fixture(t testing.TB, format string) (dir, hiddenTip, dangling string) {
	t.Helper()
	dir = gittest.InitBare(t, format)
	gittest.Generate(t, dir, gittest.History{Commits: 8, Branches: 1, Files: 12})
	tree := strings.TrimSpace(gittest.Git(t, dir, "rev-parse", "main^{tree}"))
	hiddenTip = strings.TrimSpace(gittest.GitInput(t, dir, []byte("secret\n"), "commit-tree", tree, "-p", "main"))
	gittest.Git(t, dir, "update-ref", "refs/secret/x", hiddenTip)
	dangling = strings.TrimSpace(gittest.GitInput(t, dir, []byte("dangling\n"), "commit-tree", tree))
	return dir, hiddenTip, dangling
}

// remote runs C Git's `git archive --remote` against the test binary
// serving dir, hiding refs/secret/.
func remote(t *testing.T, dir string, args ...string) ([]byte, string, error) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	all := append([]string{"archive", "--remote=" + dir, "--exec=GOTD_TEST_UPLOADARCHIVE=refs/secret/ " + exe}, args...)
	cmd := exec.Command("git", all...)
	cmd.Env = gittest.Env(t)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.Bytes(), errb.String(), err
}

// local runs `git archive` in dir.
func local(t *testing.T, dir string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("git", append([]string{"archive"}, args...)...)
	cmd.Dir, cmd.Env = dir, gittest.Env(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git archive %q: %v", args, err)
	}
	return out
}

// TestRemoteTarMatchesGit asks through C Git's client for tar
// archives of references, tags, a reachable commit id, with a prefix
// and paths, and compares them byte for byte with what `git archive`
// writes locally; tgz decompresses to the same bytes.
func TestRemoteTarMatchesGit(t *testing.T) {
	for _, format := range []string{"sha1", "sha256"} {
		t.Run(format, func(t *testing.T) {
			dir, _, _ := fixture(t, format)
			old := strings.TrimSpace(gittest.Git(t, dir, "rev-parse", "main~3"))
			for _, args := range [][]string{
				{"HEAD"},
				{"--format=tar", "main"},
				{"topic0"},
				{"refs/heads/main"},
				{"v1.0"},
				{"nested"},
				{old},
				{"--prefix=project-1.0/", "HEAD"},
				{"--prefix", "x-", "HEAD"},
				{"HEAD", "dir0"},
				{"HEAD", "dir1/sub1/", "bin/run.sh"},
				{"--prefix=p/", "main", "--", "dir2"},
			} {
				got, stderr, err := remote(t, dir, args...)
				if err != nil {
					t.Fatalf("git archive --remote %q: %v\n%s", args, err, stderr)
				}
				want := local(t, dir, args...)
				if !bytes.Equal(got, want) {
					t.Errorf("git archive --remote %q: %d bytes differ from git archive's %d", args, len(got), len(want))
				}
				if args[0] == "--format=tar" {
					continue
				}
				gz, stderr, err := remote(t, dir, append([]string{"--format=tgz", "-9"}, args...)...)
				if err != nil {
					t.Fatalf("git archive --remote --format=tgz %q: %v\n%s", args, err, stderr)
				}
				zr, err := gzip.NewReader(bytes.NewReader(gz))
				if err != nil {
					t.Fatal(err)
				}
				if tar, err := io.ReadAll(zr); err != nil || !bytes.Equal(tar, want) {
					t.Errorf("tgz of %q: %d bytes (%v), want git archive's %d", args, len(tar), err, len(want))
				}
			}
		})
	}
}

// TestRemoteZip compares the zip's entries with C Git's.
func TestRemoteZip(t *testing.T) {
	dir, _, _ := fixture(t, "sha1")
	for _, args := range [][]string{{"--format=zip", "HEAD"}, {"--format=zip", "-0", "--prefix=z/", "v1.0", "dir0"}} {
		got, stderr, err := remote(t, dir, args...)
		if err != nil {
			t.Fatalf("git archive --remote %q: %v\n%s", args, err, stderr)
		}
		if g, w := zipListing(t, got), zipListing(t, local(t, dir, args...)); g != w {
			t.Errorf("zip %q:\n got %s\nwant %s", args, g, w)
		}
	}
}

// TestRemoteZipLevel: -0 stores the zip's files, as C Git's does.
func TestRemoteZipLevel(t *testing.T) {
	dir, _, _ := fixture(t, "sha1")
	got, stderr, err := remote(t, dir, "--format=zip", "-0", "HEAD")
	if err != nil {
		t.Fatalf("git archive --remote -0: %v\n%s", err, stderr)
	}
	zr, err := zip.NewReader(bytes.NewReader(got), int64(len(got)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		if f.Method != zip.Store {
			t.Errorf("%s: method %d; want stored", f.Name, f.Method)
		}
	}
}

// zipListing lists a zip's names, modes and contents.
func zipListing(t *testing.T, b []byte) string {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var s strings.Builder
	fmt.Fprintf(&s, "comment %q\n", zr.Comment)
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&s, "%s %v %q\n", f.Name, f.Mode(), data)
	}
	return s.String()
}

// TestRemoteSubtreeAndList: "REF:path" archives that tree (stamped with
// the current time, as C Git does, so compared by listing), and --list
// names the formats a remote may ask for, as C Git's server lists them.
func TestRemoteSubtreeAndList(t *testing.T) {
	dir, _, _ := fixture(t, "sha1")
	got, stderr, err := remote(t, dir, "HEAD:dir0")
	if err != nil {
		t.Fatalf("git archive --remote HEAD:dir0: %v\n%s", err, stderr)
	}
	if g, w := tarNames(t, got), tarNames(t, local(t, dir, "HEAD:dir0")); g != w {
		t.Errorf("HEAD:dir0 lists\n%s\nwant\n%s", g, w)
	}
	list, stderr, err := remote(t, dir, "--list")
	if err != nil {
		t.Fatalf("git archive --remote --list: %v\n%s", err, stderr)
	}
	if g, w := string(list), "tar\ntgz\ntar.gz\nzip\n"; g != w {
		t.Errorf("--list: got %q; want %q", g, w)
	}
}

func tarNames(t *testing.T, b []byte) string {
	t.Helper()
	cmd := exec.Command("tar", "tvf", "-")
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	// Drop the times.
	var s strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(l)
		fmt.Fprintf(&s, "%s %s %s\n", f[0], f[2], strings.Join(f[5:], " "))
	}
	return s.String()
}

// TestRemoteRefused: what the client may not have, or may not ask, is
// refused with a NACK that C Git's client prints.
func TestRemoteRefused(t *testing.T) {
	dir, hiddenTip, dangling := fixture(t, "sha1")
	blob := strings.TrimSpace(gittest.Git(t, dir, "rev-parse", "main:dir0/sub0/file0.txt"))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"nosuch"}, "NACK no such ref"},
		{[]string{"secret/x"}, "NACK no such ref"},
		{[]string{"refs/secret/x"}, "NACK no such ref"},
		{[]string{hiddenTip}, "NACK no such ref"},
		{[]string{dangling}, "NACK no such ref"},
		{[]string{blob}, "NACK no such ref"},
		{[]string{"HEAD~1"}, "NACK no such ref"},
		{[]string{"blob-tag"}, "NACK not a tree object"},
		{[]string{"HEAD:bin/run.sh"}, "NACK not a tree object"},
		{[]string{"HEAD:nosuch"}, "NACK not a valid object name"},
		{[]string{"HEAD", "nosuch"}, "NACK pathspec did not match any files"},
		{[]string{"--format=rar", "HEAD"}, "NACK Unknown archive format"},
		{[]string{"--format=tar", "-9", "HEAD"}, "NACK Argument not supported for format 'tar': -9"},
		{[]string{"--bogus", "HEAD"}, "NACK unknown option"},
		{[]string{"--add-file=x", "HEAD"}, "NACK options '--add-file' and '--remote' cannot be used together"},
		{[]string{"--format=zip"}, "NACK must specify a tree-ish"},
	} {
		_, stderr, err := remote(t, dir, tc.args...)
		if err == nil {
			t.Errorf("git archive --remote %q succeeded; want it refused", tc.args)
			continue
		}
		if !strings.Contains(stderr, tc.want) {
			t.Errorf("git archive --remote %q: stderr %q; want %q", tc.args, stderr, tc.want)
		}
	}
}

// TestTranscripts serves requests C Git's client would not send and
// checks the answer's packets.
func TestTranscripts(t *testing.T) {
	dir, _, _ := fixture(t, "sha1")
	r, err := repo.Open(dir, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	many := strings.Repeat("argument HEAD\n", maxArgs+1) + "|"
	for _, tc := range []struct {
		name, in, want string
	}{
		{"remote", "argument --remote=x\nargument HEAD\n|", "NACK Unexpected option --remote\n"},
		{"exec", "argument --exec=x\nargument HEAD\n|", "NACK the option '--exec' requires '--remote'\n"},
		{"output", "argument -o\nargument f\nargument HEAD\n|", "NACK Unexpected option --output\n"},
		{"output long", "argument --output=/tmp/x\nargument HEAD\n|", "NACK Unexpected option --output\n"},
		{"not argument", "want HEAD\n|", "NACK 'argument' token or flush expected\n"},
		{"too many", many, fmt.Sprintf("NACK Too many options (>%d)\n", maxArgs)},
		{"prefix without value", "argument HEAD\nargument --prefix\n|", "NACK option '--prefix' requires a value\n"},
		{"empty", "|", "NACK must specify a tree-ish\n"},
		{"eof", "argument HEAD\n", "NACK protocol error: unexpected end of input\n"},
		{"delim", "argument HEAD\n\x01", "NACK protocol error: unexpected delim packet\n"},
		{"big prefix", "argument --prefix=" + strings.Repeat("p", maxPrefix+1) + "\nargument HEAD\n|", "NACK invalid prefix\n"},
		{"long arguments", strings.Repeat("argument "+strings.Repeat("x", 60000)+"\n", 5) + "|", "NACK arguments too long (limit 256 KiB)\n"},
		{"list", "argument --list\n|", "ACK\n|\x01tar\ntgz\ntar.gz\nzip\n|"},
		{"list without newlines", "argument -l|", "ACK\n|\x01tar\ntgz\ntar.gz\nzip\n|"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			Serve(context.Background(), strings.NewReader(packets(tc.in)), &out, Options{Repo: r})
			if got := readPackets(t, out.Bytes()); got != tc.want {
				t.Errorf("got %.200q; want %q", got, tc.want)
			}
		})
	}
}

// packets turns a transcript into pkt-lines: each '|' is a flush,
// each '\x01' a delim, each "\n" ends a data packet (which keeps it);
// text before a '|' without one is a packet without a newline.
func packets(s string) string {
	var b bytes.Buffer
	pw := pktline.NewWriter(&b)
	var line strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '|':
			if line.Len() > 0 {
				pw.WriteString(line.String())
				line.Reset()
			}
			pw.Flush()
		case 1:
			pw.Delim()
		case '\n':
			line.WriteByte(c)
			pw.WriteString(line.String())
			line.Reset()
		default:
			line.WriteByte(c)
		}
	}
	if line.Len() > 0 {
		pw.WriteString(line.String())
	}
	return b.String()
}

// readPackets renders a server's answer: data packets as their
// payloads, flushes as '|'.
func readPackets(t *testing.T, b []byte) string {
	t.Helper()
	pr := pktline.NewReader(bytes.NewReader(b))
	var s strings.Builder
	for {
		k, p, err := pr.Read()
		if err == io.EOF {
			return s.String()
		}
		if err != nil {
			t.Fatalf("answer: %v", err)
		}
		if k == pktline.Flush {
			s.WriteByte('|')
		} else {
			s.Write(p)
		}
	}
}

// TestRequestTimeout: a client that sends nothing is dropped after
// the request timeout.
func TestRequestTimeout(t *testing.T) {
	dir, _, _ := fixture(t, "sha1")
	r, err := repo.Open(dir, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	var out bytes.Buffer
	start := time.Now()
	_, err = Serve(context.Background(), pr, &out, Options{Repo: r, RequestTimeout: 200 * time.Millisecond})
	if err == nil || time.Since(start) > 10*time.Second {
		t.Fatalf("Serve: %v after %v; want a timeout", err, time.Since(start))
	}
	if got, want := readPackets(t, out.Bytes()), "NACK timeout reading the request\n"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}
