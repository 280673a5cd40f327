package packer

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"

	"gotd/internal/gittest"
)

// TestReleasePages checks that with Options.ReleasePages the pages of
// the source pack that Write read leave the process's resident set: the
// pack's mapping holds next to nothing resident afterwards, where
// without the option it holds most of the pack.
func TestReleasePages(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a repository of a few thousand objects")
	}
	f := formatOf("sha1")
	dir := newRepo(t, "sha1", gittest.History{Commits: 300, Files: 60}, false)
	objs := listObjects(t, dir, f, "--all")
	for _, tc := range []struct {
		release bool
		name    string
	}{{false, "kept"}, {true, "released"}} {
		t.Run(tc.name, func(t *testing.T) {
			src := newTestSource(t, dir, f) // a mapping of its own
			if len(src.packs) != 1 {
				t.Fatalf("got %d packs; want 1", len(src.packs))
			}
			path := src.packs[0].Path()
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			writePack(t, src, objs, Options{Format: f, OfsDelta: true, ReuseDeltas: true, ReleasePages: tc.release})
			rss := residentBytes(t, path)
			t.Logf("pack of %d bytes, %d resident after Write", st.Size(), rss)
			if tc.release && rss > st.Size()/4 {
				t.Errorf("got %d bytes of the %d-byte pack resident with ReleasePages; want at most a quarter", rss, st.Size())
			}
			if !tc.release && rss < st.Size()/2 {
				t.Errorf("got %d bytes of the %d-byte pack resident without ReleasePages; want at least half (does Write read the pack?)", rss, st.Size())
			}
		})
	}
}

// residentBytes returns the resident size of this process's mappings of
// the file at path, from /proc/self/smaps.
func residentBytes(t *testing.T, path string) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Skipf("no smaps: %v", err)
	}
	var total int64
	found, in := false, false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if !strings.HasSuffix(fields[0], ":") { // a mapping's first line
			in = strings.HasSuffix(line, " "+path)
			found = found || in
			continue
		}
		if in && fields[0] == "Rss:" && len(fields) >= 2 {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				t.Fatalf("smaps: %q: %v", line, err)
			}
			total += kb << 10
		}
	}
	if !found {
		t.Fatalf("%s is not mapped", path)
	}
	return total
}
