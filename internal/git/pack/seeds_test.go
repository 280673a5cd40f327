package pack

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/gittest"
)

// The fuzz targets start from small files C Git wrote, stored under
// testdata/fuzzseeds so that fuzz workers need not run git (which costs
// seconds per worker). Regenerate them with
//
//	go test -run TestFuzzSeeds ./internal/git/pack -update-fuzz-seeds
var updateSeeds = flag.Bool("update-fuzz-seeds", false, "rewrite testdata/fuzzseeds with C Git")

const seedDir = "testdata/fuzzseeds"

// seedSpecs names each stored pack: its object format and the extra
// arguments of the git repack that wrote it.
var seedSpecs = []struct {
	name   string
	format string
	repack []string
}{
	{"sha1", "sha1", nil},
	{"sha256", "sha256", []string{"--depth=3"}},
	{"sha1-nodelta", "sha1", []string{"--window=0"}},
	{"sha1-refdelta", "sha1", nil},
}

// TestFuzzSeeds checks the stored seeds with C Git and with this
// package, and rewrites them with -update-fuzz-seeds.
func TestFuzzSeeds(t *testing.T) {
	if *updateSeeds {
		writeSeeds(t)
	}
	for _, s := range seedSpecs {
		f, _ := oid.ParseFormat(s.format)
		dir := gittest.InitBare(t, s.format)
		packDir := filepath.Join(dir, "objects", "pack")
		for _, ext := range []string{".pack", ".idx", ".rev"} {
			data := readSeed(t, s.name+ext)
			if err := os.WriteFile(filepath.Join(packDir, "pack-seed"+ext), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		gittest.Git(t, dir, "verify-pack", filepath.Join(packDir, "pack-seed.idx"))
		p, err := Open(filepath.Join(packDir, "pack-seed.pack"), f, Options{})
		if err != nil {
			t.Fatalf("%s: Open: %v", s.name, err)
		}
		if p.orderReady(); p.rev == nil {
			t.Errorf("%s: the stored .rev was not used", s.name)
		}
		kinds := comparePack(t, dir, p, catAll(t, dir, f))
		p.Close()
		switch deltas := kinds[object.OfsDelta] + kinds[object.RefDelta]; {
		case s.name == "sha1-nodelta" && deltas != 0:
			t.Errorf("%s: %d deltas; want none", s.name, deltas)
		case s.name == "sha1-refdelta" && kinds[object.RefDelta] == 0:
			t.Errorf("%s: no ref-deltas", s.name)
		case s.name != "sha1-nodelta" && deltas == 0:
			t.Errorf("%s: no deltas", s.name)
		}
	}
	for _, format := range formats {
		f, _ := oid.ParseFormat(format)
		if _, err := ParseMultiPackIndex(readSeed(t, format+".midx"), f); err != nil {
			t.Errorf("%s.midx: %v", format, err)
		}
	}
}

func writeSeeds(t *testing.T) {
	if err := os.MkdirAll(seedDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range seedSpecs {
		dir := gittest.InitBare(t, s.format)
		gittest.Generate(t, dir, gittest.History{Commits: 4, Branches: 1, Files: 4})
		args := append([]string{"-c", "pack.threads=1", "repack", "-q", "-adf"}, s.repack...)
		if s.name == "sha1-refdelta" {
			args = append([]string{"-c", "repack.useDeltaBaseOffset=false"}, args...)
		}
		gittest.Git(t, dir, args...)
		path := onePack(t, dir)
		gittest.Git(t, dir, "index-pack", "--rev-index", path)
		base := strings.TrimSuffix(path, ".pack")
		for _, ext := range []string{".pack", ".idx", ".rev"} {
			data, err := os.ReadFile(base + ext)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(seedDir, s.name+ext), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, format := range formats {
		dir := gittest.InitBare(t, format)
		gittest.Generate(t, dir, gittest.History{Commits: 4, Branches: 1, Files: 4})
		gittest.Git(t, dir, "repack", "-q", "-d") // a second pack, of the loose objects
		gittest.Git(t, dir, "multi-pack-index", "write", "--bitmap")
		data, err := os.ReadFile(filepath.Join(dir, "objects", "pack", "multi-pack-index"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(seedDir, format+".midx"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// readSeed returns a stored seed file.
func readSeed(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(seedDir, name))
	if err != nil {
		t.Fatalf("%v (regenerate with -update-fuzz-seeds)", err)
	}
	return data
}
