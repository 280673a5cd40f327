package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"unicode"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/refs"
	"gotd/internal/git/repo"
	"gotd/internal/git/walk"
)

// Bounds of gotadmin ref: how many entries -l shows (the newest), and
// how far back -c @{N} may reach.
const (
	maxListEntries = 10000
	maxLogIndex    = 1_000_000
)

// cmdRef lists the reflog of a reference or sets the reference:
//
//	gotadmin ref -l [-r repository-path] name
//	gotadmin ref -c @{N}|object-id [-r repository-path] name
func cmdRef(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("ref")
	rflag := fs.String("r", "", "repository path")
	list := fs.Bool("l", false, "list the reflog")
	change := fs.String("c", "", "new value: @{N} or an object id")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *list == (*change != "") {
		return errUsage
	}
	name := fs.Arg(0)
	if name != "HEAD" && !strings.HasPrefix(name, "refs/") {
		name = "refs/heads/" + name
	}
	if err := refs.CheckName(name); name != "HEAD" && err != nil {
		return usageError{fmt.Errorf("bad reference name %q", name)}
	}
	r, err := openRepo(*rflag)
	if err != nil {
		return err
	}
	defer r.Close()
	if *list {
		return listLog(r, name, stdout)
	}
	return setRef(ctx, r, name, *change, stdout)
}

// ringEntry is a reflog entry with its index, newest first.
type ringEntry struct {
	e refs.LogEntry
	n int
}

// newestEntries reads name's reflog and returns its newest k entries,
// newest first, numbered as C Git numbers them (@{0} is the newest,
// deletions counted), and the number of lines that did not parse.
func newestEntries(r *repo.Repo, name string, k int) ([]ringEntry, int, error) {
	ring := make([]refs.LogEntry, 0, min(k, 1024))
	total, bad := 0, 0
	err := r.Refs.ReadLog(name, func(e refs.LogEntry) error {
		if len(ring) < k {
			ring = append(ring, e)
		} else {
			ring[total%k] = e
		}
		total++
		return nil
	}, func(int, error) { bad++ })
	if err != nil {
		return nil, 0, err
	}
	out := make([]ringEntry, 0, len(ring))
	for i := 0; i < len(ring); i++ {
		// The i-th newest is at (total-1-i) mod k.
		out = append(out, ringEntry{e: ring[(total-1-i)%k], n: i})
	}
	return out, bad, nil
}

// listLog prints name's reflog, newest first: per entry its index, the
// value it set ("-" for a deletion), the value before ("-" for none),
// the time, who and why. Names and messages are printed without
// control characters: anyone with write access may have written them.
func listLog(r *repo.Repo, name string, w io.Writer) error {
	if !r.Refs.LogExists(name) {
		return fmt.Errorf("%s has no reflog", name)
	}
	entries, bad, err := newestEntries(r, name, maxListEntries)
	if err != nil {
		return err
	}
	for _, re := range entries {
		e := re.e
		fmt.Fprintf(w, "@{%d} %s %s %s %s: %s\n", re.n, idOrDash(e.New), idOrDash(e.Old),
			e.When.UTC().Format("2006-01-02T15:04:05Z"), printable(e.Name), printable(e.Message))
	}
	if len(entries) == maxListEntries {
		fmt.Fprintf(w, "(older entries not shown)\n")
	}
	if bad > 0 {
		fmt.Fprintf(w, "(%d malformed lines skipped)\n", bad)
	}
	return nil
}

func idOrDash(id oid.ID) string {
	if id.IsNull() {
		return "-"
	}
	return id.String()
}

// printable drops control and non-printing characters.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return -1
		}
		return r
	}, s)
}

// setRef sets name to value: "@{N}" is the value entry N of name's
// reflog set, or, for an entry that deleted the reference, the value
// it deleted; anything else is an object id. The object and all it
// reaches must be in the repository. The reference is set with a
// compare-and-swap against the value read first, and a reflog entry
// names the user running gotadmin.
func setRef(ctx context.Context, r *repo.Repo, name, value string, w io.Writer) error {
	var id oid.ID
	how := "set"
	if rest, ok := strings.CutPrefix(value, "@{"); ok {
		n, err := strconv.Atoi(strings.TrimSuffix(rest, "}"))
		if !strings.HasSuffix(rest, "}") || err != nil || n < 0 || n >= maxLogIndex {
			return usageError{fmt.Errorf("bad reflog entry %q: want @{N}", value)}
		}
		entries, _, err := newestEntries(r, name, n+1)
		if err != nil {
			return err
		}
		if n >= len(entries) {
			return fmt.Errorf("%s has no reflog entry @{%d}", name, n)
		}
		e := entries[n].e
		id, how = e.New, fmt.Sprintf("restored @{%d}", n)
		if e.New.IsNull() {
			id, how = e.Old, fmt.Sprintf("restored @{%d} (the deleted value)", n)
		}
		if id.IsNull() {
			return fmt.Errorf("%s@{%d} holds no value", name, n)
		}
	} else {
		var err error
		if id, err = oid.ParseHex(r.Format, value); err != nil {
			return usageError{fmt.Errorf("bad object id %q", value)}
		}
	}
	if err := checkComplete(ctx, r, name, id); err != nil {
		return err
	}
	old := oid.Zero(r.Format)
	cur, err := r.Refs.Read(name)
	switch {
	case err == nil && cur.Target != "":
		return fmt.Errorf("%s is a symbolic reference", name)
	case err == nil:
		old = cur.ID
	case !errors.Is(err, refs.ErrNotFound):
		return err
	}
	who := refs.Who{Name: "gotadmin", Message: "gotadmin ref: " + how}
	if u, err := user.Current(); err == nil {
		who.Name = u.Username
	}
	if err := r.Refs.Update([]refs.Update{{Name: name, Old: old, New: id, Who: who}}); err != nil {
		return err
	}
	fixOwner(r.GitDir, name)
	fmt.Fprintf(w, "%s: %s -> %s\n", name, idOrDash(old), id)
	return nil
}

// checkComplete refuses id unless it and everything it reaches are in
// the repository: a branch must be a commit, or a tag of one.
func checkComplete(ctx context.Context, r *repo.Repo, name string, id oid.ID) error {
	t, _, err := r.StatObject(id)
	if err != nil {
		return fmt.Errorf("object %s: %w", id, err)
	}
	if strings.HasPrefix(name, "refs/heads/") && t != object.Commit {
		return fmt.Errorf("object %s is a %s, not a commit", id, t)
	}
	// What the other references reach is taken as complete (a fetch
	// and fsck check it anyway); the walk covers only what is new.
	var haves []oid.ID
	r.Refs.List("refs/", func(ref refs.Ref) error {
		if ref.Target == "" && r.HasObject(ref.ID) {
			haves = append(haves, ref.ID)
		}
		return nil
	})
	w := &walk.Walker{Store: r, Format: r.Format}
	err = w.Objects(ctx, []oid.ID{id}, haves, func(o oid.ID, _ object.Type, _ []byte) error {
		if !r.HasObject(o) {
			return fmt.Errorf("object %s is missing", o)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s is not complete in the repository: %w", id, err)
	}
	return nil
}

// owner returns a function that gives a path gotadmin created the
// repository's owner when gotadmin runs as root and the repository
// belongs to another user (gotd runs as that user and must read and
// write what gotadmin leaves), and nil otherwise.
func owner(gitDir string) func(path string) {
	if os.Geteuid() != 0 {
		return nil
	}
	st, err := os.Stat(gitDir)
	if err != nil {
		return nil
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok || sys.Uid == 0 {
		return nil
	}
	uid, gid := int(sys.Uid), int(sys.Gid)
	return func(path string) {
		if fi, err := os.Lstat(path); err == nil {
			if s, ok := fi.Sys().(*syscall.Stat_t); ok && s.Uid == 0 {
				os.Lchown(path, uid, gid)
			}
		}
	}
}

// ownFiles is, run as root, a receive.Ingest BeforeInstall that gives
// a pack's files to the repository's owner; nil otherwise.
func ownFiles(gitDir string) func(files []string) error {
	own := owner(gitDir)
	if own == nil {
		return nil
	}
	return func(files []string) error {
		for _, f := range files {
			if f != "" {
				own(f)
			}
		}
		return nil
	}
}

// fixOwner gives the files and directories an update of name may have
// made (the reference, its reflog, HEAD's reflog and their directories)
// the owner of the repository when gotadmin runs as root, so that gotd,
// running as the repository's owner, can go on writing them.
func fixOwner(gitDir, name string) {
	if os.Geteuid() != 0 {
		return
	}
	st, err := os.Stat(gitDir)
	if err != nil {
		return
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok || sys.Uid == 0 {
		return
	}
	uid, gid := int(sys.Uid), int(sys.Gid)
	for _, rel := range []string{name, "logs/" + name, "logs/HEAD"} {
		p := gitDir
		for _, comp := range strings.Split(rel, "/") {
			p = filepath.Join(p, comp)
			if fi, err := os.Lstat(p); err == nil {
				if s, ok := fi.Sys().(*syscall.Stat_t); ok && s.Uid == 0 {
					os.Lchown(p, uid, gid)
				}
			}
		}
	}
}
