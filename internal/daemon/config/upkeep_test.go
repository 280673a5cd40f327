package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestUpkeep: the top-level upkeep directive, a repository's own, and
// how UpkeepFor resolves them against the defaults.
func TestUpkeep(t *testing.T) {
	src := `upkeep {
	packs 8
	grace 7d
}
repository "a" {
	path "/a"
}
repository "b" {
	path "/b"
	upkeep off
}
repository "c" {
	path "/c"
	upkeep {
		loose objects 50
		loose references 200
		interval 10m
	}
}
`
	c, err := Parse("u.conf", []byte(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	week := 7 * 24 * time.Hour
	for i, want := range []Upkeep{
		{On: true, Packs: 8, Loose: DefaultUpkeepLoose, LooseRefs: DefaultUpkeepLooseRefs, Interval: DefaultUpkeepInterval, Grace: week},
		{Off: true, Packs: 8, Loose: DefaultUpkeepLoose, LooseRefs: DefaultUpkeepLooseRefs, Interval: DefaultUpkeepInterval, Grace: week},
		{On: true, Packs: 8, Loose: 50, LooseRefs: 200, Interval: 10 * time.Minute, Grace: week},
	} {
		r := c.Repositories[i]
		if got := c.UpkeepFor(r); got != want {
			t.Errorf("repository %s: got %+v; want %+v", r.Name, got, want)
		}
	}

	// Off at the top level, on again in a repository that says so.
	c, err = Parse("u.conf", []byte("upkeep off\nrepository \"a\" {\n\tpath \"/a\"\n}\nrepository \"b\" {\n\tpath \"/b\"\n\tupkeep on\n}\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.UpkeepFor(c.Repositories[0]); !got.Off || got.On {
		t.Errorf("a under upkeep off: got %+v; want off", got)
	}
	if got := c.UpkeepFor(c.Repositories[1]); got.Off || !got.On || got.Packs != DefaultUpkeepPacks || got.Grace != DefaultUpkeepGrace {
		t.Errorf("b with upkeep on: got %+v; want on with the defaults", got)
	}

	// Nothing said: on, with the defaults.
	c, err = Parse("u.conf", []byte("repository \"a\" {\n\tpath \"/a\"\n}\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := Upkeep{On: true, Packs: DefaultUpkeepPacks, Loose: DefaultUpkeepLoose, LooseRefs: DefaultUpkeepLooseRefs, Interval: DefaultUpkeepInterval, Grace: DefaultUpkeepGrace}
	if got := c.UpkeepFor(c.Repositories[0]); got != want {
		t.Errorf("defaults: got %+v; want %+v", got, want)
	}
}

// TestUpkeepErrors: every malformed upkeep line is refused with its
// line.
func TestUpkeepErrors(t *testing.T) {
	for _, tc := range []struct{ conf, want string }{
		{"upkeep", "u.conf:1: syntax error"},
		{"upkeep maybe", "u.conf:1: syntax error"},
		{"upkeep {\n\tpacks 0\n}", "u.conf:2: upkeep packs threshold 0 out of range"},
		{"upkeep {\n\tpacks 16777217\n}", "u.conf:2: upkeep packs threshold 16777217 out of range"},
		{"upkeep {\n\tpacks many\n}", "u.conf:2: syntax error: expected a number of packs"},
		{"upkeep {\n\tloose 5\n}", "u.conf:2: syntax error"},
		{"upkeep {\n\tloose references 0\n}", "u.conf:2: upkeep loose references threshold 0 out of range"},
		{"upkeep {\n\tloose references lots\n}", "u.conf:2: syntax error: expected a number of loose references"},
		{"upkeep {\n\tgrace 10m\n}", "u.conf:2: upkeep grace period shorter than 1h0m0s"},
		{"upkeep {\n\tgrace 2w\n}", "u.conf:2: invalid upkeep grace period: 2w"},
		{"upkeep {\n\tgrace 99999d\n}", "u.conf:2: invalid upkeep grace period: out of range"},
		{"upkeep {\n\tinterval 0\n}", "u.conf:2: invalid upkeep interval: out of range"},
		{"upkeep {\n\tinterval 30s\n}", "u.conf:2: upkeep interval shorter than 1m0s"},
		{"upkeep {\n\tschedule daily\n}", "u.conf:2: syntax error: unexpected"},
		{"upkeep off\nupkeep on", "u.conf:2: upkeep given twice (first on line 1)"},
		{"upkeep {\n\tpacks 4", "u.conf:3: syntax error: unexpected 'repository' in upkeep options"},
	} {
		_, err := Parse("u.conf", []byte(tc.conf+"\nrepository \"r\" {\n\tpath \"/r\"\n}\n"), Options{})
		var cerr *Error
		if !errors.As(err, &cerr) || len(cerr.Problems) == 0 {
			t.Errorf("%q: got error %v; want %q", tc.conf, err, tc.want)
			continue
		}
		if got := cerr.Problems[0]; !strings.HasPrefix(got, tc.want) {
			t.Errorf("%q: got %q; want %q", tc.conf, got, tc.want)
		}
	}
	_, err := Parse("u.conf", []byte("repository \"r\" {\n\tpath \"/r\"\n\tupkeep off\n\tupkeep {\n\t\tpacks 3\n\t}\n}\n"), Options{})
	if err == nil || !strings.Contains(err.Error(), "u.conf:4: upkeep given twice (first on line 3)") {
		t.Errorf("repository upkeep twice: got %v; want line 4 refused", err)
	}
}
