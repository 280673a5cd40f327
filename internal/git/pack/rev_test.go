package pack

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"gotd/internal/git/oid"
	"gotd/internal/gittest"
)

// gitRev returns a pack of the given format with the .rev git wrote for
// it, and the pack's index.
func gitRev(t *testing.T, format string) (rev []byte, x *Index, path string) {
	t.Helper()
	dir, f := generated(t, format)
	gittest.Git(t, dir, "-c", "pack.writeReverseIndex=true", "repack", "-q", "-adf")
	path = onePack(t, dir)
	base := strings.TrimSuffix(path, ".pack")
	rev, err := os.ReadFile(base + ".rev")
	if err != nil {
		t.Fatal(err)
	}
	x, err = OpenIndex(base+".idx", f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	return rev, x, path
}

func TestRevMatchesGit(t *testing.T) {
	for _, format := range formats {
		t.Run(format, func(t *testing.T) {
			data, x, path := gitRev(t, format)
			f := x.Format()
			r, err := OpenRev(strings.TrimSuffix(path, ".pack")+".rev", f, x)
			if err != nil {
				t.Fatalf("OpenRev: %v", err)
			}
			defer r.Close()
			if err := r.Verify(); err != nil {
				t.Errorf("Verify: %v", err)
			}
			ents := showIndex(t, f, strings.TrimSuffix(path, ".pack")+".idx")
			order := make([]int, len(ents))
			for i := range order {
				order[i] = i
			}
			slices.SortFunc(order, func(a, b int) int { return int(ents[a].Offset) - int(ents[b].Offset) })
			if r.Count() != len(order) {
				t.Fatalf("Count() = %d; want %d", r.Count(), len(order))
			}
			for k, i := range order {
				if got := r.IndexPos(k); got != i {
					t.Fatalf("IndexPos(%d) = %d; want %d", k, got, i)
				}
			}
			for _, k := range []int{-1, len(order)} {
				if got := r.IndexPos(k); got != -1 {
					t.Errorf("IndexPos(%d) = %d; want -1", k, got)
				}
			}
			if _, err := ParseRev(data, f, x); err != nil {
				t.Errorf("ParseRev: %v", err)
			}
		})
	}
}

func TestParseRevMalformed(t *testing.T) {
	good, x, _ := gitRev(t, "sha1")
	f := x.Format()
	n := x.Count()
	mod := func(at int, b ...byte) []byte {
		d := slices.Clone(good)
		copy(d[at:], b)
		return d
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"header only", good[:revHeaderSize]},
		{"one byte short", good[:len(good)-1]},
		{"four bytes extra", append(slices.Clone(good), 0, 0, 0, 0)},
		{"bad magic", mod(0, 'R', 'I', 'D', 'Y')},
		{"version 2", mod(4, 0, 0, 0, 2)},
		{"sha256 hash id", mod(8, 0, 0, 0, 2)},
		{"hash id 0", mod(8, 0, 0, 0, 0)},
		{"another pack's checksum", mod(revHeaderSize+4*n, good[revHeaderSize+4*n]^1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r, err := ParseRev(tc.data, f, x); err == nil {
				t.Fatalf("ParseRev succeeded with %d objects; want an error", r.Count())
			} else if !errors.Is(err, ErrCorrupt) {
				t.Errorf("ParseRev err = %v; want ErrCorrupt", err)
			}
		})
	}
	if _, err := ParseRev(good, oid.SHA256, x); err == nil {
		t.Errorf("ParseRev(sha1 file as sha256) succeeded")
	}

	// Well-formed but wrong: Verify catches what ParseRev does not,
	// positions out of range included (ParseRev reads no position).
	rehash := func(b []byte) []byte {
		h := checksumHash(f)
		h.Write(b[:len(b)-f.Size()])
		copy(b[len(b)-f.Size():], h.Sum(nil))
		return b
	}
	swapped := slices.Clone(good)
	a, b := revHeaderSize, revHeaderSize+4
	for i := 0; i < 4; i++ {
		swapped[a+i], swapped[b+i] = swapped[b+i], swapped[a+i]
	}
	dup := slices.Clone(good)
	copy(dup[revHeaderSize+4:], dup[revHeaderSize:revHeaderSize+4])
	flipped := slices.Clone(good)
	flipped[len(flipped)-1] ^= 1
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"positions swapped", rehash(swapped)},
		{"position repeated", rehash(dup)},
		{"bad checksum", flipped},
		{"position out of range", rehash(mod(revHeaderSize+4*(n/2), appendBE32(nil, uint32(n))...))},
		{"position huge", rehash(mod(revHeaderSize, 0xff, 0xff, 0xff, 0xff))},
	} {
		r, err := ParseRev(tc.data, f, x)
		if err != nil {
			t.Fatalf("%s: ParseRev: %v", tc.name, err)
		}
		for k := range r.Count() {
			if i := r.IndexPos(k); i < 0 || i >= n {
				t.Errorf("%s: IndexPos(%d) = %d; want a position in [0, %d)", tc.name, k, i, n)
			}
		}
		if err := r.Verify(); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Verify() = %v; want ErrCorrupt", tc.name, err)
		}
	}
}
