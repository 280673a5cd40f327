package fastimport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/repo"
)

// Defaults of the bounds in Options.
const (
	// DefaultMaxObjectSize bounds every data block, as gotd's default
	// max object size does pushes.
	DefaultMaxObjectSize = 100 << 20
	// DefaultMaxLine bounds a command line.
	DefaultMaxLine = 1 << 20
	// DefaultMaxMarks bounds the marks a stream may set.
	DefaultMaxMarks = 1 << 24
	// DefaultMaxBranches bounds the branches and tags a stream may name.
	DefaultMaxBranches = 1 << 20
)

// maxTreeDepth bounds the nesting of directories in a path.
const maxTreeDepth = 4096

// streamThreshold is the blob size from which an exact-length blob is
// hashed and compressed as it is read rather than held in memory.
const streamThreshold = 8 << 20

// maxActiveBranches is how many branches keep their trees loaded, as C
// Git's --active-branches default.
const maxActiveBranches = 5

// Options control Import. The zero value is usable.
type Options struct {
	// MaxObjectSize bounds every data block and every object read back
	// (0: DefaultMaxObjectSize).
	MaxObjectSize int64
	// MaxLine bounds a command line in bytes (0: DefaultMaxLine).
	MaxLine int
	// MaxMarks bounds the number of marks set (0: DefaultMaxMarks).
	MaxMarks int
	// MaxBranches bounds the branches and tags named (0:
	// DefaultMaxBranches).
	MaxBranches int
	// Force updates references that would not fast-forward, as
	// `git fast-import --force` (the stream's "feature force" does too).
	Force bool
	// Progress receives the stream's "progress" lines; nil discards
	// them.
	Progress io.Writer
	// Warn, if not nil, is told about references not updated.
	Warn func(msg string)
	// Verify has the project's indexer read the new pack again and
	// check every object before it is installed; without it the index
	// is written from what was recorded while writing the pack.
	Verify bool
}

// Stats counts what an import did.
type Stats struct {
	Blobs, Trees, Commits, Tags int // objects stored, duplicates included
	Written                     int // objects written into the new pack
	Marks                       int
	Refs                        int    // references updated
	PackPath                    string // "" when nothing new was written
}

// ErrStream is wrapped by every error about the stream's content (as
// opposed to a failure to read it or to write the repository).
var ErrStream = errors.New("fast-import stream")

// errorf makes an error about the stream, naming the offset of the end
// of the line (or data) it was found in.
func (im *importer) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: at byte %d: %s", ErrStream, im.in.off, fmt.Sprintf(format, args...))
}

type mark struct {
	id  oid.ID
	typ object.Type
}

// branch is a reference a stream commits to (C Git's struct branch).
type branch struct {
	name   string
	tip    oid.ID // zero when the branch has no commit yet
	root   node   // its tree
	delete bool   // reset to the null id: delete the reference
	active bool
	last   int // commits counter at the branch's last commit
}

type tag struct {
	name string
	id   oid.ID
}

// importer holds the state of one Import.
type importer struct {
	ctx    context.Context
	r      *repo.Repo
	format oid.Format
	opts   Options
	in     *lineReader
	pack   *packFile

	emptyTree oid.ID
	marks     map[uint64]mark
	branches  map[string]*branch
	order     []*branch // in creation order
	tags      []tag
	active    []*branch

	seenData bool // a command other than feature/option was seen
	done     bool // "feature done": the stream must end with "done"
	force    bool
	rawDates bool // date-format=raw-permissive

	lastBlob oid.ID
	lastData []byte
	data     []byte
	treeBuf  []byte
	stats    Stats
}

// Import reads a fast-import stream (git-fast-import(1)) from in and
// writes what it describes into r: its objects into one new pack,
// indexed with the project's indexer, and, once the stream has been read
// to its end, its branches and tags as references. The objects get the
// ids C Git's fast-import gives them.
//
// Memory: one data block at a time is held (large exact-length blobs
// not even that), the trees of at most a few branches, and per object
// written its id and offset; every line, data block, mark count and
// branch count is bounded by opts.
//
// Commands it does not implement (cat-blob, ls, get-mark, notemodify,
// marks files, other date formats) are refused with an error naming
// them. On any error nothing is installed: the pack is removed and no
// reference changes; references that cannot be set together ("a"
// beside "a/b", a name in the way of an existing reference) are refused
// before the pack is installed. A reference that would not fast-forward is left
// as it was (unless forced) and reported with an error after the others
// are updated.
func Import(ctx context.Context, r *repo.Repo, in io.Reader, opts Options) (*Stats, error) {
	if opts.MaxObjectSize <= 0 {
		opts.MaxObjectSize = DefaultMaxObjectSize
	}
	if opts.MaxLine <= 0 {
		opts.MaxLine = DefaultMaxLine
	}
	if opts.MaxMarks <= 0 {
		opts.MaxMarks = DefaultMaxMarks
	}
	if opts.MaxBranches <= 0 {
		opts.MaxBranches = DefaultMaxBranches
	}
	empty, err := object.ID(r.Format, object.Tree, nil)
	if err != nil {
		return nil, err
	}
	pf, err := newPackFile(r)
	if err != nil {
		return nil, err
	}
	defer pf.abort()
	im := &importer{
		ctx: ctx, r: r, format: r.Format, opts: opts,
		in:        newLineReader(in, opts.MaxLine),
		pack:      pf,
		emptyTree: empty,
		marks:     make(map[uint64]mark),
		branches:  make(map[string]*branch),
		force:     opts.Force,
	}
	if err := im.run(); err != nil {
		return nil, err
	}
	if err := im.checkRefs(); err != nil {
		return nil, err
	}
	path, err := pf.finish(ctx, opts.MaxObjectSize, opts.Verify)
	if err != nil {
		return nil, err
	}
	im.stats.PackPath = path
	im.stats.Written = len(pf.objs)
	im.stats.Marks = len(im.marks)
	if err := r.Rescan(); err != nil {
		return nil, err
	}
	err = im.updateRefs()
	return &im.stats, err
}

// run is the command loop (cmd_fast_import's main loop).
func (im *importer) run() error {
	for n := 0; ; n++ {
		if n%256 == 0 {
			if err := im.ctx.Err(); err != nil {
				return err
			}
		}
		err := im.in.next()
		if err == io.EOF {
			if im.done {
				return im.errorf("stream ends early (feature done asked for a final done)")
			}
			return nil
		}
		if err != nil {
			return err
		}
		line := im.in.line
		if v, ok := cut(line, "feature "); ok {
			err = im.feature(string(v))
		} else if v, ok := cut(line, "option "); ok {
			err = im.option(v)
		} else {
			im.seenData = true
			switch {
			case string(line) == "blob":
				err = im.blob()
			case bytes.HasPrefix(line, []byte("commit ")):
				err = im.commit(string(line[len("commit "):]))
			case bytes.HasPrefix(line, []byte("tag ")):
				err = im.tag(string(line[len("tag "):]))
			case bytes.HasPrefix(line, []byte("reset ")):
				err = im.reset(string(line[len("reset "):]))
			case string(line) == "checkpoint":
				// Objects and references become visible at the end
				// of the stream; a checkpoint changes nothing.
				err = im.in.skipOptionalLF()
			case string(line) == "done":
				return nil
			case string(line) == "alias":
				err = im.alias()
			case bytes.HasPrefix(line, []byte("progress ")):
				if im.opts.Progress != nil {
					fmt.Fprintf(im.opts.Progress, "%s\n", line)
				}
				err = im.in.skipOptionalLF()
			case bytes.HasPrefix(line, []byte("ls ")), bytes.HasPrefix(line, []byte("cat-blob ")),
				bytes.HasPrefix(line, []byte("get-mark ")):
				cmd, _, _ := bytes.Cut(line, []byte(" "))
				err = im.errorf("command %s is not supported", cmd)
			default:
				err = im.errorf("unsupported command: %s", snippet(line))
			}
		}
		if err != nil {
			return err
		}
	}
}

// feature handles "feature" (git-fast-import(1), "feature").
func (im *importer) feature(f string) error {
	if im.seenData {
		return im.errorf("feature after a data command")
	}
	name, arg, _ := strings.Cut(f, "=")
	switch name {
	case "date-format":
		switch arg {
		case "raw":
			im.rawDates = false
		case "raw-permissive":
			im.rawDates = true
		default:
			return im.errorf("date format %s is not supported", snippet([]byte(arg)))
		}
	case "done":
		im.done = true
	case "force":
		im.force = true
	case "alias", "relative-marks", "no-relative-marks":
	case "import-marks", "import-marks-if-exists", "export-marks":
		return im.errorf("feature %s is not accepted from a stream", name)
	default:
		return im.errorf("feature %s is not supported", snippet([]byte(name)))
	}
	return nil
}

// option handles "option": options for other programs are ignored, git's
// are accepted when they do not change the objects written.
func (im *importer) option(v []byte) error {
	if im.seenData {
		return im.errorf("option after a data command")
	}
	o, ok := cut(v, "git ")
	if !ok {
		return nil
	}
	name, _, _ := strings.Cut(string(o), "=")
	switch name {
	case "quiet", "stats", "depth", "active-branches", "max-pack-size", "big-file-threshold":
		return nil
	}
	return im.errorf("option %s is not supported", snippet([]byte(name)))
}

// next reads the next command line, failing at the end of the stream.
func (im *importer) next() error {
	err := im.in.next()
	if err == io.EOF {
		return im.errorf("unexpected end of stream")
	}
	return err
}

// optNext reads the next command line; at the end of the stream the
// line is empty.
func (im *importer) optNext() error {
	err := im.in.next()
	if err == io.EOF {
		return nil
	}
	return err
}

// parseMark reads an optional "mark :N" line, then the next line.
func (im *importer) parseMark() (uint64, error) {
	v, ok := cut(im.in.line, "mark :")
	if !ok {
		return 0, nil
	}
	n, ok := parseDecimal(v)
	if !ok {
		return 0, im.errorf("bad mark: %s", snippet(v))
	}
	return n, im.next()
}

// skipOriginalOID skips an "original-oid" line.
func (im *importer) skipOriginalOID() error {
	if _, ok := cut(im.in.line, "original-oid "); ok {
		return im.next()
	}
	return nil
}

func (im *importer) setMark(n uint64, id oid.ID, t object.Type) error {
	if n == 0 {
		return nil
	}
	if _, ok := im.marks[n]; !ok && len(im.marks) >= im.opts.MaxMarks {
		return im.errorf("more than %d marks", im.opts.MaxMarks)
	}
	im.marks[n] = mark{id, t}
	return nil
}

func (im *importer) findMark(v []byte) (mark, error) {
	n, ok := parseDecimal(v)
	if !ok {
		return mark{}, im.errorf("bad mark: %s", snippet(v))
	}
	m, ok := im.marks[n]
	if !ok {
		return mark{}, im.errorf("mark :%d not declared", n)
	}
	return m, nil
}

// readData reads a "data" command's content (the current line) into
// im.data: exact-length ("data N") or delimited ("data <<DELIM").
func (im *importer) readData() error {
	v, ok := cut(im.in.line, "data ")
	if !ok {
		return im.errorf("expected data, got %s", snippet(im.in.line))
	}
	im.data = im.data[:0]
	if delim, ok := cut(v, "<<"); ok {
		delim = bytes.Clone(delim)
		for {
			b, err := im.in.readRaw()
			if err == io.EOF {
				return im.errorf("end of stream in data (terminator not found)")
			}
			if err != nil {
				return err
			}
			if bytes.Equal(b, delim) {
				break
			}
			if int64(len(im.data)+len(b)+1) > im.opts.MaxObjectSize {
				return im.errorf("data larger than %d bytes", im.opts.MaxObjectSize)
			}
			im.data = append(im.data, b...)
			im.data = append(im.data, '\n')
		}
		return im.in.skipOptionalLF()
	}
	n, err := im.dataLen(v)
	if err != nil {
		return err
	}
	if cap(im.data) < int(n) {
		im.data = make([]byte, 0, n)
	}
	im.data = im.data[:n]
	if _, err := io.ReadFull(im.in.br, im.data); err != nil {
		return im.errorf("end of stream in data (%d bytes expected)", n)
	}
	im.in.off += n
	return im.in.skipOptionalLF()
}

func (im *importer) dataLen(v []byte) (int64, error) {
	n, ok := parseDecimal(v)
	if !ok {
		return 0, im.errorf("bad data length: %s", snippet(v))
	}
	if n > uint64(im.opts.MaxObjectSize) {
		return 0, im.errorf("data of %d bytes is larger than %d bytes", n, im.opts.MaxObjectSize)
	}
	return int64(n), nil
}

// storeBlob reads a blob's data (the current line) and stores it,
// as a delta against the previous blob when that pays.
func (im *importer) storeBlob() (oid.ID, error) {
	if v, ok := cut(im.in.line, "data "); ok && !bytes.HasPrefix(v, []byte("<<")) {
		n, err := im.dataLen(v)
		if err != nil {
			return oid.ID{}, err
		}
		if n >= streamThreshold {
			id, _, err := im.pack.storeStream(im.in.br, n)
			if err != nil {
				if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
					return id, im.errorf("end of stream in data (%d bytes expected)", n)
				}
				return id, err
			}
			im.in.off += n
			im.stats.Blobs++
			im.lastBlob, im.lastData = oid.ID{}, im.lastData[:0]
			return id, im.in.skipOptionalLF()
		}
	}
	if err := im.readData(); err != nil {
		return oid.ID{}, err
	}
	var base *deltaBase
	if im.lastBlob.Valid() {
		base = &deltaBase{id: im.lastBlob, data: im.lastData}
	}
	id, _, err := im.pack.store(object.Blob, im.data, base)
	if err != nil {
		return id, err
	}
	im.stats.Blobs++
	if _, ok := im.pack.objs[id]; ok {
		im.lastBlob = id
		// Swap buffers: the blob just read is the next delta base.
		im.lastData, im.data = im.data, im.lastData[:0]
	}
	return id, nil
}

// blob handles "blob".
func (im *importer) blob() error {
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
	id, err := im.storeBlob()
	if err != nil {
		return err
	}
	return im.setMark(mk, id, object.Blob)
}

// parseIdent checks an identity ("Name <email> when tz") as C Git's
// parse_ident does for the raw date format and returns it.
func (im *importer) parseIdent(v []byte) ([]byte, error) {
	lt := bytes.IndexAny(v, "<>")
	if lt < 0 || v[lt] != '<' {
		return nil, im.errorf("missing < in ident")
	}
	if lt > 0 && v[lt-1] != ' ' {
		return nil, im.errorf("missing space before < in ident")
	}
	gt := bytes.IndexAny(v[lt+1:], "<>")
	if gt < 0 || v[lt+1+gt] != '>' {
		return nil, im.errorf("missing > in ident")
	}
	rest := v[lt+1+gt+1:]
	if len(rest) == 0 || rest[0] != ' ' {
		return nil, im.errorf("missing space after > in ident")
	}
	if !validRawDate(rest[1:], !im.rawDates) {
		return nil, im.errorf("invalid raw date in ident")
	}
	if lt == 0 {
		// C Git writes a space before the '<' of a nameless identity.
		return append([]byte{' '}, v...), nil
	}
	return bytes.Clone(v), nil
}

// validRawDate checks "<seconds> <+|-><zone>", the raw date format.
func validRawDate(b []byte, strict bool) bool {
	sp := bytes.IndexByte(b, ' ')
	if sp <= 0 {
		return false
	}
	if _, ok := parseDecimal(b[:sp]); !ok {
		return false
	}
	z := b[sp+1:]
	if len(z) < 2 || (z[0] != '+' && z[0] != '-') {
		return false
	}
	tz, ok := parseDecimal(z[1:])
	return ok && (!strict || tz <= 1400)
}
