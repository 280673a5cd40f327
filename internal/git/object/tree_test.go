package object

import (
	"bytes"
	"cmp"
	"strings"
	"testing"

	"gotd/internal/git/oid"
)

func TestTreeRoundTrip(t *testing.T) {
	for _, f := range []oid.Format{oid.SHA1, oid.SHA256} {
		id, _ := ID(f, Blob, []byte("x"))
		entries := []struct {
			mode uint32
			name string
			typ  Type
		}{
			{ModeBlob, "a.txt", Blob},
			{ModeExec, "run.sh", Blob},
			{ModeSymlink, "link", Blob},
			{ModeTree, "sub", Tree},
			{ModeGitlink, "vendor", Commit},
			{0o100664, "old", Blob},
		}
		var data []byte
		for _, e := range entries {
			data = AppendTreeEntry(data, e.mode, []byte(e.name), id)
		}
		it := NewTreeIter(f, data)
		for i, want := range entries {
			e, ok := it.Next()
			if !ok {
				t.Fatalf("%v: entry %d: Next = false, %v", f, i, it.Err())
			}
			if e.Mode != want.mode || string(e.Name) != want.name || e.ID != id || e.Type() != want.typ {
				t.Errorf("%v: entry %d: got %o %q %v %v; want %o %q %v", f, i, e.Mode, e.Name, e.ID, e.Type(), want.mode, want.name, want.typ)
			}
		}
		if _, ok := it.Next(); ok || it.Err() != nil {
			t.Errorf("%v: after last entry: ok=%v err=%v", f, ok, it.Err())
		}
		if it.Offset() != len(data) {
			t.Errorf("%v: Offset = %d; want %d", f, it.Offset(), len(data))
		}
	}
}

func TestTreeIterMalformed(t *testing.T) {
	raw := strings.Repeat("\x01", 20)
	for _, tc := range []struct {
		name, data string
		good       int // entries before the error
	}{
		{"empty mode", " a\x00" + raw, 0},
		{"mode only", "100644", 0},
		{"mode space end", "100644 ", 0},
		{"bad mode digit", "100844 a\x00" + raw, 0},
		{"mode letter", "10064a a\x00" + raw, 0},
		{"mode overflow", "77777777777 a\x00" + raw, 0},
		{"mode overflow long", strings.Repeat("7", 100) + " a\x00" + raw, 0},
		{"empty name", "100644 \x00" + raw, 0},
		{"no NUL", "100644 abc", 0},
		{"short id", "100644 a\x00" + raw[:19], 0},
		{"second short", "100644 a\x00" + raw + "100644 b\x00" + raw[:5], 1},
		{"trailing byte", "100644 a\x00" + raw + "1", 1},
	} {
		it := NewTreeIter(oid.SHA1, []byte(tc.data))
		n := 0
		for {
			if _, ok := it.Next(); !ok {
				break
			}
			n++
		}
		if n != tc.good || it.Err() == nil {
			t.Errorf("%s: got %d entries, err %v; want %d entries and an error", tc.name, n, it.Err(), tc.good)
		}
		if _, ok := it.Next(); ok {
			t.Errorf("%s: Next after error returned an entry", tc.name)
		}
	}
	it := NewTreeIter(0, []byte("100644 a\x00"+raw))
	if _, ok := it.Next(); ok || it.Err() == nil {
		t.Errorf("invalid format: got ok=%v err=%v; want an error", ok, it.Err())
	}
	// The largest mode that fits 32 bits is accepted.
	it = NewTreeIter(oid.SHA1, []byte("37777777777 a\x00"+raw))
	if e, ok := it.Next(); !ok || e.Mode != 0xffffffff {
		t.Errorf("mode 37777777777: got %o, %v, %v", e.Mode, ok, it.Err())
	}
}

func TestTreeIterAllocs(t *testing.T) {
	id, _ := ID(oid.SHA1, Blob, nil)
	var data []byte
	for _, n := range []string{"a", "b", "c", "d"} {
		data = AppendTreeEntry(data, ModeBlob, []byte(n), id)
	}
	allocs := testing.AllocsPerRun(100, func() {
		it := NewTreeIter(oid.SHA1, data)
		for {
			if _, ok := it.Next(); !ok {
				break
			}
		}
	})
	if allocs != 0 {
		t.Errorf("TreeIter: got %v allocations; want 0", allocs)
	}
	if !bytes.HasPrefix(data, []byte("100644 a\x00")) {
		t.Errorf("AppendTreeEntry wrote %q", data[:10])
	}
}

func TestCompareTreeNames(t *testing.T) {
	type name struct {
		s    string
		tree bool
	}
	// Git's order: the file "foo", then "foo-bar" and "foo.c" (bytes
	// below '/'), then the directory "foo", then "foo0" (after '/').
	sorted := []name{{"fo", false}, {"foo", false}, {"foo-bar", false}, {"foo.c", true}, {"foo", true}, {"foo0", false}, {"g", true}}
	for i, a := range sorted {
		for j, b := range sorted {
			want := cmp.Compare(i, j)
			if got := CompareTreeNames(a.s, a.tree, b.s, b.tree); got != want {
				t.Errorf("CompareTreeNames(%q %v, %q %v) = %d; want %d", a.s, a.tree, b.s, b.tree, got, want)
			}
			if got := CompareTreeNames([]byte(a.s), a.tree, []byte(b.s), b.tree); got != want {
				t.Errorf("bytes: CompareTreeNames(%q, %q) = %d; want %d", a.s, b.s, got, want)
			}
		}
	}
}
