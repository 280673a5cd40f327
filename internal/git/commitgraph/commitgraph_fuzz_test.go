package commitgraph

import (
	"bytes"
	"testing"

	"gotd/internal/git/oid"
)

// FuzzParse feeds arbitrary bytes to the commit-graph parser as a single
// SHA-1 or SHA-256 file. Whatever it accepts must be readable commit by
// commit without a panic, with parents in range, and Lookup must find
// each commit's id at a position holding that id.
func FuzzParse(f *testing.F) {
	// Real graphs written by git 2.39 (with an octopus merge, so an EDGE
	// chunk, and a generation overflow, so GDO2) are in
	// testdata/fuzz/FuzzParse. Crafted: a header claiming 255 chunks, and
	// a table whose first offset points far past the end.
	f.Add(append([]byte("CGPH\x01\x01\xff\x00"), make([]byte, 64)...))
	f.Add(append([]byte("CGPH\x01\x01\x01\x00OIDF\xff\xff\xff\xff\xff\xff\xff\xf0\x00\x00\x00\x00"), make([]byte, 40)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, format := range []oid.Format{oid.SHA1, oid.SHA256} {
			l, err := parseLayer(data, format)
			if err != nil {
				continue
			}
			if l.nbase != 0 {
				continue
			}
			g := newGraph(format, []*layer{l})
			var c Commit
			for pos := uint32(0); pos < g.Count() && pos < 256; pos++ {
				if err := g.ReadCommit(pos, &c); err != nil {
					continue
				}
				for _, p := range c.Parents {
					if p >= g.Count() {
						t.Fatalf("commit %d: parent %d out of range [0, %d)", pos, p, g.Count())
					}
				}
				if c.ID.Format() != format || c.Tree.Format() != format {
					t.Fatalf("commit %d: ids of format %v, %v; want %v", pos, c.ID.Format(), c.Tree.Format(), format)
				}
				if got, ok := g.Lookup(c.ID); ok {
					id, err := g.ID(got)
					if err != nil || id != c.ID {
						t.Fatalf("Lookup(%v) = %d holding %v, %v", c.ID, got, id, err)
					}
				}
			}
		}
	})
}

// FuzzChain feeds arbitrary bytes to the chain-file parser: what it
// accepts is a non-empty list of well-formed ids that prints back to
// the same text.
func FuzzChain(f *testing.F) {
	f.Add([]byte("0123456789012345678901234567890123456789\n"))
	f.Add([]byte("0123456789012345678901234567890123456789\nabcdefabcdefabcdefabcdefabcdefabcdefabcd\n"))
	f.Add([]byte("0123456789012345678901234567890123456789"))
	f.Add([]byte("\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		names, err := parseChain(data, oid.SHA1)
		if err != nil {
			return
		}
		var b []byte
		for _, n := range names {
			b = append(n.AppendHex(b), '\n')
		}
		if !bytes.EqualFold(b, data) {
			t.Fatalf("parseChain(%q) = %v; prints back as %q", data, names, b)
		}
	})
}
