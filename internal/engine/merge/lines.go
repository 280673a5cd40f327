package merge

import (
	"bytes"
	"errors"
)

// ErrTooDifferent is returned by Lines when a side differs from the base
// by more edits than the merge searches for: the caller treats the file
// as a conflict rather than spend unbounded time on it.
var ErrTooDifferent = errors.New("merge: files too different to merge")

// maxDiffWork bounds the steps of one diff (diagonals tried and common
// lines followed), so that a pair of large files costs at most a
// fraction of a second, and its trace at most 32 MB, before it is
// called too different.
const maxDiffWork = 4 << 20

// maxLines bounds the lines of the three texts of a line merge,
// counted before they are split, so that the tables stay small.
const maxLines = 1 << 20

// hunk is one change of a line diff: lines [i, i+n) of the base are
// replaced by lines [j, j+m) of the side.
type hunk struct{ i, n, j, m int }

func (h hunk) end() int { return h.i + h.n }

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
	var t table
	b, o, th := t.lines(base), t.lines(ours), t.lines(theirs)
	h1, err := diff(b.ids, o.ids, maxEdits)
	if err != nil {
		return nil, false, err
	}
	h2, err := diff(b.ids, th.ids, maxEdits)
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
			out = b.append(out, pos, h1[i].i)
			out = o.append(out, h1[i].j, h1[i].j+h1[i].m)
			pos = h1[i].end()
			i++
		case i == len(h1) || r2[j].hi < r1[i].lo:
			out = b.append(out, pos, h2[j].i)
			out = th.append(out, h2[j].j, h2[j].j+h2[j].m)
			pos = h2[j].end()
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
			out = b.append(out, pos, start)
			out = append(out, mine...)
			pos, i, j = end, i2, j2
		}
	}
	return b.append(out, pos, len(b.ids)), true, nil
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
		for x := h.i; x < h.end(); x++ {
			own[base.ids[x]] = true
		}
		for y := h.j; y < h.j+h.m; y++ {
			own[s.ids[y]] = true
		}
		lo, hi := h.i, h.end()
		floor, ceil := 0, len(base.ids)
		if k > 0 {
			floor = hs[k-1].end()
		}
		if k+1 < len(hs) {
			ceil = hs[k+1].i
		}
		for lo > floor && own[base.ids[lo-1]] {
			lo--
		}
		for hi < ceil && own[base.ids[hi]] {
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
		out = base.append(out, pos, h.i)
		out = s.append(out, h.j, h.j+h.m)
		pos = h.end()
	}
	return base.append(out, pos, end)
}

// table numbers distinct lines, so that texts are compared as slices of
// integers.
type table struct{ ids map[string]int }

// text is a file split in lines: the offset of each line's start (and
// of the end), and each line's number in the table.
type text struct {
	data []byte
	offs []int
	ids  []int
}

func (t *table) lines(data []byte) text {
	if t.ids == nil {
		t.ids = map[string]int{}
	}
	x := text{data: data, offs: []int{0}}
	for off := 0; off < len(data); {
		n := bytes.IndexByte(data[off:], '\n') + 1
		if n == 0 {
			n = len(data) - off
		}
		line := data[off : off+n]
		id, ok := t.ids[string(line)]
		if !ok {
			id = len(t.ids)
			t.ids[string(line)] = id
		}
		x.ids = append(x.ids, id)
		off += n
		x.offs = append(x.offs, off)
	}
	return x
}

// append appends lines [from, to) of x to dst.
func (x text) append(dst []byte, from, to int) []byte {
	return append(dst, x.data[x.offs[from]:x.offs[to]]...)
}

// diff returns the changes of a shortest edit script from a to b
// (Myers' greedy algorithm), in order, or ErrTooDifferent if it needs
// more than maxEdits insertions and deletions.
func diff(a, b []int, maxEdits int) ([]hunk, error) {
	// Common lines at both ends take no search.
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	a, b = a[pre:len(a)-suf], b[pre:len(b)-suf]
	n, m := len(a), len(b)
	switch {
	case n == 0 && m == 0:
		return nil, nil
	case n == 0 || m == 0:
		if n+m > maxEdits {
			return nil, ErrTooDifferent
		}
		return []hunk{{pre, n, pre, m}}, nil
	}
	// v[k+off] is the furthest x reached on diagonal k = x - y; trace
	// keeps v after each round d, the band [-d, d] of it, to walk back:
	// at most maxEdits² entries. work counts the steps, bounded too.
	off := n + m
	v := make([]int, 2*off+2)
	var trace [][]int32
	d, work := 0, 0
	for ; ; d++ {
		if d > maxEdits || work > maxDiffWork {
			return nil, ErrTooDifferent
		}
		done := false
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || k != d && v[k-1+off] < v[k+1+off] {
				x = v[k+1+off] // down: an insertion
			} else {
				x = v[k-1+off] + 1 // right: a deletion
			}
			y := x - k
			x0 := x
			for x < n && y < m && a[x] == b[y] {
				x, y = x+1, y+1
			}
			work += 1 + x - x0
			v[k+off] = x
			if x >= n && y >= m {
				done = true
				break
			}
		}
		band := make([]int32, 2*d+1)
		for i, x := range v[off-d : off+d+1] {
			band[i] = int32(x)
		}
		trace = append(trace, band)
		if done {
			break
		}
	}
	// Walk back from (n, m), collecting the edits in reverse.
	var hs []hunk
	x, y := n, m
	for ; d > 0; d-- {
		prev := trace[d-1] // band [-(d-1), d-1]
		at := func(k int) int { return int(prev[k+d-1]) }
		k := x - y
		var pk int
		if k == -d || k != d && at(k-1) < at(k+1) {
			pk = k + 1
		} else {
			pk = k - 1
		}
		px := at(pk)
		py := px - pk
		// The edit leads from (px, py) to (sx, sy); from there to
		// (x, y) the lines are common.
		sx, sy := px+1, py
		if pk == k+1 {
			sx, sy = px, py+1
		}
		for x > sx && y > sy {
			x, y = x-1, y-1
		}
		if pk == k+1 { // insertion of b[py]
			hs = addEdit(hs, px, py, 0, 1)
		} else { // deletion of a[px]
			hs = addEdit(hs, px, py, 1, 0)
		}
		x, y = px, py
	}
	// Reverse into order and shift by the common prefix.
	for l, r := 0, len(hs)-1; l < r; l, r = l+1, r-1 {
		hs[l], hs[r] = hs[r], hs[l]
	}
	for k := range hs {
		hs[k].i += pre
		hs[k].j += pre
	}
	return hs, nil
}

// addEdit adds one edit at (i, j), found walking backwards, to hs:
// merged into the last hunk when they are adjacent.
func addEdit(hs []hunk, i, j, n, m int) []hunk {
	if len(hs) > 0 {
		h := &hs[len(hs)-1]
		if i+n == h.i && j+m == h.j {
			h.i, h.j, h.n, h.m = i, j, h.n+n, h.m+m
			return hs
		}
	}
	return append(hs, hunk{i, n, j, m})
}
