package uploadarchive

import (
	"strings"

	"gotd/internal/protocol/wire"
)

// maxArgs bounds the argument packets of a request, as MAX_ARGS does
// in C Git's builtin/upload-archive.c (63 arguments past the command's
// own name); maxArgBytes bounds their total size.
const (
	maxArgs     = 63
	maxArgBytes = 256 << 10
)

// Formats, in the order `git archive --list` prints those a remote may
// ask for (archive-tar.c registers tar and its gzip filters, then
// archive-zip.c zip).
var formats = []string{"tar", "tgz", "tar.gz", "zip"}

// Request is what a client's arguments ask for, checked as C Git's
// parse_archive_args (archive.c) checks them for a remote.
type Request struct {
	// List asks for the formats rather than an archive (--list).
	List bool
	// Format is one of formats ("tar" when not given).
	Format string
	// Level is the compression level, 0 to 9 (-0 … -9), or -1 when
	// not given; only compressed formats take one.
	Level int
	// Prefix is --prefix's value.
	Prefix string
	// TreeIsh is the first argument that is not an option, Paths the
	// others.
	TreeIsh string
	Paths   []string
}

// ParseArguments checks the arguments of an upload-archive request
// (the values of its "argument" packets, in order) as `git archive`
// parses its command line on the server: options and other arguments
// may be mixed, "--" ends the options, and --format and --prefix take
// their value after '=' or as the next argument. It refuses what a
// remote may not ask for (--remote, --exec, --output, --add-file,
// --add-virtual-file), unknown options and formats, a compression
// level for tar, and a request without a tree-ish (unless it lists the
// formats). Errors are *wire.Error values whose text echoes nothing of
// the arguments, worded as C Git words them.
func ParseArguments(args []string) (*Request, error) {
	q := &Request{Level: -1}
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			rest = append(rest, a)
			continue
		}
		name, value, hasValue := strings.Cut(a, "=")
		// value takes the option's value: after '=', or the next
		// argument, as parse-options reads OPT_STRING.
		value1 := func() (string, error) {
			if hasValue {
				return value, nil
			}
			if i+1 == len(args) {
				return "", wire.Errorf("option '%s' requires a value", name)
			}
			i++
			return args[i], nil
		}
		var err error
		switch {
		case name == "--format":
			q.Format, err = value1()
		case name == "--prefix":
			q.Prefix, err = value1()
		case (name == "-l" || name == "--list") && !hasValue:
			q.List = true
		case (name == "-v" || name == "--verbose" || name == "--worktree-attributes") && !hasValue:
			// Nothing to do: the server names no files on the
			// client's terminal, and a bare repository has no
			// worktree attributes.
		case len(a) == 2 && '0' <= a[1] && a[1] <= '9':
			q.Level = int(a[1] - '0')
		case name == "--remote":
			err = wire.Errorf("Unexpected option --remote")
		case name == "--exec":
			err = wire.Errorf("the option '--exec' requires '--remote'")
		case name == "-o" || name == "--output":
			err = wire.Errorf("Unexpected option --output")
		case name == "--add-file" || name == "--add-virtual-file":
			err = wire.Errorf("options '%s' and '--remote' cannot be used together", name)
		default:
			err = wire.Errorf("unknown option")
		}
		if err != nil {
			return nil, err
		}
	}
	if q.List {
		return q, nil
	}
	if q.Format == "" {
		q.Format = "tar"
	}
	known := false
	for _, f := range formats {
		known = known || q.Format == f
	}
	if !known {
		return nil, wire.Errorf("Unknown archive format")
	}
	if q.Level >= 0 && q.Format == "tar" {
		return nil, wire.Errorf("Argument not supported for format 'tar': -%d", q.Level)
	}
	if len(rest) == 0 {
		return nil, wire.Errorf("must specify a tree-ish")
	}
	q.TreeIsh, q.Paths = rest[0], rest[1:]
	return q, nil
}
