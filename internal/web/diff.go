package web

import (
	"bytes"
	"fmt"
)

// diffLine is a line of a unified diff.
type diffLine struct {
	Kind byte // ' ', '+', '-', or '\\' for "No newline at end of file"
	Text string
	Bidi bool // the line has bidi characters
}

// hunk is a hunk of a unified diff.
type hunk struct {
	Header string
	Lines  []diffLine
}

// diffContext is the number of unchanged lines around each change.
const diffContext = 3

// splitLines splits data into lines without their newlines; noEOL says
// the last one had none.
func splitLines(data []byte) (lines [][]byte, noEOL bool) {
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return append(lines, data), true
		}
		lines, data = append(lines, data[:i]), data[i+1:]
	}
	return lines, false
}

// edit is one step of an edit script: an unchanged line (both indexes),
// a deleted one (b is -1) or an inserted one (a is -1).
type edit struct{ a, b int }

// unified returns the hunks of a unified diff from old to new, and the
// lines added and removed; ok is false when the diff needs more than
// maxEdits edits (the caller shows the file as changed, without
// lines).
func unified(old, new []byte, maxEdits int) (hunks []hunk, added, removed int, ok bool) {
	a, aNoEOL := splitLines(old)
	b, bNoEOL := splitLines(new)
	script, ok := myers(a, b, maxEdits, aNoEOL, bNoEOL)
	if !ok {
		return nil, 0, 0, false
	}
	for _, e := range script {
		switch {
		case e.a < 0:
			added++
		case e.b < 0:
			removed++
		}
	}
	// Group the script into hunks: changes closer than twice the
	// context share one.
	for i := 0; i < len(script); {
		if script[i].a >= 0 && script[i].b >= 0 {
			i++
			continue
		}
		start := max(0, i-diffContext)
		end := i
		for end < len(script) {
			// Extend over changes and short runs of unchanged lines.
			if script[end].a < 0 || script[end].b < 0 {
				end++
				continue
			}
			run := end
			for run < len(script) && script[run].a >= 0 && script[run].b >= 0 {
				run++
			}
			if run == len(script) || run-end > 2*diffContext {
				end = min(run, end+diffContext)
				break
			}
			end = run
		}
		h := hunk{}
		// Where the hunk starts on each side: the lines before it.
		aPos, bPos := 0, 0
		for _, e := range script[:start] {
			if e.a >= 0 {
				aPos++
			}
			if e.b >= 0 {
				bPos++
			}
		}
		aLen, bLen := 0, 0
		for _, e := range script[start:end] {
			switch {
			case e.a < 0:
				h.Lines = append(h.Lines, diffLine{'+', text(b[e.b]), hasBidi(b[e.b])})
				bLen++
				if bNoEOL && e.b == len(b)-1 {
					h.Lines = append(h.Lines, diffLine{'\\', "No newline at end of file", false})
				}
			case e.b < 0:
				h.Lines = append(h.Lines, diffLine{'-', text(a[e.a]), hasBidi(a[e.a])})
				aLen++
				if aNoEOL && e.a == len(a)-1 {
					h.Lines = append(h.Lines, diffLine{'\\', "No newline at end of file", false})
				}
			default:
				h.Lines = append(h.Lines, diffLine{' ', text(a[e.a]), hasBidi(a[e.a])})
				aLen++
				bLen++
				// The last line of both, without a newline on either
				// (they are equal only then).
				if aNoEOL && e.a == len(a)-1 {
					h.Lines = append(h.Lines, diffLine{'\\', "No newline at end of file", false})
				}
			}
		}
		h.Header = "@@ -" + hunkRange(aPos, aLen) + " +" + hunkRange(bPos, bLen) + " @@"
		hunks = append(hunks, h)
		i = end
	}
	return hunks, added, removed, true
}

// hunkRange formats one side of a hunk header as diff -u does: the
// first line and the count, a count of one left out, and a side with
// no lines naming the line before the hunk.
func hunkRange(before, n int) string {
	switch n {
	case 0:
		return fmt.Sprintf("%d,0", before)
	case 1:
		return fmt.Sprintf("%d", before+1)
	}
	return fmt.Sprintf("%d,%d", before+1, n)
}

// myers returns a shortest edit script from a to b (Myers, "An O(ND)
// Difference Algorithm and Its Variations", 1986), or ok false past
// maxEdits edits. A last line without a newline (aNoEOL, bNoEOL)
// differs from every line that has one, as in diff.
func myers(a, b [][]byte, maxEdits int, aNoEOL, bNoEOL bool) ([]edit, bool) {
	eq := func(i, j int) bool {
		return (aNoEOL && i == len(a)-1) == (bNoEOL && j == len(b)-1) && bytes.Equal(a[i], b[j])
	}
	// Common lines at both ends take no search.
	pre := 0
	for pre < len(a) && pre < len(b) && eq(pre, pre) {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && eq(len(a)-1-suf, len(b)-1-suf) {
		suf++
	}
	n, m := len(a)-pre-suf, len(b)-pre-suf
	var mid []edit
	if n > 0 || m > 0 {
		maxD := min(n+m, maxEdits)
		off := maxD + 1
		v := make([]int, 2*off+1)
		var trace [][]int
		found := false
		// trace[d] holds v as it was before step d, on the diagonals
		// that step reads: -d-1 to d+1 (memory grows as d squared,
		// which maxEdits bounds).
		for d := 0; d <= maxD && !found; d++ {
			trace = append(trace, append([]int(nil), v[off-d-1:off+d+2]...))
			for k := -d; k <= d; k += 2 {
				var x int
				if k == -d || k != d && v[off+k-1] < v[off+k+1] {
					x = v[off+k+1]
				} else {
					x = v[off+k-1] + 1
				}
				y := x - k
				for x < n && y < m && eq(pre+x, pre+y) {
					x, y = x+1, y+1
				}
				v[off+k] = x
				if x >= n && y >= m {
					found = true
					break
				}
			}
		}
		if !found {
			return nil, false
		}
		// Walk back through the trace.
		x, y := n, m
		for d := len(trace) - 1; d >= 0; d-- {
			vd := func(k int) int { return trace[d][k+d+1] }
			k := x - y
			var prevK int
			if k == -d || k != d && vd(k-1) < vd(k+1) {
				prevK = k + 1
			} else {
				prevK = k - 1
			}
			prevX := 0
			if d > 0 {
				prevX = vd(prevK)
			}
			prevY := prevX - prevK
			for x > prevX && y > prevY {
				x, y = x-1, y-1
				mid = append(mid, edit{pre + x, pre + y})
			}
			if d > 0 {
				if x == prevX {
					mid = append(mid, edit{-1, pre + prevY})
				} else {
					mid = append(mid, edit{pre + prevX, -1})
				}
			}
			x, y = prevX, prevY
		}
		for i, j := 0, len(mid)-1; i < j; i, j = i+1, j-1 {
			mid[i], mid[j] = mid[j], mid[i]
		}
	}
	script := make([]edit, 0, pre+len(mid)+suf)
	for i := range pre {
		script = append(script, edit{i, i})
	}
	script = append(script, mid...)
	for i := range suf {
		script = append(script, edit{len(a) - suf + i, len(b) - suf + i})
	}
	return script, true
}
