package upload

import (
	"bytes"
	"strconv"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/walk"
	"gotd/internal/protocol/wire"
)

// request is one fetch request as the client stated it, in either
// protocol version.
type request struct {
	wants     []oid.ID
	wantSeen  map[oid.ID]bool
	wantRefs  []wire.Ref // version 2 want-ref, in request order
	haves     []oid.ID   // this round's (version 2)
	shallows  []oid.ID   // the client's shallow commits that we have
	depth     int
	relative  bool
	since     int64
	deepenNot []oid.ID
	filter    walk.Filter
	hasFilter bool

	thin, ofs, noProgress, includeTag  bool
	sideband, sideband64k, sidebandAll bool
	multiAck, multiAckDetailed, noDone bool
	waitForDone, done, packfileURIs    bool

	budgets requestBudgets
}

// requestBudgets bound the lists of one request (wire.Budget): the
// haves both per request (roundHaves) and for the session, all rounds
// together (session.haveBudget).
type requestBudgets struct {
	wants, shallows, deepenNot, roundHaves wire.Budget
	// other counts the lines that set a flag or a value (done,
	// thin-pack, deepen, filter …): kept or not, they are read.
	other wire.Budget
}

// Bounds of the lists of a request besides wire.Limits'. Clients send
// one deepen-not per --shallow-exclude and a few flags.
const (
	maxDeepenNot      = 1024
	maxDeepenNotBytes = 256 << 10
	maxOtherLines     = 1024
	maxOtherBytes     = 16 << 10
	// maxRoundHaves bounds the haves of one request (a round of
	// negotiation): each costs a lookup, and a request of a million
	// took the server tens of seconds (issue 18). C Git's client sends
	// rounds of 16 growing to 16384 haves, then by a tenth each round:
	// past 500,000 haves none of which the server had.
	maxRoundHaves = 65536
)

// newRequest returns an empty request with its budgets.
func (s *session) newRequest() *request {
	l := s.opts.Limits
	return &request{budgets: requestBudgets{
		wants:      s.idBudget("wants", "want", l.MaxWants),
		shallows:   s.idBudget("shallow lines", "shallow", l.MaxWants),
		deepenNot:  wire.Budget{Prefix: "upload-pack: ", What: "deepen-not lines", Lines: maxDeepenNot, Bytes: maxDeepenNotBytes},
		roundHaves: s.idBudget("haves in one request", "have", maxRoundHaves),
		other:      wire.Budget{Prefix: "upload-pack: ", What: "arguments", Lines: maxOtherLines, Bytes: maxOtherBytes},
	}}
}

// idBudget returns the budget of a list of lines "keyword <id>": lines
// of them, in bytes as many as such lines take (a longer line is
// malformed anyway).
func (s *session) idBudget(what, keyword string, lines int) wire.Budget {
	b := wire.Budget{Prefix: "upload-pack: ", What: what, Lines: lines, Bytes: -1}
	if lines >= 0 {
		b.Bytes = lines * (len(keyword) + 2 + s.repo.Format.HexSize())
	}
	return b
}

// deepening reports whether the client asked for a new shallow boundary.
func (q *request) deepening() bool {
	return q.depth > 0 || q.since != 0 || len(q.deepenNot) > 0
}

// shallowInfo reports whether shallow lines must be answered.
func (q *request) shallowInfo() bool { return q.deepening() || len(q.shallows) > 0 }

// addWant records a want, once.
func (q *request) addWant(id oid.ID) {
	if q.wantSeen == nil {
		q.wantSeen = make(map[oid.ID]bool)
	}
	if !q.wantSeen[id] {
		q.wantSeen[id] = true
		q.wants = append(q.wants, id)
	}
}

// parseShallowLine handles the lines both versions share: shallow,
// deepen, deepen-since, deepen-not and filter. It reports whether the
// line was one of them.
func (s *session) parseShallowLine(q *request, line []byte) (bool, error) {
	cmd, arg, _ := bytes.Cut(line, []byte{' '})
	switch string(cmd) {
	case "deepen", "deepen-since", "filter":
		if err := q.budgets.other.Take(len(line)); err != nil {
			return true, err
		}
	}
	switch string(cmd) {
	case "shallow":
		if err := q.budgets.shallows.Take(len(line)); err != nil {
			return true, err
		}
		id, err := s.parseID(arg)
		if err != nil {
			return true, err
		}
		t, _, err := s.repo.StatObject(id)
		if err != nil {
			return true, nil // a commit we do not have cannot bound what we send
		}
		if t != object.Commit {
			if s.opts.Hidden != nil {
				return true, nil // told apart, it would tell a hidden object exists
			}
			return true, wire.Errorf("upload-pack: invalid shallow object %v", id)
		}
		q.shallows = append(q.shallows, id)
	case "deepen":
		n, err := strconv.Atoi(string(arg))
		if err != nil || n <= 0 {
			return true, wire.Errorf("upload-pack: invalid deepen")
		}
		q.depth = n
	case "deepen-since":
		t, err := strconv.ParseInt(string(arg), 10, 64)
		if err != nil || t <= 0 {
			return true, wire.Errorf("upload-pack: invalid deepen-since")
		}
		q.since = t
	case "deepen-not":
		if err := q.budgets.deepenNot.Take(len(line)); err != nil {
			return true, err
		}
		id, err := s.resolveDeepenNot(string(arg))
		if err != nil {
			return true, err
		}
		q.deepenNot = append(q.deepenNot, id)
	case "filter":
		if !s.opts.Filter {
			return true, wire.Errorf("upload-pack: filtering is not enabled")
		}
		f, err := walk.ParseFilter(string(arg))
		if err != nil {
			return true, wire.Wrap("upload-pack: unsupported filter", err)
		}
		q.filter, q.hasFilter = f, true
	default:
		return false, nil
	}
	if q.depth > 0 && (q.since != 0 || len(q.deepenNot) > 0) {
		return true, wire.Errorf("upload-pack: deepen and deepen-since (or deepen-not) cannot be used together")
	}
	return true, nil
}

// shallowList computes the shallow and unshallow lines for q and the
// boundaries of the object walk.
func (s *session) shallowList(q *request) (*walk.Shallow, error) {
	// With hidden references, a shallow commit the visible ones do not
	// reach is one the client cannot have: it would be unshallowed
	// (its parents sent) or count as had.
	if s.opts.Hidden != nil && len(q.shallows) > 0 {
		shallows, err := s.visibleOnly(q.shallows)
		if err != nil {
			return nil, err
		}
		q.shallows = shallows
	}
	if !q.deepening() {
		return &walk.Shallow{Boundary: q.shallows}, nil
	}
	sh, err := s.walkerOf().Deepen(s.ctx, walk.Deepen{
		Wants:         q.wants,
		ClientShallow: q.shallows,
		Depth:         q.depth,
		Relative:      q.relative,
		Since:         q.since,
		Not:           q.deepenNot,
	})
	if err != nil {
		return nil, wire.Wrap("upload-pack: cannot compute shallow boundary", err)
	}
	return sh, nil
}

// writeShallow writes the shallow and unshallow lines.
func (s *session) writeShallow(sh *walk.Shallow) error {
	for _, id := range sh.Shallow {
		if err := s.pw.Writef("shallow %v\n", id); err != nil {
			return err
		}
	}
	for _, id := range sh.Unshallow {
		if err := s.pw.Writef("unshallow %v\n", id); err != nil {
			return err
		}
	}
	return nil
}
