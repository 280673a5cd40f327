package fastimport

import (
	"bytes"
	"strings"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/refs"
)

// lookupBranch returns the branch named name, nil if the stream has not
// named it.
func (im *importer) lookupBranch(name string) *branch { return im.branches[name] }

// newBranch creates a branch; its name must be a full reference name.
func (im *importer) newBranch(name string) (*branch, error) {
	// "HEAD" is what git fast-export --all writes for a detached HEAD;
	// like C Git, updateRefs moves what HEAD points at.
	if err := refs.CheckName(name); (err != nil && name != "HEAD") || refs.ReservedName(name) {
		return nil, im.errorf("branch name is not a valid reference name: %s", snippet([]byte(name)))
	}
	if len(im.branches)+len(im.tags) >= im.opts.MaxBranches {
		return nil, im.errorf("more than %d branches and tags", im.opts.MaxBranches)
	}
	b := &branch{name: name, root: node{mode: object.ModeTree}}
	im.branches[name] = b
	im.order = append(im.order, b)
	return b, nil
}

// activate keeps b's tree loaded, unloading the least recently used
// branch's when more than maxActiveBranches are (unload_one_branch).
func (im *importer) activate(b *branch) {
	if b.active {
		return
	}
	for len(im.active) >= maxActiveBranches {
		lru := 0
		for i, a := range im.active {
			if a.last < im.active[lru].last {
				lru = i
			}
		}
		a := im.active[lru]
		a.active = false
		unload(&a.root)
		im.active = append(im.active[:lru], im.active[lru+1:]...)
	}
	b.active = true
	im.active = append(im.active, b)
}

// setTip points b at commit id and its tree at the commit's tree.
func (im *importer) setTip(b *branch, id oid.ID) error {
	b.tip = id
	if id.IsNull() || !id.Valid() {
		b.root = node{mode: object.ModeTree}
		return nil
	}
	t, data, err := im.pack.read(id, im.opts.MaxObjectSize)
	if err != nil {
		return im.errorf("read commit %s: %v", id, err)
	}
	tree, _, _, err := object.CommitLinks(im.format, data, nil)
	if t != object.Commit || err != nil {
		return im.errorf("%s is not a valid commit", id)
	}
	if tree != b.root.id || b.root.dir == nil {
		b.root = node{mode: object.ModeTree, id: tree}
	}
	return nil
}

// resolve finds a commit-ish that is neither a branch of the stream nor
// a mark: a full object id, or a reference of the repository (with the
// refs/, refs/tags/ and refs/heads/ prefixes tried, as get_oid does),
// peeled to a commit. The null id resolves to itself.
func (im *importer) resolve(v string) (oid.ID, error) {
	v = strings.TrimSuffix(v, "^0")
	if len(v) == im.format.HexSize() {
		if id, err := oid.ParseHex(im.format, v); err == nil {
			if id.IsNull() {
				return id, nil
			}
			return im.peel(id, v)
		}
	}
	for _, name := range []string{v, "refs/" + v, "refs/tags/" + v, "refs/heads/" + v} {
		if refs.CheckName(name) != nil && name != "HEAD" {
			continue
		}
		if r, err := im.r.Refs.Resolve(name); err == nil {
			return im.peel(r.ID, v)
		}
	}
	return oid.ID{}, im.errorf("invalid ref name or object id: %s", snippet([]byte(v)))
}

// peel follows tags from id to a commit.
func (im *importer) peel(id oid.ID, what string) (oid.ID, error) {
	for range 64 {
		t, data, err := im.pack.read(id, im.opts.MaxObjectSize)
		if err != nil {
			return id, im.errorf("not a valid object: %s", snippet([]byte(what)))
		}
		switch t {
		case object.Commit:
			return id, nil
		case object.Tag:
			tg, err := object.ParseTag(im.format, data)
			if err != nil {
				return id, im.errorf("not a valid tag: %s", snippet([]byte(what)))
			}
			id = tg.Object
		default:
			return id, im.errorf("not a commit: %s", snippet([]byte(what)))
		}
	}
	return id, im.errorf("tag chain too long: %s", snippet([]byte(what)))
}

// objectish handles the argument of "from" (and alias's "to"): it points
// b at a branch's tip, a mark's commit or an existing commit
// (parse_objectish).
func (im *importer) objectish(b *branch, v string) error {
	if s := im.lookupBranch(v); s == b && b != nil {
		return im.errorf("cannot create a branch from itself")
	} else if s != nil {
		b.tip = s.tip
		if s.root.id.Valid() || s.root.dir == nil {
			b.root = node{mode: object.ModeTree, id: s.root.id}
		} else {
			b.root = node{mode: object.ModeTree, dir: clone(s.root.dir)}
		}
		return nil
	}
	if m, ok := strings.CutPrefix(v, ":"); ok {
		mk, err := im.findMark([]byte(m))
		if err != nil {
			return err
		}
		if mk.typ != object.Commit {
			return im.errorf("mark :%s is not a commit", m)
		}
		if b.tip == mk.id {
			return nil
		}
		return im.setTip(b, mk.id)
	}
	id, err := im.resolve(v)
	if err != nil {
		return err
	}
	if id.IsNull() {
		b.delete = true
		b.tip = oid.ID{}
		b.root = node{mode: object.ModeTree}
		return nil
	}
	return im.setTip(b, id)
}

// from handles an optional "from" line; it reads the next line when
// there was one.
func (im *importer) from(b *branch) (bool, error) {
	v, ok := cut(im.in.line, "from ")
	if !ok {
		return false, nil
	}
	if err := im.objectish(b, string(v)); err != nil {
		return true, err
	}
	return true, im.optNext()
}

// merges handles the "merge" lines and returns their commits.
func (im *importer) merges() ([]oid.ID, error) {
	var ps []oid.ID
	for {
		v, ok := cut(im.in.line, "merge ")
		if !ok {
			return ps, nil
		}
		if len(ps) >= 1<<16 {
			return nil, im.errorf("too many merges")
		}
		var id oid.ID
		if s := im.lookupBranch(string(v)); s != nil {
			id = s.tip
		} else if m, ok := cut(v, ":"); ok {
			mk, err := im.findMark(m)
			if err != nil {
				return nil, err
			}
			if mk.typ != object.Commit {
				return nil, im.errorf("mark :%s is not a commit", m)
			}
			id = mk.id
		} else {
			var err error
			if id, err = im.resolve(string(v)); err != nil {
				return nil, err
			}
			if id.IsNull() {
				return nil, im.errorf("merge of the null id")
			}
		}
		ps = append(ps, id)
		if err := im.next(); err != nil {
			return nil, err
		}
	}
}

// commit handles "commit <ref>" (parse_new_commit).
func (im *importer) commit(name string) error {
	b := im.lookupBranch(name)
	if b == nil {
		var err error
		if b, err = im.newBranch(name); err != nil {
			return err
		}
	}
	if err := im.next(); err != nil {
		return err
	}
	mk, err := im.parseMark()
	if err != nil {
		return err
	}
	if err := im.skipOriginalOID(); err != nil {
		return err
	}
	var author, committer, encoding []byte
	if v, ok := cut(im.in.line, "author "); ok {
		if author, err = im.parseIdent(v); err != nil {
			return err
		}
		if err := im.next(); err != nil {
			return err
		}
	}
	if v, ok := cut(im.in.line, "committer "); ok {
		if committer, err = im.parseIdent(v); err != nil {
			return err
		}
		if err := im.next(); err != nil {
			return err
		}
	}
	if committer == nil {
		return im.errorf("expected committer")
	}
	if _, ok := cut(im.in.line, "gpgsig "); ok {
		return im.errorf("signed commits (gpgsig) are not supported")
	}
	if v, ok := cut(im.in.line, "encoding "); ok {
		encoding = bytes.Clone(v)
		if err := im.next(); err != nil {
			return err
		}
	}
	if err := im.readData(); err != nil {
		return err
	}
	msg := bytes.Clone(im.data)
	if err := im.optNext(); err != nil {
		return err
	}
	if _, err := im.from(b); err != nil {
		return err
	}
	merges, err := im.merges()
	if err != nil {
		return err
	}
	im.activate(b)
	if err := im.fileChanges(b); err != nil {
		return err
	}
	if err := im.storeTree(&b.root, 0); err != nil {
		return err
	}

	c := make([]byte, 0, 256+len(msg))
	c = append(c, "tree "...)
	c = b.root.id.AppendHex(c)
	c = append(c, '\n')
	if b.tip.Valid() && !b.tip.IsNull() {
		c = append(c, "parent "...)
		c = b.tip.AppendHex(c)
		c = append(c, '\n')
	}
	for _, p := range merges {
		c = append(c, "parent "...)
		c = p.AppendHex(c)
		c = append(c, '\n')
	}
	if author == nil {
		author = committer
	}
	c = append(c, "author "...)
	c = append(c, author...)
	c = append(c, "\ncommitter "...)
	c = append(c, committer...)
	c = append(c, '\n')
	if encoding != nil {
		c = append(c, "encoding "...)
		c = append(c, encoding...)
		c = append(c, '\n')
	}
	c = append(c, '\n')
	c = append(c, msg...)
	id, _, err := im.pack.store(object.Commit, c, nil)
	if err != nil {
		return err
	}
	im.stats.Commits++
	b.tip = id
	b.delete = false
	b.last = im.stats.Commits
	return im.setMark(mk, id, object.Commit)
}

// fileChanges applies the M, D, C, R and deleteall lines of a commit; it
// stops at an empty line or at the first other command, left to be read
// again.
func (im *importer) fileChanges(b *branch) error {
	for n := 1; len(im.in.line) > 0; n++ {
		if n%256 == 0 {
			// One commit may change millions of paths.
			if err := im.ctx.Err(); err != nil {
				return err
			}
		}
		line := im.in.line
		var err error
		if v, ok := cut(line, "M "); ok {
			err = im.fileModify(b, v)
		} else if v, ok := cut(line, "D "); ok {
			err = im.fileDelete(b, v)
		} else if v, ok := cut(line, "R "); ok {
			err = im.fileCopy(b, v, true)
		} else if v, ok := cut(line, "C "); ok {
			err = im.fileCopy(b, v, false)
		} else if string(line) == "deleteall" {
			b.root = node{mode: object.ModeTree, dir: &dir{}}
		} else if _, ok := cut(line, "N "); ok {
			err = im.errorf("notemodify is not supported")
		} else if bytes.HasPrefix(line, []byte("ls ")) || bytes.HasPrefix(line, []byte("cat-blob ")) {
			err = im.errorf("command %s is not supported", line[:bytes.IndexByte(line, ' ')])
		} else {
			im.in.unread = true
			return nil
		}
		if err != nil {
			return err
		}
		if err := im.optNext(); err != nil {
			return err
		}
		if im.in.eof && im.in.line == nil {
			return nil
		}
	}
	return nil
}

// splitPath checks a path as C Git's verify_path does for what it
// refuses everywhere (empty, ".", ".." and ".git" components, in any
// case) and splits it.
func (im *importer) splitPath(p []byte) ([]string, error) {
	if len(p) == 0 {
		return nil, nil
	}
	parts := strings.Split(string(p), "/")
	if len(parts) > maxTreeDepth {
		return nil, im.errorf("path deeper than %d levels", maxTreeDepth)
	}
	for _, c := range parts {
		if c == "" || c == "." || c == ".." || strings.EqualFold(c, ".git") {
			return nil, im.errorf("invalid path %s", snippet(p))
		}
	}
	return parts, nil
}

// parseMode parses the octal mode of a filemodify and normalises it as
// file_change_m does.
func parseMode(b []byte) (uint32, bool) {
	if len(b) == 0 || len(b) > 6 {
		return 0, false
	}
	var m uint32
	for _, c := range b {
		if c < '0' || c > '7' {
			return 0, false
		}
		m = m<<3 | uint32(c-'0')
	}
	switch m {
	case 0o644, 0o755:
		return m | 0o100000, true
	case 0o100644, 0o100755, object.ModeSymlink, object.ModeTree, object.ModeGitlink:
		return m, true
	}
	return 0, false
}

// fileModify handles "M <mode> <dataref> <path>".
func (im *importer) fileModify(b *branch, v []byte) error {
	ms, rest, ok := bytes.Cut(v, []byte(" "))
	mode, okm := parseMode(ms)
	if !ok || !okm {
		return im.errorf("corrupt mode in M line")
	}
	ref, rest, ok := bytes.Cut(rest, []byte(" "))
	if !ok {
		return im.errorf("missing path in M line")
	}
	p, _, err := unquotePath(rest, true)
	if err != nil {
		return im.errorf("path: %v", err)
	}
	p = bytes.Clone(p)
	var id oid.ID
	var typ object.Type
	known := false
	inline := false
	switch {
	case bytes.HasPrefix(ref, []byte(":")):
		mk, err := im.findMark(ref[1:])
		if err != nil {
			return err
		}
		id, typ, known = mk.id, mk.typ, true
	case string(ref) == "inline":
		inline = true
	default:
		id, err = oid.ParseHexBytes(im.format, ref)
		if err != nil {
			return im.errorf("invalid dataref in M line")
		}
	}
	path, err := im.splitPath(p)
	if err != nil {
		return err
	}
	if mode == object.ModeTree && !inline && id == im.emptyTree && len(path) > 0 {
		// Git does not track empty directories below the root.
		_, _, err := im.remove(&b.root, path)
		return err
	}
	switch {
	case mode == object.ModeGitlink:
		if inline {
			return im.errorf("gitlinks cannot be given inline")
		}
		if known && typ != object.Commit {
			return im.errorf("gitlink to a %s", typ)
		}
	case inline:
		if mode == object.ModeTree {
			return im.errorf("directories cannot be given inline")
		}
		if err := im.next(); err != nil {
			return err
		}
		if id, err = im.storeBlob(); err != nil {
			return err
		}
	default:
		want := object.Blob
		if mode == object.ModeTree {
			want = object.Tree
		}
		if !known {
			t, ok := im.pack.has(id)
			if !ok {
				return im.errorf("%s %s not found", want, id)
			}
			typ = t
		}
		if typ != want {
			return im.errorf("not a %s (a %s)", want, typ)
		}
	}
	if len(path) == 0 {
		if mode != object.ModeTree {
			return im.errorf("the root cannot be a non-directory")
		}
		b.root = node{mode: object.ModeTree, id: id}
		return nil
	}
	if mode == object.ModeSymlink && strings.EqualFold(path[len(path)-1], ".gitmodules") {
		return im.errorf("invalid path %s", snippet(p))
	}
	return im.set(&b.root, path, mode, id, nil)
}

// fileDelete handles "D <path>".
func (im *importer) fileDelete(b *branch, v []byte) error {
	p, _, err := unquotePath(v, true)
	if err != nil {
		return im.errorf("path: %v", err)
	}
	if len(p) == 0 {
		b.root = node{mode: object.ModeTree, dir: &dir{}}
		return nil
	}
	path, err := im.splitPathLoose(p)
	if err != nil {
		return err
	}
	_, _, err = im.remove(&b.root, path)
	return err
}

// splitPathLoose splits a path to delete or copy from: it need only name
// something that may exist.
func (im *importer) splitPathLoose(p []byte) ([]string, error) {
	parts := strings.Split(string(p), "/")
	if len(parts) > maxTreeDepth {
		return nil, im.errorf("path deeper than %d levels", maxTreeDepth)
	}
	for _, c := range parts {
		if c == "" {
			return nil, im.errorf("empty path component")
		}
	}
	return parts, nil
}

// fileCopy handles "C <src> <dst>" and "R <src> <dst>".
func (im *importer) fileCopy(b *branch, v []byte, rename bool) error {
	sp, rest, err := unquotePath(v, false)
	if err != nil {
		return im.errorf("source path: %v", err)
	}
	sp = bytes.Clone(sp)
	if len(rest) == 0 || rest[0] != ' ' {
		return im.errorf("missing space after source")
	}
	dp, tail, err := unquotePath(rest[1:], true)
	if err != nil {
		return im.errorf("destination path: %v", err)
	}
	if len(tail) != 0 {
		return im.errorf("garbage after destination")
	}
	dp = bytes.Clone(dp)
	var leaf *node
	if len(sp) == 0 {
		n := b.root
		leaf = &n
		if rename {
			b.root = node{mode: object.ModeTree, dir: &dir{}}
		} else if !n.id.Valid() {
			leaf = &node{mode: n.mode, dir: clone(n.dir)}
		}
	} else {
		src, err := im.splitPathLoose(sp)
		if err != nil {
			return err
		}
		if rename {
			leaf, _, err = im.remove(&b.root, src)
		} else {
			var n *node
			if n, err = im.get(&b.root, src); n != nil {
				leaf = &node{mode: n.mode, id: n.id}
				if !n.id.Valid() {
					leaf.dir = clone(n.dir)
				}
			}
		}
		if err != nil {
			return err
		}
	}
	if leaf == nil {
		return im.errorf("path %s not in branch", snippet(sp))
	}
	dst, err := im.splitPath(dp)
	if err != nil {
		return err
	}
	if len(dst) == 0 {
		if !isDir(leaf.mode) {
			return im.errorf("the root cannot be a non-directory")
		}
		b.root = node{mode: object.ModeTree, id: leaf.id, dir: leaf.dir}
		if leaf.id.Valid() {
			b.root.dir = nil
		}
		return nil
	}
	sub := leaf.dir
	if leaf.id.Valid() {
		sub = nil
	}
	return im.set(&b.root, dst, leaf.mode, leaf.id, sub)
}

// tag handles "tag <name>" (parse_new_tag).
func (im *importer) tag(name string) error {
	if err := refs.CheckName("refs/tags/" + name); err != nil {
		return im.errorf("tag name is not valid: %s", snippet([]byte(name)))
	}
	if len(im.branches)+len(im.tags) >= im.opts.MaxBranches {
		return im.errorf("more than %d branches and tags", im.opts.MaxBranches)
	}
	if err := im.next(); err != nil {
		return err
	}
	mk, err := im.parseMark()
	if err != nil {
		return err
	}
	v, ok := cut(im.in.line, "from ")
	if !ok {
		return im.errorf("expected from in tag")
	}
	var id oid.ID
	var typ object.Type
	if s := im.lookupBranch(string(v)); s != nil {
		if !s.tip.Valid() || s.tip.IsNull() {
			return im.errorf("cannot tag an empty branch")
		}
		id, typ = s.tip, object.Commit
	} else if m, ok := cut(v, ":"); ok {
		mk, err := im.findMark(m)
		if err != nil {
			return err
		}
		id, typ = mk.id, mk.typ
	} else {
		if id, err = im.resolveAny(string(v)); err != nil {
			return err
		}
		t, ok := im.pack.has(id)
		if !ok {
			return im.errorf("not a valid object: %s", snippet(v))
		}
		typ = t
	}
	if err := im.next(); err != nil {
		return err
	}
	if err := im.skipOriginalOID(); err != nil {
		return err
	}
	var tagger []byte
	if v, ok := cut(im.in.line, "tagger "); ok {
		if tagger, err = im.parseIdent(v); err != nil {
			return err
		}
		if err := im.next(); err != nil {
			return err
		}
	}
	if err := im.readData(); err != nil {
		return err
	}
	t := make([]byte, 0, 256+len(im.data))
	t = append(t, "object "...)
	t = id.AppendHex(t)
	t = append(t, "\ntype "...)
	t = append(t, typ.String()...)
	t = append(t, "\ntag "...)
	t = append(t, name...)
	t = append(t, '\n')
	if tagger != nil {
		t = append(t, "tagger "...)
		t = append(t, tagger...)
		t = append(t, '\n')
	}
	t = append(t, '\n')
	t = append(t, im.data...)
	tid, _, err := im.pack.store(object.Tag, t, nil)
	if err != nil {
		return err
	}
	im.stats.Tags++
	im.tags = append(im.tags, tag{name: name, id: tid})
	return im.setMark(mk, tid, object.Tag)
}

// resolveAny is resolve without peeling: a full object id or a
// reference of the repository.
func (im *importer) resolveAny(v string) (oid.ID, error) {
	if len(v) == im.format.HexSize() {
		if id, err := oid.ParseHex(im.format, v); err == nil {
			return id, nil
		}
	}
	for _, name := range []string{v, "refs/" + v, "refs/tags/" + v, "refs/heads/" + v} {
		if refs.CheckName(name) != nil {
			continue
		}
		if r, err := im.r.Refs.Resolve(name); err == nil {
			return r.ID, nil
		}
	}
	return oid.ID{}, im.errorf("invalid ref name or object id: %s", snippet([]byte(v)))
}

// reset handles "reset <ref>" (parse_reset_branch).
func (im *importer) reset(name string) error {
	b := im.lookupBranch(name)
	if b != nil {
		b.tip = oid.ID{}
		b.root = node{mode: object.ModeTree}
		b.delete = false
	} else {
		var err error
		if b, err = im.newBranch(name); err != nil {
			return err
		}
	}
	if err := im.optNext(); err != nil {
		return err
	}
	if _, err := im.from(b); err != nil {
		return err
	}
	if b.delete {
		if tn, ok := strings.CutPrefix(b.name, "refs/tags/"); ok {
			for i, t := range im.tags {
				if t.name == tn {
					im.tags = append(im.tags[:i], im.tags[i+1:]...)
					break
				}
			}
		}
	}
	if len(im.in.line) > 0 {
		im.in.unread = true
	}
	return nil
}

// alias handles "alias" / "mark" / "to".
func (im *importer) alias() error {
	if err := im.in.skipOptionalLF(); err != nil {
		return err
	}
	if err := im.next(); err != nil {
		return err
	}
	mk, err := im.parseMark()
	if err != nil {
		return err
	}
	if mk == 0 {
		return im.errorf("expected mark in alias")
	}
	v, ok := cut(im.in.line, "to ")
	if !ok {
		return im.errorf("expected to in alias")
	}
	var tmp branch
	if err := im.objectish(&tmp, string(v)); err != nil {
		return err
	}
	if err := im.optNext(); err != nil {
		return err
	}
	if len(im.in.line) > 0 {
		im.in.unread = true
	}
	t, ok := im.pack.has(tmp.tip)
	if !ok {
		return im.errorf("alias target not found")
	}
	return im.setMark(mk, tmp.tip, t)
}
