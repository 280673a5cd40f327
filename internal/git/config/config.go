// Package config parses Git configuration files, the format described in
// git-config(1), section "CONFIGURATION FILE".
//
// The parser accepts what C Git accepts, with these exceptions: NUL bytes
// are rejected anywhere in the file (C Git silently truncates values at
// them), and `include` and `includeIf` sections are kept as ordinary
// entries but never followed, so a repository's configuration is exactly
// the file that was parsed. Lookups follow C Git: section and key names
// are case-insensitive, subsection names are case-sensitive (except in
// the legacy `[section.subsection]` form, which C Git lower-cases), and
// for a key given several times the last value wins.
//
// A Config is immutable after Parse and safe for concurrent use.
package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// MaxFileSize is the largest configuration file ParseFile reads. Real
// repository configurations are a few hundred bytes; a larger file is
// refused rather than read into memory.
const MaxFileSize = 1 << 20

// entry is one variable assignment, in file order.
type entry struct {
	section    string // lower-cased; "" for a variable before any section
	subsection string // as written (lower-cased in the legacy form)
	hasSub     bool   // a subsection was given, possibly empty
	key        string // lower-cased
	value      string
	noValue    bool // "key" without "=": implicit true for booleans
}

// Config is a parsed configuration file.
type Config struct {
	entries []entry
}

// ParseFile reads and parses the configuration file at path. Files
// larger than MaxFileSize are refused. A missing file is an error that
// wraps fs.ErrNotExist.
func ParseFile(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("config: read %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("config: %s: file larger than %d bytes", path, MaxFileSize)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%w in %s", err, path)
	}
	return c, nil
}

// Parse parses the contents of a configuration file. Errors name the
// line (counted from 1) where parsing stopped. The Config does not
// retain data.
func Parse(data []byte) (*Config, error) {
	p := parser{data: data}
	// C Git skips a UTF-8 byte order mark at the start of the file.
	if len(data) >= 3 && data[0] == 0xef && data[1] == 0xbb && data[2] == 0xbf {
		p.pos = 3
	}
	c := &Config{}
	if err := p.parse(c); err != nil {
		return nil, fmt.Errorf("config: bad config line %d: %w", p.line, err)
	}
	return c, nil
}

// parser walks the file byte by byte the way C Git's config reader does:
// "\r\n" reads as "\n" and the end of the file reads as a final "\n".
type parser struct {
	data []byte
	pos  int
	nl   int  // newlines consumed so far
	line int  // line of the last byte returned by next
	eof  bool // next has run past the end
	buf  []byte
}

var errNUL = errors.New("NUL byte")

func (p *parser) next() (byte, error) {
	p.line = p.nl + 1
	if p.pos >= len(p.data) {
		p.eof = true
		return '\n', nil
	}
	c := p.data[p.pos]
	p.pos++
	switch c {
	case 0:
		return 0, errNUL
	case '\r':
		if p.pos < len(p.data) && p.data[p.pos] == '\n' {
			p.pos++
			c = '\n'
		}
	}
	if c == '\n' {
		p.nl++
	}
	return c, nil
}

// isSpace is C Git's own isspace, which unlike C's leaves out \v and \f.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// isCSpace is C's isspace in the C locale, used by strtoimax.
func isCSpace(c byte) bool { return isSpace(c) || c == '\v' || c == '\f' }

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// isKeyChar reports whether c may appear in a section or variable name.
func isKeyChar(c byte) bool { return isAlpha(c) || '0' <= c && c <= '9' || c == '-' }

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func (p *parser) parse(c *Config) error {
	var (
		section, subsection string
		hasSub              bool
		comment             bool
	)
	for {
		ch, err := p.next()
		if err != nil {
			return err
		}
		switch {
		case ch == '\n':
			if p.eof {
				return nil
			}
			comment = false
		case comment || isSpace(ch):
		case ch == '#' || ch == ';':
			comment = true
		case ch == '[':
			section, subsection, hasSub, err = p.sectionHeader()
			if err != nil {
				return err
			}
		case isAlpha(ch):
			e := entry{section: section, subsection: subsection, hasSub: hasSub}
			if err := p.variable(ch, &e); err != nil {
				return err
			}
			c.entries = append(c.entries, e)
		default:
			return fmt.Errorf("unexpected character %q", ch)
		}
	}
}

// sectionHeader parses what follows "[": either `name]` (where a dot
// introduces a legacy, lower-cased subsection) or `name "subsection"]`.
func (p *parser) sectionHeader() (section, subsection string, hasSub bool, err error) {
	p.buf = p.buf[:0]
	for {
		c, err := p.next()
		if err != nil {
			return "", "", false, err
		}
		if p.eof {
			return "", "", false, errors.New("unterminated section header")
		}
		if c == ']' {
			break
		}
		if isSpace(c) {
			return p.extendedHeader(c)
		}
		if !isKeyChar(c) && c != '.' {
			return "", "", false, fmt.Errorf("invalid character %q in section name", c)
		}
		p.buf = append(p.buf, lower(c))
	}
	return splitSection(string(p.buf))
}

// extendedHeader parses ` "subsection"]` after a section name; c is the
// whitespace character that ended the name.
func (p *parser) extendedHeader(c byte) (section, subsection string, hasSub bool, err error) {
	for isSpace(c) {
		if c == '\n' {
			return "", "", false, errors.New("unterminated section header")
		}
		if c, err = p.next(); err != nil {
			return "", "", false, err
		}
	}
	if c != '"' {
		return "", "", false, errors.New("subsection name must be quoted")
	}
	p.buf = append(p.buf, '.')
	for {
		if c, err = p.next(); err != nil {
			return "", "", false, err
		}
		if c == '\n' {
			return "", "", false, errors.New("unterminated subsection name")
		}
		if c == '"' {
			break
		}
		// A backslash keeps the next character, whatever it is, and is
		// itself dropped.
		if c == '\\' {
			if c, err = p.next(); err != nil {
				return "", "", false, err
			}
			if c == '\n' {
				return "", "", false, errors.New("unterminated subsection name")
			}
		}
		p.buf = append(p.buf, c)
	}
	if c, err = p.next(); err != nil {
		return "", "", false, err
	}
	if c != ']' {
		return "", "", false, errors.New("missing ] after subsection name")
	}
	return splitSection(string(p.buf))
}

// splitSection splits a full section name at its first dot, as C Git's
// key lookups do.
func splitSection(full string) (section, subsection string, hasSub bool, err error) {
	if full == "" {
		return "", "", false, errors.New("empty section name")
	}
	section, subsection, hasSub = strings.Cut(full, ".")
	return section, subsection, hasSub, nil
}

// variable parses a variable line whose first character, first, has
// been read.
func (p *parser) variable(first byte, e *entry) error {
	p.buf = append(p.buf[:0], lower(first))
	var c byte
	var err error
	for {
		if c, err = p.next(); err != nil {
			return err
		}
		if p.eof || !isKeyChar(c) {
			break
		}
		p.buf = append(p.buf, lower(c))
	}
	e.key = string(p.buf)
	for c == ' ' || c == '\t' {
		if c, err = p.next(); err != nil {
			return err
		}
	}
	if c == '\n' {
		e.noValue = true
		return nil
	}
	if c != '=' {
		return fmt.Errorf("invalid character %q in variable name", c)
	}
	return p.value(e)
}

// value parses the value after "=" up to the end of its (possibly
// continued) line: surrounding whitespace is trimmed, whitespace inside
// is kept (each blank as one space), double quotes protect whitespace and comment characters, and
// backslash escapes \" \\ \n \t \b and a backslash-newline continuation
// are understood. Any other escape is an error.
func (p *parser) value(e *entry) error {
	p.buf = p.buf[:0]
	quote, comment := false, false
	trim := -1 // length to cut back to if only whitespace follows
	for {
		c, err := p.next()
		if err != nil {
			return err
		}
		if c == '\n' {
			if quote {
				return errors.New("unterminated quoted value")
			}
			if trim >= 0 {
				p.buf = p.buf[:trim]
			}
			e.value = string(p.buf)
			return nil
		}
		if comment {
			continue
		}
		if isSpace(c) && !quote {
			if trim < 0 {
				trim = len(p.buf)
			}
			// C Git keeps inner whitespace as single spaces, one
			// per character.
			if len(p.buf) > 0 {
				p.buf = append(p.buf, ' ')
			}
			continue
		}
		if !quote && (c == '#' || c == ';') {
			comment = true
			continue
		}
		trim = -1
		switch c {
		case '\\':
			if c, err = p.next(); err != nil {
				return err
			}
			switch c {
			case '\n':
				continue
			case 't':
				c = '\t'
			case 'b':
				c = '\b'
			case 'n':
				c = '\n'
			case '\\', '"':
			default:
				return fmt.Errorf("invalid escape \\%c in value", c)
			}
			p.buf = append(p.buf, c)
		case '"':
			quote = !quote
		default:
			p.buf = append(p.buf, c)
		}
	}
}

// match reports whether e is the variable section.subsection.key; section
// and key must already be lower-case. An empty subsection matches only
// variables of sections without one.
func (e *entry) match(section, subsection, key string) bool {
	return e.key == key && e.section == section &&
		e.subsection == subsection && e.hasSub == (subsection != "")
}

func (c *Config) find(section, subsection, key string) *entry {
	section, key = strings.ToLower(section), strings.ToLower(key)
	for i := len(c.entries) - 1; i >= 0; i-- {
		if c.entries[i].match(section, subsection, key) {
			return &c.entries[i]
		}
	}
	return nil
}

// Get returns the last value of section.subsection.key and whether the
// variable is set at all; subsection "" means a section without one. A
// variable written without "=" has the value "".
func (c *Config) Get(section, subsection, key string) (string, bool) {
	if e := c.find(section, subsection, key); e != nil {
		return e.value, true
	}
	return "", false
}

// GetAll returns every value of a multi-valued variable in file order,
// nil if it is not set.
func (c *Config) GetAll(section, subsection, key string) []string {
	section, key = strings.ToLower(section), strings.ToLower(key)
	var vals []string
	for i := range c.entries {
		if c.entries[i].match(section, subsection, key) {
			vals = append(vals, c.entries[i].value)
		}
	}
	return vals
}

// Keys returns the lower-cased names of the variables set in
// section.subsection, each once, in order of first appearance.
func (c *Config) Keys(section, subsection string) []string {
	section = strings.ToLower(section)
	var keys []string
	seen := make(map[string]bool)
	for i := range c.entries {
		e := &c.entries[i]
		if e.section == section && e.subsection == subsection && e.hasSub == (subsection != "") && !seen[e.key] {
			seen[e.key] = true
			keys = append(keys, e.key)
		}
	}
	return keys
}

// Subsections returns the names of the non-empty subsections of section
// that hold at least one variable, each once, in order of first
// appearance (for example the remote names of "remote" sections).
func (c *Config) Subsections(section string) []string {
	section = strings.ToLower(section)
	var subs []string
	seen := make(map[string]bool)
	for i := range c.entries {
		e := &c.entries[i]
		if e.section == section && e.subsection != "" && !seen[e.subsection] {
			seen[e.subsection] = true
			subs = append(subs, e.subsection)
		}
	}
	return subs
}

// Bool returns the boolean value of a variable, def if it is not set.
// It accepts C Git's spellings: a variable without "=" is true, an empty
// value is false, "true", "yes", "on" and "false", "no", "off" in any
// case, and integers (non-zero is true). Anything else is an error.
func (c *Config) Bool(section, subsection, key string, def bool) (bool, error) {
	e := c.find(section, subsection, key)
	if e == nil {
		return def, nil
	}
	if e.noValue {
		return true, nil
	}
	if b, ok := ParseBool(e.value); ok {
		return b, nil
	}
	return false, fmt.Errorf("config: bad boolean value %q for %s", e.value, varName(section, subsection, key))
}

// ParseBool parses a boolean value as Bool does, for a value that was
// given with "=". It reports false if v is not a boolean.
func ParseBool(v string) (value, ok bool) {
	switch strings.ToLower(v) {
	case "":
		return false, true
	case "true", "yes", "on":
		return true, true
	case "false", "no", "off":
		return false, true
	}
	// C Git falls back to its int parser, whose range is a C int.
	n, err := ParseInt(v)
	if err != nil || n < -(1<<31-1) || n > 1<<31-1 {
		return false, false
	}
	return n != 0, true
}

// Int returns the integer value of a variable, def if it is not set.
// Values are parsed by ParseInt. A variable without a value, or with a
// value that is not an integer or overflows int64, is an error.
func (c *Config) Int(section, subsection, key string, def int64) (int64, error) {
	e := c.find(section, subsection, key)
	if e == nil {
		return def, nil
	}
	if e.noValue {
		return 0, fmt.Errorf("config: missing value for %s", varName(section, subsection, key))
	}
	n, err := ParseInt(e.value)
	if err != nil {
		return 0, fmt.Errorf("%w for %s", err, varName(section, subsection, key))
	}
	return n, nil
}

func varName(section, subsection, key string) string {
	if subsection != "" {
		return strings.ToLower(section) + "." + subsection + "." + strings.ToLower(key)
	}
	return strings.ToLower(section) + "." + strings.ToLower(key)
}

// ParseInt parses an integer the way C Git's config does (strtoimax with
// base 0): optional leading whitespace and sign, then decimal digits,
// octal digits after a leading 0, or hexadecimal digits after 0x; then
// optionally one unit suffix k, m or g (any case) multiplying by 1024,
// 1024² or 1024³. Nothing may follow.
func ParseInt(v string) (int64, error) {
	s := v
	for len(s) > 0 && isCSpace(s[0]) {
		s = s[1:]
	}
	neg := false
	if len(s) > 0 && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	base := uint64(10)
	switch {
	case len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') && digitVal(s[2]) < 16:
		base, s = 16, s[2:]
	case len(s) > 0 && s[0] == '0':
		base = 8
	}
	var mag uint64
	digits := 0
	overflow := false
	for ; digits < len(s); digits++ {
		d := digitVal(s[digits])
		if d >= base {
			break
		}
		if mag > (1<<64-1-d)/base {
			overflow = true
		} else {
			mag = mag*base + d
		}
	}
	if digits == 0 {
		return 0, fmt.Errorf("config: bad numeric value %q", v)
	}
	var factor uint64
	switch strings.ToLower(s[digits:]) {
	case "":
		factor = 1
	case "k":
		factor = 1 << 10
	case "m":
		factor = 1 << 20
	case "g":
		factor = 1 << 30
	default:
		return 0, fmt.Errorf("config: bad numeric value %q", v)
	}
	// C Git bounds negative values by -max, not by the type's minimum.
	if overflow || mag > (1<<63-1)/factor {
		return 0, fmt.Errorf("config: numeric value %q out of range", v)
	}
	mag *= factor
	if neg {
		return int64(-mag), nil
	}
	return int64(mag), nil
}

func digitVal(c byte) uint64 {
	switch {
	case '0' <= c && c <= '9':
		return uint64(c - '0')
	case 'a' <= c && c <= 'f':
		return uint64(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return uint64(c-'A') + 10
	}
	return 99
}
