package oid

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestSumKnownIDs(t *testing.T) {
	// Ids of the empty blob, as `git hash-object --stdin </dev/null` prints
	// them in each format.
	for _, tc := range []struct {
		f    Format
		want string
	}{
		{SHA1, "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"},
		{SHA256, "473a0f4c3be8a93681a267e3b1e9a7dcda1185436fe141f7749120a303721813"},
	} {
		h := NewHasher(tc.f)
		h.Write([]byte("blob 0\x00"))
		id, err := h.ID()
		if err != nil || id.String() != tc.want {
			t.Errorf("%v: got %v, %v; want %s", tc.f, id, err, tc.want)
		}
		p, err := ParseHex(tc.f, tc.want)
		if err != nil || p != id {
			t.Errorf("ParseHex(%s) = %v, %v", tc.want, p, err)
		}
		q, err := ParseHexBytes(tc.f, []byte(tc.want))
		if err != nil || q != id {
			t.Errorf("ParseHexBytes(%s) = %v, %v", tc.want, q, err)
		}
	}
}

func TestParseHexInvalid(t *testing.T) {
	for _, s := range []string{"", "e69de29bb2d1d6434b8b29ae775ad8c2e48c539", "g69de29bb2d1d6434b8b29ae775ad8c2e48c5391"} {
		if _, err := ParseHex(SHA1, s); err == nil {
			t.Errorf("ParseHex(%q) succeeded", s)
		}
		if _, err := ParseHexBytes(SHA1, []byte(s)); err == nil {
			t.Errorf("ParseHexBytes(%q) succeeded", s)
		}
	}
}

// TestCollisionDetected hashes the first kilobyte of shattered-1.pdf,
// half of the published SHA-1 collision, which the collision detection
// C Git uses must flag. The file ships with the sha1cd module; the test
// finds it through the go command.
func TestCollisionDetected(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/pjbgf/sha1cd").Output()
	if err != nil {
		t.Skipf("cannot locate the sha1cd module: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "test", "testdata", "files", "shattered-1.pdf"))
	if err != nil {
		t.Skipf("shattered-1.pdf not available: %v", err)
	}
	h := NewHasher(SHA1)
	h.Write(data[:1024])
	if _, err := h.ID(); !errors.Is(err, ErrCollision) {
		t.Errorf("hash of shattered-1.pdf's first KiB: err = %v; want ErrCollision", err)
	}
	h = NewHasher(SHA1)
	h.Write([]byte("an ordinary input"))
	if _, err := h.ID(); err != nil {
		t.Errorf("ordinary input: err = %v; want nil", err)
	}
}

// TestHasherIDAllocs guards the hot path of indexing: taking the id of
// a hashed object allocates nothing.
func TestHasherIDAllocs(t *testing.T) {
	for _, f := range []Format{SHA1, SHA256} {
		h := NewHasher(f)
		h.Write([]byte("blob 0\x00"))
		if n := testing.AllocsPerRun(100, func() { h.ID() }); n != 0 {
			t.Errorf("%v: Hasher.ID allocates %v times; want 0", f, n)
		}
	}
}
