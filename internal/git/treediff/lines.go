package treediff

import (
	"bytes"
	"hash/maphash"
)

// binaryProbe is how much of a file C Git looks at for a NUL byte to call
// it binary (xdiff-interface.c, buffer_is_binary).
const binaryProbe = 8000

// IsBinary reports whether data is binary as C Git's diff decides it: a
// NUL byte among its first 8,000 bytes.
func IsBinary(data []byte) bool {
	return bytes.IndexByte(data[:min(len(data), binaryProbe)], 0) >= 0
}

// LineCounts returns how many lines a minimal line diff from old to new
// adds and removes, the figures of `git diff --numstat` for text files.
// A diff that would need more than maxEdits edits is not searched for:
// ok is false, and the caller reports the file without counts.
func LineCounts(old, new []byte, maxEdits int) (added, removed int, ok bool) {
	a, b := lineHashes(old), lineHashes(new)
	// Common lines at both ends take no search.
	for len(a) > 0 && len(b) > 0 && a[0] == b[0] {
		a, b = a[1:], b[1:]
	}
	for len(a) > 0 && len(b) > 0 && a[len(a)-1] == b[len(b)-1] {
		a, b = a[:len(a)-1], b[:len(b)-1]
	}
	d, ok := editDistance(a, b, maxEdits)
	if !ok {
		return 0, 0, false
	}
	// d = added + removed and added - removed = len(b) - len(a).
	added = (d + len(b) - len(a)) / 2
	return added, d - added, true
}

// lineHashes returns a hash of each line of data (the last one without
// a newline counts as a line, as in Git).
func lineHashes(data []byte) []uint64 {
	seed := lineSeed
	var hs []uint64
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		line := data
		if i >= 0 {
			line, data = data[:i+1], data[i+1:]
		} else {
			data = nil
		}
		hs = append(hs, maphash.Bytes(seed, line))
	}
	return hs
}

// lineSeed hashes lines; two different lines with one hash would make
// the counts slightly low, never wrong in kind.
var lineSeed = maphash.MakeSeed()

// editDistance is the length of the shortest edit script (insertions
// and deletions) from a to b, by Myers' O((N+M)D) greedy algorithm,
// or false if it exceeds max.
func editDistance(a, b []uint64, max int) (int, bool) {
	n, m := len(a), len(b)
	if n == 0 || m == 0 {
		return n + m, n+m <= max
	}
	limit := min(max, n+m)
	off := limit + 1
	v := make([]int, 2*limit+3)
	for d := 0; d <= limit; d++ {
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || k != d && v[off+k-1] < v[off+k+1] {
				x = v[off+k+1] // down: an insertion
			} else {
				x = v[off+k-1] + 1 // right: a deletion
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x, y = x+1, y+1
			}
			v[off+k] = x
			if x >= n && y >= m {
				return d, true
			}
		}
	}
	return 0, false
}
