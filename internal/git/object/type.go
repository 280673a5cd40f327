// Package object defines Git's object types and parses and validates the
// four kinds of object (commit, tree, blob, tag) as C Git's fsck does.
package object

import (
	"errors"
	"fmt"
	"strconv"

	"gotd/internal/git/oid"
)

// Type is an object type. The values are those of pack entry headers
// (gitformat-pack(5), "Object types"), so a Type converts to and from the
// 3-bit type field directly.
type Type int8

const (
	Invalid  Type = 0
	Commit   Type = 1
	Tree     Type = 2
	Blob     Type = 3
	Tag      Type = 4
	OfsDelta Type = 6 // pack-only: delta against an earlier entry of the same pack
	RefDelta Type = 7 // pack-only: delta against an object named by id
)

// String returns the name Git uses in object headers ("commit", …).
func (t Type) String() string {
	switch t {
	case Commit:
		return "commit"
	case Tree:
		return "tree"
	case Blob:
		return "blob"
	case Tag:
		return "tag"
	case OfsDelta:
		return "ofs-delta"
	case RefDelta:
		return "ref-delta"
	}
	return fmt.Sprintf("type(%d)", int8(t))
}

// IsBase reports whether t is one of the four object types (not a delta).
func (t Type) IsBase() bool { return t >= Commit && t <= Tag }

// ParseType returns the type named name in an object header.
func ParseType(name []byte) (Type, error) {
	switch string(name) {
	case "commit":
		return Commit, nil
	case "tree":
		return Tree, nil
	case "blob":
		return Blob, nil
	case "tag":
		return Tag, nil
	}
	return Invalid, fmt.Errorf("object: invalid object type %q", truncate(name))
}

// AppendHeader appends the header Git hashes before an object's content:
// "<type> <size>\x00".
func AppendHeader(dst []byte, t Type, size int64) []byte {
	dst = append(dst, t.String()...)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, size, 10)
	return append(dst, 0)
}

// ParseHeader parses the "<type> <size>\x00" header at the start of b (the
// inflated start of a loose object) and returns the type, the declared
// size and the header's length including the NUL. The size is not trusted
// by this function beyond being a well-formed non-negative decimal without
// leading zeros.
func ParseHeader(b []byte) (t Type, size int64, n int, err error) {
	sp := -1
	for i := 0; i < len(b) && i < 16; i++ {
		if b[i] == ' ' {
			sp = i
			break
		}
	}
	if sp <= 0 {
		return Invalid, 0, 0, fmt.Errorf("object: malformed object header")
	}
	t, err = ParseType(b[:sp])
	if err != nil {
		return Invalid, 0, 0, err
	}
	i := sp + 1
	start := i
	for ; i < len(b) && b[i] != 0; i++ {
		c := b[i]
		if c < '0' || c > '9' || i-start >= 18 {
			return Invalid, 0, 0, fmt.Errorf("object: malformed object size")
		}
		size = size*10 + int64(c-'0')
	}
	if i == start || i >= len(b) || (b[start] == '0' && i-start > 1) {
		return Invalid, 0, 0, fmt.Errorf("object: malformed object size")
	}
	return t, size, i + 1, nil
}

// Hasher returns a hasher of format f primed with the header of an object
// of type t and the given size; write the content to it and call ID.
func Hasher(f oid.Format, t Type, size int64) *oid.Hasher {
	h := oid.NewHasher(f)
	var hdr [32]byte
	h.Write(AppendHeader(hdr[:0], t, size))
	return h
}

// ID computes the id of an object of type t whose content is data.
func ID(f oid.Format, t Type, data []byte) (oid.ID, error) {
	h := Hasher(f, t, int64(len(data)))
	h.Write(data)
	return h.ID()
}

func truncate(b []byte) string {
	if len(b) > 32 {
		return string(b[:32]) + "..."
	}
	return string(b)
}

// ErrNotFound is wrapped by every object store's error for a missing
// object, so callers can tell "absent" from "unreadable".
var ErrNotFound = errors.New("object not found")
