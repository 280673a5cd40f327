package receive

import (
	"bytes"
	"compress/zlib"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"

	"gotd/internal/gittest"
)

// TestHiddenHistory checks that with hidden references a push cannot
// make what only they reach visible: not by naming a hidden commit,
// nor as the parent of a pushed one, nor as the base of a thin pack's
// delta; and that hidden references are neither advertised nor
// updated. The same pushes without hidden references are accepted.
func TestHiddenHistory(t *testing.T) {
	template := gittest.InitBare(t, "sha1")
	git := func(in string, args ...string) string {
		return strings.TrimSpace(gittest.GitInput(t, template, []byte(in), args...))
	}
	empty := git("", "mktree")
	oldTree := git("100644 blob "+git("old\n", "hash-object", "-w", "--stdin")+"\tf\n", "mktree")
	first := git("", "commit-tree", oldTree, "-m", "first")
	visible := git("", "commit-tree", empty, "-p", first, "-m", "visible")
	git("", "update-ref", "refs/heads/main", visible)
	text := strings.Repeat("secret text that deltas well\n", 100)
	base := git(text, "hash-object", "-w", "--stdin")
	hidden := git("", "commit-tree", git("100644 blob "+base+"\tsecret\n", "mktree"), "-m", "hidden")
	git("", "update-ref", "refs/internal/h", hidden)
	git("", "symbolic-ref", "refs/heads/alias", "refs/internal/h")

	// Made elsewhere: a blob that is base plus a line, its tree, and
	// a commit on top of the visible one.
	other := gittest.InitBare(t, "sha1")
	oth := func(in string, args ...string) string {
		return strings.TrimSpace(gittest.GitInput(t, other, []byte(in), args...))
	}
	blob := oth(text+"more\n", "hash-object", "-w", "--stdin")
	tree := oth("100644 blob "+blob+"\tf\n", "mktree")
	commitText := "tree " + tree + "\nparent " + visible + "\nauthor A <a@example.com> 1 +0000\ncommitter C <c@example.com> 1 +0000\n\nthin\n"
	commit := oth(commitText, "hash-object", "-t", "commit", "-w", "--stdin")
	treeData := gittest.GitInput(t, other, nil, "cat-file", "tree", tree)
	thinPack := packEntries(t, []entry{
		{typ: 1, data: []byte(commitText)},
		{typ: 2, data: []byte(treeData)},
		{typ: 7, base: base, data: deltaAppend(len(text), "more\n")},
	})
	zero := strings.Repeat("0", 40)
	emptyPack := packOf(t, template)
	// A revert: a commit whose tree the visible history has, deeper
	// than the edge, sent alone (as a client knowing the server's
	// history exactly may).
	revertText := "tree " + oldTree + "\nparent " + visible + "\nauthor A <a@example.com> 1 +0000\ncommitter C <c@example.com> 1 +0000\n\nrevert\n"
	revert := oth(revertText, "hash-object", "-t", "commit", "-w", "--stdin")
	revertPack := packEntries(t, []entry{{typ: 1, data: []byte(revertText)}})

	hide := func(name string) bool { return strings.HasPrefix(name, "refs/internal/") }
	for _, c := range []struct {
		name      string
		in        string
		hidden    string // the report with hidden references
		notHidden string // and without
	}{
		{"a branch at the hidden commit", pkt(cmd(zero, hidden, "refs/heads/x", "report-status"), "0000") + emptyPack,
			reportPkt("ok", "ng refs/heads/x missing necessary objects"), reportPkt("ok", "ok refs/heads/x")},
		// The hidden blob is no base: as if the repository lacked it.
		{"a delta on a hidden blob", pkt(cmd(zero, commit, "refs/heads/x", "report-status"), "0000") + thinPack,
			reportPkt("pack has a delta against an object the repository lacks", "ng refs/heads/x unpacker error"), reportPkt("ok", "ok refs/heads/x")},
		{"a commit on visible history", pkt(cmd(visible, revert, "refs/heads/main", "report-status"), "0000") + revertPack,
			reportPkt("ok", "ok refs/heads/main"), reportPkt("ok", "ok refs/heads/main")},
		// Its type is not told either.
		{"a branch at a hidden blob", pkt(cmd(zero, base, "refs/heads/x", "report-status"), "0000") + emptyPack,
			reportPkt("ok", "ng refs/heads/x missing necessary objects"), reportPkt("ok", "ng refs/heads/x branch must point at a commit")},
		{"an update of a hidden reference", pkt(cmd(hidden, visible, "refs/internal/h", "report-status"), "0000") + emptyPack,
			reportPkt("ok", "ng refs/internal/h deny updating a hidden ref"), reportPkt("ok", "ok refs/internal/h")},
	} {
		for _, withHidden := range []bool{true, false} {
			server := copyRepo(t, template)
			opts, want := Options{}, c.notHidden
			if withHidden {
				opts.Hidden, want = hide, c.hidden
			}
			got, _, err := serve(t, server, c.in, opts)
			if err != nil && !strings.Contains(want, "unpacker error") {
				t.Errorf("%s (hidden %v): %v", c.name, withHidden, err)
			}
			adv, rest, _ := strings.Cut(got, "0000")
			if withHidden == strings.Contains(adv, "refs/internal/h") || withHidden == strings.Contains(adv, "refs/heads/alias") {
				t.Errorf("%s (hidden %v): advertisement %q", c.name, withHidden, adv)
			}
			if rest != want {
				t.Errorf("%s (hidden %v): report %q, want %q", c.name, withHidden, rest, want)
			}
			gittest.Git(t, server, "fsck", "--full", "--strict", "--no-dangling")
		}
	}
}

// entry is one object of a hand-made pack: typ 7 is a delta against
// base (hex).
type entry struct {
	typ  int
	base string
	data []byte
}

// packEntries writes a pack of entries.
func packEntries(t *testing.T, entries []entry) string {
	t.Helper()
	var p bytes.Buffer
	p.WriteString("PACK")
	binary.Write(&p, binary.BigEndian, uint32(2))
	binary.Write(&p, binary.BigEndian, uint32(len(entries)))
	for _, e := range entries {
		n := len(e.data)
		b := byte(e.typ<<4) | byte(n&15)
		n >>= 4
		for n > 0 {
			p.WriteByte(b | 0x80)
			b = byte(n & 0x7f)
			n >>= 7
		}
		p.WriteByte(b)
		if e.typ == 7 {
			id, err := hex.DecodeString(e.base)
			if err != nil {
				t.Fatal(err)
			}
			p.Write(id)
		}
		z := zlib.NewWriter(&p)
		z.Write(e.data)
		z.Close()
	}
	sum := sha1.Sum(p.Bytes())
	p.Write(sum[:])
	return p.String()
}

// deltaAppend is a delta that copies a base of n bytes and appends s.
func deltaAppend(n int, s string) []byte {
	varint := func(b []byte, v int) []byte {
		for v >= 0x80 {
			b = append(b, byte(v)|0x80)
			v >>= 7
		}
		return append(b, byte(v))
	}
	d := varint(varint(nil, n), n+len(s))
	// Copy from offset 0, n bytes (two size bytes).
	d = append(d, 0x80|0x10|0x20, byte(n), byte(n>>8))
	d = append(d, byte(len(s)))
	return append(d, s...)
}
