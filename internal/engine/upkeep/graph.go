package upkeep

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"gotd/internal/git/commitgraph"
	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/repo"
)

// writeCommitGraph brings the repository's commit-graph chain up to
// date with the commits the references reach (commitgraph.Write):
// incrementally, a layer of the new commits over those already there,
// or with replace one layer afresh, as after a prune that removed
// commits the graph holds. A shallow repository gets none, as C Git
// writes none there: its commits' parents are missing. When replace
// cannot write, the graph is removed, since it names commits that are
// gone.
func writeCommitGraph(r *repo.Repo, replace bool, own func(string)) (*commitgraph.WriteReport, error) {
	if _, err := os.Lstat(filepath.Join(r.GitDir, "shallow")); !errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	rep, err := writeGraph(r, replace, own)
	if err != nil && replace {
		if rerr := dropCommitGraph(r); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("upkeep: commit-graph: %w", err)
	}
	return rep, nil
}

func writeGraph(r *repo.Repo, replace bool, own func(string)) (*commitgraph.WriteReport, error) {
	refs, err := refTips(r)
	if err != nil {
		return nil, err
	}
	// The commits the references point at, through annotated tags;
	// references to trees and blobs add nothing.
	var tips []oid.ID
	for _, id := range refs {
		c := r.Peel(id)
		if !c.Valid() {
			continue
		}
		if t, _, err := r.StatObject(c); err == nil && t == object.Commit {
			tips = append(tips, c)
		}
	}
	read := func(id oid.ID) (commitgraph.CommitInfo, error) {
		t, data, err := r.ReadObject(id)
		if err != nil {
			return commitgraph.CommitInfo{}, err
		}
		if t != object.Commit {
			return commitgraph.CommitInfo{}, fmt.Errorf("%v is a %v, not a commit", id, t)
		}
		// The writer keeps Parents: a slice of its own each time.
		tree, ps, when, err := object.CommitLinks(r.Format, data, nil)
		return commitgraph.CommitInfo{Tree: tree, Parents: ps, Time: when}, err
	}
	return commitgraph.Write(r.ObjectsDir(), r.Format, tips, read, commitgraph.WriteOptions{
		Replace: replace,
		Shared:  r.Shared,
		Own:     own,
	})
}

// graphHolds reports whether the commit-graph holds any of ids.
func graphHolds(r *repo.Repo, ids []oid.ID) bool {
	if len(ids) == 0 {
		return false
	}
	g, err := commitgraph.Open(r.ObjectsDir(), r.Format)
	if err != nil {
		return false
	}
	defer g.Close()
	for _, id := range ids {
		if _, ok := g.Lookup(id); ok {
			return true
		}
	}
	return false
}

// dropCommitGraph removes the commit-graph, the single file and the
// chain, whatever lock a writer holds: C Git's fsck checks that every
// commit a graph names exists.
func dropCommitGraph(r *repo.Repo) error {
	info := filepath.Join(r.ObjectsDir(), "info")
	if err := os.Remove(filepath.Join(info, "commit-graph")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return os.RemoveAll(filepath.Join(info, "commit-graphs"))
}
