package refs

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotd/internal/git/oid"
)

var (
	hexA = strings.Repeat("a", 40)
	hexB = strings.Repeat("b", 40)
	hexC = strings.Repeat("c", 40)
)

// storeWithPacked returns a Store over a repository whose only content
// is the given packed-refs file.
func storeWithPacked(t *testing.T, f oid.Format, data string) *Store {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "refs", "heads"), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "packed-refs"), []byte(data), 0o666); err != nil {
		t.Fatal(err)
	}
	return New(dir, f)
}

func TestPackedMalformed(t *testing.T) {
	const hdr = "# pack-refs with: peeled fully-peeled sorted \n"
	for _, tc := range []struct{ name, data string }{
		{"unknown comment", "# hello\n" + hexA + " refs/heads/x\n"},
		{"header not first", hexA + " refs/heads/x\n" + hdr},
		{"unterminated", hdr + hexA + " refs/heads/x"},
		{"unterminated header", "# pack-refs with: sorted"},
		{"short line", hdr + hexA[:10] + "\n"},
		{"missing name", hdr + hexA + " \n"},
		{"missing space", hdr + hexA + "refs/heads/x\n"},
		{"tab", hdr + hexA + "\trefs/heads/x\n"},
		{"bad hex", hdr + "g" + hexA[1:] + " refs/heads/x\n"},
		{"upper hex", hdr + strings.ToUpper(hexA) + " refs/heads/x\n"},
		{"sha256 id in sha1 file", hdr + strings.Repeat("a", 64) + " refs/heads/x\n"},
		{"peeled first", hdr + "^" + hexA + "\n"},
		{"peeled short", hdr + hexA + " refs/tags/x\n^" + hexA[1:] + "\n"},
		{"peeled long", hdr + hexA + " refs/tags/x\n^" + hexA + "a\n"},
		{"peeled bad hex", hdr + hexA + " refs/tags/x\n^" + "z" + hexA[1:] + "\n"},
		{"two peeled", hdr + hexA + " refs/tags/x\n^" + hexA + "\n^" + hexA + "\n"},
		{"blank line", hdr + hexA + " refs/heads/x\n\n"},
		{"out of order", hdr + hexA + " refs/heads/y\n" + hexA + " refs/heads/x\n"},
		{"duplicate", hdr + hexA + " refs/heads/x\n" + hexB + " refs/heads/x\n"},
		{"duplicate unsorted", hexA + " refs/heads/x\n" + hexB + " refs/heads/x\n"},
	} {
		s := storeWithPacked(t, oid.SHA1, tc.data)
		err := s.List("refs/", func(Ref) error { return nil })
		if !errors.Is(err, ErrCorruptPacked) {
			t.Errorf("%s: List = %v; want ErrCorruptPacked", tc.name, err)
		}
		if _, err := s.Read("refs/heads/x"); err == nil && tc.name != "out of order" && tc.name != "duplicate" && tc.name != "blank line" {
			// A binary search need not meet the bad part of a sorted
			// file, as in C Git.
			t.Errorf("%s: Read succeeded", tc.name)
		}
	}
}

func TestPackedBadNames(t *testing.T) {
	// Records whose names are not reference names are not listed and
	// cannot be read, but do not make the file unreadable.
	s := storeWithPacked(t, oid.SHA1, hexA+" refs/heads/x\r\n"+hexB+" refs/heads/y\n")
	var got []string
	if err := s.List("", func(r Ref) error { got = append(got, r.Name); return nil }); err != nil || !same(got, []string{"refs/heads/y"}) {
		t.Errorf("List = %q, %v; want refs/heads/y", got, err)
	}
	if _, err := s.Read("refs/heads/x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Read(x) = %v; want ErrNotFound", err)
	}
}

func TestPackedTraits(t *testing.T) {
	body := hexA + " refs/heads/main\n" +
		hexB + " refs/tags/annotated\n^" + hexC + "\n" +
		hexC + " refs/tags/light\n"
	for _, tc := range []struct {
		header string
		// what Peeled is for main, annotated, light
		want [3]string
	}{
		{"", [3]string{"", hexC, ""}},
		{"# pack-refs with: sorted \n", [3]string{"", hexC, ""}},
		{"# pack-refs with: peeled \n", [3]string{"", hexC, hexC}},
		{"# pack-refs with: peeled sorted \n", [3]string{"", hexC, hexC}},
		{"# pack-refs with: peeled fully-peeled sorted \n", [3]string{hexA, hexC, hexC}},
		{"# pack-refs with: fully-peeled unknown-trait \n", [3]string{hexA, hexC, hexC}},
	} {
		s := storeWithPacked(t, oid.SHA1, tc.header+body)
		for i, name := range []string{"refs/heads/main", "refs/tags/annotated", "refs/tags/light"} {
			ref, err := s.Read(name)
			got := ""
			if ref.Peeled.Valid() {
				got = ref.Peeled.String()
			}
			if err != nil || got != tc.want[i] {
				t.Errorf("%q: Read(%s).Peeled = %q, %v; want %q", tc.header, name, got, err, tc.want[i])
			}
		}
	}
}

// TestPackedLarge reads a packed-refs file large enough to be mapped,
// sorted (binary search) and unsorted (sorted in memory), and checks
// every lookup against the list it was built from.
func TestPackedLarge(t *testing.T) {
	const n = 50000
	names := make([]string, n)
	ids := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("refs/heads/b%07d", i*2)
		ids[i] = fmt.Sprintf("%040x", i*7919+1)
	}
	var sorted, unsorted strings.Builder
	sorted.WriteString("# pack-refs with: peeled fully-peeled sorted \n")
	for i := range names {
		fmt.Fprintf(&sorted, "%s %s\n", ids[i], names[i])
		if i%3 == 0 {
			fmt.Fprintf(&sorted, "^%s\n", ids[i])
		}
	}
	perm := rand.New(rand.NewPCG(1, 2)).Perm(n)
	for _, i := range perm {
		fmt.Fprintf(&unsorted, "%s %s\n", ids[i], names[i])
	}
	for _, data := range []string{sorted.String(), unsorted.String()} {
		if len(data) < mmapThreshold {
			t.Fatalf("test file of %d bytes would not be mapped", len(data))
		}
		s := storeWithPacked(t, oid.SHA1, data)
		for i := 0; i < n; i += 97 {
			ref, err := s.Read(names[i])
			if err != nil || ref.ID.String() != ids[i] {
				t.Fatalf("Read(%s) = %v, %v; want %s", names[i], ref.ID, err, ids[i])
			}
			missing := fmt.Sprintf("refs/heads/b%07d", i*2+1)
			if _, err := s.Read(missing); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Read(%s) = %v; want ErrNotFound", missing, err)
			}
		}
		for _, name := range []string{"refs/heads/a", "refs/heads/c", "refs/heads/b", "refs/heads/b0000000/x"} {
			if _, err := s.Read(name); !errors.Is(err, ErrNotFound) {
				t.Errorf("Read(%s) = %v; want ErrNotFound", name, err)
			}
		}
		i := 0
		err := s.List("refs/heads/", func(ref Ref) error {
			if ref.Name != names[i] || ref.ID.String() != ids[i] {
				return fmt.Errorf("ref %d = %s %v; want %s %s", i, ref.Name, ref.ID, names[i], ids[i])
			}
			i++
			return nil
		})
		if err != nil || i != n {
			t.Errorf("List: %v after %d refs; want %d", err, i, n)
		}
		count := 0
		s.List("refs/heads/b00010", func(ref Ref) error { count++; return nil })
		if count != 50 { // b0001000 .. b0001098, even numbers
			t.Errorf("List(refs/heads/b00010) gave %d refs; want 50", count)
		}
	}
}

// TestReadAllocs guards the lookup path: reading a packed reference
// allocates only the returned name and the view.
func TestReadAllocs(t *testing.T) {
	var b strings.Builder
	b.WriteString("# pack-refs with: peeled fully-peeled sorted \n")
	for i := 0; i < 5000; i++ {
		fmt.Fprintf(&b, "%040x refs/heads/b%07d\n", i+1, i)
	}
	s := storeWithPacked(t, oid.SHA1, b.String())
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := s.Read("refs/heads/b0002500"); err != nil {
			t.Fatal(err)
		}
	})
	// Opening the file and the failed open of the loose path are
	// most of it.
	if allocs > 16 {
		t.Errorf("Read allocates %v times; want at most 16", allocs)
	}
}
