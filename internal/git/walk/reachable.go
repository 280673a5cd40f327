package walk

import (
	"context"
	"errors"
	"slices"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
)

// errAllFound stops Reachable's object walk.
var errAllFound = errors.New("walk: all found")

// Reachable returns which of ids the objects reachable from tips
// include. Ids the Store lacks are not, at no cost. Commits are decided
// by one limited walk from them that stops where their history meets
// the tips' (as `git rev-list <ids> --not <tips>`): its cost is that of
// the commits between, not of the whole history. Other objects take
// one walk of what tips reach, stopped as soon as all are found: an
// object they do not reach costs a walk of all of it.
func (w *Walker) Reachable(ctx context.Context, tips, ids []oid.ID) (map[oid.ID]bool, error) {
	found := make(map[oid.ID]bool, len(ids))
	isTip := make(map[oid.ID]bool, len(tips))
	for _, t := range tips {
		isTip[t] = true
	}
	has, _ := w.Store.(hasObjecter)
	st, _ := w.Store.(statObjecter)
	var commits []oid.ID
	others := map[oid.ID]bool{}
	for _, id := range ids {
		switch {
		case found[id] || others[id]:
		case isTip[id]:
			found[id] = true
		case has != nil && !has.HasObject(id):
		default:
			var t object.Type
			var err error
			if st != nil {
				t, _, err = st.StatObject(id)
			} else {
				t, _, err = w.Store.ReadObject(id)
			}
			switch {
			case errors.Is(err, object.ErrNotFound):
			case err != nil:
				return nil, err
			case t == object.Commit:
				if !slices.Contains(commits, id) {
					commits = append(commits, id)
				}
			default:
				others[id] = true
			}
		}
	}
	sorted := slices.Clone(tips)
	slices.SortFunc(sorted, oid.ID.Compare)
	sorted = slices.Compact(sorted)
	if len(commits) > 0 {
		// What the walk lists, the tips do not reach.
		listed := map[oid.ID]bool{}
		err := w.Commits(ctx, commits, sorted, func(id oid.ID) error {
			listed[id] = true
			return nil
		})
		if err != nil {
			return nil, err
		}
		for _, id := range commits {
			if !listed[id] {
				found[id] = true
			}
		}
	}
	if len(others) == 0 {
		return found, nil
	}
	err := w.Objects(ctx, sorted, nil, func(id oid.ID, _ object.Type, _ []byte) error {
		if others[id] {
			delete(others, id)
			found[id] = true
			if len(others) == 0 {
				return errAllFound
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, errAllFound) {
		return nil, err
	}
	return found, nil
}
