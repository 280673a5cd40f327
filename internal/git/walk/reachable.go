package walk

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
)

// errAllFound stops Reachable's object walk.
var errAllFound = errors.New("walk: all found")

// Reachable returns which of ids the objects reachable from tips
// include, exactly. Ids the Store lacks are not, at no cost. Commits
// are first decided by one limited walk from them that stops where
// their history meets the tips' (as `git rev-list <ids> --not
// <tips>`), whose cost is that of the commits between; those it lists
// are then looked for in one walk of every commit the tips reach.
// Other objects take one walk of what tips reach, stopped as soon as
// all are found. So an id the tips do not reach costs a walk of all
// they reach, as much as a clone's counting of objects.
func (w *Walker) Reachable(ctx context.Context, tips, ids []oid.ID) (map[oid.ID]bool, error) {
	found := make(map[oid.ID]bool, len(ids))
	isTip := make(map[oid.ID]bool, len(tips))
	for _, t := range tips {
		isTip[t] = true
	}
	has, _ := w.Store.(hasObjecter)
	st, _ := w.Store.(statObjecter)
	var commits []oid.ID
	seen := make(map[oid.ID]bool, len(ids))
	others := map[oid.ID]bool{}
	for i, id := range ids {
		if i%checkEvery == checkEvery-1 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		switch {
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
				commits = append(commits, id)
			default:
				others[id] = true
			}
		}
	}
	sorted := slices.Clone(tips)
	slices.SortFunc(sorted, oid.ID.Compare)
	sorted = slices.Compact(sorted)
	if len(commits) > 0 {
		// What the walk lists, the tips may not reach: it stops a few
		// commits past where the histories meet (C Git's slop), which
		// skewed commit dates can make too early. What it says the
		// tips reach, they do.
		listed := map[oid.ID]bool{}
		err := w.Commits(ctx, commits, sorted, func(id oid.ID) error {
			listed[id] = true
			return nil
		})
		if err != nil {
			return nil, err
		}
		var doubt []oid.ID
		for _, id := range commits {
			if listed[id] {
				doubt = append(doubt, id)
			} else {
				found[id] = true
			}
		}
		// The doubtful ones are settled by the walk of every commit
		// the tips reach, exact, stopped once all are found.
		if len(doubt) > 0 {
			pending := make(map[oid.ID]bool, len(doubt))
			for _, id := range doubt {
				pending[id] = true
			}
			err := w.Commits(ctx, sorted, nil, func(id oid.ID) error {
				if settle(pending, found, id) {
					return errAllFound
				}
				return nil
			})
			if err != nil && !errors.Is(err, errAllFound) {
				return nil, err
			}
		}
	}
	if len(others) == 0 {
		return found, nil
	}
	// The tips' own trees first, where a push's thin bases mostly are:
	// no commit walk for them.
	if err := w.searchTipTrees(ctx, sorted, others, found); err != nil {
		return nil, err
	}
	if len(others) == 0 {
		return found, nil
	}
	err := w.Objects(ctx, sorted, nil, func(id oid.ID, _ object.Type, _ []byte) error {
		if settle(others, found, id) {
			return errAllFound
		}
		return nil
	})
	if err != nil && !errors.Is(err, errAllFound) {
		return nil, err
	}
	return found, nil
}

// settle moves id from pending to found if it is pending, and reports
// whether nothing is pending any more.
func settle(pending, found map[oid.ID]bool, id oid.ID) bool {
	if pending[id] {
		delete(pending, id)
		found[id] = true
	}
	return len(pending) == 0
}

// tipTreeBudget bounds the trees searchTipTrees reads.
const tipTreeBudget = 50000

// searchTipTrees moves from pending to found the objects that tips are,
// or that their root trees (through tags and commits) hold, reading at
// most tipTreeBudget trees.
func (w *Walker) searchTipTrees(ctx context.Context, tips []oid.ID, pending, found map[oid.ID]bool) error {
	hit := func(id oid.ID) bool { return settle(pending, found, id) }
	var stack []oid.ID
	for _, id := range tips {
		for depth := 0; depth <= maxTagDepth; depth++ {
			if hit(id) {
				return nil
			}
			t, data, err := w.readTip(id, "object")
			if errors.Is(err, object.ErrNotFound) {
				break
			}
			if err != nil {
				return err
			}
			switch t {
			case object.Tag:
				tag, err := object.ParseTag(w.Format, data)
				if err != nil {
					return fmt.Errorf("walk: tag %v: %w", id, err)
				}
				id = tag.Object
				continue
			case object.Commit:
				tree, _, _, err := object.CommitLinks(w.Format, data, nil)
				if err != nil {
					return fmt.Errorf("walk: commit %v: %w", id, err)
				}
				stack = append(stack, tree)
			case object.Tree:
				stack = append(stack, id)
			}
			break
		}
	}
	seen := map[oid.ID]bool{}
	for reads := 0; len(stack) > 0 && reads < tipTreeBudget; reads++ {
		if reads%checkEvery == checkEvery-1 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[id] {
			continue
		}
		seen[id] = true
		if hit(id) {
			return nil
		}
		_, data, err := w.Store.ReadObject(id)
		if errors.Is(err, object.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		it := object.NewTreeIter(w.Format, data)
		for e, ok := it.Next(); ok; e, ok = it.Next() {
			switch e.Type() {
			case object.Tree:
				if !seen[e.ID] {
					stack = append(stack, e.ID)
				}
			case object.Blob:
				if hit(e.ID) {
					return nil
				}
			}
		}
		if err := it.Err(); err != nil {
			return fmt.Errorf("walk: tree %v: %w", id, err)
		}
	}
	return nil
}
