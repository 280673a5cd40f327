package object

import (
	"bytes"
	"fmt"
)

// Signature is an identity with a time stamp, as commits carry it in their
// author and committer headers and tags in their tagger header:
// "Name <email> 1234567890 +0100" (git-commit-tree(1), "DATE FORMATS",
// Git internal format).
//
// Name, Email and Raw alias the bytes the signature was parsed from; the
// caller must not modify those bytes while it uses the signature.
type Signature struct {
	// Name is the text before " <", without trailing blanks.
	Name []byte
	// Email is the text between '<' and '>'.
	Email []byte
	// When is the time in seconds since the Unix epoch, always in
	// [0, 2^63).
	When int64
	// TZ is the time zone offset in minutes east of UTC, as written
	// ("+0130" is 90); the minutes are not range-checked, as Git does not
	// check them either, so |TZ| <= 99*60+99.
	TZ int
	// Raw is the whole identity line without the header name and the
	// newline.
	Raw []byte
}

// ParseSignature parses one identity line without its header name and
// newline: "Name <email> 1234567890 +0100". It applies the rules C Git's
// fsck applies to identities (fsck.c, fsck_ident): a name that does not
// start with '<' and has no '>', a space before '<', an email without '<'
// or '>', one space after '>', then optionally more blanks, a decimal
// time without leading zeros that fits a signed 64-bit integer, one space
// and a time zone of a sign and four digits ending the line. The error
// names the first rule broken.
func ParseSignature(b []byte) (Signature, error) {
	s, id := parseIdent(b)
	if id != 0 {
		return s, fmt.Errorf("object: %s", id.describe())
	}
	return s, nil
}

// parseIdent is ParseSignature returning the fsck message id of the
// problem found (0 for none) instead of an error, so that checks do not
// allocate.
func parseIdent(b []byte) (Signature, MsgID) {
	s := Signature{Raw: b}
	if len(b) > 0 && b[0] == '<' {
		return s, MsgMissingNameBeforeEmail
	}
	lt := bytes.IndexAny(b, "<>")
	if lt < 0 {
		return s, MsgMissingEmail
	}
	if b[lt] == '>' {
		return s, MsgBadName
	}
	if b[lt-1] != ' ' {
		return s, MsgMissingSpaceBeforeEmail
	}
	gt := bytes.IndexAny(b[lt+1:], "<>")
	if gt < 0 || b[lt+1+gt] != '>' {
		return s, MsgBadEmail
	}
	gt += lt + 1
	s.Name = trimBlanks(b[:lt-1])
	s.Email = b[lt+1 : gt]
	p := gt + 1
	if p >= len(b) || b[p] != ' ' {
		return s, MsgMissingSpaceBeforeDate
	}
	p++
	// Git has always tolerated extra blanks before the date.
	for p < len(b) && (b[p] == ' ' || b[p] == '\t') {
		p++
	}
	if p >= len(b) || !isDigit(b[p]) {
		return s, MsgBadDate
	}
	if b[p] == '0' && (p+1 >= len(b) || b[p+1] != ' ') {
		return s, MsgZeroPaddedDate
	}
	var when uint64
	overflow := false
	for ; p < len(b) && isDigit(b[p]); p++ {
		if when > (1<<63-1)/10 {
			overflow = true
		}
		when = when*10 + uint64(b[p]-'0')
	}
	// C Git keeps time in an unsigned 64-bit integer but hands it to the
	// system as a signed time_t, so 2^63 and above overflow.
	if overflow || when >= 1<<63 {
		return s, MsgBadDateOverflow
	}
	s.When = int64(when)
	if p >= len(b) || b[p] != ' ' {
		return s, MsgBadDate
	}
	p++
	if len(b)-p != 5 || (b[p] != '+' && b[p] != '-') ||
		!isDigit(b[p+1]) || !isDigit(b[p+2]) || !isDigit(b[p+3]) || !isDigit(b[p+4]) {
		return s, MsgBadTimezone
	}
	s.TZ = tzMinutes(b[p:])
	return s, 0
}

// parseIdentLenient extracts what it can from an identity line, for
// reading objects that C Git reads without complaint even though fsck
// would reject them. Fields it cannot find are left zero.
func parseIdentLenient(b []byte) Signature {
	if s, id := parseIdent(b); id == 0 {
		return s
	}
	s := Signature{Raw: b}
	lt := bytes.IndexByte(b, '<')
	if lt < 0 {
		s.Name = trimBlanks(b)
		return s
	}
	s.Name = trimBlanks(b[:lt])
	gt := bytes.IndexByte(b[lt+1:], '>')
	if gt < 0 {
		s.Email = b[lt+1:]
		return s
	}
	gt += lt + 1
	s.Email = b[lt+1 : gt]
	s.When, s.TZ = parseDateLenient(b[gt+1:])
	return s
}

// parseDateLenient parses "[blanks]<digits>[blanks][+-]hhmm" as well as it
// can; an unparsable or overflowing time is 0, as C Git's readers make it.
func parseDateLenient(b []byte) (when int64, tz int) {
	p := 0
	for p < len(b) && (b[p] == ' ' || b[p] == '\t') {
		p++
	}
	var v uint64
	start := p
	for ; p < len(b) && isDigit(b[p]); p++ {
		if v > (1<<63-1)/10 {
			return 0, 0
		}
		v = v*10 + uint64(b[p]-'0')
	}
	if p == start || v >= 1<<63 {
		return 0, 0
	}
	when = int64(v)
	for p < len(b) && (b[p] == ' ' || b[p] == '\t') {
		p++
	}
	if len(b)-p >= 5 && (b[p] == '+' || b[p] == '-') &&
		isDigit(b[p+1]) && isDigit(b[p+2]) && isDigit(b[p+3]) && isDigit(b[p+4]) {
		tz = tzMinutes(b[p : p+5])
	}
	return when, tz
}

// tzMinutes converts a checked "+hhmm" or "-hhmm" to minutes east of UTC.
func tzMinutes(b []byte) int {
	m := int(b[1]-'0')*600 + int(b[2]-'0')*60 + int(b[3]-'0')*10 + int(b[4]-'0')
	if b[0] == '-' {
		return -m
	}
	return m
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func trimBlanks(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}
