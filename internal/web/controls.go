package web

import (
	"bytes"
	"fmt"
	"unicode/utf8"
)

// Control characters from a repository (in a file name, a reference
// name, an author, a message or a file) can make a page read otherwise
// than its bytes: the bidirectional embeddings, overrides, isolates and
// marks reorder the text around them (Trojan Source, CVE-2021-42574),
// and C0 and C1 controls are invisible or hide what follows. Pages show
// each as a visible mark, ⟨U+202E⟩, in every context (text, attributes,
// the title, feeds), and the lines of a file or diff that hold bidi
// controls are marked, with a warning on the page.

// isBidi reports whether r is a bidirectional formatting character:
// LRE, RLE, PDF, LRO, RLO, LRI, RLI, FSI, PDI, LRM, RLM, ALM.
func isBidi(r rune) bool {
	return r >= 0x202A && r <= 0x202E || r >= 0x2066 && r <= 0x2069 || r == 0x200E || r == 0x200F || r == 0x061C
}

// isControl reports whether r is shown as a mark: a bidi character,
// a C0 control other than tab, newline and carriage return, DEL, or a
// C1 control.
func isControl(r rune) bool {
	return r < ' ' && r != '\t' && r != '\n' && r != '\r' || r >= 0x7F && r <= 0x9F || isBidi(r)
}

// controlLead marks the bytes that may begin a control character's
// UTF-8 encoding: C0 (but tab, newline, CR), DEL, and the lead bytes
// of C1 (0xC2), ALM (0xD8) and the others (0xE2).
var controlLead = func() (t [256]bool) {
	for b := range 0x20 {
		t[b] = b != '\t' && b != '\n' && b != '\r'
	}
	t[0x7F], t[0xC2], t[0xD8], t[0xE2] = true, true, true, true
	return t
}()

// controlAt returns the size of the control character at the start of
// b, 0 if there is none there.
func controlAt(b []byte) (rune, int) {
	if b[0] < utf8.RuneSelf {
		if controlLead[b[0]] {
			return rune(b[0]), 1
		}
		return 0, 0
	}
	r, n := utf8.DecodeRune(b)
	if r == utf8.RuneError || !isControl(r) {
		return 0, 0
	}
	return r, n
}

// hasControl reports whether b holds a control character.
func hasControl(b []byte) bool {
	for i, c := range b {
		if controlLead[c] {
			if _, n := controlAt(b[i:]); n > 0 {
				return true
			}
		}
	}
	return false
}

// hasBidi reports whether b holds a bidi character, from their UTF-8
// encodings: U+061C is D8 9C, U+200E and U+200F E2 80 8E-8F, U+202A to
// U+202E E2 80 AA-AE, U+2066 to U+2069 E2 81 A6-A9.
func hasBidi[T string | []byte](b T) bool {
	for i := 0; i+1 < len(b); i++ {
		switch b[i] {
		case 0xD8:
			if b[i+1] == 0x9C {
				return true
			}
		case 0xE2:
			if i+2 >= len(b) {
				return false
			}
			c, d := b[i+1], b[i+2]
			if c == 0x80 && (d == 0x8E || d == 0x8F || d >= 0xAA && d <= 0xAE) || c == 0x81 && d >= 0xA6 && d <= 0xA9 {
				return true
			}
		}
	}
	return false
}

// mark is the visible form of control character r.
func mark(r rune) string { return fmt.Sprintf("⟨U+%04X⟩", r) }

// markControls returns page, an HTML page made by html/template, with
// each control character replaced by its mark: within a tag (an
// attribute's value) or the title as text, elsewhere as text in a span
// of class "ctl". Only text from a repository can have put a control
// there, and html/template escapes "<" and ">" in it, so that a raw
// "<" always opens a tag. A page without controls is returned as it
// is.
func markControls(page []byte) []byte {
	if !hasControl(page) {
		return page
	}
	out := make([]byte, 0, len(page)+256)
	inTag, inTitle := false, false
	for i := 0; i < len(page); {
		c := page[i]
		switch {
		case c == '<':
			inTag = true
			if bytes.HasPrefix(page[i:], []byte("<title>")) {
				inTitle = true
			} else if bytes.HasPrefix(page[i:], []byte("</title>")) {
				inTitle = false
			}
		case c == '>':
			inTag = false
		case controlLead[c]:
			if r, n := controlAt(page[i:]); n > 0 {
				if inTag || inTitle {
					out = append(out, mark(r)...)
				} else {
					out = append(out, `<span class="ctl">`...)
					out = append(out, mark(r)...)
					out = append(out, "</span>"...)
				}
				i += n
				continue
			}
		}
		out = append(out, c)
		i++
	}
	return out
}

// markText returns s with each control character but tab, newline and
// carriage return replaced by its mark, for text that is not HTML (an
// Atom feed).
func markText(s string) string {
	if !hasControl([]byte(s)) {
		return s
	}
	var b bytes.Buffer
	for _, r := range s {
		if isControl(r) {
			b.WriteString(mark(r))
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}
