package pushnote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/treediff"
	"gotd/internal/git/walk"
)

// Repo is what Build reads: a repository's objects.
type Repo interface {
	ReadObject(id oid.ID) (object.Type, []byte, error)
	StatObject(id oid.ID) (object.Type, int64, error)
}

// Update is one reference a push moved; a null or zero id is "none".
type Update struct {
	Name     string
	Old, New oid.ID
	// Pushed is, for an update the server rebased, what the client
	// pushed (New is the rebased tip); the zero ID otherwise.
	Pushed oid.ID
}

// Limits bound the work and the size of one document.
type Limits struct {
	// Detailed commits are given in full (message, diffstat), the next
	// ones up to Listed as one-line summaries; the rest are counted.
	Detailed, Listed int
	// Files bounds the paths listed per commit (all are counted).
	Files int
	// Message bounds a commit's or tag's message, in bytes.
	Message int
	// LineBytes bounds the bytes of files read to count changed lines,
	// per document; past it, and for files larger than FileBytes, paths
	// are listed without counts. Edits bounds one file's line diff.
	LineBytes, FileBytes int64
	Edits                int
}

// DefaultLimits are gotd's: 50 detailed commits as OpenBSD gotd gives.
var DefaultLimits = Limits{Detailed: 50, Listed: 1000, Files: 100, Message: 8 << 10,
	LineBytes: 64 << 20, FileBytes: 1 << 20, Edits: 5000}

// Origin is the repository pushed to and the user who pushed.
type Origin struct{ Repo, User string }

// Build describes u in repository r, whose objects include the push's.
// others are the tips of the repository's other references as they were
// before the push: the new commits of a created branch are those none
// of them reaches; those of a moved one, those its old tip does not
// reach. Tags list no commits; an annotated tag is described. ctx
// bounds the work: once it is done, the document has the reference
// and what was found so far.
func Build(ctx context.Context, r Repo, f oid.Format, o Origin, u Update, others []oid.ID, lim Limits) (*Document, error) {
	d := &Document{Ref: Ref{Name: u.Name}, Notifications: []Item{}}
	defer d.SetOrigin(o.Repo, o.User)
	if !none(u.Old) {
		d.Ref.Old = u.Old.String()
	}
	if !none(u.New) {
		d.Ref.New = u.New.String()
	}
	if u.Pushed.Valid() && !none(u.Pushed) {
		d.Ref.RebasedFrom = u.Pushed.String()
	}
	b := &builder{ctx: ctx, r: r, f: f, lim: lim, budget: lim.LineBytes}
	w := &walk.Walker{Store: r, Format: f}
	var haves []oid.ID
	switch {
	case none(u.New):
		d.Ref.Action = Deleted
		d.Notifications = append(d.Notifications, Item{Type: TypeBranchDeleted, Ref: u.Name, ID: u.Old.String()})
		return d, nil
	case none(u.Old):
		d.Ref.Action, haves = Created, others
	default:
		d.Ref.Action, haves = Moved, []oid.ID{u.Old}
		ff, err := fastForward(ctx, r, f, w, u.Old, u.New)
		if err != nil {
			return d, fmt.Errorf("pushnote: %s: %w", u.Name, err)
		}
		d.Ref.Action = Rewritten
		if ff {
			d.Ref.Action = FastForward
		}
	}
	if t, data, err := r.ReadObject(u.New); err != nil {
		return d, fmt.Errorf("pushnote: %s: %w", u.Name, err)
	} else if t == object.Tag {
		item, err := b.tag(data)
		if err != nil {
			return d, fmt.Errorf("pushnote: %s: %w", u.Name, err)
		}
		d.Notifications = append(d.Notifications, item)
	}
	if strings.HasPrefix(u.Name, "refs/tags/") {
		return d, nil
	}
	var ids []oid.ID
	err := w.Commits(ctx, []oid.ID{u.New}, haves, func(id oid.ID) error {
		if len(ids) < lim.Listed {
			ids = append(ids, id)
		} else {
			d.MoreCommits++
		}
		return nil
	})
	if err != nil {
		return d, fmt.Errorf("pushnote: %s: %w", u.Name, err)
	}
	for i, id := range ids {
		if ctx.Err() != nil {
			d.MoreCommits += len(ids) - i
			break
		}
		item, err := b.commit(id, i < lim.Detailed)
		if err != nil {
			return d, fmt.Errorf("pushnote: %s: %w", u.Name, err)
		}
		d.Notifications = append(d.Notifications, item)
	}
	d.SetOrigin(o.Repo, o.User)
	fit(d, MaxSize)
	return d, nil
}

// maxPeel bounds a chain of tags.
const maxPeel = 16

// errFound stops a walk at its first commit.
var errFound = errors.New("found")

// fastForward reports whether new reaches old: whether no commit
// reachable from old is left once those reachable from new are taken
// away. The walk stops where the two histories meet, so its cost is that
// of the commits between them, not of the whole history. Tags are peeled;
// a tree or a blob is not a fast-forward of anything.
func fastForward(ctx context.Context, r Repo, f oid.Format, w *walk.Walker, old, new oid.ID) (bool, error) {
	if old == new {
		return true, nil
	}
	for range maxPeel {
		t, data, err := r.ReadObject(old)
		if err != nil {
			return false, err
		}
		if t == object.Commit {
			break
		}
		if t != object.Tag {
			return false, nil
		}
		tag, err := object.ParseTag(f, data)
		if err != nil {
			return false, fmt.Errorf("tag %v: %w", old, err)
		}
		old = tag.Object
	}
	err := w.Commits(ctx, []oid.ID{old}, []oid.ID{new}, func(oid.ID) error { return errFound })
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, errFound):
		return false, nil
	}
	return false, err
}

// none reports whether id stands for no object: the null id of its
// format, or the zero ID.
func none(id oid.ID) bool { return id == oid.ID{} || id.IsNull() }

// maxSubject bounds a commit's first line as a document gives it.
const maxSubject = 1000

type builder struct {
	ctx    context.Context
	r      Repo
	f      oid.Format
	lim    Limits
	budget int64 // bytes left for line counts
}

// commit describes commit id, in full or short.
func (b *builder) commit(id oid.ID, full bool) (Item, error) {
	_, data, err := b.r.ReadObject(id)
	if err != nil {
		return Item{}, err
	}
	c, err := object.ParseCommit(b.f, data)
	if err != nil {
		return Item{}, fmt.Errorf("commit %v: %w", id, err)
	}
	subject, _, _ := strings.Cut(strings.TrimLeft(string(c.Message), "\n"), "\n")
	short := Item{Type: TypeCommit, Short: true, ID: id.String(), Author: person(c.Author), Date: c.Committer.When, Subject: clip(subject, maxSubject)}
	if !full {
		return short, nil
	}
	item := short
	item.Short = false
	item.Committer = person(c.Committer)
	item.Message = clip(string(c.Message), b.lim.Message)
	var parentTree oid.ID
	if len(c.Parents) > 0 {
		_, pdata, err := b.r.ReadObject(c.Parents[0])
		if err != nil {
			return Item{}, err
		}
		if parentTree, _, _, err = object.CommitLinks(b.f, pdata, nil); err != nil {
			return Item{}, fmt.Errorf("commit %v: %w", c.Parents[0], err)
		}
	}
	ds := &Diffstat{Files: []FileStat{}}
	err = treediff.Trees(b.r, b.f, parentTree, c.Tree, func(ch treediff.Change) error {
		if err := b.ctx.Err(); err != nil {
			return err
		}
		fs := b.fileStat(ch)
		ds.Total.Files++
		ds.Total.Added += fs.Added
		ds.Total.Removed += fs.Removed
		if len(ds.Files) < b.lim.Files {
			ds.Files = append(ds.Files, fs)
		}
		return nil
	})
	if b.ctx.Err() != nil {
		return short, nil // out of time: the summary only
	}
	if err != nil {
		return Item{}, fmt.Errorf("commit %v: %w", id, err)
	}
	item.Diffstat = ds
	return item, nil
}

var actions = map[byte]string{'A': "added", 'D': "deleted", 'M': "modified", 'T': "type changed"}

// fileStat describes one changed path, with line counts when both sides
// are text files small enough and the budget allows.
func (b *builder) fileStat(ch treediff.Change) FileStat {
	fs := FileStat{Action: actions[ch.Status], File: ch.Path}
	fs.Uncounted = true
	old, ok := b.blob(ch.Old, ch.OldMode)
	if !ok {
		return fs
	}
	new, ok := b.blob(ch.New, ch.NewMode)
	if !ok {
		return fs
	}
	if treediff.IsBinary(old) || treediff.IsBinary(new) {
		fs.Binary, fs.Uncounted = true, false
		return fs
	}
	var counted bool
	fs.Added, fs.Removed, counted = treediff.LineCounts(old, new, b.lim.Edits)
	fs.Uncounted = !counted
	return fs
}

// blob reads a file's content for line counts: nothing for an absent
// side, false for a gitlink, a file too large or past the budget.
func (b *builder) blob(id oid.ID, mode uint32) ([]byte, bool) {
	if none(id) || mode == 0 {
		return nil, true
	}
	if mode&0o170000 == 0o160000 {
		return nil, false
	}
	_, size, err := b.r.StatObject(id)
	if err != nil || size > b.lim.FileBytes || size > b.budget {
		return nil, false
	}
	b.budget -= size
	_, data, err := b.r.ReadObject(id)
	return data, err == nil
}

// tag describes an annotated tag.
func (b *builder) tag(data []byte) (Item, error) {
	t, err := object.ParseTag(b.f, data)
	if err != nil {
		return Item{}, err
	}
	item := Item{Type: TypeTag, Tag: string(t.Name), Object: &Object{Type: t.Type.String(), ID: t.Object.String()},
		Message: clip(string(t.Message), b.lim.Message)}
	if t.Tagger != nil {
		item.Tagger, item.Date = person(*t.Tagger), t.Tagger.When
	}
	return item, nil
}

// person makes a Person of a signature.
func person(s object.Signature) *Person {
	name, mail := string(bytes.ToValidUTF8(s.Name, []byte("\uFFFD"))), string(bytes.ToValidUTF8(s.Email, []byte("\uFFFD")))
	user, _, _ := strings.Cut(mail, "@")
	return &Person{Full: name + " <" + mail + ">", Name: name, Mail: mail, User: user}
}

// clip cuts s to at most n bytes, at a character boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func isRuneStart(c byte) bool { return c&0xC0 != 0x80 }

// fit makes d's encoding at most max bytes: detailed commits become
// short ones, from the oldest, then the oldest entries are only counted.
func fit(d *Document, max int) {
	size := func(v any) int {
		b, _ := json.Marshal(v)
		return len(b)
	}
	items := d.Notifications
	d.Notifications = nil
	total := size(d) + 64 // room for more_commits
	sizes := make([]int, len(items))
	for i := range items {
		sizes[i] = size(&items[i]) + 1
		total += sizes[i]
	}
	for i := len(items) - 1; i >= 0 && total > max; i-- {
		if items[i].Type == TypeCommit && !items[i].Short {
			it := &items[i]
			*it = Item{Type: TypeCommit, Short: true, Repo: it.Repo, User: it.User, ID: it.ID, Author: it.Author, Date: it.Date, Subject: it.Subject}
			s := size(&items[i]) + 1
			total += s - sizes[i]
			sizes[i] = s
		}
	}
	for len(items) > 0 && total > max {
		last := len(items) - 1
		if items[last].Type == TypeCommit {
			d.MoreCommits++
		}
		total -= sizes[last]
		items = items[:last]
	}
	d.Notifications = items
}
