// Package policy decides what a client may do beyond the Git protocol's
// own rules: which reference updates a repository's protections allow.
// It sits between the protocol and the daemon: receive-pack asks it
// about each update of a push (receive.Options.Check), whatever the
// pack carried, so that an empty pack moving a protected reference is
// refused like any other.
package policy

import (
	"context"
	"fmt"
	"strings"

	"gotd/internal/git/oid"
	"gotd/internal/git/walk"
	"gotd/internal/protocol/receive"
	"gotd/internal/protocol/wire"
)

// Protection lists a repository's protected references, as gotd.conf's
// protect block names them (gotd.conf(5)).
type Protection struct {
	// Branches are full reference names (refs/heads/main): never
	// deleted, moved only by fast-forward.
	Branches []string
	// BranchNamespaces are prefixes ending in "/" whose references are
	// protected as Branches are.
	BranchNamespaces []string
	// TagNamespaces are prefixes ending in "/" whose references, once
	// created, never change nor go away.
	TagNamespaces []string
}

// Client messages of refused updates: fixed texts, the reference is
// named by the client's own "ng" line.
var (
	errDeleteProtected = wire.Errorf("refusing to delete a protected reference")
	errNonFastForward  = wire.Errorf("refusing a non-fast-forward update of a protected branch")
	errTagProtected    = wire.Errorf("refusing to change a tag in a protected namespace")
)

// IsZero reports whether nothing is protected.
func (p *Protection) IsZero() bool {
	return len(p.Branches) == 0 && len(p.BranchNamespaces) == 0 && len(p.TagNamespaces) == 0
}

// Check refuses an update of cmd that p forbids; it has the signature
// of receive.Options.Check. objects must hold the pushed objects: a
// fast-forward is decided by walking from the new value, which the
// pack may have brought.
func (p *Protection) Check(ctx context.Context, cmd *receive.Command, objects walk.Store, format oid.Format) error {
	switch {
	case p.tag(cmd.Name):
		if cmd.IsDelete() {
			return errDeleteProtected
		}
		if !cmd.Old.IsNull() {
			return errTagProtected
		}
	case p.branch(cmd.Name):
		if cmd.IsDelete() {
			return errDeleteProtected
		}
		if cmd.Old.IsNull() {
			return nil // a new branch
		}
		w := &walk.Walker{Store: objects, Format: format}
		ff, err := w.IsAncestor(ctx, cmd.Old, cmd.New)
		if err != nil {
			return fmt.Errorf("policy: is %v an ancestor of %v: %w", cmd.Old, cmd.New, err)
		}
		if !ff {
			return errNonFastForward
		}
	}
	return nil
}

func (p *Protection) branch(name string) bool {
	for _, b := range p.Branches {
		if name == b {
			return true
		}
	}
	return hasAnyPrefix(name, p.BranchNamespaces)
}

func (p *Protection) tag(name string) bool { return hasAnyPrefix(name, p.TagNamespaces) }

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, ns := range prefixes {
		if strings.HasPrefix(s, ns) {
			return true
		}
	}
	return false
}
