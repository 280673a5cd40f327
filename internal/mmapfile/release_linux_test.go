package mmapfile

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// rssFile is the resident memory of this process that maps files, from
// /proc/self/status (RssFile).
func rssFile(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "RssFile:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}

// TestRelease: the pages of a mapping that were read leave the
// process's resident set on Release, and the data reads the same after.
func TestRelease(t *testing.T) {
	const size = 32 << 20
	path := filepath.Join(t.TempDir(), "f")
	want := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	if err := os.WriteFile(path, want, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	before := rssFile(t)
	if !bytes.Equal(f.Data, want) { // reads every page
		t.Fatal("mapping differs from the file")
	}
	read := rssFile(t)
	if read-before < size/2 {
		t.Skipf("reading %d bytes of mapping added %d bytes of resident memory: cannot tell", size, read-before)
	}
	if err := f.Release(); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if got := rssFile(t); got > before+size/8 {
		t.Errorf("got %d bytes of file pages resident after Release; want about %d, as before reading (%d after)", got, before, read)
	}
	if !bytes.Equal(f.Data, want) {
		t.Errorf("mapping differs from the file after Release")
	}
	var mem File
	mem.Data = []byte("in memory")
	if err := mem.Release(); err != nil || string(mem.Data) != "in memory" {
		t.Errorf("Release of a view read into memory = %v, %q", err, mem.Data)
	}
}
