package commitgraph

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gotd/internal/git/oid"
	"gotd/internal/gittest"
)

// history writes n commits to refs/heads/main of the bare repository dir
// with git fast-import, continuing from the current main if from is
// true. Every 7th commit merges a side commit, every 13th is an octopus
// merge of three side commits (so the graph needs an EDGE chunk), and
// two commits carry dates past 2106 (33 bits) followed by an older one
// (a generation offset overflowing 31 bits: GDO2).
func history(t testing.TB, dir string, n, start int, from bool) {
	t.Helper()
	var b bytes.Buffer
	mark := 0
	when := int64(1700000000 + start*100)
	commit := func(ref string, msg string, parent string, merges []int) int {
		mark++
		m := mark
		when += 60
		date := when
		switch msg {
		case "main 20", "main 21":
			date = 5000000000 + int64(len(msg))
		}
		fmt.Fprintf(&b, "commit %s\nmark :%d\n", ref, m)
		fmt.Fprintf(&b, "committer C O Mitter <c@example.com> %d +0000\n", date)
		fmt.Fprintf(&b, "data %d\n%s\n", len(msg), msg)
		if parent != "" {
			fmt.Fprintf(&b, "from %s\n", parent)
		}
		for _, p := range merges {
			fmt.Fprintf(&b, "merge :%d\n", p)
		}
		fmt.Fprintf(&b, "M 100644 inline f%d.txt\ndata %d\n%s\n\n", m%17, len(msg), msg)
		return m
	}
	tip := ""
	if from {
		tip = "refs/heads/main^0"
	}
	for c := start; c < start+n; c++ {
		var merges []int
		side := func(k int) int {
			return commit(fmt.Sprintf("refs/heads/side%d", k), fmt.Sprintf("side %d/%d", c, k), tip, nil)
		}
		if tip != "" && c%7 == 0 {
			merges = append(merges, side(0))
		}
		if tip != "" && c%13 == 0 {
			merges = append(merges, side(1), side(2), side(3))
		}
		m := commit("refs/heads/main", fmt.Sprintf("main %d", c), tip, merges)
		tip = ":" + strconv.Itoa(m)
	}
	gittest.GitInput(t, dir, b.Bytes(), "fast-import", "--quiet", "--force")
}

type wantCommit struct {
	id, tree string
	parents  []string
	time     int64
}

// gitCommits lists every commit reachable from the refs as C Git sees it.
func gitCommits(t *testing.T, dir string) []wantCommit {
	t.Helper()
	var out []wantCommit
	for _, line := range strings.Split(strings.TrimSpace(gittest.Git(t, dir, "log", "--all", "--format=%H %T %ct %P")), "\n") {
		f := strings.Fields(line)
		when, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			t.Fatalf("git log line %q: %v", line, err)
		}
		out = append(out, wantCommit{id: f[0], tree: f[1], time: when, parents: f[3:]})
	}
	return out
}

func TestReadWhatGitWrote(t *testing.T) {
	for _, format := range []string{"sha1", "sha256"} {
		for _, tc := range []struct {
			name  string
			write [][]string // one git command per history batch
		}{
			{"single", [][]string{{"commit-graph", "write", "--reachable"}}},
			{"changed-paths", [][]string{{"commit-graph", "write", "--reachable", "--changed-paths"}}},
			{"generation-v1", [][]string{{"-c", "commitGraph.generationVersion=1", "commit-graph", "write", "--reachable"}}},
			{"split", [][]string{
				{"commit-graph", "write", "--reachable", "--split"},
				{"commit-graph", "write", "--reachable", "--split=no-merge", "--changed-paths"},
				{"commit-graph", "write", "--reachable", "--split=no-merge"},
			}},
			{"split-mixed-generations", [][]string{
				{"-c", "commitGraph.generationVersion=1", "commit-graph", "write", "--reachable", "--split"},
				{"commit-graph", "write", "--reachable", "--split=no-merge"},
			}},
		} {
			t.Run(format+"/"+tc.name, func(t *testing.T) {
				dir := gittest.InitBare(t, format)
				for i, args := range tc.write {
					history(t, dir, 60, i*60, i > 0)
					gittest.Git(t, dir, args...)
				}
				f, _ := oid.ParseFormat(format)
				g, err := Open(filepath.Join(dir, "objects"), f)
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				defer g.Close()
				want := 1
				if strings.HasPrefix(tc.name, "split") {
					want = len(tc.write)
				}
				if got := len(g.layers); got != want {
					t.Errorf("got %d layers; want %d", got, want)
				}
				checkGraph(t, g, f, gitCommits(t, dir))
			})
		}
	}
}

// checkGraph compares every commit of g with what git log says and
// checks that generations grow from parents to children.
func checkGraph(t *testing.T, g *Graph, f oid.Format, want []wantCommit) {
	t.Helper()
	if got := int(g.Count()); got != len(want) {
		t.Errorf("Count() = %d; want %d", got, len(want))
	}
	var c Commit
	for _, w := range want {
		id, err := oid.ParseHex(f, w.id)
		if err != nil {
			t.Fatal(err)
		}
		pos, ok := g.Lookup(id)
		if !ok {
			t.Errorf("Lookup(%s): not found", w.id)
			continue
		}
		if err := g.ReadCommit(pos, &c); err != nil {
			t.Errorf("ReadCommit(%d): %v", pos, err)
			continue
		}
		var parents []string
		for _, p := range c.Parents {
			pid, err := g.ID(p)
			if err != nil {
				t.Errorf("ID(%d): %v", p, err)
			}
			parents = append(parents, pid.String())
			_, pgen, err := g.TimeGeneration(p)
			if err != nil {
				t.Errorf("TimeGeneration(%d): %v", p, err)
			}
			if c.Generation <= pgen {
				t.Errorf("commit %s: generation %d not above parent %s's %d", w.id, c.Generation, pid, pgen)
			}
		}
		got := fmt.Sprintf("%s %s %d %v", c.ID, c.Tree, c.Time, parents)
		exp := fmt.Sprintf("%s %s %d %v", w.id, w.tree, w.time, w.parents)
		if len(w.parents) == 0 {
			exp = fmt.Sprintf("%s %s %d []", w.id, w.tree, w.time)
		}
		if got != exp {
			t.Errorf("commit at %d:\ngot  %s\nwant %s", pos, got, exp)
		}
		if g.HasGenerationData() && c.Generation < uint64(c.Time) {
			t.Errorf("commit %s: corrected date %d below commit time %d", w.id, c.Generation, c.Time)
		}
		ps, err := g.AppendParents(nil, pos)
		if err != nil || fmt.Sprint(ps) != fmt.Sprint(c.Parents) {
			t.Errorf("AppendParents(%d) = %v, %v; want %v", pos, ps, err, c.Parents)
		}
		tree, err := g.Tree(pos)
		if err != nil || tree != c.Tree {
			t.Errorf("Tree(%d) = %v, %v; want %v", pos, tree, err, c.Tree)
		}
	}
	missing := oid.Zero(f)
	if _, ok := g.Lookup(missing); ok {
		t.Errorf("Lookup(zero id) found a commit")
	}
	if _, err := g.Commit(g.Count()); err == nil {
		t.Errorf("Commit(Count()) succeeded")
	}
}

func TestOpenNone(t *testing.T) {
	dir := gittest.InitBare(t, "sha1")
	_, err := Open(filepath.Join(dir, "objects"), oid.SHA1)
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open with no graph: got %v; want an error wrapping os.ErrNotExist", err)
	}
}

func TestWrongFormat(t *testing.T) {
	dir := gittest.InitBare(t, "sha1")
	history(t, dir, 10, 0, false)
	gittest.Git(t, dir, "commit-graph", "write", "--reachable")
	if g, err := Open(filepath.Join(dir, "objects"), oid.SHA256); err == nil {
		g.Close()
		t.Errorf("Open of a sha1 graph as sha256 succeeded")
	}
}

// chunkOffsets returns the start and end of each chunk of a graph file.
func chunkOffsets(t *testing.T, data []byte) map[string][2]int {
	t.Helper()
	m := map[string][2]int{}
	n := int(data[6])
	for i := 0; i < n; i++ {
		e := data[8+12*i:]
		m[string(e[:4])] = [2]int{int(binary.BigEndian.Uint64(e[4:])), int(binary.BigEndian.Uint64(e[16:]))}
	}
	return m
}

// writeGraph builds a repository whose commit-graph has an EDGE chunk
// and a GDO2 chunk and returns its objects directory and the file.
func writeGraph(t *testing.T) (string, []byte) {
	t.Helper()
	dir := gittest.InitBare(t, "sha1")
	history(t, dir, 40, 0, false)
	gittest.Git(t, dir, "commit-graph", "write", "--reachable")
	objects := filepath.Join(dir, "objects")
	data, err := os.ReadFile(filepath.Join(objects, "info", "commit-graph"))
	if err != nil {
		t.Fatal(err)
	}
	return objects, data
}

func TestMalformed(t *testing.T) {
	objects, orig := writeGraph(t)
	chunks := chunkOffsets(t, orig)
	for _, name := range []string{"OIDF", "OIDL", "CDAT", "EDGE", "GDA2", "GDO2"} {
		if _, ok := chunks[name]; !ok {
			t.Fatalf("test graph lacks chunk %s; have %v", name, chunks)
		}
	}
	put32 := func(b []byte, off int, v uint32) { binary.BigEndian.PutUint32(b[off:], v) }
	cdat := chunks["CDAT"][0]
	const rec = 20 + 16
	// tocOffset is where entry i of the chunk table keeps its offset.
	tocOffset := func(name string, b []byte) int {
		for i := 0; i < int(b[6]); i++ {
			if string(b[8+12*i:12+12*i]) == name {
				return 12 + 12*i
			}
		}
		t.Fatalf("no chunk %s", name)
		return 0
	}
	for _, tc := range []struct {
		name   string
		mutate func(b []byte) []byte
		atRead bool // the damage shows only when commits are read
	}{
		{"empty", func(b []byte) []byte { return b[:0] }, false},
		{"truncated header", func(b []byte) []byte { return b[:10] }, false},
		{"truncated to table", func(b []byte) []byte { return b[:60] }, false},
		{"truncated chunk", func(b []byte) []byte { return b[:len(b)-100] }, false},
		{"signature", func(b []byte) []byte { b[0] = 'X'; return b }, false},
		{"version", func(b []byte) []byte { b[4] = 2; return b }, false},
		{"hash version", func(b []byte) []byte { b[5] = 2; return b }, false},
		{"chunk count past file", func(b []byte) []byte { b[6] = 255; return b }, false},
		{"chunk count too small", func(b []byte) []byte { b[6] = 1; return b }, false},
		{"single file with base", func(b []byte) []byte { b[7] = 1; return b }, false},
		{"offset past end", func(b []byte) []byte {
			binary.BigEndian.PutUint64(b[tocOffset("CDAT", b):], uint64(len(b))+8)
			return b
		}, false},
		{"offset huge", func(b []byte) []byte {
			binary.BigEndian.PutUint64(b[tocOffset("OIDL", b):], 1<<63)
			return b
		}, false},
		{"offsets decrease", func(b []byte) []byte {
			binary.BigEndian.PutUint64(b[tocOffset("OIDL", b):], 8)
			return b
		}, false},
		{"duplicate chunk", func(b []byte) []byte { copy(b[8+12:], "OIDF"); return b }, false},
		{"missing OIDF", func(b []byte) []byte { copy(b[tocOffset("OIDF", b)-4:], "XXXX"); return b }, false},
		{"missing CDAT", func(b []byte) []byte { copy(b[tocOffset("CDAT", b)-4:], "XXXX"); return b }, false},
		{"zero id in table", func(b []byte) []byte { put32(b, 8, 0); return b }, false},
		{"fan-out decreases", func(b []byte) []byte { put32(b, chunks["OIDF"][0]+4*100, 0xffff); return b }, false},
		{"fan-out total too big", func(b []byte) []byte { put32(b, chunks["OIDF"][0]+4*255, 0x7fffffff); return b }, false},
		{"fan-out total mismatch", func(b []byte) []byte {
			put32(b, chunks["OIDF"][0]+4*255, binary.BigEndian.Uint32(b[chunks["OIDF"][0]+4*255:])+1)
			return b
		}, false},
		{"GDA2 size", func(b []byte) []byte {
			o := tocOffset("GDA2", b)
			binary.BigEndian.PutUint64(b[o:], binary.BigEndian.Uint64(b[o:])+4)
			return b
		}, false},
		{"parent out of range", func(b []byte) []byte {
			for i := 0; ; i++ {
				off := cdat + i*rec + 20
				if binary.BigEndian.Uint32(b[off:]) != parentNone {
					put32(b, off, 0x6fffffff)
					return b
				}
			}
		}, true},
		{"second parent out of range", func(b []byte) []byte {
			for i := 0; ; i++ {
				off := cdat + i*rec + 24
				if v := binary.BigEndian.Uint32(b[off:]); v != parentNone && v&edgeListFlag == 0 {
					put32(b, off, 5000)
					return b
				}
			}
		}, true},
		{"second parent without first", func(b []byte) []byte {
			for i := 0; ; i++ {
				off := cdat + i*rec + 20
				if v := binary.BigEndian.Uint32(b[off+4:]); v != parentNone {
					put32(b, off, parentNone)
					return b
				}
			}
		}, true},
		{"edge index past chunk", func(b []byte) []byte {
			for i := 0; ; i++ {
				off := cdat + i*rec + 24
				if v := binary.BigEndian.Uint32(b[off:]); v != parentNone && v&edgeListFlag != 0 {
					put32(b, off, edgeListFlag|0x7ffffff)
					return b
				}
			}
		}, true},
		{"edge list unterminated", func(b []byte) []byte {
			e := chunks["EDGE"]
			for off := e[0]; off < e[1]; off += 4 {
				put32(b, off, binary.BigEndian.Uint32(b[off:])&^edgeLastFlag)
			}
			return b
		}, true},
		{"edge parent out of range", func(b []byte) []byte { put32(b, chunks["EDGE"][0], 0x7ffffff0); return b }, true},
		{"generation overflow index", func(b []byte) []byte {
			g := chunks["GDA2"]
			for off := g[0]; off < g[1]; off += 4 {
				if binary.BigEndian.Uint32(b[off:])&genOffsetFlag != 0 {
					put32(b, off, genOffsetFlag|0xffff)
					return b
				}
			}
			panic("no overflow entry")
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.mutate(bytes.Clone(orig))
			if err := os.WriteFile(filepath.Join(objects, "info", "commit-graph"), b, 0o644); err != nil {
				t.Fatal(err)
			}
			g, err := Open(objects, oid.SHA1)
			if !tc.atRead {
				if err == nil {
					g.Close()
					t.Fatalf("Open succeeded; want an error")
				}
				if len(b) > 0 && !errors.Is(err, ErrCorrupt) {
					t.Errorf("got %v; want an error wrapping ErrCorrupt", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v; want the damage found when reading", err)
			}
			defer g.Close()
			var c Commit
			bad := 0
			for pos := uint32(0); pos < g.Count(); pos++ {
				if err := g.ReadCommit(pos, &c); err != nil {
					if !errors.Is(err, ErrCorrupt) {
						t.Errorf("ReadCommit(%d): got %v; want ErrCorrupt", pos, err)
					}
					bad++
				}
			}
			if bad == 0 {
				t.Errorf("every commit read without error; want one error at least")
			}
		})
	}
}

func TestMalformedChain(t *testing.T) {
	dir := gittest.InitBare(t, "sha1")
	history(t, dir, 20, 0, false)
	gittest.Git(t, dir, "commit-graph", "write", "--reachable", "--split")
	history(t, dir, 20, 20, true)
	gittest.Git(t, dir, "commit-graph", "write", "--reachable", "--split=no-merge")
	objects := filepath.Join(dir, "objects")
	chainDir := filepath.Join(objects, "info", "commit-graphs")
	chainPath := filepath.Join(chainDir, "commit-graph-chain")
	chain, err := os.ReadFile(chainPath)
	if err != nil {
		t.Fatal(err)
	}
	names := strings.Fields(string(chain))
	if len(names) != 2 {
		t.Fatalf("chain has %d layers; want 2", len(names))
	}
	layerPath := func(i int) string { return filepath.Join(chainDir, "graph-"+names[i]+".graph") }
	top, err := os.ReadFile(layerPath(1))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		chain string
		top   func(b []byte) []byte
	}{
		{"empty chain", "", nil},
		{"unterminated", names[0] + "\n" + names[1], nil},
		{"bad hex", names[0] + "\nxyz\n", nil},
		{"sha256 length", names[0] + "\n" + strings.Repeat("a", 64) + "\n", nil},
		{"missing layer", names[0] + "\n" + strings.Repeat("a", 40) + "\n", nil},
		{"swapped", names[1] + "\n" + names[0] + "\n", nil},
		{"top only", names[1] + "\n", nil},
		{"too long", strings.Repeat(names[0]+"\n", maxChain+1), nil},
		{"base mismatch", "", func(b []byte) []byte {
			o := chunkOffsets(t, b)["BASE"][0]
			b[o] ^= 1
			return b
		}},
		{"base count", "", func(b []byte) []byte { b[7] = 0; return b }},
		{"checksum", "", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.chain
			if tc.top != nil {
				c = string(chain)
			}
			if err := os.WriteFile(chainPath, []byte(c), 0o644); err != nil {
				t.Fatal(err)
			}
			b := top
			if tc.top != nil {
				b = tc.top(bytes.Clone(top))
			}
			if err := os.WriteFile(layerPath(1), b, 0o644); err != nil {
				t.Fatal(err)
			}
			g, err := Open(objects, oid.SHA1)
			if err == nil {
				g.Close()
				t.Fatalf("Open succeeded; want an error")
			}
			if !errors.Is(err, ErrCorrupt) || errors.Is(err, os.ErrNotExist) {
				t.Errorf("got %v; want an error wrapping ErrCorrupt and not os.ErrNotExist", err)
			}
		})
	}
	// The intact chain still opens: the cases above failed for the
	// reasons they name.
	os.WriteFile(chainPath, chain, 0o644)
	os.WriteFile(layerPath(1), top, 0o644)
	g, err := Open(objects, oid.SHA1)
	if err != nil {
		t.Fatalf("Open of the intact chain: %v", err)
	}
	g.Close()
}

func TestReadCommitAllocs(t *testing.T) {
	dir := gittest.InitBare(t, "sha1")
	history(t, dir, 30, 0, false)
	gittest.Git(t, dir, "commit-graph", "write", "--reachable")
	g, err := Open(filepath.Join(dir, "objects"), oid.SHA1)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	c := Commit{Parents: make([]uint32, 0, 8)}
	allocs := testing.AllocsPerRun(10, func() {
		for pos := uint32(0); pos < g.Count(); pos++ {
			if err := g.ReadCommit(pos, &c); err != nil {
				t.Fatal(err)
			}
			g.Lookup(c.ID)
		}
	})
	if allocs != 0 {
		t.Errorf("ReadCommit and Lookup over the graph: got %v allocations; want 0", allocs)
	}
}
