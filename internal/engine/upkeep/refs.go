package upkeep

import (
	"fmt"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/repo"
)

// PackRefs moves the repository's loose references into packed-refs,
// with the peeled value of every annotated tag, when more than
// threshold of them are loose (threshold 0: whenever one is), as C
// Git's gc runs pack-refs --all --prune. It is safe while pushes move
// references: it takes C Git's locks (refs.Store.PackRefs), and a
// reference moved meanwhile keeps its new value. It returns how many
// loose references there were before and after.
func PackRefs(r *repo.Repo, threshold int) (before, after int, err error) {
	before, err = r.Refs.CountLoose()
	if err != nil || before == 0 || before <= threshold {
		return before, before, err
	}
	peel := func(id oid.ID) (oid.ID, bool) {
		if t, _, err := r.StatObject(id); err != nil || t != object.Tag {
			return oid.ID{}, false
		}
		p := r.Peel(id)
		return p, p.Valid()
	}
	if err := r.Refs.PackRefs(peel); err != nil {
		return before, before, fmt.Errorf("upkeep: pack references: %w", err)
	}
	after, err = r.Refs.CountLoose()
	return before, after, err
}
