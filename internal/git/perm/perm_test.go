package perm

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		value string
		want  Shared
		err   bool
	}{
		{"", Shared{}, false},
		{"umask", Shared{}, false},
		{"FALSE", Shared{}, false},
		{"0", Shared{}, false},
		{"group", Shared{kind: group}, false},
		{"true", Shared{kind: group}, false},
		{"1", Shared{kind: group}, false},
		{"all", Shared{kind: everybody}, false},
		{"world", Shared{kind: everybody}, false},
		{"everybody", Shared{kind: everybody}, false},
		{"2", Shared{kind: everybody}, false},
		{"0640", Shared{kind: explicit, mode: 0o640}, false},
		{"0660", Shared{kind: explicit, mode: 0o660}, false},
		{"0777", Shared{kind: explicit, mode: 0o666}, false},
		{"0440", Shared{}, true}, // the owner could not write
		{"0999", Shared{}, true},
		{"friends", Shared{}, true},
	}
	for _, tt := range tests {
		got, err := Parse(tt.value)
		if (err != nil) != tt.err {
			t.Errorf("Parse(%q): got error %v; want error %v", tt.value, err, tt.err)
			continue
		}
		got.umask = 0
		if !tt.err && got != tt.want {
			t.Errorf("Parse(%q) = %+v; want %+v", tt.value, got, tt.want)
		}
	}
}

// TestModes: C Git's modes for shared repositories (git init --shared
// gives them), none for others in a private one whatever the umask
// (issue 19: objects were 0444 whatever the umask).
func TestModes(t *testing.T) {
	tests := []struct {
		s                  Shared
		readOnly, writable fs.FileMode
		dir                fs.FileMode
	}{
		{Shared{umask: 0o022}, 0o440, 0o640, 0o750},
		{Shared{umask: 0o002}, 0o440, 0o660, 0o770},
		{Shared{umask: 0o077}, 0o400, 0o600, 0o700},
		{Shared{umask: 0}, 0o440, 0o660, 0o770},
		{Shared{kind: group, umask: 0o022}, 0o440, 0o660, 0o770 | fs.ModeSetgid},
		{Shared{kind: group, umask: 0o077}, 0o440, 0o660, 0o770 | fs.ModeSetgid},
		{Shared{kind: everybody, umask: 0o077}, 0o444, 0o664, 0o775 | fs.ModeSetgid},
		{Shared{kind: explicit, mode: 0o640, umask: 0o022}, 0o440, 0o640, 0o750 | fs.ModeSetgid},
		{Shared{kind: explicit, mode: 0o600, umask: 0}, 0o400, 0o600, 0o700 | fs.ModeSetgid},
	}
	for _, tt := range tests {
		if got := tt.s.File(0o444); got != tt.readOnly {
			t.Errorf("%+v: File(0444) = %#o; want %#o", tt.s, got, tt.readOnly)
		}
		if got := tt.s.File(0o666); got != tt.writable {
			t.Errorf("%+v: File(0666) = %#o; want %#o", tt.s, got, tt.writable)
		}
		if got := tt.s.Dir(); got != tt.dir {
			t.Errorf("%+v: Dir() = %v; want %v", tt.s, got, tt.dir)
		}
	}
}

// TestMkdir: the umask does not narrow a shared directory.
func TestMkdir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	s := Shared{kind: group, umask: 0o077}
	if err := s.Mkdir(dir); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fi.Mode()&(fs.ModePerm|fs.ModeSetgid), 0o770|fs.ModeSetgid; got != want {
		t.Errorf("got %v; want %v", got, want)
	}
}
