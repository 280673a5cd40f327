package config

import (
	"strings"

	"gotd/internal/git/refs"
)

// maxMirrorRefs bounds the namespaces of one pull mirror
// (ipc.MaxRefs).
const maxMirrorRefs = 64

// DefaultMirrorRefs are the namespaces a pull mirror follows when its
// line names none: branches and tags.
var DefaultMirrorRefs = []string{"refs/heads/", "refs/tags/"}

// MirrorNamespaces are the namespaces, ending in "/", whose references
// the mirror follows: its refs patterns, else DefaultMirrorRefs.
func (m *Mirror) MirrorNamespaces() []string {
	if len(m.Refs) > 0 {
		return m.Refs
	}
	return DefaultMirrorRefs
}

// mirrorRefs parses the patterns after "refs" in a mirror from line,
// each "refs/NAMESPACE/*" as a refspec names a namespace, into m.Refs
// as the namespaces ("refs/NAMESPACE/").
func (p *parser) mirrorRefs(line int, m *Mirror) {
	pattern := func() bool {
		return p.tok.kind == tokString || p.tok.kind == tokWord && strings.HasPrefix(p.tok.text, "refs/")
	}
	if !pattern() {
		p.fail("syntax error: expected a reference pattern after refs, found %v", p.tok)
	}
	for pattern() {
		pat := p.str("a reference pattern")
		ns, ok := strings.CutSuffix(pat, "*")
		switch {
		case !ok || !strings.HasPrefix(ns, "refs/") || !strings.HasSuffix(ns, "/") || strings.Contains(ns, "*") ||
			refs.CheckName(ns+"x") != nil:
			p.errorf(line, "mirror refs: %q is not a pattern refs/NAMESPACE/*", clipText(pat, 64))
		case len(m.Refs) >= maxMirrorRefs:
			p.errorf(line, "mirror refs: more than %d patterns", maxMirrorRefs)
		default:
			m.Refs = append(m.Refs, ns)
		}
	}
}
