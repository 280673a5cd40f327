package linediff

// Slide moves the changes hs of a diff from a to b within runs of equal
// lines to where C Git's xdiff puts them (xdl_change_compact in
// xdiffi.c, with the indent heuristic that diff.indentHeuristic turns
// on by default): every group of changed lines of a, then of b, is
// slid as far up and down as equal lines allow, merging with the groups
// it meets; one that can face a change of the other text is lined up
// with the last such change, and the others are placed where the
// heuristic finds the split of least badness. The diff stays a diff
// from a to b of the same size; only which of equal lines count as
// changed moves, which is what blame and a diff's reader see.
func Slide(a, b Text, hs []Hunk) []Hunk {
	ca, cb := changed(a.Len(), hs, false), changed(b.Len(), hs, true)
	compact(a, ca, cb)
	compact(b, cb, ca)
	// Rebuild the hunks from the two change maps.
	var out []Hunk
	i, j := 0, 0
	for i < a.Len() || j < b.Len() {
		if !ca.at(i) && !cb.at(j) {
			i, j = i+1, j+1
			continue
		}
		h := Hunk{I: i, J: j}
		for ; ca.at(i); i++ {
			h.N++
		}
		for ; cb.at(j); j++ {
			h.M++
		}
		out = append(out, h)
	}
	return out
}

// flags marks the changed lines of one text, with a false sentinel on
// each side (index -1 and n), as xdiff's rchg has.
type flags []bool

func changed(n int, hs []Hunk, side bool) flags {
	f := make(flags, n+2)
	for _, h := range hs {
		lo, k := h.I, h.N
		if side {
			lo, k = h.J, h.M
		}
		for x := lo; x < lo+k; x++ {
			f[x+1] = true
		}
	}
	return f
}

func (f flags) at(i int) bool     { return f[i+1] }
func (f flags) set(i int, v bool) { f[i+1] = v }
func (f flags) n() int            { return len(f) - 2 }

// group is a run of changed lines [start, end) of one text, possibly
// empty (a place between lines).
type group struct{ start, end int }

func (f flags) first() group {
	g := group{}
	for f.at(g.end) {
		g.end++
	}
	return g
}

// next moves g to the next group; false at the end.
func (f flags) next(g *group) bool {
	if g.end == f.n() {
		return false
	}
	g.start = g.end + 1
	for g.end = g.start; f.at(g.end); g.end++ {
	}
	return true
}

// previous moves g to the previous group; false at the start.
func (f flags) previous(g *group) bool {
	if g.start == 0 {
		return false
	}
	g.end = g.start - 1
	for g.start = g.end; f.at(g.start - 1); g.start-- {
	}
	return true
}

// slideDown moves g down one line if the line after it equals its
// first, merging with a group it meets.
func (f flags) slideDown(x Text, g *group) bool {
	if g.end < f.n() && x.IDs[g.start] == x.IDs[g.end] {
		f.set(g.start, false)
		f.set(g.end, true)
		g.start, g.end = g.start+1, g.end+1
		for f.at(g.end) {
			g.end++
		}
		return true
	}
	return false
}

// slideUp moves g up one line if the line before it equals its last.
func (f flags) slideUp(x Text, g *group) bool {
	if g.start > 0 && x.IDs[g.start-1] == x.IDs[g.end-1] {
		g.start, g.end = g.start-1, g.end-1
		f.set(g.start, true)
		f.set(g.end, false)
		for f.at(g.start - 1) {
			g.start--
		}
		return true
	}
	return false
}

// maxSliding bounds the positions the indent heuristic weighs.
const maxSliding = 100

// compact slides the groups of x (changes f) facing the other text's
// changes o, as xdl_change_compact does.
func compact(x Text, f, o flags) {
	g, og := f.first(), o.first()
	for {
		if g.end != g.start {
			var earliestEnd, size int
			endMatchingOther := -1
			for {
				size = g.end - g.start
				endMatchingOther = -1
				for f.slideUp(x, &g) {
					o.previous(&og)
				}
				earliestEnd = g.end
				if og.end > og.start {
					endMatchingOther = g.end
				}
				for f.slideDown(x, &g) {
					o.next(&og)
					if og.end > og.start {
						endMatchingOther = g.end
					}
				}
				if size == g.end-g.start {
					break
				}
			}
			switch {
			case g.end == earliestEnd:
			case endMatchingOther != -1:
				for og.end == og.start {
					f.slideUp(x, &g)
					o.previous(&og)
				}
			default:
				shift := max(earliestEnd, g.end-size-1, g.end-maxSliding)
				best, bestScore := -1, score{}
				for ; shift <= g.end; shift++ {
					var s score
					s.add(measure(x, shift))
					s.add(measure(x, shift-size))
					if best == -1 || s.cmp(bestScore) <= 0 {
						best, bestScore = shift, s
					}
				}
				for g.end > best {
					f.slideUp(x, &g)
					o.previous(&og)
				}
			}
		}
		if !f.next(&g) {
			return
		}
		o.next(&og)
	}
}

// Bounds and weights of the indent heuristic, xdiffi.c's.
const (
	maxIndent                = 200
	maxBlanks                = 20
	startOfFilePenalty       = 1
	endOfFilePenalty         = 21
	totalBlankWeight         = -30
	postBlankWeight          = 6
	relativeIndentPenalty    = -4
	relativeIndentWithBlank  = 10
	relativeOutdentPenalty   = 24
	relativeOutdentWithBlank = 17
	relativeDedentPenalty    = 23
	relativeDedentWithBlank  = 17
	indentWeight             = 60
)

// split describes the place before line split.
type split struct {
	endOfFile                   bool
	indent, preBlank, preIndent int
	postBlank, postIndent       int
}

// indent is the indentation of a line (tabs to multiples of 8), -1 for
// a line of white space only.
func indent(line []byte) int {
	n := 0
	for _, c := range line {
		switch c {
		case ' ':
			n++
		case '\t':
			n += 8 - n%8
		case '\n', '\r', '\f', '\v':
		default:
			return n
		}
		if n >= maxIndent {
			return maxIndent
		}
	}
	return -1
}

func measure(x Text, at int) split {
	var m split
	if at >= x.Len() {
		m.endOfFile, m.indent = true, -1
	} else {
		m.indent = indent(x.Line(at))
	}
	m.preIndent = -1
	for i := at - 1; i >= 0; i-- {
		if m.preIndent = indent(x.Line(i)); m.preIndent != -1 {
			break
		}
		if m.preBlank++; m.preBlank == maxBlanks {
			m.preIndent = 0
			break
		}
	}
	m.postIndent = -1
	for i := at + 1; i < x.Len(); i++ {
		if m.postIndent = indent(x.Line(i)); m.postIndent != -1 {
			break
		}
		if m.postBlank++; m.postBlank == maxBlanks {
			m.postIndent = 0
			break
		}
	}
	return m
}

// score is the badness of a position: lower is better.
type score struct{ effectiveIndent, penalty int }

func (s *score) add(m split) {
	if m.preIndent == -1 && m.preBlank == 0 {
		s.penalty += startOfFilePenalty
	}
	if m.endOfFile {
		s.penalty += endOfFilePenalty
	}
	postBlank := 0
	if m.indent == -1 {
		postBlank = 1 + m.postBlank
	}
	totalBlank := m.preBlank + postBlank
	s.penalty += totalBlankWeight*totalBlank + postBlankWeight*postBlank
	in := m.indent
	if in == -1 {
		in = m.postIndent
	}
	blanks := totalBlank != 0
	s.effectiveIndent += in
	switch {
	case in == -1, m.preIndent == -1, in == m.preIndent:
	case in > m.preIndent:
		s.penalty += pick(blanks, relativeIndentWithBlank, relativeIndentPenalty)
	case m.postIndent != -1 && m.postIndent > in:
		s.penalty += pick(blanks, relativeOutdentWithBlank, relativeOutdentPenalty)
	default:
		s.penalty += pick(blanks, relativeDedentWithBlank, relativeDedentPenalty)
	}
}

func pick(c bool, a, b int) int {
	if c {
		return a
	}
	return b
}

// cmp orders scores: negative when s is better than t.
func (s score) cmp(t score) int {
	c := 0
	switch {
	case s.effectiveIndent > t.effectiveIndent:
		c = 1
	case s.effectiveIndent < t.effectiveIndent:
		c = -1
	}
	return indentWeight*c + s.penalty - t.penalty
}
