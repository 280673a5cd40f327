package config

import (
	"fmt"
	"strconv"
	"strings"
)

// tokKind is the kind of a token of gotd.conf.
type tokKind int

const (
	tokEOF tokKind = iota
	tokNewline
	tokWord   // a bare word (reserved words included)
	tokString // a quoted string
	tokNumber // a bare number
	tokPunct  // one of { } =
)

type token struct {
	kind tokKind
	text string
	num  int64
	line int
}

// maxToken bounds a word or string, as gotd's lexer does.
const maxToken = 8096

// lexer splits a configuration into tokens by gotd.conf(5)'s rules:
// line-based, "#" comments, backslash-newline continuations, single or
// double quotes with backslash escaping the active quote, bare words
// starting with a letter, digit, ':' or '_', and $macro expansion
// outside quotes (the value is lexed again as bare text).
type lexer struct {
	src    []byte
	pos    int
	line   int
	macros map[string]string
	used   map[string]bool
	errf   func(line int, format string, args ...any)
	// pending holds tokens of an expanded macro.
	pending []token
	depth   int
}

func isWordStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == ':' || c == '_'
}

// isWordChar: alphanumerics and punctuation except ( ) { } ! = # , and
// quotes.
func isWordChar(c byte) bool {
	if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
		return true
	}
	if c <= ' ' || c >= 0x7f {
		return false
	}
	return !strings.ContainsRune("(){}!=#,\"'", rune(c))
}

func (l *lexer) next() token {
	if len(l.pending) > 0 {
		t := l.pending[0]
		l.pending = l.pending[1:]
		return t
	}
	for {
		if l.pos >= len(l.src) {
			return token{kind: tokEOF, line: l.line}
		}
		c := l.src[l.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\r':
			l.pos++
			continue
		case c == '\\' && l.pos+1 < len(l.src) && l.src[l.pos+1] == '\n':
			l.pos += 2
			l.line++
			continue
		case c == '#':
			for l.pos < len(l.src) && l.src[l.pos] != '\n' {
				l.pos++
			}
			continue
		case c == '\n':
			l.pos++
			l.line++
			return token{kind: tokNewline, line: l.line - 1}
		case c == '{' || c == '}' || c == '=' || c == '*': // '*': every address
			l.pos++
			return token{kind: tokPunct, text: string(c), line: l.line}
		case c == '"' || c == '\'':
			return l.quoted(c)
		case c == '$':
			if t, ok := l.expand(); ok {
				return t
			}
			continue
		case isWordStart(c) || c == '-':
			return l.word()
		default:
			l.errf(l.line, "syntax error: unexpected character %q", c)
			l.pos++
			continue
		}
	}
}

// quoted lexes a quoted string.
func (l *lexer) quoted(q byte) token {
	line := l.line
	l.pos++
	var b strings.Builder
	for {
		if l.pos >= len(l.src) {
			l.errf(line, "unterminated quoted string")
			return token{kind: tokString, text: b.String(), line: line}
		}
		c := l.src[l.pos]
		l.pos++
		switch {
		case c == q:
			if b.Len() > maxToken {
				l.errf(line, "string too long")
			}
			return token{kind: tokString, text: b.String(), line: line}
		case c == '\\' && l.pos < len(l.src) && l.src[l.pos] == q:
			b.WriteByte(q)
			l.pos++
		case c == '\\' && l.pos < len(l.src) && l.src[l.pos] == '\n':
			l.pos++
			l.line++
		case c == '\n':
			l.line++
			b.WriteByte(c)
		case c == 0:
			l.errf(line, "syntax error: NUL in quoted string")
		default:
			b.WriteByte(c)
		}
	}
}

// word lexes a bare word or a number.
func (l *lexer) word() token {
	start := l.pos
	l.pos++
	for l.pos < len(l.src) && isWordChar(l.src[l.pos]) {
		l.pos++
	}
	text := string(l.src[start:l.pos])
	if len(text) > maxToken {
		l.errf(l.line, "string too long")
	}
	if n, err := strconv.ParseInt(text, 10, 64); err == nil {
		return token{kind: tokNumber, text: text, num: n, line: l.line}
	}
	if text[0] == '-' {
		l.errf(l.line, "syntax error: unexpected character '-'")
	}
	return token{kind: tokWord, text: text, line: l.line}
}

// expand replaces $name by the tokens of its value.
func (l *lexer) expand() (token, bool) {
	line := l.line
	l.pos++
	start := l.pos
	for l.pos < len(l.src) && (isWordChar(l.src[l.pos])) {
		l.pos++
	}
	name := string(l.src[start:l.pos])
	val, ok := l.macros[name]
	if !ok {
		l.errf(line, "macro '%s' not defined", name)
		return token{}, false
	}
	l.used[name] = true
	if l.depth > 16 {
		l.errf(line, "macro '%s' expands too deeply", name)
		return token{}, false
	}
	// The value is lexed again, as gotd does; unlike gotd, a value that
	// does not lex as bare text (a path such as "/var/run/gotd.sock")
	// stands for itself as one string.
	bad := false
	sub := &lexer{src: []byte(val), line: line, macros: l.macros, used: l.used, depth: l.depth + 1,
		errf: func(int, string, ...any) { bad = true }}
	var toks []token
	for {
		t := sub.next()
		if t.kind == tokEOF {
			break
		}
		if t.kind == tokNewline {
			continue
		}
		t.line = line
		toks = append(toks, t)
	}
	if bad {
		toks = []token{{kind: tokString, text: val, line: line}}
	}
	if len(toks) == 0 {
		return l.next(), true
	}
	l.pending = append(toks[1:], l.pending...)
	return toks[0], true
}

func (t token) String() string {
	switch t.kind {
	case tokEOF:
		return "end of file"
	case tokNewline:
		return "end of line"
	case tokString:
		return strconv.Quote(t.text)
	}
	return fmt.Sprintf("'%s'", t.text)
}
