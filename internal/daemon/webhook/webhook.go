// Package webhook parses and expands the templates of general-purpose
// HTTP notifications: the URL and body of a notify "url" target, with
// placeholders such as ${ref} that stand for what a push did to one
// reference. Each value is escaped for the place it is expanded in: a
// URL's path segment or query component (percent-encoding), a JSON
// string or value, a form field (application/x-www-form-urlencoded) or
// plain text, so that values from a push (reference names, commit
// subjects) can change neither the URL's scheme and host nor the
// body's structure, and never add a header.
//
// gotd.conf's parser checks templates with Parse; the notify process
// expands them with Expand for each reference update. The package
// imports nothing of gotd's, so that both may use it.
package webhook

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Kind is where a template is expanded: a URL, or a body of one of the
// kinds gotd.conf names (BodyKind).
type Kind int

const (
	URL  Kind = iota // the request's URL
	JSON             // a JSON document: application/json
	Form             // form fields: application/x-www-form-urlencoded
	Text             // plain text: text/plain; charset=utf-8
)

var kindNames = []string{URL: "url", JSON: "json", Form: "form", Text: "text"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// BodyKind returns the body kind gotd.conf names "json", "form" or
// "text".
func BodyKind(name string) (Kind, bool) {
	for k, n := range kindNames {
		if n == name && Kind(k) != URL {
			return Kind(k), true
		}
	}
	return 0, false
}

// ContentType returns the Content-Type of a body of kind k ("" for URL).
func (k Kind) ContentType() string {
	switch k {
	case JSON:
		return "application/json"
	case Form:
		return "application/x-www-form-urlencoded"
	case Text:
		return "text/plain; charset=utf-8"
	}
	return ""
}

// Bounds of templates and of what they expand to. A value longer than
// MaxValue bytes is cut (at a character boundary) before it is escaped;
// an expansion longer than its bound is an error, never a truncated
// request.
const (
	MaxTemplate     = 8 << 10  // a template's source, in bytes
	MaxPlaceholders = 64       // placeholders in one template
	MaxValue        = 1 << 10  // one value, before escaping
	MaxExpandedURL  = 8 << 10  // an expanded URL
	MaxExpandedBody = 64 << 10 // an expanded body
	maxName         = 32       // a placeholder's name
)

// Placeholders are the names a template may use, as ${name}, in the
// order gotd.conf(5) lists them.
var Placeholders = []string{"repo", "ref", "branch", "tag", "old", "new", "pusher", "action", "commits",
	"subject", "author", "author_email"}

// Values are what the placeholders of a template stand for: one
// reference a push moved. Strings may hold anything (they come from the
// push); Expand escapes them.
type Values struct {
	Repo   string // the repository's name in gotd.conf
	Ref    string // the full reference name
	Old    string // the old id; "" for a created reference
	New    string // the new id; "" for a deleted reference
	Pusher string // the user who pushed
	// Action is created, updated (a fast-forward), forced (not a
	// fast-forward), deleted, or moved (gotd did not find out which).
	Action string
	// Commits counts the new commits; Subject, Author and AuthorEmail
	// are the first line of the newest one's message and its author's
	// name and address (an annotated tag's and its tagger's for a tag).
	Commits                      int
	Subject, Author, AuthorEmail string
}

// value returns the value of placeholder name, and whether it is a
// number (written without quotes where a JSON value stands).
func (v *Values) value(name string) (string, bool) {
	switch name {
	case "repo":
		return v.Repo, false
	case "ref":
		return v.Ref, false
	case "branch":
		b, _ := strings.CutPrefix(v.Ref, "refs/heads/")
		if b == v.Ref {
			b = ""
		}
		return b, false
	case "tag":
		t, _ := strings.CutPrefix(v.Ref, "refs/tags/")
		if t == v.Ref {
			t = ""
		}
		return t, false
	case "old":
		return orZero(v.Old, v.New), false
	case "new":
		return orZero(v.New, v.Old), false
	case "pusher":
		return v.Pusher, false
	case "action":
		return v.Action, false
	case "commits":
		return strconv.Itoa(v.Commits), true
	case "subject":
		return v.Subject, false
	case "author":
		return v.Author, false
	case "author_email":
		return v.AuthorEmail, false
	}
	return "", false
}

// orZero returns id, or, when it is empty, as many zeros as other has
// digits (40 if other is empty too): the "no object" id of Git's hooks.
func orZero(id, other string) string {
	if id != "" {
		return id
	}
	return strings.Repeat("0", cmp.Or(len(other), 40))
}

// escaping says how a placeholder's value is written.
type escaping int

const (
	escPath       escaping = iota // a URL path segment: percent-encoded
	escQuery                      // a URL query component: percent-encoded
	escJSONString                 // inside a JSON string: its content
	escJSONValue                  // where a JSON value stands: a string, or a number
	escForm                       // a form field's name or value
	escText                       // plain text
)

// part is literal text (name "") or a placeholder.
type part struct {
	lit  string
	name string
	esc  escaping
}

// Template is a parsed template. It is immutable and safe for
// concurrent use.
type Template struct {
	kind  Kind
	src   string
	parts []part
	// origin is a URL template's scheme and host
	// ("https://ci.example.com:8443"), which no expansion changes.
	origin string
}

// Kind returns where t is expanded.
func (t *Template) Kind() Kind { return t.kind }

// Placeholders returns how many placeholders t has.
func (t *Template) Placeholders() int {
	n := 0
	for _, p := range t.parts {
		if p.name != "" {
			n++
		}
	}
	return n
}

// String returns t's source.
func (t *Template) String() string { return t.src }

// Parse parses src as a template of kind k. Placeholders are written
// ${name}, with a name of Placeholders; "$$" is a literal "$", and any
// other "$" is an error. A URL template is an http:// or https:// URL
// whose placeholders stand in its path or its query, never in its
// scheme, host or fragment. A JSON template must be a JSON document
// (checked with placeholders expanded); its placeholders may stand
// inside a string, whose content they become, or where a value stands,
// which they become (a string; ${commits} a number). A form template
// must parse as form fields. Errors name the problem and quote at most
// a short part of src.
func Parse(k Kind, src string) (*Template, error) {
	if k < URL || k > Text {
		return nil, fmt.Errorf("webhook: unknown template kind %d", k)
	}
	if len(src) > MaxTemplate {
		return nil, fmt.Errorf("%s template longer than %d bytes", k, MaxTemplate)
	}
	if !utf8.ValidString(src) || strings.ContainsRune(src, 0) {
		return nil, fmt.Errorf("%s template is not UTF-8 text", k)
	}
	t := &Template{kind: k, src: src}
	if err := t.split(); err != nil {
		return nil, err
	}
	var err error
	switch k {
	case URL:
		err = t.placeURL()
	case JSON:
		err = t.placeJSON()
	case Form:
		t.placeAll(escForm)
	case Text:
		t.placeAll(escText)
	}
	if err != nil {
		return nil, err
	}
	return t, t.check()
}

// split cuts t.src into literal text and placeholders.
func (t *Template) split() error {
	var lit strings.Builder
	n := 0
	rest := t.src
	for {
		i := strings.IndexByte(rest, '$')
		if i < 0 {
			lit.WriteString(rest)
			break
		}
		lit.WriteString(rest[:i])
		rest = rest[i+1:]
		switch {
		case strings.HasPrefix(rest, "$"):
			lit.WriteByte('$')
			rest = rest[1:]
			continue
		case !strings.HasPrefix(rest, "{"):
			return fmt.Errorf("%s template: a \"$\" must begin a placeholder ${name} or be written \"$$\"", t.kind)
		}
		end := strings.IndexByte(rest, '}')
		if end < 0 || end > maxName+1 {
			return fmt.Errorf("%s template: unterminated placeholder (${name})", t.kind)
		}
		name := rest[1:end]
		if !slices.Contains(Placeholders, name) {
			return fmt.Errorf("%s template: unknown placeholder ${%s} (known: %s)", t.kind, name, strings.Join(Placeholders, ", "))
		}
		if n++; n > MaxPlaceholders {
			return fmt.Errorf("%s template: more than %d placeholders", t.kind, MaxPlaceholders)
		}
		if lit.Len() > 0 {
			t.parts = append(t.parts, part{lit: lit.String()})
			lit.Reset()
		}
		t.parts = append(t.parts, part{name: name})
		rest = rest[end+1:]
	}
	if lit.Len() > 0 {
		t.parts = append(t.parts, part{lit: lit.String()})
	}
	return nil
}

func (t *Template) placeAll(e escaping) {
	for i := range t.parts {
		t.parts[i].esc = e
	}
}

// placeURL finds, for each placeholder of a URL template, whether it
// stands in the path or the query, and the URL's origin.
func (t *Template) placeURL() error {
	if len(t.parts) == 0 || t.parts[0].name != "" {
		return errors.New("url template: not an http:// or https:// URL")
	}
	scheme, _, ok := strings.Cut(t.parts[0].lit, "://")
	if !ok || scheme != "http" && scheme != "https" {
		return errors.New("url template: not an http:// or https:// URL")
	}
	const (
		inHost = iota
		inPath
		inQuery
		inFragment
	)
	state := inHost
	for i := range t.parts {
		p := &t.parts[i]
		if p.name == "" {
			lit := p.lit
			if i == 0 {
				lit = lit[len(scheme)+len("://"):]
			}
			for j, c := range []byte(lit) {
				switch {
				case c == '#':
					state = inFragment
				case c == '?' && state < inQuery:
					state = inQuery
				case c == '/' && state == inHost:
					state = inPath
				}
				if i == 0 && state == inHost {
					t.origin = scheme + "://" + lit[:j+1]
				}
			}
			continue
		}
		switch state {
		case inHost:
			return errors.New("url template: placeholder in the URL's host")
		case inPath:
			p.esc = escPath
		case inQuery:
			p.esc = escQuery
		case inFragment:
			return errors.New("url template: placeholder in the URL's fragment, which is not sent")
		}
	}
	if t.origin == "" || strings.HasSuffix(t.origin, "://") {
		return errors.New("url template: no host")
	}
	return nil
}

// placeJSON finds, for each placeholder of a JSON template, whether it
// stands inside a string or where a value stands.
func (t *Template) placeJSON() error {
	inString, escaped := false, false
	for i := range t.parts {
		p := &t.parts[i]
		if p.name == "" {
			for _, c := range []byte(p.lit) {
				switch {
				case escaped:
					escaped = false
				case inString && c == '\\':
					escaped = true
				case c == '"':
					inString = !inString
				}
			}
			continue
		}
		switch {
		case escaped:
			return fmt.Errorf("json template: placeholder ${%s} after a backslash", p.name)
		case inString:
			p.esc = escJSONString
		default:
			p.esc = escJSONValue
		}
	}
	return nil
}

// sample are values that check a template: any values give an
// expansion of the same structure.
var sample = Values{Repo: "r", Ref: "refs/heads/b", Old: strings.Repeat("1", 40), New: strings.Repeat("2", 40),
	Pusher: "u", Action: "updated", Commits: 1, Subject: "s", Author: "a", AuthorEmail: "a@h"}

// check expands t with sample values and checks the result's shape.
func (t *Template) check() error {
	s, err := t.Expand(&sample)
	if err != nil {
		return err
	}
	switch t.kind {
	case JSON:
		if !json.Valid([]byte(s)) {
			return errors.New("json template: not a JSON document")
		}
	case Form:
		if _, err := url.ParseQuery(s); err != nil {
			return errors.New("form template: not form fields (name=value&...)")
		}
	}
	return nil
}

// ErrTooLong is Expand's error when the expansion exceeds its bound
// (MaxExpandedURL or MaxExpandedBody).
var ErrTooLong = errors.New("expansion too long")

// Expand returns t with its placeholders replaced by v's values, each
// cut to MaxValue bytes, made valid UTF-8 and escaped for its place.
// It fails with ErrTooLong past the kind's bound, and, for a URL, if
// the expansion does not parse as a URL of t's scheme and host (which
// escaping prevents).
func (t *Template) Expand(v *Values) (string, error) {
	limit := MaxExpandedBody
	if t.kind == URL {
		limit = MaxExpandedURL
	}
	var b strings.Builder
	for _, p := range t.parts {
		if p.name == "" {
			b.WriteString(p.lit)
		} else {
			s, number := v.value(p.name)
			write(&b, p.esc, clip(s), number)
		}
		if b.Len() > limit {
			return "", fmt.Errorf("%s template: %w (more than %d bytes)", t.kind, ErrTooLong, limit)
		}
	}
	s := b.String()
	if t.kind == URL {
		u, err := url.Parse(s)
		if err != nil || u.Scheme+"://"+u.Host != t.origin || u.User != nil {
			return "", errors.New("url template: the expansion is not a URL of the configured host")
		}
	}
	return s, nil
}

// clip cuts s to MaxValue bytes at a character boundary and replaces
// invalid UTF-8.
func clip(s string) string {
	if len(s) > MaxValue {
		n := MaxValue
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n]
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// write appends s to b escaped as e says.
func write(b *strings.Builder, e escaping, s string, number bool) {
	switch e {
	case escPath:
		// Every byte but unreserved characters (RFC 3986, 2.3) is
		// percent-encoded: "/", "?" and "#" cannot end the segment.
		// A value of dots alone is encoded too, so that it cannot be
		// a "." or ".." segment (RFC 3986, 5.2.4).
		if s != "" && strings.Trim(s, ".") == "" {
			b.WriteString(strings.Repeat("%2E", len(s)))
			return
		}
		b.WriteString(strings.ReplaceAll(url.QueryEscape(s), "+", "%20"))
	case escQuery:
		b.WriteString(strings.ReplaceAll(url.QueryEscape(s), "+", "%20"))
	case escForm:
		b.WriteString(url.QueryEscape(s))
	case escJSONValue:
		if number {
			b.WriteString(s)
			return
		}
		b.WriteByte('"')
		writeJSON(b, s)
		b.WriteByte('"')
	case escJSONString:
		writeJSON(b, s)
	case escText:
		// No control characters: a value is one line of text.
		for _, r := range s {
			if r < 0x20 || r >= 0x7f && r < 0xa0 {
				r = utf8.RuneError
			}
			b.WriteRune(r)
		}
	}
}

// writeJSON appends s as the content of a JSON string (RFC 8259, 7).
func writeJSON(b *strings.Builder, s string) {
	const hex = "0123456789abcdef"
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f || r == '\u2028' || r == '\u2029':
			// U+2028 and U+2029 too: JavaScript strings cannot hold
			// them unescaped.
			b.WriteString(`\u`)
			b.WriteByte(hex[r>>12&0xf])
			b.WriteByte(hex[r>>8&0xf])
			b.WriteByte(hex[r>>4&0xf])
			b.WriteByte(hex[r&0xf])
		default:
			b.WriteRune(r)
		}
	}
}

// Methods are the HTTP methods a url target may use.
var Methods = []string{"GET", "POST", "PUT", "PATCH", "DELETE"}

// HasBody reports whether requests of method carry a body (then a
// target without a body template sends the JSON document).
func HasBody(method string) bool {
	return method == "POST" || method == "PUT" || method == "PATCH"
}

// CheckMethod checks a url target's method and whether it may have a
// body template.
func CheckMethod(method string, body bool) error {
	switch {
	case !slices.Contains(Methods, method):
		return fmt.Errorf("unknown HTTP method (%s)", strings.Join(Methods, ", "))
	case body && !HasBody(method):
		return fmt.Errorf("a %s request has no body", method)
	}
	return nil
}
