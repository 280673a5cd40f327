package object

import (
	"strings"
	"testing"
)

func TestParseSignature(t *testing.T) {
	for _, tc := range []struct {
		in          string
		name, email string
		when        int64
		tz          int
	}{
		{"A U Thor <author@example.com> 1700000000 +0100", "A U Thor", "author@example.com", 1700000000, 60},
		{"A <a@b> 0 -0130", "A", "a@b", 0, -90},
		{" <> 1 +0000", "", "", 1, 0},
		{"Name  <e> \t 5 +9999", "Name", "e", 5, 99*60 + 99},
		{"N <e> 9223372036854775807 +0000", "N", "e", 1<<63 - 1, 0},
		{"Ünïcode Näme <ü@ö> 12 +0000", "Ünïcode Näme", "ü@ö", 12, 0},
	} {
		s, err := ParseSignature([]byte(tc.in))
		if err != nil {
			t.Errorf("ParseSignature(%q): %v", tc.in, err)
			continue
		}
		if string(s.Name) != tc.name || string(s.Email) != tc.email || s.When != tc.when || s.TZ != tc.tz || string(s.Raw) != tc.in {
			t.Errorf("ParseSignature(%q) = %q %q %d %d %q; want %q %q %d %d", tc.in,
				s.Name, s.Email, s.When, s.TZ, s.Raw, tc.name, tc.email, tc.when, tc.tz)
		}
	}
}

func TestParseSignatureMalformed(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want MsgID
	}{
		{"", MsgMissingEmail},
		{"<a@b> 1 +0000", MsgMissingNameBeforeEmail},
		{"A> <a@b> 1 +0000", MsgBadName},
		{"A a@b 1 +0000", MsgMissingEmail},
		{"A<a@b> 1 +0000", MsgMissingSpaceBeforeEmail},
		{"A <a<b> 1 +0000", MsgBadEmail},
		{"A <a@b", MsgBadEmail},
		{"A <a@b>1 +0000", MsgMissingSpaceBeforeDate},
		{"A <a@b>", MsgMissingSpaceBeforeDate},
		{"A <a@b> ", MsgBadDate},
		{"A <a@b> -1 +0000", MsgBadDate},
		{"A <a@b> 1", MsgBadDate},
		{"A <a@b> 1\t+0000", MsgBadDate},
		{"A <a@b> 01 +0000", MsgZeroPaddedDate},
		{"A <a@b> 0", MsgZeroPaddedDate},
		{"A <a@b> 9223372036854775808 +0000", MsgBadDateOverflow},
		{"A <a@b> " + strings.Repeat("9", 40) + " +0000", MsgBadDateOverflow},
		{"A <a@b> 1 +000", MsgBadTimezone},
		{"A <a@b> 1 +00000", MsgBadTimezone},
		{"A <a@b> 1 *0000", MsgBadTimezone},
		{"A <a@b> 1 +0000\n", MsgBadTimezone},
		{"A <a@b> 1 ", MsgBadTimezone},
	} {
		_, id := parseIdent([]byte(tc.in))
		if id != tc.want {
			t.Errorf("parseIdent(%q): got %v; want %v", tc.in, id, tc.want)
		}
		if _, err := ParseSignature([]byte(tc.in)); err == nil {
			t.Errorf("ParseSignature(%q): got nil error", tc.in)
		}
	}
}

func TestParseIdentLenient(t *testing.T) {
	for _, tc := range []struct {
		in          string
		name, email string
		when        int64
		tz          int
	}{
		{"A <a@b> 0123 +0100", "A", "a@b", 123, 60},
		{"A<a@b>1 +0100", "A", "a@b", 1, 60},
		{"no email at all", "no email at all", "", 0, 0},
		{"A <unclosed", "A", "unclosed", 0, 0},
		{"A <a@b> 99999999999999999999 +0000", "A", "a@b", 0, 0},
		{"A <a@b> garbage", "A", "a@b", 0, 0},
		{"A <a@b> 12 +01", "A", "a@b", 12, 0},
	} {
		s := parseIdentLenient([]byte(tc.in))
		if string(s.Name) != tc.name || string(s.Email) != tc.email || s.When != tc.when || s.TZ != tc.tz {
			t.Errorf("parseIdentLenient(%q) = %q %q %d %d; want %q %q %d %d", tc.in,
				s.Name, s.Email, s.When, s.TZ, tc.name, tc.email, tc.when, tc.tz)
		}
	}
}
