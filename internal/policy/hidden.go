package policy

import "strings"

// Hidden lists a repository's hidden reference namespaces, as gotd.conf's
// "hide namespace" lines name them: prefixes ending in "/". A hidden
// reference is never advertised, fetched, nor pushed to, and what only
// hidden references reach cannot be fetched by id (upload.Options.Hidden,
// receive.Options.Hidden).
type Hidden []string

// Has reports whether the reference name is hidden: in a namespace, or
// the namespace's own name (a reference there would keep any from
// being made in it, and tell they exist).
func (h Hidden) Has(name string) bool {
	for _, ns := range h {
		if strings.HasPrefix(name, ns) || name == strings.TrimSuffix(ns, "/") {
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
