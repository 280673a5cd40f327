package config

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// FuzzParse parses arbitrary files. C Git is the independent oracle:
// when git is installed, both must accept or refuse the same files (NUL
// bytes aside, which we refuse on purpose) and list the same variables.
// Lookups must agree with the entry list.
func FuzzParse(f *testing.F) {
	for _, tc := range parseTests {
		f.Add([]byte(tc.in))
	}
	for _, s := range []string{
		"[core]\n\trepositoryformatversion = 1\n\tbare = true\n[extensions]\n\tobjectformat = sha256\n",
		"[remote \"origin\"]\n\turl = https://example.com/r.git\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n",
		"[a]k=\"" + strings.Repeat("\\\\", 100) + "\"\n",
		"[a]k=" + strings.Repeat("\\\n", 50) + "x\n",
		"[" + strings.Repeat("a.", 100) + "]k\n",
		"[a]k=99999999999999999999999999g\n",
	} {
		f.Add([]byte(s))
	}
	_, lookErr := exec.LookPath("git")
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err == nil {
			checkLookups(t, c)
		}
		if lookErr != nil || bytes.IndexByte(data, 0) >= 0 || len(data) > 4096 {
			return
		}
		want, ok := gitList(t, data)
		switch {
		case ok && err != nil:
			t.Fatalf("Parse(%q) = %v; git accepts it as %q", data, err, want)
		case !ok && err == nil:
			t.Fatalf("Parse(%q) = %q; git refuses it", data, listing(c))
		case ok && listing(c) != want:
			t.Fatalf("Parse(%q) = %q; git lists %q", data, listing(c), want)
		}
	})
}

func checkLookups(t *testing.T, c *Config) {
	for _, e := range c.entries {
		if e.hasSub && e.subsection == "" {
			continue // not reachable through the API
		}
		all := c.GetAll(e.section, e.subsection, e.key)
		if len(all) == 0 {
			t.Fatalf("GetAll(%q, %q, %q) = nil; entry exists", e.section, e.subsection, e.key)
		}
		v, ok := c.Get(strings.ToUpper(e.section), e.subsection, strings.ToUpper(e.key))
		if !ok || v != all[len(all)-1] {
			t.Fatalf("Get(%q, %q, %q) = %q, %v; want last of %q", e.section, e.subsection, e.key, v, ok, all)
		}
		if _, err := c.Bool(e.section, e.subsection, e.key, false); err == nil && !c.find(e.section, e.subsection, e.key).noValue {
			if _, ok := ParseBool(v); !ok {
				t.Fatalf("Bool accepted %q but ParseBool did not", v)
			}
		}
	}
}
