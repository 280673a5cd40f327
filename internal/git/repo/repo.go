// Package repo opens and creates bare Git repositories and gives one view
// of their objects, wherever they are stored (loose files, pack files,
// a multi-pack-index), their references, and the optional files C Git
// writes to speed reads up (commit-graph, reachability bitmaps).
//
// A Repo is safe for concurrent use. It notices pack files added by other
// writers (a push, `git repack`) the next time an object is not found.
package repo

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"gotd/internal/git/config"
	"gotd/internal/git/loose"
	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/pack"
	"gotd/internal/git/perm"
	"gotd/internal/git/refs"
)

// DefaultDeltaCacheSize bounds the memory a repository spends on
// inflated delta bases shared by all its packs.
const DefaultDeltaCacheSize = 96 << 20

// ErrNotRepository is returned by Open for a path that holds no Git
// repository.
var ErrNotRepository = errors.New("repo: not a git repository")

// Options tune how a repository is opened. The zero value is usable.
type Options struct {
	// MaxObjectSize caps the inflated size of any object read (0: no cap
	// beyond the pack layer's default).
	MaxObjectSize int64
	// DeltaCacheSize bounds the shared delta base cache (0: default).
	DeltaCacheSize int64
}

// Repo is an open bare repository.
type Repo struct {
	// GitDir is the absolute path of the repository directory (the
	// directory holding HEAD, objects and refs).
	GitDir string
	// Format is the repository's object format.
	Format oid.Format
	// Refs reads and updates references.
	Refs *refs.Store
	// Loose reads and writes loose objects.
	Loose *loose.Store
	// Config is the repository's parsed config file.
	Config *config.Config
	// Shared gives the permissions of what is written into the
	// repository, from its core.sharedRepository; the process's umask
	// was read when the repository was opened.
	Shared perm.Shared

	opts  Options
	cache *pack.DeltaCache

	mu    sync.RWMutex
	packs []*pack.Pack          // newest first, as C Git searches them
	byDir map[string]*pack.Pack // base name → pack, to rescan cheaply
	midx  *pack.MultiPackIndex  // nil when the repository has none
	mpack []*pack.Pack          // midx pack number → open pack (nil if gone)
	// retired holds packs another writer removed; readers may still be
	// using them, so they are closed only with the Repo.
	retired []*pack.Pack
	// scanned is the pack directory's modification time at the last
	// scan: a missing object triggers a new scan only when it changed,
	// so a fetch naming many unknown objects does not rescan each time.
	scanned time.Time
	// firstScan opens the packs when they are first needed (scanFirst),
	// firstErr is what that scan found.
	firstScan sync.Once
	firstErr  error
}

// knownExtensions are the repository extensions (gitrepository-layout(5),
// "extensions") this implementation understands; a repository with any
// other extension and repositoryformatversion 1 is refused, as C Git
// refuses what it does not know.
var knownExtensions = map[string]bool{
	"objectformat":    true,
	"noop":            true,
	"preciousobjects": true,
	"partialclone":    true,
	"worktreeconfig":  true,
}

// Open opens the bare repository at path. A non-bare repository is
// accepted too: path may name its work tree, and its .git directory is
// used. It reads the config file only: the pack files are opened by
// the first call that reads an object (a pack that cannot be opened is
// then skipped; Rescan returns why).
func Open(path string, opts Options) (*Repo, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("repo: %w", err)
	}
	gitDir := abs
	if !isGitDir(gitDir) {
		if isGitDir(filepath.Join(abs, ".git")) {
			gitDir = filepath.Join(abs, ".git")
		} else {
			return nil, fmt.Errorf("%w: %s", ErrNotRepository, path)
		}
	}
	cfg, err := config.ParseFile(filepath.Join(gitDir, "config"))
	if err != nil {
		return nil, fmt.Errorf("repo: %w", err)
	}
	format, err := repositoryFormat(cfg)
	if err != nil {
		return nil, fmt.Errorf("repo: %s: %w", gitDir, err)
	}
	sharedValue, set := cfg.Get("core", "", "sharedRepository")
	if set && sharedValue == "" {
		sharedValue = "true" // a boolean written without a value
	}
	shared, err := perm.Parse(sharedValue)
	if err != nil {
		return nil, fmt.Errorf("repo: %s: %w", gitDir, err)
	}
	if opts.DeltaCacheSize == 0 {
		opts.DeltaCacheSize = DefaultDeltaCacheSize
	}
	r := &Repo{
		GitDir: gitDir,
		Format: format,
		Refs:   refs.New(gitDir, format),
		Loose:  loose.New(filepath.Join(gitDir, "objects"), format),
		Config: cfg,
		Shared: shared,
		opts:   opts,
		cache:  pack.NewDeltaCache(opts.DeltaCacheSize),
		byDir:  make(map[string]*pack.Pack),
	}
	r.Loose.MaxObjectSize = opts.MaxObjectSize
	r.Loose.Shared, r.Refs.Shared = shared, shared
	return r, nil
}

// scanFirst opens the pack files on the first call that needs them,
// and reports the error of that first scan: a process that reads only
// references (an ls-remote) maps no pack and reads no index.
func (r *Repo) scanFirst() error {
	r.firstScan.Do(func() { r.firstErr = r.rescan() })
	return r.firstErr
}

// isGitDir reports whether dir looks like a repository directory: it has
// HEAD, objects/ and refs/ (the test C Git's is_git_directory makes).
func isGitDir(dir string) bool {
	for _, name := range []string{"HEAD", "objects", "refs"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return false
		}
	}
	return true
}

func repositoryFormat(cfg *config.Config) (oid.Format, error) {
	version := 0
	if v, ok := cfg.Get("core", "", "repositoryformatversion"); ok {
		switch strings.TrimSpace(v) {
		case "0":
		case "1":
			version = 1
		default:
			return 0, fmt.Errorf("unsupported repositoryformatversion %q", v)
		}
	}
	format := oid.SHA1
	if version == 1 {
		for _, key := range cfg.Keys("extensions", "") {
			if !knownExtensions[key] {
				return 0, fmt.Errorf("unsupported repository extension %q", key)
			}
		}
		if v, ok := cfg.Get("extensions", "", "objectformat"); ok {
			f, err := oid.ParseFormat(strings.ToLower(v))
			if err != nil {
				return 0, err
			}
			format = f
		}
	}
	return format, nil
}

// PackDir returns the directory holding the repository's pack files.
func (r *Repo) PackDir() string { return filepath.Join(r.GitDir, "objects", "pack") }

// ObjectsDir returns the repository's object directory.
func (r *Repo) ObjectsDir() string { return filepath.Join(r.GitDir, "objects") }

// rescan opens pack files that appeared since the last scan and forgets
// those that disappeared. Packs are kept newest first.
func (r *Repo) rescan() error {
	var mtime time.Time
	if st, err := os.Stat(r.PackDir()); err == nil {
		mtime = st.ModTime()
	}
	r.mu.RLock()
	// Directory times are coarse (a clock tick): a change in the same
	// tick as the last scan would look like none, so a directory
	// modified in the last two seconds is always read again.
	unchanged := r.scanned.Equal(mtime) && !mtime.IsZero() && time.Since(mtime) > 2*time.Second
	r.mu.RUnlock()
	if unchanged {
		return nil
	}
	entries, err := os.ReadDir(r.PackDir())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("repo: scan packs: %w", err)
	}
	type found struct {
		name  string
		mtime int64
	}
	var list []found
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "pack-") || !strings.HasSuffix(name, ".pack") {
			continue
		}
		base := strings.TrimSuffix(name, ".pack")
		if _, err := os.Stat(filepath.Join(r.PackDir(), base+".idx")); err != nil {
			continue // being written, or broken: not ours to use yet
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		list = append(list, found{base, info.ModTime().UnixNano()})
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].mtime != list[j].mtime {
			return list[i].mtime > list[j].mtime
		}
		return list[i].name < list[j].name
	})

	r.mu.Lock()
	defer r.mu.Unlock()
	seen := make(map[string]bool, len(list))
	packs := make([]*pack.Pack, 0, len(list))
	var firstErr error
	for _, f := range list {
		seen[f.name] = true
		if p := r.byDir[f.name]; p != nil {
			packs = append(packs, p)
			continue
		}
		p, err := pack.Open(filepath.Join(r.PackDir(), f.name+".pack"), r.Format, pack.Options{
			Cache:         r.cache,
			MaxObjectSize: r.opts.MaxObjectSize,
		})
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("repo: %w", err)
			}
			continue
		}
		r.byDir[f.name] = p
		packs = append(packs, p)
	}
	for name, p := range r.byDir {
		if !seen[name] {
			// Another writer removed it (a repack): its objects live
			// elsewhere now. Readers may still hold it.
			delete(r.byDir, name)
			r.retired = append(r.retired, p)
		}
	}
	r.packs = packs
	r.scanned = mtime
	r.openMultiPackIndex()
	if len(packs) == 0 && firstErr != nil {
		return firstErr
	}
	return nil
}

// openMultiPackIndex (re)opens objects/pack/multi-pack-index, which
// answers "which pack holds id" with one lookup however many packs
// there are. Packs it names that are gone are skipped; objects it does
// not know are still found by asking each pack. r.mu must be held.
func (r *Repo) openMultiPackIndex() {
	if r.midx != nil {
		r.midx.Close()
		r.midx, r.mpack = nil, nil
	}
	m, err := pack.OpenMultiPackIndex(r.PackDir(), r.Format)
	if err != nil {
		return // absent, or unusable: the per-pack indexes serve
	}
	r.midx = m
	r.mpack = make([]*pack.Pack, len(m.PackNames()))
	for i, name := range m.PackNames() {
		r.mpack[i] = r.byDir[strings.TrimSuffix(name, ".idx")]
	}
}

// Packs returns the open pack files, newest first. The slice is the
// caller's; the packs stay valid until the Repo is closed.
func (r *Repo) Packs() []*pack.Pack {
	r.scanFirst()
	r.mu.RLock()
	defer r.mu.RUnlock()
	return append([]*pack.Pack(nil), r.packs...)
}

// Rescan looks for pack files added or removed since the repository was
// opened.
func (r *Repo) Rescan() error {
	if err := r.scanFirst(); err != nil {
		return err
	}
	return r.rescan()
}

// LocateObject reports the pack and offset of a packed copy of id.
func (r *Repo) LocateObject(id oid.ID) (*pack.Pack, uint64, bool) {
	r.scanFirst()
	r.mu.RLock()
	if r.midx != nil {
		if i, off, ok := r.midx.Find(id); ok && r.mpack[i] != nil {
			r.mu.RUnlock()
			return r.mpack[i], off, true
		}
	}
	for _, p := range r.packs {
		if off, ok := p.OffsetOf(id); ok {
			r.mu.RUnlock()
			return p, off, true
		}
	}
	r.mu.RUnlock()
	return nil, 0, false
}

// HasObject reports whether the repository has id, packed or loose.
func (r *Repo) HasObject(id oid.ID) bool {
	if _, _, ok := r.LocateObject(id); ok {
		return true
	}
	if r.Loose.HasObject(id) {
		return true
	}
	if r.rescan() == nil {
		_, _, ok := r.LocateObject(id)
		return ok
	}
	return false
}

// ReadObject returns the type and content of id. A missing object is an
// error wrapping object.ErrNotFound.
func (r *Repo) ReadObject(id oid.ID) (object.Type, []byte, error) {
	if id.Format() != r.Format {
		return 0, nil, fmt.Errorf("repo: %s id in a %s repository", id.Format(), r.Format)
	}
	if p, off, ok := r.LocateObject(id); ok {
		return p.ReadAt(off)
	}
	t, data, err := r.Loose.ReadObject(id)
	if err == nil || !errors.Is(err, object.ErrNotFound) {
		return t, data, err
	}
	// A concurrent repack may have moved the object into a new pack.
	if r.rescan() == nil {
		if p, off, ok := r.LocateObject(id); ok {
			return p.ReadAt(off)
		}
	}
	return 0, nil, err
}

// ReadObjectInto is ReadObject that may put the content in dst's array
// (pack.Pack.ReadAtInto), for walks that read many objects and keep none.
func (r *Repo) ReadObjectInto(id oid.ID, dst []byte) (object.Type, []byte, error) {
	if id.Format() == r.Format {
		if p, off, ok := r.LocateObject(id); ok {
			return p.ReadAtInto(off, dst)
		}
	}
	return r.ReadObject(id)
}

// ReadObjectIntoLimit is ReadObjectInto for a reader that wants the
// object whole only if it is at most limit bytes long: a larger one
// fails with an error wrapping pack.ErrTooLarge before it is read
// (pack.Pack.ReadAtIntoLimit; a loose object is sized first).
func (r *Repo) ReadObjectIntoLimit(id oid.ID, dst []byte, limit int64) (object.Type, []byte, error) {
	if id.Format() == r.Format {
		if p, off, ok := r.LocateObject(id); ok {
			return p.ReadAtIntoLimit(off, dst, limit)
		}
	}
	_, size, err := r.StatObject(id)
	if err != nil {
		return 0, nil, err
	}
	if size > limit {
		return 0, nil, fmt.Errorf("object %s: %w: %d bytes, limit %d", id, pack.ErrTooLarge, size, limit)
	}
	return r.ReadObjectInto(id, dst)
}

// ReadObjectPrefix returns the type of id and the first n bytes of its
// content, or all of it (whole) where the storage gives no less
// (pack.Pack.ReadPrefixAt).
func (r *Repo) ReadObjectPrefix(id oid.ID, dst []byte, n int) (object.Type, []byte, bool, error) {
	if id.Format() == r.Format {
		if p, off, ok := r.LocateObject(id); ok {
			return p.ReadPrefixAt(off, dst, n)
		}
	}
	t, data, err := r.ReadObject(id)
	return t, data, true, err
}

// StatObject returns the type and size of id without reading it whole
// where the storage allows.
func (r *Repo) StatObject(id oid.ID) (object.Type, int64, error) {
	if p, _, ok := r.LocateObject(id); ok {
		return p.StatObject(id)
	}
	t, size, err := r.Loose.StatObject(id)
	if err == nil || !errors.Is(err, object.ErrNotFound) {
		return t, size, err
	}
	if r.rescan() == nil {
		if p, _, ok := r.LocateObject(id); ok {
			return p.StatObject(id)
		}
	}
	return 0, 0, err
}

// OpenObject returns the type and size of id and a reader of its
// content, for objects too large to read whole
// (pack.Pack.OpenObject, loose.Store.OpenObject, whose contracts hold).
// The caller must Close the reader. A missing object is an error
// wrapping object.ErrNotFound.
func (r *Repo) OpenObject(id oid.ID) (object.Type, int64, io.ReadCloser, error) {
	if id.Format() != r.Format {
		return 0, 0, nil, fmt.Errorf("repo: %s id in a %s repository", id.Format(), r.Format)
	}
	open := func(p *pack.Pack, off uint64) (object.Type, int64, io.ReadCloser, error) {
		t, size, rc, err := p.OpenObject(off)
		if err != nil {
			return 0, 0, nil, fmt.Errorf("object %s: %w", id, err)
		}
		return t, int64(size), rc, nil
	}
	if p, off, ok := r.LocateObject(id); ok {
		return open(p, off)
	}
	t, size, rc, err := r.Loose.OpenObject(id)
	if err == nil || !errors.Is(err, object.ErrNotFound) {
		return t, size, rc, err
	}
	if r.rescan() == nil {
		if p, off, ok := r.LocateObject(id); ok {
			return open(p, off)
		}
	}
	return 0, 0, nil, err
}

// PurgeDeltaCache empties the repository's delta base cache
// (pack.DeltaCache.Purge), for a command whose walk over trees is over
// and whose next stages copy stored bytes: a full repack.
func (r *Repo) PurgeDeltaCache() { r.cache.Purge() }

// WriteObject stores an object as a loose object and returns its id.
func (r *Repo) WriteObject(t object.Type, data []byte) (oid.ID, error) {
	return r.Loose.WriteObject(t, data)
}

// Close releases the repository's pack files.
func (r *Repo) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var first error
	for name, p := range r.byDir {
		if err := p.Close(); err != nil && first == nil {
			first = err
		}
		delete(r.byDir, name)
	}
	for _, p := range r.retired {
		if err := p.Close(); err != nil && first == nil {
			first = err
		}
	}
	r.packs, r.retired = nil, nil
	if r.midx != nil {
		r.midx.Close()
		r.midx, r.mpack = nil, nil
	}
	return first
}

// MaxTagChain bounds the annotated tags Peel follows.
const MaxTagChain = 64

// Peel returns what id peels to through annotated tags, id itself when
// it is no tag; the zero ID when a tag of the chain cannot be read or
// the chain is longer than MaxTagChain. Only tags are read whole: the
// type of anything else comes from its header, so that a reference to a
// large blob costs nothing.
func (r *Repo) Peel(id oid.ID) oid.ID {
	for range MaxTagChain {
		t, _, err := r.StatObject(id)
		if err != nil {
			return oid.ID{}
		}
		if t != object.Tag {
			return id
		}
		_, data, err := r.ReadObject(id)
		if err != nil {
			return oid.ID{}
		}
		tag, err := object.ParseTag(r.Format, data)
		if err != nil {
			return oid.ID{}
		}
		id = tag.Object
	}
	return oid.ID{}
}
