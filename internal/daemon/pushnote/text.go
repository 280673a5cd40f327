package pushnote

import (
	"fmt"
	"strings"
	"time"
)

// Subject is the mail subject of d, as OpenBSD gotd writes it:
// "<repo>: <user> <created|removed|changed> <ref>: <12 hex digits>".
func (d *Document) Subject() string {
	verb, id := "changed", d.Ref.New
	switch d.Ref.Action {
	case Created:
		verb = "created"
	case Deleted:
		verb, id = "removed", d.Ref.Old
	}
	return fmt.Sprintf("%s: %s %s %s: %s", d.Repo, d.User, verb, d.Ref.Name, id[:min(12, len(id))])
}

// Text is the plain-text body of d's mail, in the manner of
// `got log -d`: what happened to the reference, then each new commit
// with its author, date, message and changed paths; commits given short
// take one line each.
func (d *Document) Text() string {
	var b strings.Builder
	r := &d.Ref
	switch r.Action {
	case Created:
		fmt.Fprintf(&b, "%s created at %s by %s\n", r.Name, r.New, d.User)
	case FastForward:
		fmt.Fprintf(&b, "%s fast-forwarded by %s\nfrom %s\nto   %s\n", r.Name, d.User, r.Old, r.New)
		if r.RebasedFrom != "" {
			fmt.Fprintf(&b, "rebased on the server: pushed as %s\n", r.RebasedFrom)
		}
	case Rewritten:
		fmt.Fprintf(&b, "%s rewritten by %s (not a fast-forward)\nfrom %s\nto   %s\n", r.Name, d.User, r.Old, r.New)
	case Moved:
		fmt.Fprintf(&b, "%s moved by %s\nfrom %s\nto   %s\n", r.Name, d.User, r.Old, r.New)
	case Deleted:
		fmt.Fprintf(&b, "Removed %s: %s\n", r.Name, r.Old)
	}
	for i := range d.Notifications {
		it := &d.Notifications[i]
		switch {
		case it.Type == TypeTag:
			b.WriteString("\ntag " + it.Tag + "\n")
			if it.Tagger != nil {
				b.WriteString("from: " + it.Tagger.Full + "\n")
				b.WriteString("date: " + date(it.Date) + "\n")
			}
			if it.Object != nil {
				b.WriteString("object: " + it.Object.Type + " " + it.Object.ID + "\n")
			}
			b.WriteString("\n" + indent(it.Message))
		case it.Type == TypeCommit && it.Short:
			if i == 0 || !d.Notifications[i-1].Short {
				b.WriteString("\n")
			}
			fmt.Fprintf(&b, "%s %.10s %-8s %s\n", time.Unix(it.Date, 0).UTC().Format(time.DateOnly), it.ID, user(it.Author), it.Subject)
		case it.Type == TypeCommit:
			b.WriteString("\ncommit " + it.ID + "\n")
			if it.Author != nil {
				b.WriteString("from: " + it.Author.Full + "\n")
			}
			if it.Committer != nil && (it.Author == nil || it.Committer.Full != it.Author.Full) {
				b.WriteString("via: " + it.Committer.Full + "\n")
			}
			b.WriteString("date: " + date(it.Date) + "\n\n")
			b.WriteString(indent(it.Message))
			if it.Diffstat != nil {
				b.WriteString(diffstat(it.Diffstat))
			}
		}
	}
	if d.MoreCommits > 0 {
		fmt.Fprintf(&b, "\n... and %d more commits.\n", d.MoreCommits)
	}
	return b.String()
}

func user(p *Person) string {
	if p == nil {
		return ""
	}
	return p.User
}

func date(t int64) string {
	return time.Unix(t, 0).UTC().Format("Mon Jan _2 15:04:05 2006 UTC")
}

// indent prefixes each line of a message with a space.
func indent(msg string) string {
	msg = strings.TrimRight(msg, "\n")
	if msg == "" {
		return ""
	}
	var b strings.Builder
	for line := range strings.Lines(msg + "\n") {
		if line != "\n" {
			b.WriteString(" ")
		}
		b.WriteString(line)
	}
	return b.String()
}

var statusLetters = map[string]string{"added": "A", "deleted": "D", "modified": "M", "type changed": "T"}

// diffstat renders a commit's changed paths and totals.
func diffstat(ds *Diffstat) string {
	var b strings.Builder
	b.WriteString("\n")
	for _, f := range ds.Files {
		counts := fmt.Sprintf("%d+ %d-", f.Added, f.Removed)
		switch {
		case f.Binary:
			counts = "binary"
		case f.Uncounted:
			counts = "not counted"
		}
		fmt.Fprintf(&b, " %s  %s | %s\n", statusLetters[f.Action], f.File, counts)
	}
	if more := ds.Total.Files - len(ds.Files); more > 0 {
		fmt.Fprintf(&b, " ... and %d more files\n", more)
	}
	fmt.Fprintf(&b, "\n%s changed, %s(+), %s(-)\n",
		plural(ds.Total.Files, "file", "files"), plural(ds.Total.Added, "insertion", "insertions"), plural(ds.Total.Removed, "deletion", "deletions"))
	return b.String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
