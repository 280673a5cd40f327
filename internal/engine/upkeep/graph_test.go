package upkeep

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gotd/internal/git/commitgraph"
	"gotd/internal/git/oid"
	"gotd/internal/gittest"
)

// checkCommitGraph has C Git check the repository with its
// commit-graph (verify, fsck, history drawn the same with the graph on
// and off) and checks that gotd's reader finds every reachable commit
// in it; it returns the number of layers.
func checkCommitGraph(t *testing.T, dir string) int {
	t.Helper()
	gittest.Git(t, dir, "commit-graph", "verify")
	gittest.Git(t, dir, "fsck", "--full", "--strict", "--no-dangling")
	on := gittest.Git(t, dir, "-c", "core.commitGraph=true", "log", "--graph", "--all", "--format=%H %P")
	off := gittest.Git(t, dir, "-c", "core.commitGraph=false", "log", "--graph", "--all", "--format=%H %P")
	if on != off {
		t.Errorf("git log --graph differs with the commit-graph on and off")
	}
	g, err := commitgraph.Open(filepath.Join(dir, "objects"), oid.SHA1)
	if err != nil {
		t.Fatalf("commitgraph.Open: %v", err)
	}
	defer g.Close()
	for _, h := range strings.Fields(gittest.Git(t, dir, "rev-list", "--all")) {
		id, _ := oid.ParseHex(oid.SHA1, h)
		if _, ok := g.Lookup(id); !ok {
			t.Errorf("commit %s is not in the commit-graph", h)
		}
	}
	return len(strings.Fields(gittest.Git(t, dir, "rev-list", "--all")))
}

// TestCommitGraphKeptCurrent: Repack writes the commit-graph; pushed
// commits join it as a layer at the next Geometric run (also when there
// is nothing to roll); a Repack that prunes commits the graph holds
// rewrites it whole. After each step C Git accepts the repository with
// its graph.
func TestCommitGraphKeptCurrent(t *testing.T) {
	ctx := context.Background()
	dir := gittest.InitBare(t, "sha1")
	gittest.Generate(t, dir, gittest.History{Commits: 200, Branches: 3})
	rep, err := Repack(ctx, open(t, dir), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Graph == nil || rep.Graph.Layers != 1 || rep.Graph.Commits == 0 {
		t.Fatalf("Repack wrote the graph %+v; want one layer", rep.Graph)
	}
	all := checkCommitGraph(t, dir)

	push := func(n int) {
		t.Helper()
		tree := strings.TrimSpace(gittest.Git(t, dir, "rev-parse", "main^{tree}"))
		for i := range n {
			c := strings.TrimSpace(gittest.Git(t, dir, "commit-tree", tree, "-p", "main", "-m", "pushed "+strconv.Itoa(i)))
			gittest.Git(t, dir, "update-ref", "refs/heads/main", c)
		}
	}
	push(3)
	rep, err = Geometric(ctx, open(t, dir), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Graph == nil || rep.Graph.Layers != 2 || rep.Graph.New != 3 {
		t.Errorf("Geometric wrote the graph %+v; want a second layer of 3", rep.Graph)
	}
	checkCommitGraph(t, dir)
	// Nothing to roll (one pack, no loose objects) but a commit to add.
	gittest.Git(t, dir, "update-ref", "refs/heads/extra", strings.TrimSpace(gittest.Git(t, dir, "commit-tree", "-p", "main", "-m", "tagged", "main^{tree}")))
	gittest.Git(t, dir, "repack", "-dq")
	gittest.Git(t, dir, "repack", "-adq")
	rep, err = Geometric(ctx, open(t, dir), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Pack != "" || rep.Graph == nil || rep.Graph.New != 1 {
		t.Errorf("Geometric with nothing to roll: pack %q, graph %+v; want no pack and one new commit", rep.Pack, rep.Graph)
	}
	checkCommitGraph(t, dir)

	// Drop a branch and prune its commits: the graph is written anew.
	gittest.Git(t, dir, "update-ref", "-d", "refs/heads/topic1")
	gittest.Git(t, dir, "reflog", "expire", "--expire=now", "--all")
	rep, err = Repack(ctx, open(t, dir), Options{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Pruned) == 0 || rep.Graph == nil || !rep.Graph.Replaced || rep.Graph.Layers != 1 {
		t.Errorf("Repack pruning %d objects wrote the graph %+v; want it replaced by one layer", len(rep.Pruned), rep.Graph)
	}
	if n := checkCommitGraph(t, dir); n >= all+4 {
		t.Errorf("%d commits reachable after the prune; want fewer than %d", n, all+4)
	}
}
