package uploadarchive

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"gotd/internal/protocol/wire"
)

// clientMessages are every text ParseArguments may send a client;
// none of them carries a byte of the arguments but the level's digit.
var clientMessages = regexp.MustCompile(`^(` + strings.Join([]string{
	`option '--(format|prefix)' requires a value`,
	`Unexpected option --remote`,
	`the option '--exec' requires '--remote'`,
	`Unexpected option --output`,
	`options '--add-(virtual-)?file' and '--remote' cannot be used together`,
	`unknown option`,
	`Unknown archive format`,
	`Argument not supported for format 'tar': -[0-9]`,
	`must specify a tree-ish`,
}, "|") + `)$`)

// FuzzArguments feeds ParseArguments arguments split at NUL bytes
// (which no pkt-line argument can hold as C Git reads it, so a
// separator) and checks what it accepts: a known format, a level only
// for compressed ones, the tree-ish and paths taken from the
// arguments in order, and refusals worded from the fixed list.
func FuzzArguments(f *testing.F) {
	for _, seed := range []string{
		"HEAD",
		"--format=tar\x00HEAD",
		"--format=zip\x00-9\x00--prefix=p/\x00v1.0\x00dir\x00file",
		"--format\x00tgz\x00--prefix\x00x-\x00main:sub",
		"--list",
		"-l\x00-v\x00--worktree-attributes\x00HEAD\x00--\x00--format=x",
		"--remote=ssh://h/r\x00HEAD",
		"--exec=sh\x00HEAD",
		"-o\x00out\x00HEAD",
		"--add-file=/etc/passwd\x00HEAD",
		"--format=tar\x00-3\x00HEAD",
		"--format=tar.gz\x00-0\x00HEAD",
		"--prefix",
		"-",
		"--",
		"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		args := strings.Split(s, "\x00")
		if len(args) > maxArgs {
			args = args[:maxArgs]
		}
		q, err := ParseArguments(args)
		if err != nil {
			if msg := wire.ClientMessage(err); !clientMessages.MatchString(msg) {
				t.Fatalf("ParseArguments(%q): message %q is not one of the fixed ones", args, msg)
			}
			return
		}
		if q.List {
			return
		}
		if !slices.Contains(formats, q.Format) {
			t.Fatalf("ParseArguments(%q): format %q", args, q.Format)
		}
		if q.Level < -1 || q.Level > 9 || q.Level >= 0 && q.Format == "tar" {
			t.Fatalf("ParseArguments(%q): level %d for %s", args, q.Level, q.Format)
		}
		// The tree-ish and the paths are arguments, in their order.
		rest := append([]string{q.TreeIsh}, q.Paths...)
		i := 0
		for _, a := range args {
			if i < len(rest) && a == rest[i] {
				i++
			}
		}
		if i != len(rest) {
			t.Fatalf("ParseArguments(%q): tree-ish %q and paths %q are not its arguments in order", args, q.TreeIsh, q.Paths)
		}
	})
}
