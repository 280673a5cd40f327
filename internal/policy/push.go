package policy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/refs"
	"gotd/internal/git/treediff"
	"gotd/internal/git/walk"
	"gotd/internal/protocol/receive"
	"gotd/internal/protocol/wire"
)

// Push is a repository's push policy as it applies to one pusher:
// gotd.conf's push block with its identities resolved by the daemon
// (rules naming other users left out, exemptions applied), so that
// the process checking a push needs no user database.
type Push struct {
	// Refs decide who may create and delete references: the last rule
	// whose operation and namespace match decides; no match allows.
	Refs []RefRule
	// MaxBlobSize bounds the files a push adds (0: no bound).
	MaxBlobSize int64
	// DenyBinary refuses added files that C Git's diff calls binary.
	DenyBinary bool
	// NoMerges are branches (full names) and namespaces (ending in
	// "/") that new merge commits may not reach.
	NoMerges []string
	// Rebase are branches (full names) and namespaces (ending in "/")
	// whose stale updates are rebased onto their current value
	// (receive.Options.Rebase); MaxRebase bounds the commits of one
	// (0: receive.DefaultMaxRebase).
	Rebase    []string
	MaxRebase int
}

// Rebases reports whether name's stale updates are rebased.
func (p *Push) Rebases(name string) bool {
	for _, r := range p.Rebase {
		if within(name, r) {
			return true
		}
	}
	return false
}

// RefRule is one "permit|deny create|delete namespace" line.
type RefRule struct {
	Deny, Delete bool
	// Namespace ends in "/" (gotd.conf's are all namespaces); without
	// it, it is one full reference name.
	Namespace string
}

// within reports whether name is ns or in it.
func within(name, ns string) bool {
	return name == ns || strings.HasSuffix(ns, "/") && strings.HasPrefix(name, ns)
}

// CheckRef refuses the creation or deletion of cmd's reference that the
// rules deny.
func (p *Push) CheckRef(cmd *receive.Command) error {
	if !cmd.Old.IsNull() && !cmd.IsDelete() {
		return nil // an update: protect blocks decide those
	}
	deny := false
	for _, r := range p.Refs {
		if r.Delete == cmd.IsDelete() && within(cmd.Name, r.Namespace) {
			deny = r.Deny
		}
	}
	switch {
	case !deny:
		return nil
	case cmd.IsDelete():
		return wire.Errorf("refusing to delete this reference: not allowed for you")
	}
	return wire.Errorf("refusing to create this reference: not allowed for you")
}

// errStop ends a content walk at its first refusal.
var errStop = errors.New("refused")

// CheckContent refuses cmd if what it adds breaks the content rules;
// before lists the repository's references as they were before the
// push (asked for only when there is something to check). Files: those
// the new value reaches and no reference did. Merges: the commits the
// reference gains, those its new value reaches and its old one does
// not, so that a merge pushed elsewhere first cannot reach it by a
// fast-forward; for a new reference, those no reference the same rule
// covers had, so that creating it at such a merge is no way round
// either.
func (p *Push) CheckContent(ctx context.Context, cmd *receive.Command, objects walk.Store, f oid.Format, before func() []refs.Ref) error {
	if cmd.IsDelete() {
		return nil
	}
	w := &walk.Walker{Store: objects, Format: f}
	if p.MaxBlobSize > 0 || p.DenyBinary {
		var tips []oid.ID
		for _, r := range before() {
			tips = append(tips, r.ID)
		}
		if err := p.checkFiles(ctx, w, cmd, tips); err != nil {
			return err
		}
	}
	rule := slices.IndexFunc(p.NoMerges, func(ns string) bool { return within(cmd.Name, ns) })
	if rule < 0 {
		return nil
	}
	haves := []oid.ID{cmd.Old}
	if cmd.Old.IsNull() {
		haves = nil
		for _, r := range before() {
			if within(r.Name, p.NoMerges[rule]) {
				haves = append(haves, r.ID)
			}
		}
	}
	return checkMerges(ctx, w, cmd, haves)
}

// checkFiles refuses files over the size bound, or binary.
func (p *Push) checkFiles(ctx context.Context, w *walk.Walker, cmd *receive.Command, tips []oid.ID) error {
	var refusal error
	err := w.Objects(ctx, []oid.ID{cmd.New}, tips, func(id oid.ID, t object.Type, path []byte) error {
		if t != object.Blob {
			return nil
		}
		size, err := sizeOf(w.Store, id)
		if err != nil {
			return err
		}
		if p.MaxBlobSize > 0 && size > p.MaxBlobSize {
			refusal = wire.Errorf("refusing a file larger than %s: %s (%s)", Size(p.MaxBlobSize), clientPath(path), Size(size))
			return errStop
		}
		if !p.DenyBinary {
			return nil
		}
		head, err := prefixOf(w.Store, id, binaryProbe)
		if err != nil {
			return err
		}
		if treediff.IsBinary(head) {
			refusal = wire.Errorf("refusing a binary file: %s", clientPath(path))
			return errStop
		}
		return nil
	})
	return verdict(err, refusal, "new files", cmd.Name)
}

// checkMerges refuses the first commit with more than one parent among
// those cmd's new value reaches and haves do not.
func checkMerges(ctx context.Context, w *walk.Walker, cmd *receive.Command, haves []oid.ID) error {
	var refusal error
	err := w.Commits(ctx, []oid.ID{cmd.New}, haves, func(id oid.ID) error {
		_, data, err := w.Store.ReadObject(id)
		if err != nil {
			return err
		}
		_, parents, _, err := object.CommitLinks(w.Format, data, nil)
		if err != nil {
			return fmt.Errorf("commit %v: %w", id, err)
		}
		if len(parents) > 1 {
			refusal = wire.Errorf("refusing a merge commit on this branch: %v", id)
			return errStop
		}
		return nil
	})
	return verdict(err, refusal, "new commits", cmd.Name)
}

// verdict is the answer of a content walk that ended with err: the
// refusal that stopped it, its own failure, or nil.
func verdict(err, refusal error, what, ref string) error {
	switch {
	case errors.Is(err, errStop):
		return refusal
	case err != nil:
		return fmt.Errorf("policy: %s of %s: %w", what, ref, err)
	}
	return nil
}

// binaryProbe is how much of a file the binary test reads (C Git's
// first 8000 bytes).
const binaryProbe = 8000

// prefixOf returns at least the first n bytes of object id (all of a
// shorter one), without inflating the rest when the store can.
func prefixOf(objects walk.Store, id oid.ID, n int) ([]byte, error) {
	if pr, ok := objects.(interface {
		ReadObjectPrefix(id oid.ID, dst []byte, n int) (object.Type, []byte, bool, error)
	}); ok {
		_, data, _, err := pr.ReadObjectPrefix(id, nil, n)
		return data, err
	}
	_, data, err := objects.ReadObject(id)
	return data, err
}

// sizeOf returns the size of object id, without reading it when the
// store can tell (the receive overlay can).
func sizeOf(objects walk.Store, id oid.ID) (int64, error) {
	if st, ok := objects.(interface {
		StatObject(oid.ID) (object.Type, int64, error)
	}); ok {
		_, n, err := st.StatObject(id)
		return n, err
	}
	_, data, err := objects.ReadObject(id)
	return int64(len(data)), err
}

// clientPath makes a path of a pushed tree fit for a one-line message:
// control characters replaced, cut to a bound.
func clientPath(p []byte) string {
	const max = 200
	s := strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '?'
		}
		return r
	}, string(p))
	if len(s) > max {
		s = s[:max] + "..."
	}
	if s == "" {
		s = "(a blob named by the reference itself)"
	}
	return s
}

// Size writes n bytes the way gotd.conf writes sizes: with a K, M or G
// suffix when n is a whole number of them.
func Size(n int64) string {
	for _, u := range []struct {
		shift  uint
		suffix string
	}{{30, "G"}, {20, "M"}, {10, "K"}} {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d%s", n>>u.shift, u.suffix)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}
