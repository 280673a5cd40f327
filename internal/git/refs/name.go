package refs

import (
	"errors"
	"fmt"
	"strings"
)

// ErrBadName is wrapped by the errors CheckName returns.
var ErrBadName = errors.New("refs: invalid reference name")

// CheckName reports whether name is a valid full reference name: it must
// start with "refs/" and follow the rules of git-check-ref-format(1)
// (without --allow-onelevel, --refspec-pattern or --normalize):
//
//   - no component is empty (no "//", no trailing "/"), begins with "."
//     or ends with ".lock";
//   - no "..", no "@{", no ASCII control character or DEL, no space and
//     none of ~ ^ : ? * [ \;
//   - the name does not end with "." and is not "@".
//
// Bytes of 0x80 and above are allowed, as in C Git. "HEAD" is not a
// valid name here; callers that accept it check for it themselves.
func CheckName(name string) error {
	if !strings.HasPrefix(name, "refs/") {
		return fmt.Errorf("%w %q: does not start with refs/", ErrBadName, quoteName(name))
	}
	if why := checkFormat(name); why != "" {
		return fmt.Errorf("%w %q: %s", ErrBadName, quoteName(name), why)
	}
	return nil
}

// ReservedName reports whether name, though CheckName accepts it, is
// one C Git refuses to create: "refs/heads/HEAD", which `git branch`
// and check_branch_ref (refs.c) refuse as a branch named like HEAD
// itself. An existing one may still be read and deleted.
func ReservedName(name string) bool { return name == "refs/heads/HEAD" }

// checkFormat applies the git-check-ref-format rules and returns why name
// breaks them, "" if it does not.
func checkFormat(name string) string {
	if name == "@" {
		return "is @"
	}
	start := 0 // start of the current component
	for i := 0; i <= len(name); i++ {
		if i == len(name) || name[i] == '/' {
			comp := name[start:i]
			switch {
			case comp == "":
				return "empty component"
			case comp[0] == '.':
				return "component begins with ."
			case strings.HasSuffix(comp, ".lock"):
				return "component ends with .lock"
			}
			start = i + 1
			continue
		}
		c := name[i]
		switch {
		case c < 0x20 || c == 0x7f:
			return "control character"
		case c == ' ' || c == '~' || c == '^' || c == ':' || c == '?' || c == '*' || c == '[' || c == '\\':
			return fmt.Sprintf("forbidden character %q", c)
		case c == '.' && i > 0 && name[i-1] == '.':
			return "contains .."
		case c == '{' && i > 0 && name[i-1] == '@':
			return "contains @{"
		}
	}
	if name[len(name)-1] == '.' {
		return "ends with ."
	}
	return ""
}

// quoteName shortens a name for an error message.
func quoteName(name string) string {
	if len(name) > 200 {
		return name[:200] + "..."
	}
	return name
}
