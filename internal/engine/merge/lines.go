package merge

import (
	"bytes"

	"gotd/internal/engine/linediff"
)

// ErrTooDifferent is returned by Lines when a side differs from the base
// by more edits than the merge searches for: the caller treats the file
// as a conflict rather than spend unbounded time on it.
var ErrTooDifferent = linediff.ErrTooDifferent

// maxLines bounds the lines of the three texts of a line merge,
// counted before they are split, so that the tables stay small.
const maxLines = 1 << 20

// hunk is one change of a line diff: lines [I, I+N) of the base are
// replaced by lines [J, J+M) of the side.
type hunk = linediff.Hunk

// text is a file split in lines.
type text = linediff.Text

// Lines merges two texts changed from a common base, line by line, the
// way C Git's three-way file merge decides cleanliness: each side is
// diffed against the base; a change of one side that ends before the
// other's next change begins (touching counts as overlapping) is taken
// as it is; overlapping changes are merged only if both sides turn that
// stretch of the base into the same lines. clean is false, and merged
// nil, when some stretch was changed differently on both sides.
// maxEdits bounds the diff search of each side (ErrTooDifferent).
//
// A line is its bytes with its newline: a last line without one differs
// from the same line with one, as for C Git.
func Lines(base, ours, theirs []byte, maxEdits int) (merged []byte, clean bool, err error) {
	if bytes.Equal(ours, theirs) || bytes.Equal(base, theirs) {
		return ours, true, nil
	}
	if bytes.Equal(base, ours) {
		return theirs, true, nil
	}
	if bytes.Count(base, []byte{'\n'})+bytes.Count(ours, []byte{'\n'})+bytes.Count(theirs, []byte{'\n'}) > maxLines {
		return nil, false, ErrTooDifferent
	}
	var t linediff.Table
	b, o, th := t.Lines(base), t.Lines(ours), t.Lines(theirs)
	h1, err := linediff.Diff(b.IDs, o.IDs, maxEdits)
	if err != nil {
		return nil, false, err
	}
	h2, err := linediff.Diff(b.IDs, th.IDs, maxEdits)
	if err != nil {
		return nil, false, err
	}
	// Where a change sits in a run of equal lines is the diff's choice
	// (C Git's xdiff slides it elsewhere than this diff may): each
	// change is taken to reach over the base lines around it that equal
	// one of its own lines, as far as it could slide, so that two
	// changes that could meet are merged as one stretch, never applied
	// twice nor apart.
	r1, r2 := reach(b, o, h1), reach(b, th, h2)
	out := make([]byte, 0, max(len(ours), len(theirs)))
	pos := 0 // next base line not yet copied
	i, j := 0, 0
	for i < len(h1) || j < len(h2) {
		switch {
		case j == len(h2) || i < len(h1) && r1[i].hi < r2[j].lo:
			out = b.Append(out, pos, h1[i].I)
			out = o.Append(out, h1[i].J, h1[i].J+h1[i].M)
			pos = h1[i].End()
			i++
		case i == len(h1) || r2[j].hi < r1[i].lo:
			out = b.Append(out, pos, h2[j].I)
			out = th.Append(out, h2[j].J, h2[j].J+h2[j].M)
			pos = h2[j].End()
			j++
		default:
			// A stretch of the base both sides changed: grow it while
			// a change of either side reaches it.
			start, end := min(r1[i].lo, r2[j].lo), max(r1[i].hi, r2[j].hi)
			i2, j2 := i, j
			for {
				switch {
				case i2 < len(h1) && r1[i2].lo <= end:
					end = max(end, r1[i2].hi)
					start = min(start, r1[i2].lo)
					i2++
					continue
				case j2 < len(h2) && r2[j2].lo <= end:
					end = max(end, r2[j2].hi)
					start = min(start, r2[j2].lo)
					j2++
					continue
				}
				break
			}
			start = max(start, pos)
			mine := side(b, o, h1[i:i2], start, end)
			other := side(b, th, h2[j:j2], start, end)
			if !bytes.Equal(mine, other) {
				return nil, false, nil
			}
			out = b.Append(out, pos, start)
			out = append(out, mine...)
			pos, i, j = end, i2, j2
		}
	}
	return b.Append(out, pos, len(b.IDs)), true, nil
}

// span is the base lines [lo, hi) a change may reach.
type span struct{ lo, hi int }

// reach returns, for each change of side s, the base lines it covers
// widened over the neighbouring base lines equal to one of the lines it
// removes or adds: every place the same edit could be put. Lines of
// other changes of the side are not crossed.
func reach(base, s text, hs []hunk) []span {
	out := make([]span, len(hs))
	for k, h := range hs {
		own := map[int]bool{}
		for x := h.I; x < h.End(); x++ {
			own[base.IDs[x]] = true
		}
		for y := h.J; y < h.J+h.M; y++ {
			own[s.IDs[y]] = true
		}
		lo, hi := h.I, h.End()
		floor, ceil := 0, len(base.IDs)
		if k > 0 {
			floor = hs[k-1].End()
		}
		if k+1 < len(hs) {
			ceil = hs[k+1].I
		}
		for lo > floor && own[base.IDs[lo-1]] {
			lo--
		}
		for hi < ceil && own[base.IDs[hi]] {
			hi++
		}
		out[k] = span{lo, hi}
	}
	return out
}

// side returns what the changes hs of one side make of base lines
// [start, end), hs all within that stretch.
func side(base, s text, hs []hunk, start, end int) []byte {
	var out []byte
	pos := start
	for _, h := range hs {
		out = base.Append(out, pos, h.I)
		out = s.Append(out, h.J, h.J+h.M)
		pos = h.End()
	}
	return base.Append(out, pos, end)
}
