package config

import (
	"strings"

	"gotd/internal/policy"
)

// Push is a repository's push policy: its push blocks together.
type Push struct {
	// Refs are the permit/deny create/delete lines, in file order.
	Refs []RefRule
	// MaxBlobSize bounds added files (0: none); BlobExempt are the
	// identities it does not apply to.
	MaxBlobSize int64
	BlobExempt  []string
	// DenyBinary refuses added binary files, but for BinaryExempt.
	DenyBinary   bool
	BinaryExempt []string
	// Merges are the "deny merge" lines.
	Merges []MergeRule
	// Rebases are the "rebase branch|namespace" lines (server-side
	// rebase); MaxRebase bounds the commits of one rebased update
	// (0: the default).
	Rebases   []MergeRule
	MaxRebase int64
	// MaxPackSize and MaxObjects bound a pushed pack (0: no bound);
	// MinFree is the free space a push must leave on the repository's
	// file system (0: no guard).
	MaxPackSize, MaxObjects, MinFree int64
	// MaxObjectSize bounds every object of a pushed pack, inflated, and
	// every delta result (0: wire.DefaultLimits's).
	MaxObjectSize int64
}

// RefRule is a "permit|deny create|delete namespace NS [identity...]
// [except identity...]" line: it applies to Idents (everyone without
// them) but those in Except.
type RefRule struct {
	Deny, Delete bool
	Namespace    string
	Idents       []string
	Except       []string
}

// MergeRule is a "deny merge branch|namespace NAME [except identity...]"
// line: Ref is a full branch name or a namespace ending in "/".
type MergeRule struct {
	Ref    string
	Exempt []string
}

// For resolves p for a pusher: the rules that apply to id, without
// identities, for the process that checks the push.
func (p *Push) For(id Identity) policy.Push {
	var r policy.Push
	for _, rule := range p.Refs {
		if (len(rule.Idents) == 0 || id.IsAny(rule.Idents)) && !id.IsAny(rule.Except) {
			r.Refs = append(r.Refs, policy.RefRule{Deny: rule.Deny, Delete: rule.Delete, Namespace: rule.Namespace})
		}
	}
	if !id.IsAny(p.BlobExempt) {
		r.MaxBlobSize = p.MaxBlobSize
	}
	r.DenyBinary = p.DenyBinary && !id.IsAny(p.BinaryExempt)
	for _, m := range p.Merges {
		if !id.IsAny(m.Exempt) {
			r.NoMerges = append(r.NoMerges, m.Ref)
		}
	}
	for _, m := range p.Rebases {
		if !id.IsAny(m.Exempt) {
			r.Rebase = append(r.Rebase, m.Ref)
		}
	}
	r.MaxRebase = int(p.MaxRebase)
	return r
}

// NamesGroups reports whether some rule of p names a group: then a
// pusher's groups must be known.
func (p *Push) NamesGroups() bool {
	lists := [][]string{p.BlobExempt, p.BinaryExempt}
	for _, r := range p.Refs {
		lists = append(lists, r.Idents, r.Except)
	}
	for _, m := range append(p.Merges, p.Rebases...) {
		lists = append(lists, m.Exempt)
	}
	for _, l := range lists {
		for _, ident := range l {
			if strings.HasPrefix(ident, ":") {
				return true
			}
		}
	}
	return false
}

// maxIdents bounds the identities of one line.
const maxIdents = 256

// pushOption parses a line of a push block.
func (p *parser) pushOption(r *Repository) {
	line := p.tok.line
	ps := &r.Push
	switch {
	case p.is("permit"), p.is("deny"):
		deny := p.is("deny")
		p.advance()
		if deny && p.is("binary") {
			p.advance()
			ps.DenyBinary = true
			ps.BinaryExempt = p.except(line)
			return
		}
		if deny && p.is("merge") {
			p.advance()
			ps.Merges = append(ps.Merges, p.branchRule(line))
			return
		}
		rule := RefRule{Deny: deny}
		switch {
		case p.is("create"):
		case p.is("delete"):
			rule.Delete = true
		default:
			p.fail("syntax error: expected 'create' or 'delete', found %v", p.tok)
		}
		p.advance()
		p.expect("namespace")
		rule.Namespace = p.namespace(line, p.str("a namespace"))
		rule.Idents = p.identities(line)
		rule.Except = p.except(line)
		ps.Refs = append(ps.Refs, rule)
	case p.is("rebase"):
		p.advance()
		r := p.branchRule(line)
		if !strings.HasPrefix(r.Ref, "refs/heads/") {
			p.errorf(line, "rebase applies to branches: %s is not under refs/heads/", r.Ref)
		}
		ps.Rebases = append(ps.Rebases, r)
	case p.is("max"):
		p.advance()
		switch {
		case p.is("rebase"):
			p.advance()
			p.expect("commits")
			if p.tok.kind != tokNumber || p.tok.num <= 0 || p.tok.num > maxRebase {
				p.fail("rebase commit count %v out of range 1-%d", p.tok, maxRebase)
			}
			ps.MaxRebase = p.tok.num
			p.advance()
		case p.is("blob"):
			p.advance()
			p.expect("size")
			ps.MaxBlobSize = p.pushSize(line)
			ps.BlobExempt = p.except(line)
		case p.is("pack"):
			p.advance()
			p.expect("size")
			ps.MaxPackSize = p.pushSize(line)
		case p.is("object"):
			p.advance()
			p.expect("size")
			ps.MaxObjectSize = p.pushSize(line)
		case p.is("objects"):
			p.advance()
			if p.tok.kind != tokNumber || p.tok.num <= 0 || p.tok.num > 1<<32-1 {
				p.fail("invalid object count: %v", p.tok)
			}
			ps.MaxObjects = p.tok.num
			p.advance()
		default:
			p.fail("syntax error: expected 'blob', 'pack', 'object', 'objects' or 'rebase', found %v", p.tok)
		}
	case p.is("min"):
		p.advance()
		p.expect("free")
		p.expect("space")
		ps.MinFree = p.pushSize(line)
	default:
		p.fail("syntax error: unexpected %v in push options", p.tok)
	}
}

// branchRule parses "branch NAME | namespace NS [except identity...]"
// (deny merge, rebase): a short branch name gets refs/heads/.
func (p *parser) branchRule(line int) MergeRule {
	var ref string
	switch {
	case p.is("branch"):
		p.advance()
		ref = p.str("a branch name")
		if !strings.HasPrefix(ref, "refs/heads/") {
			ref = "refs/heads/" + ref
		}
	case p.is("namespace"):
		p.advance()
		ref = p.namespace(line, p.str("a namespace"))
	default:
		p.fail("syntax error: expected 'branch' or 'namespace', found %v", p.tok)
	}
	return MergeRule{Ref: ref, Exempt: p.except(line)}
}

// maxRebase bounds "max rebase commits".
const maxRebase = 10000

// maxPushSize bounds the sizes of a push block (what a session's start
// message carries).
const maxPushSize = 1 << 62

// pushSize parses a size of a push block.
func (p *parser) pushSize(line int) int64 {
	n := p.size()
	if n > maxPushSize {
		p.errorf(line, "size too large: %d", n)
	}
	return n
}

// except parses an optional "except identity..." ending a line.
func (p *parser) except(line int) []string {
	if !p.is("except") {
		return nil
	}
	p.advance()
	ids := p.identities(line)
	if len(ids) == 0 {
		p.fail("syntax error: expected a user or :group after 'except'")
	}
	return ids
}

// identities parses the users and groups up to the end of the line or
// "except".
func (p *parser) identities(line int) []string {
	var ids []string
	for p.tok.kind != tokNewline && p.tok.kind != tokEOF && !p.punct("}") && !p.is("except") {
		ids = append(ids, p.strOrNumber("a user or :group"))
	}
	if len(ids) > maxIdents {
		p.errorf(line, "more than %d users and groups on one line", maxIdents)
	}
	return ids
}
