package webhook

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
)

// hostile are values a push may bring: reference names Git accepts
// and commit subjects, which may hold anything but a newline (and may
// hold one once a document was edited in the spool).
var hostile = []string{
	"",
	"plain",
	"feat&x=1",
	"a=b&c=d",
	"what?really",
	"path/../../etc",
	"..",
	".",
	"evil.example.com/x",
	"@evil.example.com",
	"x#frag",
	"100% sure+",
	`say "hi" \ bye`,
	"line\nX-Injected: 1\r\nHost: evil",
	"ünïcødé ☃ 漢字",
	"\u2028\u2029",
	"tab\there\x00nul\x7f\x1b[31m",
	"\xff\xfeinvalid utf-8",
	"${ref}$$",
	"}{][,:",
	strings.Repeat("x&", MaxValue),
}

func values(s string) *Values {
	return &Values{Repo: s, Ref: "refs/heads/" + s, Old: strings.Repeat("a", 40), New: strings.Repeat("b", 40),
		Pusher: s, Action: "forced", Commits: 3, Subject: s, Author: s, AuthorEmail: s}
}

// TestExpandURL expands hostile values in a URL's path and query: the
// scheme, host and query keys never change, and each value decodes
// back as it was given (cut to MaxValue, made valid UTF-8).
func TestExpandURL(t *testing.T) {
	tmpl, err := Parse(URL, "https://ci.example.com:8443/job/${repo}/build?branch=${branch}&sha=${new}&msg=${subject}#top")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range hostile {
		got, err := tmpl.Expand(values(s))
		if err != nil {
			t.Errorf("%.60q: %v", s, err)
			continue
		}
		u, err := url.Parse(got)
		if err != nil {
			t.Errorf("%q: %s does not parse: %v", s, got, err)
			continue
		}
		want := clip(s)
		if u.Scheme != "https" || u.Host != "ci.example.com:8443" || u.User != nil || u.Fragment != "top" {
			t.Errorf("%q: got %s; want the host, scheme and fragment of the template", s, got)
		}
		segs := strings.Split(u.EscapedPath(), "/")
		if len(segs) != 4 || segs[1] != "job" || segs[3] != "build" {
			t.Errorf("%q: got path %s; want /job/<repo>/build", s, u.EscapedPath())
		} else if repo, err := url.PathUnescape(segs[2]); err != nil || repo != want {
			t.Errorf("%q: got repo segment %q (%v); want %q", s, repo, err, want)
		}
		if segs[2] == "." || segs[2] == ".." {
			t.Errorf("%q: got a dot segment in %s", s, got)
		}
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			t.Errorf("%q: query %s: %v", s, u.RawQuery, err)
			continue
		}
		if len(q) != 3 || q.Get("branch") != want || q.Get("msg") != want || q.Get("sha") != strings.Repeat("b", 40) {
			t.Errorf("%q: got query %v; want branch and msg %q", s, q, want)
		}
		if strings.ContainsAny(got, " \r\n\x00") {
			t.Errorf("%q: got %q with spaces or control characters", s, got)
		}
	}
}

// TestExpandJSON expands hostile values inside JSON strings and where
// values stand: the document stays valid, its keys stay, and each value
// decodes back.
func TestExpandJSON(t *testing.T) {
	tmpl, err := Parse(JSON, `{"text": "${pusher} pushed to ${ref}: \"${subject}\"", "ref": ${ref}, "count": ${commits}, "list": [${author}, "x\\${tag}"]}`)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range hostile {
		got, err := tmpl.Expand(values(s))
		if err != nil {
			t.Errorf("%.60q: %v", s, err)
			continue
		}
		var doc struct {
			Text  string
			Ref   string
			Count int
			List  []string
		}
		dec := json.NewDecoder(strings.NewReader(got))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&doc); err != nil {
			t.Errorf("%q: %s: %v", s, got, err)
			continue
		}
		want := clip(s)
		if doc.Text != want+" pushed to "+clip("refs/heads/"+s)+": \""+want+"\"" || doc.Ref != clip("refs/heads/"+s) || doc.Count != 3 ||
			len(doc.List) != 2 || doc.List[0] != want || doc.List[1] != `x\` {
			t.Errorf("%.60q: got %.200v", s, doc)
		}
		if strings.ContainsAny(got, "\n\r\u2028\u2029") {
			t.Errorf("%q: got %q with raw line breaks", s, got)
		}
	}
}

// TestExpandForm expands hostile values in form fields: the fields stay
// as the template has them and each value decodes back.
func TestExpandForm(t *testing.T) {
	tmpl, err := Parse(Form, "token=abc&ref=${ref}&subject=${subject}&user=${pusher}")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range hostile {
		got, err := tmpl.Expand(values(s))
		if err != nil {
			t.Errorf("%.60q: %v", s, err)
			continue
		}
		q, err := url.ParseQuery(got)
		want := clip(s)
		if err != nil || len(q) != 4 || q.Get("token") != "abc" || q.Get("ref") != clip("refs/heads/"+s) ||
			q.Get("subject") != want || q.Get("user") != want {
			t.Errorf("%.60q: got %.200v (%v) from %.200s", s, q, err, got)
		}
	}
}

// TestExpandText expands hostile values in plain text: no control
// character gets in, so that a value stays on its line.
func TestExpandText(t *testing.T) {
	tmpl, err := Parse(Text, "${pusher} pushed ${commits} commits to ${branch}\nnewest: ${subject}\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range hostile {
		got, err := tmpl.Expand(values(s))
		if err != nil {
			t.Errorf("%.60q: %v", s, err)
			continue
		}
		if n := strings.Count(got, "\n"); n != 2 || strings.ContainsAny(got, "\r\x00\x1b\x7f") {
			t.Errorf("%q: got %q; want two lines without control characters", s, got)
		}
		if !strings.Contains(got, " pushed 3 commits to ") {
			t.Errorf("%q: got %q", s, got)
		}
	}
}

// TestPlaceholders checks every placeholder's value, the zero ids of a
// created and a deleted reference, and "$$".
func TestPlaceholders(t *testing.T) {
	v := &Values{Repo: "proj", Ref: "refs/tags/v1.0", New: strings.Repeat("c", 64), Pusher: "alice", Action: "created",
		Commits: 0, Subject: "Release", Author: "A U Thor", AuthorEmail: "author@example.com"}
	for _, tc := range []struct{ src, want string }{
		{"${repo}|${ref}|${branch}|${tag}|${pusher}|${action}|${commits}", "proj|refs/tags/v1.0||v1.0|alice|created|0"},
		{"${old}", strings.Repeat("0", 64)},
		{"${new}", strings.Repeat("c", 64)},
		{"${subject} by ${author} <${author_email}>", "Release by A U Thor <author@example.com>"},
		{"$$5 and $${ref}", "$5 and ${ref}"},
		{"", ""},
	} {
		tmpl, err := Parse(Text, tc.src)
		if err != nil {
			t.Errorf("%q: %v", tc.src, err)
			continue
		}
		if got, err := tmpl.Expand(v); err != nil || got != tc.want {
			t.Errorf("%q: got %q, %v; want %q", tc.src, got, err, tc.want)
		}
		if tmpl.String() != tc.src {
			t.Errorf("%q: String() = %q", tc.src, tmpl.String())
		}
	}
	b := &Values{Ref: "refs/heads/main", Old: strings.Repeat("d", 40)}
	if got, _ := mustParse(t, Text, "${branch} ${tag} ${new}").Expand(b); got != "main  "+strings.Repeat("0", 40) {
		t.Errorf("deleted branch: got %q", got)
	}
}

func mustParse(t *testing.T, k Kind, src string) *Template {
	t.Helper()
	tmpl, err := Parse(k, src)
	if err != nil {
		t.Fatalf("%q: %v", src, err)
	}
	return tmpl
}

// TestParseErrors lists templates refused, with a word of each error.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		kind      Kind
		src, want string
	}{
		{URL, "https://h/${nope}", "unknown placeholder ${nope}"},
		{URL, "https://h/${ref", "unterminated"},
		{URL, "https://h/${" + strings.Repeat("a", 40) + "}", "unterminated"},
		{URL, "https://h/$ref", `"$$"`},
		{URL, "https://h/a$", `"$$"`},
		{URL, "https://${repo}.example.com/x", "host"},
		{URL, "https://h${repo}/x", "host"},
		{URL, "https://h:${repo}/x", "host"},
		{URL, "https://${pusher}@h/x", "host"},
		{URL, "${repo}://h/x", "http:// or https://"},
		{URL, "ftp://h/${ref}", "http:// or https://"},
		{URL, "https://h/x#${ref}", "fragment"},
		{URL, "https:///x", "no host"},
		{URL, "https://h/" + strings.Repeat("${ref}", MaxPlaceholders+1), "placeholders"},
		{JSON, `{"a": "x"`, "not a JSON document"},
		{JSON, `{"a": "\${ref}"}`, "backslash"},
		{JSON, `{"a": x${ref}}`, "not a JSON document"},
		{JSON, `{"a": "${ref}}`, "not a JSON document"},
		{Form, "a=%zz&b=${ref}", "form fields"},
		{Text, strings.Repeat("x", MaxTemplate+1), "longer"},
		{Text, "\xff", "UTF-8"},
		{Text, "a\x00b", "UTF-8"},
	} {
		_, err := Parse(tc.kind, tc.src)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %q: got %v; want an error with %q", tc.kind, tc.src[:min(len(tc.src), 60)], err, tc.want)
		}
	}
}

// TestExpandBounds: an expansion past its bound is an error, not a cut
// request.
func TestExpandBounds(t *testing.T) {
	long := &Values{Subject: strings.Repeat("&", 10*MaxValue)}
	u := mustParse(t, URL, "https://h/x?"+strings.Repeat("s=${subject}&", 3))
	if got, err := u.Expand(long); !errors.Is(err, ErrTooLong) {
		t.Errorf("URL of %d bytes: %v; want ErrTooLong", len(got), err)
	}
	one := mustParse(t, URL, "https://h/x?s=${subject}")
	if got, err := one.Expand(long); err != nil || len(got) != len("https://h/x?s=")+3*MaxValue {
		t.Errorf("one value: %d bytes, %v; want the value cut to %d bytes before escaping", len(got), err, MaxValue)
	}
	b := mustParse(t, JSON, `["`+strings.Repeat("${subject}", MaxPlaceholders)+`"]`)
	ctl := &Values{Subject: strings.Repeat("\x01", MaxValue)}
	if got, err := b.Expand(ctl); !errors.Is(err, ErrTooLong) {
		t.Errorf("JSON of %d bytes: %v; want ErrTooLong", len(got), err)
	}
	// A cut value keeps whole characters.
	if got := clip(strings.Repeat("é", MaxValue)); len(got) != MaxValue || !strings.HasSuffix(got, "é") {
		t.Errorf("clip: %d bytes ending %q", len(got), got[len(got)-2:])
	}
}

func TestMethods(t *testing.T) {
	for _, tc := range []struct {
		method string
		body   bool
		ok     bool
	}{
		{"POST", true, true}, {"PUT", true, true}, {"PATCH", false, true}, {"GET", false, true}, {"DELETE", false, true},
		{"GET", true, false}, {"DELETE", true, false}, {"get", false, false}, {"CONNECT", false, false}, {"POST\r\nX: y", false, false},
	} {
		if err := CheckMethod(tc.method, tc.body); (err == nil) != tc.ok {
			t.Errorf("%q body %v: got %v; want ok %v", tc.method, tc.body, err, tc.ok)
		}
	}
	for _, tc := range []struct {
		name string
		kind Kind
		ct   string
	}{{"json", JSON, "application/json"}, {"form", Form, "application/x-www-form-urlencoded"}, {"text", Text, "text/plain; charset=utf-8"}} {
		if k, ok := BodyKind(tc.name); !ok || k != tc.kind || k.ContentType() != tc.ct {
			t.Errorf("%s: got %v %v %q", tc.name, k, ok, k.ContentType())
		}
	}
	if _, ok := BodyKind("url"); ok {
		t.Errorf("url is a body kind")
	}
}
