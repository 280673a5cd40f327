package upload

import (
	"bufio"
	"context"
	"fmt"
	"slices"
	"strings"

	"gotd/internal/git/oid"
	"gotd/internal/git/refs"
	"gotd/internal/git/repo"
	"gotd/internal/git/walk"
	"gotd/internal/protocol/pktline"
	"gotd/internal/protocol/wire"
)

// session is one client's upload-pack conversation.
type session struct {
	ctx  context.Context
	opts Options
	repo *repo.Repo
	in   *pktline.Reader
	bw   *bufio.Writer
	pw   *pktline.Writer
	res  *Result

	refs []wire.Ref // advertised, HEAD first when it resolves
	head string     // HEAD's target when symbolic
	tips map[oid.ID]bool
	// listed is what the last ls-refs of this connection listed
	// (peeled too): a fetch that follows on the connection may want
	// them though a reference has moved since, as a version 0 client
	// may want what the advertisement it read listed.
	listed []oid.ID
	// haveBudget bounds the have lines of all rounds.
	haveBudget wire.Budget
	walker     *walk.Walker
	// negWalker negotiates: it has no bitmap.
	negWalker *walk.Walker
	release   func()
}

// readPacket reads the next packet; a malformed one is a client error.
func (s *session) readPacket() (pktline.Kind, []byte, error) {
	k, p, err := s.in.Read()
	if err != nil {
		return 0, nil, wire.ReadError(err)
	}
	return k, p, nil
}

// flush sends what is buffered.
func (s *session) flush() error {
	if err := s.bw.Flush(); err != nil {
		return fmt.Errorf("upload: write: %w", err)
	}
	return nil
}

// fail sends err to the client as an ERR packet and returns it.
func (s *session) fail(err error) error {
	wire.SendErr(s.pw, err)
	s.flush()
	return err
}

// loadRefs reads the references to advertise: HEAD when it resolves,
// then every reference in name order, each with what it peels to when
// it is an annotated tag.
func (s *session) loadRefs() error {
	if s.tips != nil {
		return nil
	}
	s.tips = make(map[oid.ID]bool)
	return s.eachRef(func(w wire.Ref, _ string) error {
		if w.Peeled.Valid() {
			s.tips[w.Peeled] = true
		}
		s.tips[w.ID] = true
		s.refs = append(s.refs, w)
		return nil
	})
}

// eachRef calls fn for every reference to advertise, as loadRefs
// orders them, with the target of a symbolic one (HEAD's is s.head),
// and sets s.head. Peeled is valid only for an annotated tag. fn may
// keep w; ls-refs writes each as it comes, without keeping any.
func (s *session) eachRef(fn func(w wire.Ref, target string) error) error {
	rs := s.repo.Refs
	s.head = ""
	if head, err := rs.Read("HEAD"); err == nil && !s.hidden(head) {
		s.head = head.Target
		if r, err := rs.Resolve("HEAD"); err == nil {
			// What HEAD's reference peels to comes with it from
			// packed-refs when recorded there: an ls-refs of a
			// repository whose references are all packed then reads
			// no object, and opens no pack index.
			r.Name, r.Target = "HEAD", ""
			if err := fn(s.wireRef(r), s.head); err != nil {
				return err
			}
		}
	}
	return rs.List("refs/", func(r refs.Ref) error {
		if s.hidden(r) {
			return nil
		}
		return fn(s.wireRef(r), r.Target)
	})
}

// hidden reports whether r is hidden: its name, or a name its chain of
// symbolic references passes through.
func (s *session) hidden(r refs.Ref) bool {
	return s.opts.Hidden != nil && s.repo.Refs.ChainAny(r, s.opts.Hidden)
}

// wireRef is r as advertised: with what it peels to when it is an
// annotated tag, read from the object when the store does not know it.
func (s *session) wireRef(r refs.Ref) wire.Ref {
	w := wire.Ref{Name: r.Name, ID: r.ID}
	peeled := r.Peeled
	if !peeled.Valid() {
		peeled = s.repo.Peel(r.ID)
	}
	if peeled.Valid() && peeled != r.ID {
		w.Peeled = peeled
	}
	return w
}

// negotiator returns a negotiation for wants, on a walker without the
// bitmap.
func (s *session) negotiator(wants []oid.ID) *walk.Common {
	if s.negWalker == nil {
		var release func()
		s.negWalker, _, release = openWalker(s.repo, false)
		s.onRelease(release)
	}
	return s.negWalker.NewCommon(s.ctx, wants)
}

// onRelease adds f to what the session releases when it ends.
func (s *session) onRelease(f func()) {
	prev := s.release
	s.release = func() {
		f()
		if prev != nil {
			prev()
		}
	}
}

// walkerOf returns the session's walker over the repository.
func (s *session) walkerOf() *walk.Walker {
	if s.walker == nil {
		var release func()
		s.walker, _, release = newWalker(s.repo)
		s.onRelease(release)
	}
	return s.walker
}

// parseID parses a hex object id of the repository's format.
func (s *session) parseID(hex []byte) (oid.ID, error) {
	id, err := oid.ParseHexBytes(s.repo.Format, hex)
	if err != nil {
		return id, wire.Errorf("protocol error: malformed object id")
	}
	return id, nil
}

// addWant parses a want's id and records it, refusing at once what
// checkWants would refuse without a walk: an object the repository
// lacks, and one not advertised where only advertised ones may be
// asked for. So the wants kept are objects of the repository.
func (s *session) addWant(q *request, hex []byte, v2 bool) error {
	id, err := s.parseID(hex)
	if err != nil {
		return err
	}
	if !s.repo.HasObject(id) || !s.tips[id] && s.advertisedOnly(v2) {
		return wire.Errorf("upload-pack: not our ref %v", id)
	}
	q.addWant(id)
	return nil
}

// advertisedOnly reports whether wants must be advertised tips. In
// version 2, where references are listed apart from the fetch, and in a
// stateless version 0 or 1 request (smart HTTP), wants reachable from
// the tips are allowed too: a reference may have moved between the
// advertisement and the request, and C Git's http-backend (check_non_tip
// in upload-pack.c) accepts them for that reason.
func (s *session) advertisedOnly(v2 bool) bool {
	return s.opts.Wants == WantAdvertised && !v2 && !s.stateless()
}

// stateless reports whether the session is one leg of smart HTTP: the
// advertisement, or a request without one.
func (s *session) stateless() bool { return s.opts.AdvertiseOnly || s.opts.StatelessRPC }

// checkWants refuses wants the policy does not allow: every want must
// exist; unless any object may be asked for, it must be advertised, or
// (with WantReachable, in version 2 and in stateless requests)
// reachable from what is. In version 2, what the last ls-refs of this
// connection listed may be wanted whatever its reference has become
// since, and needs no more: a fetch that wants only what it was just
// listed (git fetch over git:// and SSH) reads the references no
// second time. The reachability of all other non-advertised wants is
// decided by one walk.
func (s *session) checkWants(ids []oid.ID, v2 bool) error {
	var listed map[oid.ID]bool
	if len(s.listed) > 0 {
		listed = make(map[oid.ID]bool, len(s.listed))
		for _, l := range s.listed {
			listed[l] = true
		}
	}
	var pending map[oid.ID]bool
	for _, id := range ids {
		if !s.repo.HasObject(id) {
			return wire.Errorf("upload-pack: not our ref %v", id)
		}
		if listed[id] || s.opts.Wants == WantAny && s.opts.Hidden == nil {
			continue
		}
		if err := s.loadRefs(); err != nil {
			return fmt.Errorf("upload: list references: %w", err)
		}
		if s.tips[id] {
			continue
		}
		if s.advertisedOnly(v2) {
			return wire.Errorf("upload-pack: not our ref %v", id)
		}
		if pending == nil {
			pending = make(map[oid.ID]bool)
		}
		pending[id] = true
	}
	if len(pending) == 0 {
		return nil
	}
	var ask []oid.ID
	for id := range pending {
		ask = append(ask, id)
	}
	reached, err := s.reachable(ask)
	if err != nil {
		return err
	}
	for _, id := range ask {
		if !reached[id] {
			return wire.Errorf("upload-pack: not our ref %v", id)
		}
	}
	return nil
}

// reachable returns which of ids the advertised references reach, in
// one walk.
func (s *session) reachable(ids []oid.ID) (map[oid.ID]bool, error) {
	if err := s.loadRefs(); err != nil {
		return nil, fmt.Errorf("upload: list references: %w", err)
	}
	tips := make([]oid.ID, 0, len(s.tips))
	for t := range s.tips {
		tips = append(tips, t)
	}
	reached, err := s.walkerOf().Reachable(s.ctx, tips, ids)
	if err != nil {
		return nil, fmt.Errorf("upload: reachability of wants: %w", err)
	}
	return reached, nil
}

// visibleOnly returns ids without those the advertised references do
// not reach.
func (s *session) visibleOnly(ids []oid.ID) ([]oid.ID, error) {
	reached, err := s.reachable(ids)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(slices.Clone(ids), func(id oid.ID) bool { return !reached[id] }), nil
}

// resolveDeepenNot turns a deepen-not argument, a reference name in the
// forms rev-parse accepts for refs ("main", "heads/main",
// "refs/heads/main", "v1.0"), into the commit it peels to.
func (s *session) resolveDeepenNot(name string) (oid.ID, error) {
	bad := wire.Errorf("upload-pack: deepen-not is not a reference")
	if name == "" || strings.ContainsAny(name, " \x00") {
		return oid.ID{}, bad
	}
	var found []oid.ID
	for _, full := range []string{name, "refs/" + name, "refs/tags/" + name, "refs/heads/" + name, "refs/remotes/" + name, "refs/remotes/" + name + "/HEAD"} {
		if full != "HEAD" && refs.CheckName(full) != nil {
			continue
		}
		if s.opts.Hidden != nil {
			if one, err := s.repo.Refs.Read(full); err != nil || s.hidden(one) {
				continue
			}
		}
		r, err := s.repo.Refs.Resolve(full)
		if err != nil {
			continue
		}
		found = append(found, r.ID)
	}
	if len(found) == 0 {
		return oid.ID{}, bad
	}
	if len(found) > 1 {
		return oid.ID{}, wire.Errorf("upload-pack: ambiguous deepen-not")
	}
	return found[0], nil
}
