// Package oid defines Git object ids and the two object formats a
// repository may use: SHA-1 (computed with collision detection, as C Git
// does) and SHA-256 (extensions.objectFormat=sha256).
//
// An ID is a small comparable value that carries its own length, so it can
// be used as a map key and compared with ==. The zero ID (no format) is
// invalid; the all-zero id of a format is the "null id" Git uses for
// "no object" in ref updates.
package oid

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"

	"github.com/pjbgf/sha1cd"
)

// Format is an object format: the hash function a repository names its
// objects with.
type Format uint8

const (
	// SHA1 is Git's original object format, 20-byte ids.
	SHA1 Format = 1
	// SHA256 is the object format of repositories initialised with
	// --object-format=sha256, 32-byte ids.
	SHA256 Format = 2
)

// MaxSize is the size in bytes of the largest id of any format.
const MaxSize = 32

// ErrCollision is returned when SHA-1 collision detection finds that the
// hashed data is one half of a known collision attack.
var ErrCollision = errors.New("oid: sha1 collision attack detected")

// Size returns the length of an id in bytes (20 or 32); 0 for an invalid
// format.
func (f Format) Size() int {
	switch f {
	case SHA1:
		return 20
	case SHA256:
		return 32
	}
	return 0
}

// HexSize returns the length of an id in hexadecimal digits.
func (f Format) HexSize() int { return 2 * f.Size() }

// Valid reports whether f is one of the known formats.
func (f Format) Valid() bool { return f == SHA1 || f == SHA256 }

// String returns the name Git uses for the format ("sha1", "sha256").
func (f Format) String() string {
	switch f {
	case SHA1:
		return "sha1"
	case SHA256:
		return "sha256"
	}
	return fmt.Sprintf("format(%d)", uint8(f))
}

// FormatID returns the 4-byte format identifier used in multi-pack-index,
// commit-graph and .rev headers (1 for SHA-1, 2 for SHA-256).
func (f Format) FormatID() uint32 { return uint32(f) }

// ParseFormat returns the format Git names name ("sha1" or "sha256").
func ParseFormat(name string) (Format, error) {
	switch name {
	case "sha1":
		return SHA1, nil
	case "sha256":
		return SHA256, nil
	}
	return 0, fmt.Errorf("oid: unknown object format %q", name)
}

// New returns a new hash of the format. For SHA-1 it is a collision
// detecting implementation; use Hasher.Sum to learn about collisions.
func (f Format) New() hash.Hash {
	switch f {
	case SHA1:
		return sha1cd.New()
	case SHA256:
		return sha256.New()
	}
	panic("oid: New on invalid format")
}

// Hasher computes ids of one format over streamed data.
type Hasher struct {
	hash.Hash
	f   Format
	sum [MaxSize]byte // scratch for Sum, so that ID does not allocate
}

// NewHasher returns a Hasher for f.
func NewHasher(f Format) *Hasher { return &Hasher{Hash: f.New(), f: f} }

// ID returns the id of everything written so far. For SHA-1 it returns
// ErrCollision (and the id C Git's collision detection would also refuse)
// when the data is part of a known collision attack.
func (h *Hasher) ID() (ID, error) {
	var id ID
	id.n = uint8(h.f.Size())
	if cr, ok := h.Hash.(interface {
		CollisionResistantSum([]byte) ([]byte, bool)
	}); ok {
		sum, collision := cr.CollisionResistantSum(h.sum[:0])
		copy(id.b[:], sum)
		if collision {
			return id, ErrCollision
		}
		return id, nil
	}
	copy(id.b[:], h.Hash.Sum(h.sum[:0]))
	return id, nil
}

// ID is an object id. The zero value is invalid (Format returns 0).
type ID struct {
	b [MaxSize]byte
	n uint8
}

// Zero returns the null id of f: all bytes zero.
func Zero(f Format) ID { return ID{n: uint8(f.Size())} }

// FromBytes returns the id of format f held in b, which must have exactly
// f.Size() bytes.
func FromBytes(f Format, b []byte) (ID, error) {
	if !f.Valid() || len(b) != f.Size() {
		return ID{}, fmt.Errorf("oid: %d bytes is not a %s id", len(b), f)
	}
	var id ID
	id.n = uint8(copy(id.b[:], b))
	return id, nil
}

// MustFromBytes is FromBytes for callers that already checked the length;
// it panics otherwise.
func MustFromBytes(f Format, b []byte) ID {
	id, err := FromBytes(f, b)
	if err != nil {
		panic(err)
	}
	return id
}

// ParseHex parses a full-length lower- or upper-case hexadecimal id of
// format f.
func ParseHex(f Format, s string) (ID, error) {
	if !f.Valid() || len(s) != f.HexSize() {
		return ID{}, fmt.Errorf("oid: %q is not a %s id", truncate(s), f)
	}
	var id ID
	if _, err := hex.Decode(id.b[:], []byte(s)); err != nil {
		return ID{}, fmt.Errorf("oid: %q is not a %s id", truncate(s), f)
	}
	id.n = uint8(f.Size())
	return id, nil
}

// ParseHexBytes is ParseHex on a byte slice, without allocating.
func ParseHexBytes(f Format, s []byte) (ID, error) {
	if !f.Valid() || len(s) != f.HexSize() {
		return ID{}, fmt.Errorf("oid: %q is not a %s id", truncate(string(s)), f)
	}
	var id ID
	for i := 0; i < len(s); i += 2 {
		hi, ok1 := unhex(s[i])
		lo, ok2 := unhex(s[i+1])
		if !ok1 || !ok2 {
			return ID{}, fmt.Errorf("oid: %q is not a %s id", truncate(string(s)), f)
		}
		id.b[i/2] = hi<<4 | lo
	}
	id.n = uint8(f.Size())
	return id, nil
}

// ParseHexAny parses an id whose format is told by its length (40 or 64
// hexadecimal digits).
func ParseHexAny(s string) (ID, error) {
	switch len(s) {
	case SHA1.HexSize():
		return ParseHex(SHA1, s)
	case SHA256.HexSize():
		return ParseHex(SHA256, s)
	}
	return ID{}, fmt.Errorf("oid: %q is not an object id", truncate(s))
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// Format returns the id's format, 0 for the zero ID.
func (id ID) Format() Format {
	switch id.n {
	case 20:
		return SHA1
	case 32:
		return SHA256
	}
	return 0
}

// Valid reports whether id has a format.
func (id ID) Valid() bool { return id.n != 0 }

// Bytes returns the raw id bytes. The slice is a copy the caller may keep.
func (id ID) Bytes() []byte { return id.b[:id.n:id.n] }

// Raw returns a pointer-free view of the id bytes for read-only use; it
// is valid as long as id is.
func (id *ID) Raw() []byte { return id.b[:id.n] }

// IsNull reports whether id is the all-zero id of its format.
func (id ID) IsNull() bool {
	for _, c := range id.b[:id.n] {
		if c != 0 {
			return false
		}
	}
	return id.n != 0
}

// String returns the id in lower-case hexadecimal.
func (id ID) String() string { return hex.EncodeToString(id.b[:id.n]) }

// AppendHex appends the lower-case hexadecimal form of id to dst.
func (id ID) AppendHex(dst []byte) []byte { return hex.AppendEncode(dst, id.b[:id.n]) }

// Compare orders ids by their bytes, as Git sorts them in indexes.
func (id ID) Compare(o ID) int { return bytes.Compare(id.b[:id.n], o.b[:o.n]) }

// Sum returns the id of the given bytes as hashed whole.
func Sum(f Format, data []byte) (ID, error) {
	h := NewHasher(f)
	h.Write(data)
	return h.ID()
}
