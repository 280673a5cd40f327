package webhook

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
)

// FuzzParse parses templates of every kind and expands those that parse
// with the fuzzed value in every placeholder: an expansion is either too
// long or of the template's shape (a URL of the same scheme and host, a
// valid JSON document, form fields), whatever the value; the template
// keeps its source.
func FuzzParse(f *testing.F) {
	for _, s := range []struct {
		kind       uint8
		src, value string
	}{
		{0, "https://ci.example.com/job/${repo}/build?branch=${branch}&sha=${new}", "feat&x=1"},
		{0, "http://127.0.0.1:8080/hook/${ref}#top", "../../admin"},
		{0, "https://h/x?q=${subject}", "a#b?c=d&e"},
		{0, "https://${repo}/x", "evil.example.com"},
		{0, "https://h$$/${ref}", ".."},
		{1, `{"text": "${pusher} pushed ${commits} commits to ${ref}: ${subject}"}`, "\"}, \"admin\": true, {\""},
		{1, `{"ref": ${ref}, "n": ${commits}, "s": "\\${tag}"}`, "\u2028\x00\\"},
		{1, `{"a": "\${ref}"}`, "x"},
		{2, "ref=${ref}&sha=${new}&token=abc", "x&token=evil"},
		{3, "${pusher} pushed to ${branch}\n${subject}\n", "line\r\nX-Evil: 1"},
		{3, "${", ""},
		{3, "${nope}", ""},
	} {
		f.Add(s.kind, s.src, s.value)
	}
	f.Fuzz(func(t *testing.T, kind uint8, src, value string) {
		k := Kind(kind % 4)
		tmpl, err := Parse(k, src)
		if err != nil {
			return
		}
		if tmpl.String() != src || tmpl.Kind() != k {
			t.Fatalf("template %q of kind %v reads %q of kind %v", src, k, tmpl.String(), tmpl.Kind())
		}
		base, err := tmpl.Expand(&sample)
		if err != nil {
			t.Fatalf("%q does not expand sample values: %v", src, err)
		}
		v := &Values{Repo: value, Ref: "refs/heads/" + value, Old: value, New: value, Pusher: value, Action: value,
			Commits: len(value), Subject: value, Author: value, AuthorEmail: value}
		got, err := tmpl.Expand(v)
		if errors.Is(err, ErrTooLong) {
			return
		}
		if err != nil {
			t.Fatalf("%q with %q: %v", src, value, err)
		}
		switch k {
		case URL:
			u, err := url.Parse(got)
			b, _ := url.Parse(base)
			if err != nil || u.Scheme != b.Scheme || u.Host != b.Host || u.User != nil || u.Fragment != b.Fragment {
				t.Fatalf("%q with %q: %q (%v); want the scheme, host and fragment of %q", src, value, got, err, base)
			}
		case JSON:
			if !json.Valid([]byte(got)) {
				t.Fatalf("%q with %q: %q is not JSON", src, value, got)
			}
		case Form:
			// Escaped values add neither a field nor a name.
			_, err := url.ParseQuery(got)
			if err != nil || strings.Count(got, "&") != strings.Count(base, "&") || strings.Count(got, "=") != strings.Count(base, "=") {
				t.Fatalf("%q with %q: %q (%v); want the fields of %q", src, value, got, err, base)
			}
		}
	})
}
