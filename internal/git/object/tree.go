package object

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"math/bits"
	"strconv"

	"gotd/internal/git/oid"
)

// Tree entry modes as C Git writes them (gitformat-index(5) "mode" and
// the tree format in git-mktree(1)). Old trees may hold other modes, such
// as 0o100664; TreeEntry.Type classifies any mode.
const (
	ModeTree    = 0o40000
	ModeBlob    = 0o100644
	ModeExec    = 0o100755
	ModeSymlink = 0o120000
	ModeGitlink = 0o160000
)

// modeTypeMask selects the file type bits of a mode (S_IFMT).
const modeTypeMask = 0o170000

// TreeEntry is one entry of a tree object.
type TreeEntry struct {
	// Mode is the mode as stored, parsed from octal.
	Mode uint32
	// Name aliases the tree data; it is never empty and holds no NUL,
	// but may hold any other byte (Check rejects '/' and the like).
	Name []byte
	ID   oid.ID
}

// Type returns the type of object the entry names: Tree for directories,
// Commit for gitlinks (submodules), Blob for everything else, as C Git
// derives it (object_type in cache.h).
func (e TreeEntry) Type() Type { return ModeType(e.Mode) }

// ModeType is TreeEntry.Type for a bare mode.
func ModeType(mode uint32) Type {
	switch mode & modeTypeMask {
	case ModeTree:
		return Tree
	case ModeGitlink:
		return Commit
	}
	return Blob
}

// CompareTreeNames orders two names as Git sorts tree entries: bytewise,
// the name of a tree (aTree, bTree) compared as if it ended in '/', so
// that a file "foo" sorts before "foo.c" and the directory "foo" after
// it. (Reference listings order directories the same way.)
func CompareTreeNames[S ~string | ~[]byte](a S, aTree bool, b S, bTree bool) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return cmp.Compare(sortByte(a, aTree, n), sortByte(b, bTree, n))
}

// sortByte is byte n of name's sort key, n at most the name's length:
// past the name, '/' for a tree and -1 (nothing) for another entry.
func sortByte[S ~string | ~[]byte](name S, tree bool, n int) int {
	switch {
	case n < len(name):
		return int(name[n])
	case tree:
		return '/'
	}
	return -1
}

// TreeIter iterates over the entries of a tree object's content,
// "<octal mode> <name>\x00<raw id>" repeated. It does not allocate. It
// checks that each entry is well formed (octal mode fitting 32 bits,
// non-empty name, complete id) but not that entries are sorted or unique;
// Check does that.
type TreeIter struct {
	f    oid.Format
	data []byte
	off  int
	err  error
}

// NewTreeIter returns an iterator over the entries of data, a tree
// object's content in format f. The entries' names alias data.
func NewTreeIter(f oid.Format, data []byte) TreeIter {
	it := TreeIter{f: f, data: data}
	if !f.Valid() {
		it.err = fmt.Errorf("object: tree: invalid object format %v", f)
	}
	return it
}

// Next returns the next entry and true, or false at the end of the tree
// or at the first malformed entry; Err tells which.
func (it *TreeIter) Next() (TreeEntry, bool) {
	mode, name, id, ok := it.NextRaw()
	if !ok {
		return TreeEntry{}, false
	}
	return TreeEntry{Mode: mode, Name: name, ID: oid.MustFromBytes(it.f, id)}, true
}

// NextRaw is Next for walks that test most entries' ids against a set
// and make an ID only of the few they keep: name and id alias the tree
// data.
func (it *TreeIter) NextRaw() (mode uint32, name, id []byte, ok bool) {
	if it.err != nil || it.off >= len(it.data) {
		return 0, nil, nil, false
	}
	mode, name, id, n, err := parseTreeEntry(it.f, it.data[it.off:])
	if err != nil {
		it.err = fmt.Errorf("object: tree: %s at offset %d", err, it.off)
		return 0, nil, nil, false
	}
	it.off += n
	return mode, name, id, true
}

// Err returns the error that stopped the iteration, nil at a clean end.
func (it *TreeIter) Err() error { return it.err }

// Offset returns the offset in the tree data of the entry the next call to
// Next parses.
func (it *TreeIter) Offset() int { return it.off }

// treeEntryError is a fixed description of a malformed entry, so that
// parsing does not allocate before the error is wrapped with its offset.
type treeEntryError string

func (e treeEntryError) Error() string { return string(e) }

// parseTreeEntry parses the entry at the start of b and returns its
// parts and its length.
func parseTreeEntry(f oid.Format, b []byte) (mode uint32, name, id []byte, n int, err error) {
	m, i := commonMode(b)
	if i == 0 {
		var mm uint64
		for ; i < len(b) && b[i] != ' '; i++ {
			c := b[i]
			if c < '0' || c > '7' {
				return 0, nil, nil, 0, treeEntryError("malformed mode")
			}
			mm = mm<<3 | uint64(c-'0')
			if mm > 0xffffffff {
				return 0, nil, nil, 0, treeEntryError("mode overflows 32 bits")
			}
		}
		if i == 0 || i >= len(b) {
			return 0, nil, nil, 0, treeEntryError("malformed mode")
		}
		i++
		m = uint32(mm)
	}
	nul := indexNul(b[i:])
	if nul < 0 {
		return 0, nil, nil, 0, treeEntryError("unterminated name")
	}
	if nul == 0 {
		return 0, nil, nil, 0, treeEntryError("empty name")
	}
	name = b[i : i+nul : i+nul]
	i += nul + 1
	size := f.Size()
	if len(b)-i < size {
		return 0, nil, nil, 0, treeEntryError("truncated object id")
	}
	return m, name, b[i : i+size : i+size], i + size, nil
}

// The modes commonMode recognises, with their space, as little-endian
// words.
const (
	wordBlob    = '1' | '0'<<8 | '0'<<16 | '6'<<24 | '4'<<32 | '4'<<40 | ' '<<48
	wordExec    = '1' | '0'<<8 | '0'<<16 | '7'<<24 | '5'<<32 | '5'<<40 | ' '<<48
	wordSymlink = '1' | '2'<<8 | '0'<<16 | '0'<<24 | '0'<<32 | '0'<<40 | ' '<<48
	wordGitlink = '1' | '6'<<8 | '0'<<16 | '0'<<24 | '0'<<32 | '0'<<40 | ' '<<48
	wordTree    = '4' | '0'<<8 | '0'<<16 | '0'<<24 | '0'<<32 | ' '<<40
)

// commonMode recognises the modes C Git writes, with their space, at the
// start of b in one load: it returns the mode and the offset of the name,
// or 0, 0 for any other start. Most entries of every tree start so.
func commonMode(b []byte) (uint32, int) {
	if len(b) < 8 {
		return 0, 0
	}
	x := binary.LittleEndian.Uint64(b)
	switch x & (1<<56 - 1) {
	case wordBlob:
		return ModeBlob, 7
	case wordExec:
		return ModeExec, 7
	case wordSymlink:
		return ModeSymlink, 7
	case wordGitlink:
		return ModeGitlink, 7
	}
	if x&(1<<48-1) == wordTree {
		return ModeTree, 6
	}
	return 0, 0
}

// indexNul is bytes.IndexByte(b, 0), a word at a time: a name is mostly
// shorter than what a call to bytes.IndexByte costs to set up.
func indexNul(b []byte) int {
	i := 0
	for ; i+8 <= len(b) && i < 64; i += 8 {
		if z := hasZeroByte(binary.LittleEndian.Uint64(b[i:])); z != 0 {
			return i + bits.TrailingZeros64(z)/8
		}
	}
	if j := bytes.IndexByte(b[i:], 0); j >= 0 {
		return i + j
	}
	return -1
}

// AppendTreeEntry appends the encoding of one tree entry to dst. The
// caller must append entries in Git's tree order (names compared as
// bytes, a directory's name as if it ended in '/') with names that are
// non-empty and hold no NUL or '/', or the tree will fail Check.
func AppendTreeEntry(dst []byte, mode uint32, name []byte, id oid.ID) []byte {
	dst = strconv.AppendUint(dst, uint64(mode), 8)
	dst = append(dst, ' ')
	dst = append(dst, name...)
	dst = append(dst, 0)
	return append(dst, id.Raw()...)
}
