package walk

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"gotd/internal/git/object"
)

// FilterKind is a kind of partial-clone filter (git-rev-list(1),
// "--filter").
type FilterKind uint8

const (
	FilterNone       FilterKind = iota
	FilterBlobNone              // blob:none
	FilterBlobLimit             // blob:limit=<n>
	FilterTreeDepth             // tree:<depth>
	FilterObjectType            // object:type=<type>
)

// Filter limits the objects a fetch lists, as the filter-spec of a
// partial clone asks; gitprotocol-v2(5), "fetch", names the "filter"
// argument. The zero Filter lists everything.
//
// As in C Git's list-objects-filter with its default options, objects
// the wants name directly, and the objects tags among them lead to, are
// listed whatever the filter (but a tree that is also the root tree of
// a commit listed is filtered as that root tree), and the entries of
// such a tree count as at depth 0; other commits and tags are filtered
// only by FilterObjectType.
type Filter struct {
	Kind FilterKind
	// Limit: with FilterBlobLimit, blobs of at least Limit bytes are
	// omitted.
	Limit int64
	// Depth: with FilterTreeDepth, trees and blobs at depth Depth or
	// more are omitted; a commit's root tree is at depth 0, its entries
	// at depth 1. A tree or blob found at several depths is listed if
	// one of them is below Depth.
	Depth int
	// Type: with FilterObjectType, only objects of this type are
	// listed. Trees are still walked to find blobs.
	Type object.Type
}

// ErrFilter is wrapped by the errors of ParseFilter.
var ErrFilter = errors.New("unsupported or malformed filter")

// Bounds of the numbers in a filter-spec. C Git takes any unsigned
// long; no blob or tree comes near these, so larger values are clamped
// to them without changing what is listed.
const (
	maxFilterLimit = math.MaxInt64
	maxFilterDepth = math.MaxInt32
)

// ParseFilter parses a filter-spec as a client sends it in a "filter"
// line: "blob:none", "blob:limit=<n>" (n in bytes, or with a k, m or g
// suffix in either case for powers of 1024), "tree:<depth>" or
// "object:type=<blob|tree|commit|tag>". Numbers are plain decimal: C
// Git would read "010" as octal and "0x10" as hex, so those are
// refused rather than read differently. Other filters ("combine:",
// "sparse:oid=") and anything malformed are errors wrapping ErrFilter;
// their text never quotes spec, so it may be sent to the client.
func ParseFilter(spec string) (Filter, error) {
	switch {
	case spec == "blob:none":
		return Filter{Kind: FilterBlobNone}, nil
	case strings.HasPrefix(spec, "blob:limit="):
		n, err := parseFilterNumber(strings.TrimPrefix(spec, "blob:limit="), maxFilterLimit)
		if err != nil {
			return Filter{}, err
		}
		return Filter{Kind: FilterBlobLimit, Limit: n}, nil
	case strings.HasPrefix(spec, "tree:"):
		n, err := parseFilterNumber(strings.TrimPrefix(spec, "tree:"), maxFilterDepth)
		if err != nil {
			return Filter{}, err
		}
		return Filter{Kind: FilterTreeDepth, Depth: int(n)}, nil
	case strings.HasPrefix(spec, "object:type="):
		var t object.Type
		switch strings.TrimPrefix(spec, "object:type=") {
		case "blob":
			t = object.Blob
		case "tree":
			t = object.Tree
		case "commit":
			t = object.Commit
		case "tag":
			t = object.Tag
		default:
			return Filter{}, fmt.Errorf("walk: malformed filter: %w", ErrFilter)
		}
		return Filter{Kind: FilterObjectType, Type: t}, nil
	}
	return Filter{}, fmt.Errorf("walk: unsupported filter: %w", ErrFilter)
}

// parseFilterNumber parses a decimal number with an optional k, m or g
// suffix (powers of 1024), as C Git's git_parse_ulong does for decimal
// input, and clamps it to max. A number that does not fit 64 bits
// before clamping is an error, as in C Git.
func parseFilterNumber(s string, max int64) (int64, error) {
	bad := fmt.Errorf("walk: malformed filter: %w", ErrFilter)
	shift := 0
	if s != "" {
		switch s[len(s)-1] {
		case 'k', 'K':
			shift = 10
		case 'm', 'M':
			shift = 20
		case 'g', 'G':
			shift = 30
		}
		if shift != 0 {
			s = s[:len(s)-1]
		}
	}
	if s == "" || len(s) > 1 && s[0] == '0' {
		return 0, bad
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, bad
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > math.MaxUint64>>shift {
		return 0, bad
	}
	n <<= shift
	if n > uint64(max) {
		return max, nil
	}
	return int64(n), nil
}

// String returns the canonical filter-spec of f, which ParseFilter
// reads back to f: sizes in bytes, "" for FilterNone. It quotes nothing
// a client sent beyond the numbers, so it is safe to log.
func (f Filter) String() string {
	switch f.Kind {
	case FilterBlobNone:
		return "blob:none"
	case FilterBlobLimit:
		return "blob:limit=" + strconv.FormatInt(f.Limit, 10)
	case FilterTreeDepth:
		return "tree:" + strconv.Itoa(f.Depth)
	case FilterObjectType:
		return "object:type=" + f.Type.String()
	}
	return ""
}
