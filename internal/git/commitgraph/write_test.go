package commitgraph

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/repo"
	"gotd/internal/gittest"
)

// newerGit is a recent C Git, used as a second oracle where present.
const newerGit = "/work/git-2.55/bin/git"

// repoReader opens the repository dir and returns its tips (every
// branch) and a CommitReader over it.
func repoReader(t *testing.T, dir string) ([]oid.ID, CommitReader) {
	t.Helper()
	r, err := repo.Open(dir, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	var tips []oid.ID
	for _, line := range strings.Fields(gittest.Git(t, dir, "for-each-ref", "--format=%(objectname)", "refs/heads/")) {
		id, err := oid.ParseHex(r.Format, line)
		if err != nil {
			t.Fatal(err)
		}
		tips = append(tips, id)
	}
	read := func(id oid.ID) (CommitInfo, error) {
		typ, data, err := r.ReadObject(id)
		if err != nil {
			return CommitInfo{}, err
		}
		if typ != object.Commit {
			return CommitInfo{}, errors.New("not a commit")
		}
		tree, parents, when, err := object.CommitLinks(r.Format, data, nil)
		return CommitInfo{Tree: tree, Parents: parents, Time: when}, err
	}
	return tips, read
}

// writeGot runs Write on the repository dir and fails the test on
// error.
func writeGot(t *testing.T, dir string, o WriteOptions) *WriteReport {
	t.Helper()
	tips, read := repoReader(t, dir)
	f, _ := oid.ParseFormat(strings.TrimSpace(gittest.Git(t, dir, "rev-parse", "--show-object-format")))
	rep, err := Write(filepath.Join(dir, "objects"), f, tips, read, o)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	return rep
}

// verifyWithGit has C Git check the repository's graph: commit-graph
// verify, fsck, and a history drawn the same with and without it.
func verifyWithGit(t *testing.T, dir string) {
	t.Helper()
	gits := []string{"git"}
	if _, err := os.Stat(newerGit); err == nil {
		gits = append(gits, newerGit)
	}
	for _, git := range gits {
		run := func(args ...string) string {
			t.Helper()
			cmd := exec.Command(git, args...)
			cmd.Dir = dir
			cmd.Env = gittest.Env(t)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil || stderr.Len() > 0 {
				t.Fatalf("%s %s: %v\n%s", git, strings.Join(args, " "), err, stderr.String())
			}
			return string(out)
		}
		run("commit-graph", "verify")
		run("fsck", "--full", "--strict", "--no-progress")
		on := run("-c", "core.commitGraph=true", "log", "--graph", "--all", "--format=%H %P")
		off := run("-c", "core.commitGraph=false", "log", "--graph", "--all", "--format=%H %P")
		if on != off {
			t.Fatalf("%s log --graph differs with the commit-graph on and off", git)
		}
		topoOn := run("-c", "core.commitGraph=true", "rev-list", "--topo-order", "--all")
		topoOff := run("-c", "core.commitGraph=false", "rev-list", "--topo-order", "--all")
		if topoOn != topoOff {
			t.Fatalf("%s rev-list --topo-order differs with the commit-graph on and off", git)
		}
	}
}

// layerFiles returns the contents of the chain's layers, base first.
func layerFiles(t *testing.T, dir string) [][]byte {
	t.Helper()
	cg := filepath.Join(dir, "objects", "info", "commit-graphs")
	chain, err := os.ReadFile(filepath.Join(cg, "commit-graph-chain"))
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, name := range strings.Fields(string(chain)) {
		data, err := os.ReadFile(filepath.Join(cg, "graph-"+name+".graph"))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, data)
	}
	return out
}

// TestWriteAsGitDoes: one layer of a history with merges, an octopus
// (EDGE) and a generation offset overflowing 31 bits (GDO2) is, byte
// for byte, the layer C Git's commit-graph write --split=replace
// writes, and gotd's reader reads it as git log sees the history.
func TestWriteAsGitDoes(t *testing.T) {
	for _, format := range []string{"sha1", "sha256"} {
		t.Run(format, func(t *testing.T) {
			dir := gittest.InitBare(t, format)
			history(t, dir, 60, 0, false)
			rep := writeGot(t, dir, WriteOptions{})
			if rep.Commits == 0 || rep.New != rep.Commits || rep.Layers != 1 || !rep.GenerationData {
				t.Errorf("report %+v; want one layer of every commit with generation data", rep)
			}
			verifyWithGit(t, dir)
			f, _ := oid.ParseFormat(format)
			g, err := Open(filepath.Join(dir, "objects"), f)
			if err != nil {
				t.Fatal(err)
			}
			checkGraph(t, g, f, gitCommits(t, dir))
			if !g.HasGenerationData() {
				t.Errorf("graph read back without generation data")
			}
			g.Close()
			got := layerFiles(t, dir)
			chunks := chunkOffsets(t, got[0])
			for _, name := range []string{"OIDF", "OIDL", "CDAT", "GDA2", "GDO2", "EDGE"} {
				if _, ok := chunks[name]; !ok {
					t.Errorf("layer lacks chunk %s", name)
				}
			}

			// C Git takes generations from a graph it reads: let it
			// compute its own.
			if err := os.RemoveAll(filepath.Join(dir, "objects", "info", "commit-graphs")); err != nil {
				t.Fatal(err)
			}
			gittest.Git(t, dir, "commit-graph", "write", "--reachable", "--split=replace")
			want := layerFiles(t, dir)
			if len(want) != 1 || !bytes.Equal(got[0], want[0]) {
				t.Errorf("layer differs from C Git's (%d bytes against %d)", len(got[0]), len(want[0]))
			}
		})
	}
}

// TestWriteIncremental: batches of commits, each written as a new
// layer on top; layers merge as C Git's --split does (a layer no more
// than twice the size of what comes above it joins it), and after
// every step C Git accepts the chain and gotd reads every commit.
func TestWriteIncremental(t *testing.T) {
	for _, format := range []string{"sha1", "sha256"} {
		t.Run(format, func(t *testing.T) {
			f, _ := oid.ParseFormat(format)
			dir := gittest.InitBare(t, format)
			// Batches of 100, 20, 5, 5 and 40 main commits hold 135,
			// 29, 5, 6 and 58 commits with their side commits: layers
			// 135; 135, 29; 135, 29, 5; then the 5 joins the 6
			// (5 <= 2*6) but the 29 stays (29 > 2*11); then 11, 29 and
			// 135 all join the 58 (135 <= 2*98).
			batches := []struct {
				n      int
				layers int
			}{{100, 1}, {20, 2}, {5, 3}, {5, 3}, {40, 1}}
			start := 0
			for i, b := range batches {
				history(t, dir, b.n, start, i > 0)
				start += b.n
				rep := writeGot(t, dir, WriteOptions{})
				if rep.Layers != b.layers {
					t.Errorf("batch %d: %d layers (report %+v); want %d", i, rep.Layers, rep, b.layers)
				}
				verifyWithGit(t, dir)
				g, err := Open(filepath.Join(dir, "objects"), f)
				if err != nil {
					t.Fatal(err)
				}
				if len(g.layers) != b.layers {
					t.Errorf("batch %d: read %d layers; want %d", i, len(g.layers), b.layers)
				}
				checkGraph(t, g, f, gitCommits(t, dir))
				g.Close()
				ents, _ := os.ReadDir(filepath.Join(dir, "objects", "info", "commit-graphs"))
				if len(ents) != b.layers+1 {
					var names []string
					for _, e := range ents {
						names = append(names, e.Name())
					}
					t.Errorf("batch %d: commit-graphs holds %v; want %d layers and the chain", i, names, b.layers)
				}
			}
			// Nothing new: nothing written.
			before := layerFiles(t, dir)
			rep := writeGot(t, dir, WriteOptions{})
			if rep.Commits != 0 {
				t.Errorf("write with nothing new: report %+v; want nothing written", rep)
			}
			if after := layerFiles(t, dir); len(after) != len(before) {
				t.Errorf("write with nothing new changed the chain")
			}
		})
	}
}

// TestWriteOverGitGraphs: a layer written over what C Git wrote: a
// single file, which becomes the chain's base, and a chain of
// topological levels only, over which the new layer has no corrected
// dates either.
func TestWriteOverGitGraphs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		git     []string
		genData bool
	}{
		{"single", []string{"commit-graph", "write", "--reachable"}, true},
		{"generation-v1", []string{"-c", "commitGraph.generationVersion=1", "commit-graph", "write", "--reachable", "--split"}, false},
		{"changed-paths", []string{"commit-graph", "write", "--reachable", "--split", "--changed-paths"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := gittest.InitBare(t, "sha1")
			history(t, dir, 200, 0, false)
			gittest.Git(t, dir, tc.git...)
			history(t, dir, 10, 200, true)
			rep := writeGot(t, dir, WriteOptions{})
			if rep.Layers != 2 || rep.Merged != 0 || rep.GenerationData != tc.genData {
				t.Errorf("report %+v; want 2 layers, none merged, generation data %v", rep, tc.genData)
			}
			if _, err := os.Stat(filepath.Join(dir, "objects", "info", "commit-graph")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("single file left beside the chain: %v", err)
			}
			verifyWithGit(t, dir)
			g, err := Open(filepath.Join(dir, "objects"), oid.SHA1)
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			if len(g.layers) != 2 {
				t.Errorf("read %d layers; want 2", len(g.layers))
			}
			checkGraph(t, g, oid.SHA1, gitCommits(t, dir))
		})
	}
}

// TestWriteReplace: after a branch is deleted, Replace writes one layer
// of what is reachable, and a reader that had the old chain open keeps
// reading it after its files are gone.
func TestWriteReplace(t *testing.T) {
	dir := gittest.InitBare(t, "sha1")
	history(t, dir, 100, 0, false)
	writeGot(t, dir, WriteOptions{})
	history(t, dir, 10, 100, true)
	writeGot(t, dir, WriteOptions{})
	old, err := Open(filepath.Join(dir, "objects"), oid.SHA1)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	oldCount := old.Count()
	for _, b := range []string{"side0", "side1", "side2", "side3"} {
		gittest.Git(t, dir, "branch", "-D", b)
	}
	gittest.Git(t, dir, "update-ref", "refs/heads/main", "main~50")
	rep := writeGot(t, dir, WriteOptions{Replace: true})
	if rep.Layers != 1 || !rep.Replaced {
		t.Errorf("report %+v; want one layer, replaced", rep)
	}
	verifyWithGit(t, dir)
	g, err := Open(filepath.Join(dir, "objects"), oid.SHA1)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	want := gitCommits(t, dir)
	if int(g.Count()) != len(want) || g.Count() >= oldCount {
		t.Errorf("replaced graph holds %d commits; want %d (was %d)", g.Count(), len(want), oldCount)
	}
	checkGraph(t, g, oid.SHA1, want)
	var c Commit
	for pos := uint32(0); pos < oldCount; pos++ {
		if err := old.ReadCommit(pos, &c); err != nil {
			t.Fatalf("old graph after replace: ReadCommit(%d): %v", pos, err)
		}
	}

	// Replace with nothing reachable removes the graph.
	gittest.Git(t, dir, "update-ref", "-d", "refs/heads/main")
	if rep := writeGot(t, dir, WriteOptions{Replace: true}); rep.Commits != 0 {
		t.Errorf("replace with no branches: report %+v", rep)
	}
	if g, err := Open(filepath.Join(dir, "objects"), oid.SHA1); !errors.Is(err, os.ErrNotExist) {
		if err == nil {
			g.Close()
		}
		t.Errorf("Open after replacing with nothing: %v; want no graph", err)
	}
}

// TestWriteLocked: a held lock (C Git writing) makes Write fail with
// ErrLocked and change nothing.
func TestWriteLocked(t *testing.T) {
	dir := gittest.InitBare(t, "sha1")
	history(t, dir, 10, 0, false)
	cg := filepath.Join(dir, "objects", "info", "commit-graphs")
	if err := os.MkdirAll(cg, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cg, chainLock), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tips, read := repoReader(t, dir)
	_, err := Write(filepath.Join(dir, "objects"), oid.SHA1, tips, read, WriteOptions{})
	if !errors.Is(err, ErrLocked) {
		t.Errorf("Write with the lock held: %v; want ErrLocked", err)
	}
	if ents, _ := os.ReadDir(cg); len(ents) != 1 {
		t.Errorf("Write with the lock held left %d files", len(ents))
	}
}

// TestWriteMaxLayers: past MaxLayers, layers merge whatever their
// sizes.
func TestWriteMaxLayers(t *testing.T) {
	dir := gittest.InitBare(t, "sha1")
	start := 0
	for i, b := range []struct{ n, layers int }{{100, 1}, {20, 2}, {5, 2}, {2, 2}} {
		history(t, dir, b.n, start, i > 0)
		start += b.n
		if rep := writeGot(t, dir, WriteOptions{MaxLayers: 2}); rep.Layers != b.layers {
			t.Errorf("batch %d: %d layers (report %+v); want %d", i, rep.Layers, rep, b.layers)
		}
		verifyWithGit(t, dir)
	}
}
