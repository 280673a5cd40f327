// Package pushnote describes what a push did to one reference: the
// document session_write builds from the repository once the references
// have moved, which the notify process sends as JSON to web hooks and
// renders as a plain-text mail (Subject, Text).
//
// The JSON keeps the shape OpenBSD gotd's HTTP notifications have
// ({"notifications": [...]} of "commit", "branch-deleted" and "tag"
// objects), so receivers written for it work, and adds the reference
// itself ("ref": name, action, old and new ids) and the count of new
// commits left out ("more_commits"). gotd.conf(5) documents the schema.
package pushnote

import (
	"encoding/json"
	"fmt"
	"strings"
)

// MaxSize bounds a document's JSON encoding, so that it travels in one
// message between gotd's processes. Build degrades the document to fit:
// commit details become one-line summaries, then the oldest commits are
// only counted.
const MaxSize = 60 << 10

// Actions on a reference.
const (
	Created     = "created"
	FastForward = "fast-forward"
	Rewritten   = "rewritten" // moved to a commit that does not contain the old one
	Deleted     = "deleted"
	// Moved is a reference moved where the work allowed to describe the
	// push ran out before telling a fast-forward from a rewrite.
	Moved = "moved"
)

// Item types, as OpenBSD gotd names them.
const (
	TypeCommit        = "commit"
	TypeBranchDeleted = "branch-deleted"
	TypeTag           = "tag"
)

// Document is one reference's notification.
type Document struct {
	Repo string `json:"repo"`
	User string `json:"authenticated_user"`
	Ref  Ref    `json:"ref"`
	// Notifications are the new commits (newest first), the annotated
	// tag, or the deletion.
	Notifications []Item `json:"notifications"`
	// MoreCommits counts new commits beyond those listed.
	MoreCommits int `json:"more_commits,omitempty"`
}

// Ref is the reference and what happened to it. Old is empty for a
// created reference and New for a deleted one.
type Ref struct {
	Name   string `json:"name"`
	Action string `json:"action"`
	Old    string `json:"old,omitempty"`
	New    string `json:"new,omitempty"`
	// RebasedFrom is, for an update the server rebased onto the
	// branch's current value, the tip the client pushed.
	RebasedFrom string `json:"rebased_from,omitempty"`
}

// Item is one entry of Notifications; which fields are set depends on
// Type.
type Item struct {
	Type string `json:"type"`
	// Short: a commit given only by id, author, date and first line.
	Short bool   `json:"short,omitempty"`
	Repo  string `json:"repo"`
	User  string `json:"authenticated_user"`
	ID    string `json:"id,omitempty"`
	// Ref is the deleted reference (branch-deleted); Tag the tag's name.
	Ref       string    `json:"ref,omitempty"`
	Tag       string    `json:"tag,omitempty"`
	Author    *Person   `json:"author,omitempty"`
	Committer *Person   `json:"committer,omitempty"`
	Tagger    *Person   `json:"tagger,omitempty"`
	Date      int64     `json:"date,omitempty"` // seconds since the epoch
	Object    *Object   `json:"object,omitempty"`
	Subject   string    `json:"short_message,omitempty"`
	Message   string    `json:"message,omitempty"`
	Diffstat  *Diffstat `json:"diffstat,omitempty"`
}

// Person is an author, committer or tagger: Full is "Name <mail>", User
// the mail address's local part.
type Person struct {
	Full string `json:"full"`
	Name string `json:"name"`
	Mail string `json:"mail"`
	User string `json:"user"`
}

// Object is what a tag points at.
type Object struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// Diffstat is what a commit changed against its first parent.
type Diffstat struct {
	// Files lists the changed paths in Git's order, at most
	// Limits.Files of them; Total counts them all.
	Files []FileStat `json:"files"`
	Total Total      `json:"total"`
}

// FileStat is one changed path. Binary files, and files too large or
// too different to compare (Uncounted), have no line counts.
type FileStat struct {
	Action    string `json:"action"` // added, deleted, modified, type changed
	File      string `json:"file"`
	Added     int    `json:"added"`
	Removed   int    `json:"removed"`
	Binary    bool   `json:"binary,omitempty"`
	Uncounted bool   `json:"uncounted,omitempty"`
}

// Total sums a Diffstat.
type Total struct {
	Files   int `json:"files"`
	Added   int `json:"added"`
	Removed int `json:"removed"`
}

// Encode returns d's JSON.
func (d *Document) Encode() ([]byte, error) {
	return json.Marshal(d)
}

// Decode parses a document and checks what the notify process relies
// on: a reference name and a known action.
func Decode(b []byte) (*Document, error) {
	var d Document
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("pushnote: %w", err)
	}
	switch {
	case !strings.HasPrefix(d.Ref.Name, "refs/"):
		return nil, fmt.Errorf("pushnote: bad reference name %q", d.Ref.Name)
	case d.Ref.Action != Created && d.Ref.Action != FastForward && d.Ref.Action != Rewritten && d.Ref.Action != Deleted && d.Ref.Action != Moved:
		return nil, fmt.Errorf("pushnote: unknown action %q", d.Ref.Action)
	}
	return &d, nil
}

// SetOrigin sets the repository and user of d and of its items: the
// notify process takes them from the daemon, not from the document.
func (d *Document) SetOrigin(repo, user string) {
	d.Repo, d.User = repo, user
	for i := range d.Notifications {
		d.Notifications[i].Repo, d.Notifications[i].User = repo, user
	}
}
