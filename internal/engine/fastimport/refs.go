package fastimport

import (
	"errors"
	"fmt"

	"gotd/internal/git/oid"
	"gotd/internal/git/refs"
	"gotd/internal/git/walk"
)

// ErrNotFastForward is wrapped by Import's error when a branch was not
// updated because its new tip does not contain its old one.
var ErrNotFastForward = errors.New("not a fast-forward")

// updateRefs sets the branches and tags the stream named, in one
// transaction, as dump_branches and dump_tags do: a branch that was
// reset to the null id is deleted, one that would not fast-forward is
// left alone unless forced, tags are set whatever they were.
func (im *importer) updateRefs() error {
	w := &walk.Walker{Store: im.r, Format: im.format}
	who := refs.Who{Name: "gotadmin", Message: "fast-import"}
	var ups []refs.Update
	var refused []string
	idx := make(map[string]int)
	add := func(u refs.Update) {
		if i, ok := idx[u.Name]; ok {
			ups[i] = u
			return
		}
		idx[u.Name] = len(ups)
		ups = append(ups, u)
	}
	for _, b := range im.order {
		name, err := im.refName(b)
		if err != nil {
			return err
		}
		old, err := im.r.Refs.Read(name)
		exists := err == nil
		if err != nil && !errors.Is(err, refs.ErrNotFound) {
			return fmt.Errorf("read %s: %w", name, err)
		}
		if !b.tip.Valid() || b.tip.IsNull() {
			if b.delete && exists {
				add(refs.Update{Name: name, Old: old.ID, New: oid.Zero(im.format), Who: who})
			}
			continue
		}
		if !exists {
			add(refs.Update{Name: name, Old: oid.Zero(im.format), New: b.tip, Who: who})
			continue
		}
		if old.ID == b.tip {
			continue
		}
		if !im.force {
			ok, err := w.IsAncestor(im.ctx, old.ID, b.tip)
			if err != nil || !ok {
				refused = append(refused, name)
				if im.opts.Warn != nil {
					im.opts.Warn(fmt.Sprintf("not updating %s (new tip %s does not contain %s)", name, b.tip, old.ID))
				}
				continue
			}
		}
		add(refs.Update{Name: name, Old: old.ID, New: b.tip, Who: who})
	}
	for _, t := range im.tags {
		add(refs.Update{Name: "refs/tags/" + t.name, New: t.id, Who: who})
	}
	if len(ups) > 0 {
		if err := im.r.Refs.Update(ups); err != nil {
			return fmt.Errorf("update references: %w", err)
		}
	}
	im.stats.Refs = len(ups)
	if len(refused) > 0 {
		return fmt.Errorf("%w: %d branches not updated (first %s)", ErrNotFastForward, len(refused), refused[0])
	}
	return nil
}

// refName is the reference branch b updates: its name, but for "HEAD",
// which follows HEAD to the branch it names, as C Git's update does (a
// detached HEAD is moved itself).
func (im *importer) refName(b *branch) (string, error) {
	if b.name != "HEAD" {
		return b.name, nil
	}
	head, err := im.r.Refs.Read("HEAD")
	if err == nil && head.Target != "" {
		if refs.CheckName(head.Target) != nil {
			return "", fmt.Errorf("HEAD points at %q, not a branch", head.Target)
		}
		return head.Target, nil
	}
	return b.name, nil
}

// checkRefs refuses, before the pack is installed, a stream whose
// references updateRefs could not set in one transaction: two names in
// conflict ("a" and "a/b"), a name in the way of an existing reference,
// HEAD pointing outside refs/.
func (im *importer) checkRefs() error {
	var ups []refs.Update
	seen := make(map[string]bool)
	add := func(u refs.Update) {
		if !seen[u.Name] {
			seen[u.Name] = true
			ups = append(ups, u)
		}
	}
	for _, b := range im.order {
		name, err := im.refName(b)
		if err != nil {
			return err
		}
		if b.tip.Valid() && !b.tip.IsNull() {
			add(refs.Update{Name: name, New: b.tip})
		} else if _, err := im.r.Refs.Read(name); b.delete && err == nil {
			add(refs.Update{Name: name, New: oid.Zero(im.format)})
		}
	}
	for _, t := range im.tags {
		add(refs.Update{Name: "refs/tags/" + t.name, New: t.id})
	}
	if err := im.r.Refs.Check(ups); err != nil {
		return fmt.Errorf("update references: %w", err)
	}
	return nil
}
