package indexer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/pack"
	"gotd/internal/git/perm"
)

// DefaultMaxObjectSize is the limit on an inflated object or delta result
// when Options.MaxObjectSize is 0.
const DefaultMaxObjectSize = 1 << 30

// MaxCheckBlobSize is the largest blob whose content Options.Check
// receives when the blob is stored whole in the pack (it is hashed while
// streaming, never held in memory); a larger blob is passed with nil
// data. So is a blob rebuilt from a delta that is larger than
// streamThreshold and on which no ofs-delta is based: it is hashed as
// the delta produces it. Other blobs rebuilt from deltas are in memory
// anyway and passed.
const MaxCheckBlobSize = 1 << 20

// maxDeltaDepth bounds delta chains; `git pack-objects` never writes
// chains deeper than 4095.
const maxDeltaDepth = 10000

// deltaBaseBudget is the memory all workers together may use to keep the
// bases of the delta chains they are walking. The current base and
// delta result are held regardless, so the true peak is this plus about
// 2*Threads*MaxObjectSize in the worst case. C Git's index-pack uses
// core.deltaBaseCacheLimit, 96 MiB by default; a third of it indexes
// git.git in the same CPU time (31 s against 29 to 37 s on a loaded
// machine, two workers), and the peak of the whole process went from
// 94-101 MB to 88-92.
const deltaBaseBudget = 32 << 20

// ErrThin is wrapped by the error for a pack whose ref-deltas name bases
// that are neither in the pack nor available from Options.Bases.
var ErrThin = errors.New("indexer: delta base not found")

// ErrObjectTooLarge is wrapped by the error for an object, delta or
// delta result over Options.MaxObjectSize.
var ErrObjectTooLarge = errors.New("object exceeds the size limit")

// MaxParsedSize bounds the trees, commits and tags of a pack whatever
// Options.MaxObjectSize allows: they are held whole to be checked,
// while blobs are hashed as they stream, and none needs to be this
// large (a tree of a million entries takes about 50 MiB).
const MaxParsedSize = 100 << 20

// ErrParsedTooLarge is wrapped by the error for a tree, commit or tag
// over MaxParsedSize.
var ErrParsedTooLarge = errors.New("tree, commit or tag exceeds the size limit")

// BaseSource supplies objects from the repository to complete thin packs.
// ReadObject returns an error wrapping object.ErrNotFound for an object it
// does not have. It is called from one goroutine at a time.
type BaseSource interface {
	ReadObject(id oid.ID) (object.Type, []byte, error)
}

// BasePreparer is what a BaseSource may add: PrepareBases is told every
// base the thin pack needs before the first is read, so that a source
// that must look each up (the bases it may give out) does it at once.
type BasePreparer interface {
	PrepareBases(ids []oid.ID) error
}

// Options control Index and IndexFile. The zero value of every field but
// Format and Dir is usable.
type Options struct {
	// Format is the object format of the pack; required.
	Format oid.Format
	// Dir is the directory for the output files (objects/pack or a
	// quarantine directory). Index creates its temporary files there too.
	// IndexFile ignores Dir.
	Dir string
	// Shared gives the permissions of the files written, read-only
	// ones: the repository's core.sharedRepository.
	Shared perm.Shared
	// Bases completes thin packs; nil refuses them (ErrThin).
	Bases BaseSource
	// Check, if not nil, validates every object of the pack (fsck). It
	// is called concurrently from several goroutines,
	// must not retain data, and receives nil data for a large blob (see
	// MaxCheckBlobSize). Objects taken from Bases to complete
	// a thin pack are not checked. An error from Check fails the index.
	Check func(t object.Type, id oid.ID, data []byte) error
	// MaxPackSize bounds the pack read from the stream, trailer included;
	// 0 means unlimited.
	MaxPackSize int64
	// MaxObjectSize bounds every inflated object, delta and delta result;
	// 0 means DefaultMaxObjectSize.
	MaxObjectSize int64
	// MaxObjects bounds the object count in the pack header; 0 means
	// unlimited.
	MaxObjects uint32
	// Room, if set, is asked before the pack is written and before
	// each write to it, with the bytes about to be written (0 at
	// first): an error, wrapped, stops Index. It guards the disk's
	// free space.
	Room func(next int64) error
	// Threads is the number of goroutines resolving deltas; 0 means
	// runtime.NumCPU().
	Threads int
	// WriteRev also writes the .rev file (gitformat-pack(5), "pack-*.rev
	// files have the format").
	WriteRev bool
	// Begin, if not nil, is called once with the object count of the
	// pack header, which the sender chose, before any object is read
	// or checked.
	Begin func(count uint32)
	// Progress, if not nil, is called now and then with the stage
	// ("receiving objects", "resolving deltas"), the objects done and the
	// total. It is called from one goroutine at a time and must be quick.
	Progress func(stage string, done, total uint32)
}

// Result describes an indexed pack.
type Result struct {
	Checksum  []byte // the pack trailer (after completing a thin pack)
	Count     uint32 // objects in the pack, completed bases included
	PackPath  string
	IndexPath string
	RevPath   string // empty unless Options.WriteRev
	ThinBases int    // objects appended to complete a thin pack
}

// Index reads a pack stream from r up to and including its trailer,
// writes it to a temporary file in opts.Dir while hashing it, verifies
// every object, resolves every delta, completes a thin pack from
// opts.Bases, writes the .idx (and .rev) and renames the files to
// pack-<checksum>.{pack,idx,rev} in opts.Dir.
//
// Index never asks r for a byte after the pack's trailer, so r may be a
// connection that carries more data afterwards; it reads in chunks that
// the pack is known to still contain and only near the end of a long
// Huffman-coded zlib stream, or of the pack, falls back to small reads (no
// smaller than the bytes that must still follow). A caller that will go
// on reading r afterwards and wants fewer system calls can pass a
// *bufio.Reader and keep reading from it: what Index leaves unread stays
// in its buffer. When Index fails, bytes after the point of failure may
// have been consumed. Index does not set deadlines:
// a caller reading from a network must. Cancelling ctx stops the work
// between objects (a blocked read on r is not interrupted).
//
// On any error the temporary files are removed and nothing is renamed.
func Index(ctx context.Context, r io.Reader, opts Options) (*Result, error) {
	ix, err := newIndexer(ctx, opts)
	if err != nil {
		return nil, err
	}
	if opts.Room != nil {
		if err := opts.Room(0); err != nil {
			return nil, fmt.Errorf("indexer: %w", err)
		}
	}
	f, err := os.CreateTemp(opts.Dir, "tmp_pack_")
	if err != nil {
		return nil, fmt.Errorf("indexer: create temporary pack: %w", err)
	}
	ix.file = f
	ix.tmpPack = f.Name()
	defer ix.cleanup()

	var out io.Writer = f
	if opts.Room != nil {
		out = roomWriter{f, opts.Room}
	}
	bw := bufio.NewWriterSize(out, 256<<10)
	max := uint64(math.MaxUint64)
	if opts.MaxPackSize > 0 {
		max = uint64(opts.MaxPackSize)
	}
	if err := ix.scan(newStreamReader(r, opts.Format.New(), bw, max, true), false); err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("indexer: write pack: %w", err)
	}
	if err := ix.resolveAll(); err != nil {
		return nil, err
	}
	base := filepath.Join(opts.Dir, "pack-"+hexString(ix.checksum))
	return ix.finish(base, true)
}

// roomWriter asks room before each write.
type roomWriter struct {
	w    io.Writer
	room func(int64) error
}

func (r roomWriter) Write(p []byte) (int, error) {
	if err := r.room(int64(len(p))); err != nil {
		return 0, err
	}
	return r.w.Write(p)
}

// IndexFile indexes an existing pack file in place, like `git index-pack
// <file>`: it verifies the pack and writes <file minus .pack>.idx (and
// .rev) beside it. The pack is never modified, so a thin pack is refused
// whatever opts.Bases is; opts.Dir and opts.MaxPackSize are ignored. Bytes
// after the trailer are an error.
func IndexFile(ctx context.Context, packPath string, opts Options) (*Result, error) {
	if !strings.HasSuffix(packPath, ".pack") {
		return nil, fmt.Errorf("indexer: %s: pack file name must end in .pack", packPath)
	}
	opts.Bases = nil
	opts.Dir = filepath.Dir(packPath)
	ix, err := newIndexer(ctx, opts)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(packPath)
	if err != nil {
		return nil, fmt.Errorf("indexer: %w", err)
	}
	ix.file = f
	defer ix.cleanup()
	if err := ix.scan(newStreamReader(f, opts.Format.New(), nil, math.MaxUint64, false), true); err != nil {
		return nil, err
	}
	if err := ix.resolveAll(); err != nil {
		return nil, err
	}
	return ix.finish(strings.TrimSuffix(packPath, ".pack"), false)
}

// indexer holds the state of one Index or IndexFile call.
type indexer struct {
	ctx       context.Context
	opts      Options
	f         oid.Format
	hashSize  int
	maxObject uint64
	threads   int

	file     *os.File // the pack being indexed
	tmpPack  string   // temporary pack to remove on failure ("" once renamed)
	tmpFiles []string // other temporary files to remove on failure
	packLen  uint64   // bytes of pack, trailer included
	checksum []byte

	entries  []entry
	count    uint32   // objects the pack header declares
	ids      idStore  // the id of each entry, once known
	refBase  []oid.ID // bases of the ref-deltas, indexed by entry.base
	ofsBase  []uint64 // base offsets of the ofs-deltas until link
	nScanned int      // entries read from the input (the rest complete a thin pack)
	nDeltas  int
	// nBuffered counts the entries the scan inflated from its buffer
	// (scanner.inflate), for tests.
	nBuffered int

	// Delta children. ofsStart[i]:ofsStart[i+1] indexes ofsKids for the
	// ofs-delta children of entry i (entries of the scanned pack only);
	// refKids lists ref-deltas sorted by base id.
	ofsStart []uint32
	ofsKids  []uint32
	refKids  []refKid
	claimed  []uint32 // 1 once a delta has been taken by a worker

	progMu sync.Mutex
}

// entry is what the indexer knows about one pack entry, but its id
// (indexer.ids): 32 bytes, times the objects of the pack.
type entry struct {
	off    uint64
	size   uint64 // declared inflated size of the entry's data
	crc    uint32
	base   uint32      // ofs-delta: index of the base entry; ref-delta: index in refBase
	hdrLen uint8       // entry header and base reference; data starts at off+hdrLen
	ptype  object.Type // type in the pack (may be a delta type)
	typ    object.Type // object type once resolved
	depth  uint16      // delta chain length
}

type refKid struct {
	base  oid.ID
	child uint32
}

func newIndexer(ctx context.Context, opts Options) (*indexer, error) {
	if !opts.Format.Valid() {
		return nil, fmt.Errorf("indexer: invalid object format %d", opts.Format)
	}
	ix := &indexer{ctx: ctx, opts: opts, f: opts.Format, hashSize: opts.Format.Size(), ids: newIDStore(opts.Format)}
	ix.maxObject = DefaultMaxObjectSize
	if opts.MaxObjectSize > 0 {
		ix.maxObject = uint64(opts.MaxObjectSize)
	}
	if ix.maxObject > math.MaxInt32 && math.MaxInt == math.MaxInt32 {
		ix.maxObject = math.MaxInt32
	}
	ix.threads = opts.Threads
	if ix.threads <= 0 {
		ix.threads = runtime.NumCPU()
	}
	return ix, nil
}

// cleanup closes the file and removes temporary files
// that were not renamed.
func (ix *indexer) cleanup() {
	if ix.file != nil {
		ix.file.Close()
		ix.file = nil
	}
	if ix.tmpPack != "" {
		os.Remove(ix.tmpPack)
	}
	for _, name := range ix.tmpFiles {
		os.Remove(name)
	}
}

func (ix *indexer) progress(stage string, done, total uint32) {
	if ix.opts.Progress == nil {
		return
	}
	ix.progMu.Lock()
	ix.opts.Progress(stage, done, total)
	ix.progMu.Unlock()
}

// finish writes the index files next to base (a path without extension)
// and renames the temporary files into place.
func (ix *indexer) finish(base string, renamePack bool) (*Result, error) {
	if ix.opts.Room != nil {
		// The index (names, CRCs, offsets, fan-out, checksums) and the
		// reverse index, at most.
		n := int64(len(ix.entries))
		if err := ix.opts.Room(n*int64(ix.hashSize+4+8+4) + 1024 + 4*int64(ix.hashSize) + 64); err != nil {
			return nil, fmt.Errorf("indexer: %w", err)
		}
	}
	res := &Result{Checksum: ix.checksum, Count: uint32(len(ix.entries)), ThinBases: len(ix.entries) - ix.nScanned}
	ents := make([]pack.IndexEntry, len(ix.entries))
	for i := range ix.entries {
		e := &ix.entries[i]
		ents[i] = pack.IndexEntry{ID: ix.ids.get(i), Offset: e.off, CRC32: e.crc}
	}
	// ents holds all that is left to write: the entries and their ids
	// go before the sort and the writes.
	ix.entries, ix.ids.chunks = nil, nil
	// An object twice in one pack is refused, as `git index-pack
	// --strict` (what receive-pack runs with fsck) refuses it; plain git
	// index-pack would list both copies.
	slices.SortFunc(ents, func(a, b pack.IndexEntry) int { return a.ID.Compare(b.ID) })
	for i := 1; i < len(ents); i++ {
		if ents[i].ID == ents[i-1].ID {
			return nil, fmt.Errorf("indexer: object %s appears twice in the pack", ents[i].ID)
		}
	}
	idxTmp, err := ix.writeTemp(func(w io.Writer) error {
		_, err := pack.WriteIndex(w, ix.f, ents, ix.checksum)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("indexer: write index: %w", err)
	}
	var revTmp string
	if ix.opts.WriteRev {
		revTmp, err = ix.writeTemp(func(w io.Writer) error {
			_, err := pack.WriteRev(w, ix.f, ents, ix.checksum)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("indexer: write reverse index: %w", err)
		}
	}

	res.PackPath = base + ".pack"
	res.IndexPath = base + ".idx"
	if renamePack {
		if err := syncFile(ix.file); err != nil {
			return nil, fmt.Errorf("indexer: sync pack: %w", err)
		}
		if err := os.Chmod(ix.tmpPack, ix.opts.Shared.File(0o444)); err != nil {
			return nil, fmt.Errorf("indexer: %w", err)
		}
		if err := os.Rename(ix.tmpPack, res.PackPath); err != nil {
			return nil, fmt.Errorf("indexer: install pack: %w", err)
		}
		ix.tmpPack = ""
	}
	if revTmp != "" {
		res.RevPath = base + ".rev"
		if err := os.Rename(revTmp, res.RevPath); err != nil {
			return nil, fmt.Errorf("indexer: install reverse index: %w", err)
		}
	}
	if err := os.Rename(idxTmp, res.IndexPath); err != nil {
		return nil, fmt.Errorf("indexer: install index: %w", err)
	}
	ix.tmpFiles = nil
	return res, nil
}

// writeTemp writes a temporary file in the output directory with write,
// syncs it and makes it read-only.
func (ix *indexer) writeTemp(write func(io.Writer) error) (string, error) {
	f, err := os.CreateTemp(ix.opts.Dir, "tmp_idx_")
	if err != nil {
		return "", err
	}
	ix.tmpFiles = append(ix.tmpFiles, f.Name())
	bw := bufio.NewWriterSize(f, 64<<10)
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = syncFile(f)
	}
	if err == nil {
		err = ix.opts.Shared.Chmod(f, 0o444)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return f.Name(), err
}

// noSync turns off fsync, for fuzzing only: the outputs are durable
// before they are renamed into place otherwise.
var noSync = false

func syncFile(f *os.File) error {
	if noSync {
		return nil
	}
	return f.Sync()
}

const hexDigits = "0123456789abcdef"

func hexString(b []byte) string {
	s := make([]byte, 2*len(b))
	for i, c := range b {
		s[2*i], s[2*i+1] = hexDigits[c>>4], hexDigits[c&15]
	}
	return string(s)
}
