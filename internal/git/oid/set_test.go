package oid

import (
	"crypto/sha1"
	"encoding/binary"
	"testing"
)

func testIDs(f Format, n int) []ID {
	ids := make([]ID, n)
	for i := range ids {
		var seed [8]byte
		binary.LittleEndian.PutUint64(seed[:], uint64(i))
		sum := sha1.Sum(seed[:])
		var b [MaxSize]byte
		copy(b[:], sum[:])
		copy(b[20:], sum[:12])
		ids[i] = MustFromBytes(f, b[:f.Size()])
	}
	return ids
}

func TestSet(t *testing.T) {
	for _, f := range []Format{SHA1, SHA256} {
		for _, s := range []*Set{{}, NewSet(f, 10), NewSet(f, 5000)} {
			ids := testIDs(f, 5000)
			for i, id := range ids {
				if s.Has(id) {
					t.Fatalf("%v: id %d is a member before Add", f, i)
				}
				if !s.Add(id) {
					t.Fatalf("%v: Add of new id %d said it was a member", f, i)
				}
				if s.Add(id) {
					t.Fatalf("%v: second Add of id %d said it was new", f, i)
				}
			}
			if s.Len() != len(ids) {
				t.Fatalf("%v: Len %d, want %d", f, s.Len(), len(ids))
			}
			for i, id := range ids {
				if !s.Has(id) || !s.HasBytes(id.Bytes()) {
					t.Fatalf("%v: id %d lost after growing", f, i)
				}
			}
			if s.Has(testIDs(f, 5001)[5000]) {
				t.Fatalf("%v: a stranger is a member", f)
			}
			// The null id is a member like any other.
			if s.Has(Zero(f)) || !s.Add(Zero(f)) || s.Add(Zero(f)) || !s.Has(Zero(f)) {
				t.Fatalf("%v: null id membership wrong", f)
			}
			// An id with eight leading zero bytes is not taken for an empty slot.
			lead := ids[0].b
			for i := range 8 {
				lead[i] = 0
			}
			odd := MustFromBytes(f, lead[:f.Size()])
			if s.Has(odd) || !s.Add(odd) || !s.Has(odd) {
				t.Fatalf("%v: id with zero leading word membership wrong", f)
			}
			seen := map[ID]bool{}
			for id := range s.All() {
				if seen[id] {
					t.Fatalf("%v: All yields %v twice", f, id)
				}
				seen[id] = true
			}
			if len(seen) != s.Len() || !seen[Zero(f)] || !seen[odd] || !seen[ids[4999]] {
				t.Fatalf("%v: All yields %d ids, Len %d", f, len(seen), s.Len())
			}
			if s.HasBytes(ids[0].Bytes()[:10]) {
				t.Fatalf("%v: a short id is a member", f)
			}
		}
	}
}

func TestSetMixedLengths(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Add of an id of another length did not panic")
		}
	}()
	var s Set
	s.Add(testIDs(SHA1, 1)[0])
	s.Add(testIDs(SHA256, 1)[0])
}

// BenchmarkSet compares a Set with a map on the walks' pattern: mostly
// lookups of members.
func BenchmarkSet(b *testing.B) {
	ids := testIDs(SHA1, 400000)
	b.Run("Set", func(b *testing.B) {
		s := NewSet(SHA1, 0)
		for _, id := range ids {
			s.Add(id)
		}
		b.ResetTimer()
		for i := range b.N {
			s.Has(ids[(i*7919)%len(ids)])
		}
	})
	b.Run("map", func(b *testing.B) {
		m := map[ID]struct{}{}
		for _, id := range ids {
			m[id] = struct{}{}
		}
		b.ResetTimer()
		for i := range b.N {
			_ = m[ids[(i*7919)%len(ids)]]
		}
	})
}
