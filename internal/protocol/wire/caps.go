package wire

import "strings"

// Caps is a list of capabilities as a client sent them: "name" or
// "name=value" words.
type Caps []string

// ParseCaps splits a version 0 capability list (space separated).
func ParseCaps(s string) Caps { return Caps(strings.Fields(s)) }

// Has reports whether the list holds name, with or without a value.
func (c Caps) Has(name string) bool {
	_, ok := c.Value(name)
	return ok
}

// Value returns the value of the first "name=value" word ("" for a bare
// "name") and whether name is present.
func (c Caps) Value(name string) (string, bool) {
	for _, w := range c {
		if w == name {
			return "", true
		}
		if len(w) > len(name) && w[len(name)] == '=' && w[:len(name)] == name {
			return w[len(name)+1:], true
		}
	}
	return "", false
}

// Unknown returns the first word whose name is not among known (names
// without values), or "" if every word is known.
func (c Caps) Unknown(known []string) string {
	for _, w := range c {
		name, _, _ := strings.Cut(w, "=")
		found := false
		for _, k := range known {
			if k == name {
				found = true
				break
			}
		}
		if !found {
			return w
		}
	}
	return ""
}
