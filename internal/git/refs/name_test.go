package refs

import (
	"errors"
	"os/exec"
	"testing"

	"gotd/internal/gittest"
)

// nameTests mirror the cases of C Git's t/t1402-check-ref-format.sh,
// written as full names under refs/.
var nameTests = []struct {
	name  string
	valid bool
}{
	{"refs/heads/foo", true},
	{"refs/foo/bar/baz", true},
	{"refs/heads/foo@bar", true},
	{"refs/foo./bar", true},
	{"refs/heads/fu\xc3\x9f", true},
	{"refs/heads/\xff\xfe", true}, // not UTF-8, still allowed
	{"refs/heads/@", true},
	{"refs/heads/a@", true},
	{"refs/heads/a{b}", true},
	{"refs/heads/-", true},
	{"refs/heads/a.b", true},
	{"refs/heads/a.lock.b", true},
	{"refs/heads/lock", true},
	{"refs/heads/.lockx", false},
	{"refs/tags/v1.0", true},

	{"refs", false},
	{"refs/", false},
	{"heads/foo", false},
	{"HEAD", false},
	{"@", false},
	{"", false},
	{"refs///heads/foo", false},
	{"refs/heads//foo", false},
	{"refs/heads/foo/", false},
	{"/refs/heads/foo", false},
	{"refs/./foo", false},
	{"refs/heads/./bar", false},
	{"refs/heads/bar/.", false},
	{"refs/.heads/foo", false},
	{"refs/heads/.foo", false},
	{"refs/heads/foo.", false},
	{"refs/heads/foo..bar", false},
	{"refs/heads/..", false},
	{"refs/heads/foo?bar", false},
	{"refs/heads/foo.lock", false},
	{"refs/heads///foo.lock", false},
	{"refs/foo.lock/bar", false},
	{"refs/foo.lock///bar", false},
	{"refs/heads/v@{ation", false},
	{"refs/heads/@{", false},
	{"refs/heads/foo\\bar", false},
	{"refs/heads/foo\t", false},
	{"refs/heads/foo\x7f", false},
	{"refs/heads/foo\x00bar", false},
	{"refs/heads/foo\nbar", false},
	{"refs/heads/foo bar", false},
	{"refs/heads/foo~1", false},
	{"refs/heads/foo^", false},
	{"refs/heads/foo:bar", false},
	{"refs/heads/*foo/bar", false},
	{"refs/heads/foo*/bar", false},
	{"refs/heads/f*o/bar", false},
	{"refs/heads/[x]", false},
}

func TestCheckName(t *testing.T) {
	_, noGit := exec.LookPath("git")
	for _, tc := range nameTests {
		err := CheckName(tc.name)
		if (err == nil) != tc.valid {
			t.Errorf("CheckName(%q) = %v; want valid=%v", tc.name, err, tc.valid)
		}
		if err != nil && !errors.Is(err, ErrBadName) {
			t.Errorf("CheckName(%q) = %v; want it to wrap ErrBadName", tc.name, err)
		}
		if noGit == nil && tc.name != "" && !containsNUL(tc.name) {
			if got := gitCheckRefFormat(t, tc.name); got != tc.valid && tc.name[:min(5, len(tc.name))] == "refs/" {
				t.Errorf("git check-ref-format %q: valid=%v; table says %v", tc.name, got, tc.valid)
			}
		}
	}
}

func containsNUL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return true
		}
	}
	return false
}

// gitCheckRefFormat asks C Git whether name is a valid reference name.
func gitCheckRefFormat(t testing.TB, name string) bool {
	t.Helper()
	_, err := gittest.Run(t, "", nil, "check-ref-format", name)
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("run git: %v", err)
		}
		return false
	}
	return true
}
