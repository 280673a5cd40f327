package policy

import "strings"

// Hidden lists a repository's hidden reference namespaces, as gotd.conf's
// "hide namespace" lines name them: prefixes ending in "/". A hidden
// reference is never advertised, fetched, nor pushed to, and what only
// hidden references reach cannot be fetched by id (upload.Options.Hidden,
// receive.Options.Hidden).
type Hidden []string

// Has reports whether the reference name is hidden: in a namespace, or
// the name of a namespace or of one holding it ("refs/internal" for
// "refs/internal/x/"): a reference there would keep any from being made
// in it, and pushing one would tell whether hidden ones exist.
func (h Hidden) Has(name string) bool {
	for _, ns := range h {
		if strings.HasPrefix(name, ns) || strings.HasPrefix(ns, name+"/") {
			return true
		}
	}
	return false
}

// Func returns Has, or nil when nothing is hidden: the form the protocol
// packages take.
func (h Hidden) Func() func(name string) bool {
	if len(h) == 0 {
		return nil
	}
	return h.Has
}
