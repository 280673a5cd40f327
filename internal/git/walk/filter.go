package walk

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"gotd/internal/git/object"
)

// FilterKind is a kind of partial-clone filter.
type FilterKind uint8

const (
	FilterNone       FilterKind = iota
	FilterBlobNone              // blob:none
	FilterBlobLimit             // blob:limit=<n>
	FilterTreeDepth             // tree:<depth>
	FilterObjectType            // object:type=<type>
)

// Filter limits the trees and blobs a fetch lists, as the filter-spec
// of a partial clone asks (git-rev-list(1), "--filter"). Objects the
// wants name directly are listed whatever the filter.
type Filter struct {
	Kind FilterKind
	// Limit: with FilterBlobLimit, blobs of at least Limit bytes are
	// omitted.
	Limit int64
	// Depth: with FilterTreeDepth, trees and blobs at depth Depth or
	// more are omitted; a commit's root tree is at depth 0.
	Depth int
	// Type: with FilterObjectType, only objects of this type are listed.
	Type object.Type
}

// ErrFilter is wrapped by ParseFilter's errors.
var ErrFilter = errors.New("unsupported or malformed filter")

// ParseFilter parses a filter-spec: "blob:none", "blob:limit=<n>"
// (with an optional k, m or g suffix), "tree:<depth>" or
// "object:type=<type>". Its errors do not quote the spec.
func ParseFilter(spec string) (Filter, error) {
	switch {
	case spec == "blob:none":
		return Filter{Kind: FilterBlobNone}, nil
	case strings.HasPrefix(spec, "blob:limit="):
		n, err := parseSize(strings.TrimPrefix(spec, "blob:limit="))
		if err != nil {
			return Filter{}, err
		}
		return Filter{Kind: FilterBlobLimit, Limit: n}, nil
	case strings.HasPrefix(spec, "tree:"):
		n, err := parseSize(strings.TrimPrefix(spec, "tree:"))
		if err != nil || n > 1<<30 {
			return Filter{}, fmt.Errorf("walk: tree depth: %w", ErrFilter)
		}
		return Filter{Kind: FilterTreeDepth, Depth: int(n)}, nil
	case strings.HasPrefix(spec, "object:type="):
		t := object.Invalid
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
			return Filter{}, fmt.Errorf("walk: object type: %w", ErrFilter)
		}
		return Filter{Kind: FilterObjectType, Type: t}, nil
	}
	return Filter{}, fmt.Errorf("walk: %w", ErrFilter)
}

// parseSize parses a decimal size with an optional k, m or g suffix
// (powers of 1024), as C Git's git_parse_ulong does.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	if s != "" {
		switch s[len(s)-1] {
		case 'k', 'K':
			mult = 1 << 10
		case 'm', 'M':
			mult = 1 << 20
		case 'g', 'G':
			mult = 1 << 30
		}
		if mult != 1 {
			s = s[:len(s)-1]
		}
	}
	if s == "" || s[0] == '+' || s[0] == '-' {
		return 0, fmt.Errorf("walk: size: %w", ErrFilter)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > (1<<62)/mult {
		return 0, fmt.Errorf("walk: size: %w", ErrFilter)
	}
	return n * mult, nil
}

// String returns the filter-spec of f, "" for FilterNone.
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
