package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"

	"gotd/internal/engine/packer"
	"gotd/internal/git/bundle"
	"gotd/internal/git/commitgraph"
	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/refs"
	"gotd/internal/git/walk"
	"gotd/internal/protocol/receive"
	"gotd/internal/protocol/wire"
)

// names is a repeatable string flag.
type names []string

func (n *names) String() string     { return strings.Join(*n, ",") }
func (n *names) Set(s string) error { *n = append(*n, s); return nil }

// matchesRef reports whether arg names the full reference name: the
// name itself, or its name below refs/, refs/heads/ or refs/tags/.
func matchesRef(arg, name string) bool {
	for _, prefix := range []string{"", "refs/", "refs/heads/", "refs/tags/"} {
		if prefix+arg == name {
			return true
		}
	}
	return false
}

// cmdDump writes a Git bundle: gotadmin dump [-q] [-r repository-path]
// [-x reference] [reference ...]. Without references it dumps every
// branch and tag; -x leaves a reference out. HEAD is included when it
// names a dumped branch, so that git clone checks it out.
func cmdDump(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("dump")
	quiet := fs.Bool("q", false, "suppress progress output")
	rflag := fs.String("r", "", "repository path")
	var exclude names
	fs.Var(&exclude, "x", "exclude a reference")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	r, err := openRepo(*rflag)
	if err != nil {
		return err
	}
	defer r.Close()

	var all []refs.Ref
	err = r.Refs.List("refs/", func(ref refs.Ref) error {
		all = append(all, ref)
		return nil
	})
	if err != nil {
		return err
	}
	h := &bundle.Header{Format: r.Format}
	found := make([]bool, fs.NArg())
	for _, ref := range all {
		want := fs.NArg() == 0 && (strings.HasPrefix(ref.Name, "refs/heads/") || strings.HasPrefix(ref.Name, "refs/tags/"))
		for i, arg := range fs.Args() {
			if matchesRef(arg, ref.Name) {
				want, found[i] = true, true
			}
		}
		for _, x := range exclude {
			if matchesRef(x, ref.Name) {
				want = false
			}
		}
		if want {
			h.Refs = append(h.Refs, bundle.Ref{Name: ref.Name, ID: ref.ID})
		}
	}
	for i, ok := range found {
		if !ok {
			return fmt.Errorf("reference not found: %s", fs.Arg(i))
		}
	}
	if len(h.Refs) == 0 {
		return errors.New("no references to dump")
	}
	if head, err := r.Refs.Read("HEAD"); err == nil && head.Target != "" {
		for _, ref := range h.Refs {
			if ref.Name == head.Target {
				h.Refs = append(h.Refs, bundle.Ref{Name: "HEAD", ID: ref.ID})
				break
			}
		}
	}

	var tips []oid.ID
	for _, ref := range h.Refs {
		tips = append(tips, ref.ID)
	}
	w := &walk.Walker{Store: r, Format: r.Format}
	if g, err := commitgraph.Open(r.ObjectsDir(), r.Format); err == nil {
		w.Graph = g
		defer g.Close()
	}
	var objs []packer.Object
	err = w.Objects(ctx, tips, nil, func(id oid.ID, t object.Type, path []byte) error {
		objs = append(objs, packer.Object{ID: id, Type: t, NameHash: packer.NameHash(path)})
		return nil
	})
	if err != nil {
		return fmt.Errorf("list objects: %w", err)
	}
	bw := bufio.NewWriterSize(stdout, 64<<10)
	if err := bundle.Write(bw, h); err != nil {
		return err
	}
	_, err = packer.Write(ctx, bw, r, objs, packer.Options{
		Format:      r.Format,
		OfsDelta:    true,
		ReuseDeltas: true,
		Progress:    packProgress(*quiet),
	})
	if err != nil {
		return fmt.Errorf("write pack: %w", err)
	}
	return bw.Flush()
}

// cmdLoad reads a Git bundle and sets references from it: gotadmin
// load [-nq] [-l bundle-path] [-r repository-path] [reference ...].
// The reference transaction is checked first; then the pack goes
// through a push's path: a quarantine, the indexer with every object
// checked, a connectivity check, then installation and the
// transaction. On any error before the installation the repository is
// left as it was.
func cmdLoad(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("load")
	list := fs.Bool("n", false, "list the references of the bundle, change nothing")
	quiet := fs.Bool("q", false, "suppress progress output")
	lflag := fs.String("l", "", "read the bundle from this file")
	rflag := fs.String("r", "", "repository path")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	in := io.Reader(os.Stdin)
	if *lflag != "" {
		f, err := os.Open(*lflag)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	r, err := openRepo(*rflag)
	if err != nil {
		return err
	}
	defer r.Close()

	br := bufio.NewReaderSize(in, 64<<10)
	h, err := bundle.Read(br, bundle.Limits{})
	if err != nil {
		return err
	}
	if h.Format != r.Format {
		return fmt.Errorf("the bundle's objects are %s, the repository's %s", h.Format, r.Format)
	}
	var load []bundle.Ref
	found := make([]bool, fs.NArg())
	for _, ref := range h.Refs {
		if ref.Name == "HEAD" || refs.ReservedName(ref.Name) {
			continue
		}
		want := fs.NArg() == 0
		for i, arg := range fs.Args() {
			if matchesRef(arg, ref.Name) {
				want, found[i] = true, true
			}
		}
		if want {
			load = append(load, ref)
		}
	}
	for i, ok := range found {
		if !ok {
			return fmt.Errorf("reference not in the bundle: %s", fs.Arg(i))
		}
	}
	if *list {
		for _, ref := range load {
			fmt.Fprintf(stdout, "%s %s\n", ref.ID, ref.Name)
		}
		return nil
	}
	if len(load) == 0 {
		return errors.New("no references to load")
	}
	for _, id := range h.Prerequisites {
		if !r.HasObject(id) {
			return fmt.Errorf("the bundle needs object %s, which the repository lacks", id)
		}
	}

	who := refs.Who{Name: "gotadmin", Message: "gotadmin load"}
	if u, err := user.Current(); err == nil {
		who.Name = u.Username
	}
	ups := make([]refs.Update, 0, len(load))
	olds := make([]oid.ID, 0, len(load))
	for _, ref := range load {
		old := oid.Zero(r.Format)
		cur, err := r.Refs.Read(ref.Name)
		switch {
		case err == nil && cur.Target != "":
			return fmt.Errorf("%s is a symbolic reference", ref.Name)
		case err == nil:
			old = cur.ID
		case !errors.Is(err, refs.ErrNotFound):
			return err
		}
		ups = append(ups, refs.Update{Name: ref.Name, Old: old, New: ref.ID, Who: who})
		olds = append(olds, old)
	}
	// A transaction bound to fail (a name twice, "a" beside "a/b", a
	// name in the way of an existing reference) fails before the pack
	// is installed.
	if err := r.Refs.Check(ups); err != nil {
		return err
	}

	var progress func(stage string, done, total uint32)
	if !*quiet {
		pp := packProgress(false)
		progress = func(stage string, done, total uint32) { pp(stage, int(done), int(total)) }
	}
	ing := &receive.Ingest{Repo: r, Limits: wire.DefaultLimits, Progress: progress, BeforeInstall: ownFiles(r.GitDir)}
	tips := make([]receive.Tip, len(load))
	for i, ref := range load {
		tips[i] = receive.Tip{Name: ref.Name, ID: ref.ID}
	}
	dir, hold, err := receive.NewQuarantine(r.ObjectsDir())
	if err != nil {
		return err
	}
	defer func() {
		os.RemoveAll(dir)
		hold.Close()
	}()
	res, err := ing.Index(ctx, br, dir, tips)
	if err != nil {
		return fmt.Errorf("bundle's pack: %w", err)
	}
	// The tips are checked again, and the references moved, under the
	// prune lock a push holds (receive's prune.go): a cleanup cannot
	// remove meanwhile what the pack relies on.
	unlock, err := r.LockPrune(ctx, false, receive.DefaultPruneWait, nil)
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := ing.Install(ctx, res, tips); err != nil {
		return fmt.Errorf("bundle's pack: %w", err)
	}
	if err := r.Refs.Update(ups); err != nil {
		return err
	}
	for i, up := range ups {
		fixOwner(r.GitDir, up.Name)
		if !*quiet {
			fmt.Fprintf(stdout, "%s: %s -> %s\n", up.Name, idOrDash(olds[i]), up.New)
		}
	}
	return nil
}
