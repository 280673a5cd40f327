// Package linediff compares texts line by line: a Myers diff of lines
// numbered in a shared table, bounded in edits and steps. The line
// merge (internal/engine/merge) and blame (internal/engine/blame) use
// it.
package linediff

import (
	"bytes"
	"errors"
)

// ErrTooDifferent is returned by Diff when the texts differ by more
// edits than it searches for, or need more steps than maxWork: the
// caller treats them as too different rather than spend unbounded time.
var ErrTooDifferent = errors.New("linediff: texts too different")

// maxWork bounds the steps of one diff (diagonals tried and common
// lines followed), so that a pair of large files costs at most a
// fraction of a second, and its trace at most 32 MB, before it is
// called too different.
const maxWork = 4 << 20

// Hunk is one change of a line diff: lines [I, I+N) of a are replaced
// by lines [J, J+M) of b.
type Hunk struct{ I, N, J, M int }

// End is the first line of a after the change.
func (h Hunk) End() int { return h.I + h.N }

// Table numbers distinct lines, so that texts are compared as slices of
// integers. Its zero value is ready; texts compared must share one.
type Table struct{ ids map[string]int }

// Text is a file split in lines: the offset of each line's start (and
// of the end), and each line's number in the table. A line is its
// bytes with its newline: a last line without one differs from the
// same line with one, as for C Git.
type Text struct {
	Data []byte
	Offs []int
	IDs  []int
}

// Len is the number of lines.
func (x Text) Len() int { return len(x.IDs) }

// Line returns line i, with its newline if it has one.
func (x Text) Line(i int) []byte { return x.Data[x.Offs[i]:x.Offs[i+1]] }

// Lines splits data into lines numbered in t.
func (t *Table) Lines(data []byte) Text {
	if t.ids == nil {
		t.ids = map[string]int{}
	}
	x := Text{Data: data, Offs: []int{0}}
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
		x.IDs = append(x.IDs, id)
		off += n
		x.Offs = append(x.Offs, off)
	}
	return x
}

// Append appends lines [from, to) of x to dst.
func (x Text) Append(dst []byte, from, to int) []byte {
	return append(dst, x.Data[x.Offs[from]:x.Offs[to]]...)
}

// Diff returns the changes of a shortest edit script from a to b
// (Myers' greedy algorithm), in order, or ErrTooDifferent if it needs
// more than maxEdits insertions and deletions or more than its bound
// of steps. Common lines at both ends cost no search; the search costs
// at most maxEdits² entries of memory.
func Diff(a, b []int, maxEdits int) ([]Hunk, error) {
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
		return []Hunk{{pre, n, pre, m}}, nil
	}
	// v[k+off] is the furthest x reached on diagonal k = x - y; trace
	// keeps v after each round d, the band [-d, d] of it, to walk back:
	// at most maxEdits² entries. work counts the steps, bounded too.
	off := n + m
	v := make([]int, 2*off+2)
	var trace [][]int32
	d, work := 0, 0
	for ; ; d++ {
		if d > maxEdits || work > maxWork {
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
	var hs []Hunk
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
		hs[k].I += pre
		hs[k].J += pre
	}
	return hs, nil
}

// addEdit adds one edit at (i, j), found walking backwards, to hs:
// merged into the last hunk when they are adjacent.
func addEdit(hs []Hunk, i, j, n, m int) []Hunk {
	if len(hs) > 0 {
		h := &hs[len(hs)-1]
		if i+n == h.I && j+m == h.J {
			h.I, h.J, h.N, h.M = i, j, h.N+n, h.M+m
			return hs
		}
	}
	return append(hs, Hunk{i, n, j, m})
}
