package config

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gotd/internal/gittest"
)

// listing renders c the way `git config --list -z` prints a file: name,
// then newline and value unless the variable has no "=", then NUL.
func listing(c *Config) string {
	var b strings.Builder
	for _, e := range c.entries {
		if e.section != "" || e.hasSub {
			b.WriteString(e.section)
			if e.hasSub {
				b.WriteString(".")
				b.WriteString(e.subsection)
			}
			b.WriteString(".")
		}
		b.WriteString(e.key)
		if !e.noValue {
			b.WriteString("\n")
			b.WriteString(e.value)
		}
		b.WriteString("\x00")
	}
	return b.String()
}

// gitList asks C Git to list the variables of a file holding data. It
// reports ok=false if git refused the file.
func gitList(t testing.TB, data []byte) (string, bool) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := gittest.Run(t, "", nil, "config", "-f", path, "--list", "-z")
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("run git: %v", err)
		}
		return "", false
	}
	return out, true
}

var parseTests = []struct {
	name string
	in   string
	want string // listing; "" with wantErr
	err  bool
}{
	{"empty", "", "", false},
	{"comments only", "# a\n; b\n\n   \n", "", false},
	{"simple", "[core]\n\tbare = true\n", "core.bare\ntrue\x00", false},
	{"case folding", "[CoRe]\n\tBaRe = True\n", "core.bare\nTrue\x00", false},
	{"subsection", "[remote \"Origin\"]\nurl = x\n", "remote.Origin.url\nx\x00", false},
	{"legacy subsection lowered", "[remote.Origin]\nurl = x\n", "remote.origin.url\nx\x00", false},
	{"legacy deep", "[a.B.c]k=1\n", "a.b.c.k\n1\x00", false},
	{"dotted name with subsection", "[a.b \"C\"]k=1\n", "a.b.C.k\n1\x00", false},
	{"empty subsection", "[a \"\"]k=1\n", "a..k\n1\x00", false},
	{"subsection escapes", `[a "x\\y\z\""]k=1` + "\n", "a.x\\yz\".k\n1\x00", false},
	{"header and variable on one line", "[core] bare = true\n", "core.bare\ntrue\x00", false},
	{"no value", "[a]\nk\n", "a.k\x00", false},
	{"no value trailing blanks", "[a]\nk \t\n", "a.k\x00", false},
	{"empty value", "[a]\nk=\n", "a.k\n\x00", false},
	{"trimmed", "[a]\n  k  =  v  w  \n", "a.k\nv  w\x00", false},
	{"quotes", "[a]k = \" x \"y  z \n", "a.k\n x y  z\x00", false},
	{"quoted comment chars", "[a]k = \"#;\" # c\n", "a.k\n#;\x00", false},
	{"comment after value", "[a]k=1 ; c\nj=2#c\n", "a.k\n1\x00a.j\n2\x00", false},
	{"escapes", `[a]k = \t\n\b\\\"` + "\n", "a.k\n\t\n\b\\\"\x00", false},
	{"continuation", "[a]k = a\\\nb\n", "a.k\nab\x00", false},
	{"continuation in quotes", "[a]k=\"\\\n\"", "a.k\n\x00", false},
	{"continuation at eof", "[a]k=x\\", "a.k\nx\x00", false},
	{"crlf", "[a] k=1\r\nj=2\r\n", "a.k\n1\x00a.j\n2\x00", false},
	{"bom", "\xef\xbb\xbf[a]k=1\n", "a.k\n1\x00", false},
	{"no final newline", "[a]\n  k  =  v  ", "a.k\nv\x00", false},
	{"key with dash and digit", "[a]k-1=1\n", "a.k-1\n1\x00", false},
	{"key before section", "key = v\n[a]b=1\n", "key\nv\x00a.b\n1\x00", false},
	{"leading dot section", "[.x]k=1\n", ".x.k\n1\x00", false},
	{"multi", "[a]k=1\n[b]k=2\n[a]k=3\n", "a.k\n1\x00b.k\n2\x00a.k\n3\x00", false},
	{"include kept as data", "[include]path=/etc/passwd\n", "include.path\n/etc/passwd\x00", false},
	{"inner blanks become spaces", "[a]k=a\tb\rc \"\t\"\n", "a.k\na b c \t\x00", false},
	{"vertical tab is not blank", "[a]k=a\vb\f\n", "a.k\na\vb\f\x00", false},
	{"utf8 value", "[a]k=héllo\n", "a.k\nhéllo\x00", false},

	{"comment after bare key", "[a]\nk # c\n", "", true},
	{"space before ]", "[a \"b\"   ]k=1\n", "", true},
	{"unterminated quote", "[a]k=\"x\n", "", true},
	{"unknown escape", "[a]k=\\q\n", "", true},
	{"key starts with digit", "[a]1k=1\n", "", true},
	{"underscore in section", "[a_b]k=1\n", "", true},
	{"empty section", "[]k=1\n", "", true},
	{"unterminated subsection", "[a \"b]k=1\n", "", true},
	{"unterminated header", "[a\n", "", true},
	{"unterminated header at eof", "[a", "", true},
	{"unquoted subsection", "[a b]\n", "", true},
	{"subsection newline escape", "[a \"b\\\n\"]\n", "", true},
	{"garbage", "!\n", "", true},
	{"underscore in key", "[a]k_1=1\n", "", true},
	{"key with dot", "[a]k.x=1\n", "", true},
}

func TestParse(t *testing.T) {
	for _, tc := range parseTests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.in))
			if tc.err {
				if err == nil {
					t.Fatalf("got %q, nil error; want error", listing(c))
				}
			} else {
				if err != nil {
					t.Fatalf("got error %v; want %q", err, tc.want)
				}
				if got := listing(c); got != tc.want {
					t.Errorf("got %q; want %q", got, tc.want)
				}
			}
			// C Git is the oracle for every case in the table.
			gitOut, gitOK := gitList(t, []byte(tc.in))
			if gitOK == tc.err {
				t.Errorf("git accepted=%v; table says error=%v", gitOK, tc.err)
			}
			if gitOK && gitOut != tc.want {
				t.Errorf("git lists %q; table wants %q", gitOut, tc.want)
			}
		})
	}
}

func TestParseNUL(t *testing.T) {
	// A deliberate difference from C Git, which truncates at NUL.
	for _, in := range []string{"[a]k=a\x00b\n", "\x00", "[a\x00]\n", "[a \"\x00\"]\n", "[a]k\x00\n"} {
		if c, err := Parse([]byte(in)); err == nil {
			t.Errorf("Parse(%q) = %q; want error", in, listing(c))
		}
	}
}

func TestErrorLine(t *testing.T) {
	for _, tc := range []struct {
		in   string
		line string
	}{
		{"[a]\nk=1\n!\n", "line 3"},
		{"[a]\nk=\"x\ny=1\n", "line 2"},
		{"[a]\nk=a\\\nb\\\n\\q\n", "line 4"},
		{"\r\n\r\n[", "line 3"},
	} {
		_, err := Parse([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.line) {
			t.Errorf("Parse(%q) error = %v; want it to name %s", tc.in, err, tc.line)
		}
	}
}

func TestLookups(t *testing.T) {
	c, err := Parse([]byte(`
[core]
	repositoryformatversion = 1
	bare
	filemode = false
	empty =
	big = 2g
	bad = 12x
	hex = 0x10
[extensions]
	objectFormat = sha256
[remote "origin"]
	url = one
	fetch = +refs/heads/*:refs/remotes/origin/*
	fetch = +refs/tags/*:refs/tags/*
[remote "Origin"]
	url = two
[Core]
	FileMode = yes
`))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := c.Get("CORE", "", "RepositoryFormatVersion"); !ok || v != "1" {
		t.Errorf("Get version = %q, %v; want 1, true", v, ok)
	}
	if v, ok := c.Get("core", "", "missing"); ok || v != "" {
		t.Errorf("Get missing = %q, %v; want \"\", false", v, ok)
	}
	if v, ok := c.Get("remote", "origin", "url"); v != "one" || !ok {
		t.Errorf("Get remote.origin.url = %q, %v; want one", v, ok)
	}
	if v, _ := c.Get("remote", "Origin", "url"); v != "two" {
		t.Errorf("Get remote.Origin.url = %q; want two", v)
	}
	if v, ok := c.Get("remote", "", "url"); ok {
		t.Errorf("Get remote.url = %q; want unset", v)
	}
	got := c.GetAll("remote", "origin", "fetch")
	if len(got) != 2 || got[0] != "+refs/heads/*:refs/remotes/origin/*" || got[1] != "+refs/tags/*:refs/tags/*" {
		t.Errorf("GetAll fetch = %q", got)
	}
	if got := c.GetAll("remote", "origin", "nope"); got != nil {
		t.Errorf("GetAll nope = %q; want nil", got)
	}
	if got := strings.Join(c.Keys("core", ""), ","); got != "repositoryformatversion,bare,filemode,empty,big,bad,hex" {
		t.Errorf("Keys(core) = %s", got)
	}
	if got := strings.Join(c.Keys("extensions", ""), ","); got != "objectformat" {
		t.Errorf("Keys(extensions) = %s", got)
	}
	if got := strings.Join(c.Subsections("remote"), ","); got != "origin,Origin" {
		t.Errorf("Subsections(remote) = %s", got)
	}

	for _, tc := range []struct {
		key     string
		def     bool
		want    bool
		wantErr bool
	}{
		{"bare", false, true, false},
		{"filemode", false, true, false}, // last value ("yes") wins
		{"empty", true, false, false},
		{"missing", true, true, false},
		{"missing", false, false, false},
		{"repositoryformatversion", false, true, false},
		{"big", false, false, true}, // out of C int range
		{"bad", false, false, true},
	} {
		got, err := c.Bool("core", "", tc.key, tc.def)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("Bool(%s, %v) = %v, %v; want %v, error %v", tc.key, tc.def, got, err, tc.want, tc.wantErr)
		}
	}
	for _, tc := range []struct {
		key     string
		want    int64
		wantErr bool
	}{
		{"big", 2 << 30, false},
		{"hex", 16, false},
		{"missing", 7, false},
		{"bare", 0, true},
		{"empty", 0, true},
		{"bad", 0, true},
		{"filemode", 0, true},
	} {
		got, err := c.Int("core", "", tc.key, 7)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("Int(%s) = %v, %v; want %v, error %v", tc.key, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestParseInt(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"42", 42, true},
		{"-42", -42, true},
		{"+7", 7, true},
		{"  7", 7, true},
		{"1k", 1024, true},
		{"1K", 1024, true},
		{"3m", 3 << 20, true},
		{"5G", 5 << 30, true},
		{"010", 8, true},
		{"0x1f", 31, true},
		{"0X1F", 31, true},
		{"-0x10", -16, true},
		{"9223372036854775807", 1<<63 - 1, true},
		{"8589934591g", 8589934591 << 30, true},

		{"", 0, false},
		{" ", 0, false},
		{"-", 0, false},
		{"k", 0, false},
		{"7 ", 0, false},
		{"7kb", 0, false},
		{"7t", 0, false},
		{"08", 0, false},
		{"0x", 0, false},
		{"0xg", 0, false},
		{"0b1", 0, false},
		{"1_000", 0, false},
		{"9223372036854775808", 0, false},
		{"-9223372036854775808", 0, false},
		{"8589934592g", 0, false},
		{"99999999999999999999999", 0, false},
		{"1.5", 0, false},
	} {
		got, err := ParseInt(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseInt(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// TestIntAgainstGit compares integer and boolean parsing with
// `git config --type=int` and `--type=bool` on the same values.
func TestIntAgainstGit(t *testing.T) {
	values := []string{"0", "42", "-42", "+7", "1k", "3M", "2g", "010", "0x1f", "-0x10", "", "k", "7 ", "08", "0x",
		"0xg", "true", "YES", "On", "off", "No", "FALSE", "2147483647", "2147483648", "-2147483648", "-2147483647", "9223372036854775807", "-9223372036854775808", "-9223372036854775807", "8589934591g", "maybe", "1.5"}
	var b bytes.Buffer
	b.WriteString("[t]\n")
	for i, v := range values {
		b.WriteString("\tk" + strings.Repeat("x", i) + " = \"" + v + "\"\n")
	}
	path := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range values {
		key := "k" + strings.Repeat("x", i)
		gitInt, gitIntErr := gittest.Run(t, "", nil, "config", "-f", path, "--type=int", "t."+key)
		n, err := c.Int("t", "", key, 0)
		if (err == nil) != (gitIntErr == nil) {
			t.Errorf("int %q: got %d, %v; git %q, %v", v, n, err, gitInt, gitIntErr)
		} else if err == nil && strings.TrimSpace(gitInt) != strconv.FormatInt(n, 10) {
			t.Errorf("int %q: got %d; git %q", v, n, gitInt)
		}
		gitBool, gitBoolErr := gittest.Run(t, "", nil, "config", "-f", path, "--type=bool", "t."+key)
		bv, err := c.Bool("t", "", key, false)
		if (err == nil) != (gitBoolErr == nil) {
			t.Errorf("bool %q: got %v, %v; git %q, %v", v, bv, err, gitBool, gitBoolErr)
		} else if err == nil && strings.TrimSpace(gitBool) != map[bool]string{true: "true", false: "false"}[bv] {
			t.Errorf("bool %q: got %v; git %q", v, bv, gitBool)
		}
	}
}

func TestParseFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := ParseFile(filepath.Join(dir, "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: got %v; want fs.ErrNotExist", err)
	}
	big := filepath.Join(dir, "big")
	data := bytes.Repeat([]byte("# padding padding padding padding\n"), MaxFileSize/34+2)
	if err := os.WriteFile(big, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseFile(big); err == nil || !strings.Contains(err.Error(), "larger") {
		t.Errorf("oversized file: got %v; want size error", err)
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("[a]\n!\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseFile(bad); err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), bad) {
		t.Errorf("bad file: got %v; want line 2 and the path", err)
	}
}

// TestRealConfig reads the config C Git writes for new repositories of
// both formats.
func TestRealConfig(t *testing.T) {
	for _, format := range []string{"sha1", "sha256"} {
		dir := gittest.InitBare(t, format)
		gittest.Git(t, dir, "config", "remote.origin.url", "https://example.com/x y")
		gittest.Git(t, dir, "config", "--add", "remote.origin.fetch", "+refs/*:refs/*")
		gittest.Git(t, dir, "config", "--add", "remote.origin.fetch", "^refs/hidden/*")
		gittest.Git(t, dir, "config", "user.weird", "tab\there \"quoted\" back\\slash # not comment ")
		c, err := ParseFile(filepath.Join(dir, "config"))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := gitList(t, mustRead(t, filepath.Join(dir, "config")))
		if got := listing(c); got != want {
			t.Errorf("%s: got %q; want %q", format, got, want)
		}
		if bare, err := c.Bool("core", "", "bare", false); !bare || err != nil {
			t.Errorf("%s: core.bare = %v, %v; want true", format, bare, err)
		}
		of, _ := c.Get("extensions", "", "objectformat")
		if (format == "sha256") != (of == "sha256") {
			t.Errorf("%s: extensions.objectformat = %q", format, of)
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
