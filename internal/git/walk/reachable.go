package walk

import (
	"context"
	"errors"
	"slices"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
)

// errAllFound stops Reachable's walk.
var errAllFound = errors.New("walk: all found")

// Reachable returns which of ids the objects reachable from tips
// include. It is one walk, which stops as soon as every id is found;
// it lists commits only when every id is a commit (by the Store's
// StatObject, when it has one). The cost of an id that is not
// reachable is a walk of all that tips reach.
func (w *Walker) Reachable(ctx context.Context, tips, ids []oid.ID) (map[oid.ID]bool, error) {
	found := make(map[oid.ID]bool, len(ids))
	pending := make(map[oid.ID]bool, len(ids))
	for _, id := range ids {
		pending[id] = true
	}
	for _, t := range tips {
		if pending[t] {
			delete(pending, t)
			found[t] = true
		}
	}
	if len(pending) == 0 {
		return found, nil
	}
	commitsOnly := true
	st, ok := w.Store.(statObjecter)
	for id := range pending {
		if !ok {
			commitsOnly = false
			break
		}
		if t, _, err := st.StatObject(id); err != nil || t != object.Commit {
			commitsOnly = false
		}
	}
	mark := func(id oid.ID) error {
		if pending[id] {
			delete(pending, id)
			found[id] = true
			if len(pending) == 0 {
				return errAllFound
			}
		}
		return nil
	}
	sorted := slices.Clone(tips)
	slices.SortFunc(sorted, oid.ID.Compare)
	sorted = slices.Compact(sorted)
	var err error
	if commitsOnly {
		err = w.Commits(ctx, sorted, nil, mark)
	} else {
		err = w.Objects(ctx, sorted, nil, func(id oid.ID, _ object.Type, _ []byte) error { return mark(id) })
	}
	if err != nil && !errors.Is(err, errAllFound) {
		return nil, err
	}
	return found, nil
}
