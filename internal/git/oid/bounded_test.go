package oid

import "testing"

// TestBoundedSet: a BoundedSet takes ids up to its limit, takes one it
// holds again when full, refuses a new one past the limit and the null
// id, and lists what it holds.
func TestBoundedSet(t *testing.T) {
	const limit = 100
	s := NewBoundedSet(SHA1, limit)
	if got, max := s.TableBytes(), (limit+limit/4+1)*20; got > max {
		t.Errorf("table of %d bytes; want at most %d", got, max)
	}
	id := func(i int) []byte {
		b := make([]byte, 20)
		b[0], b[1], b[19] = byte(i), byte(i>>8), 1
		return b
	}
	for i := range limit {
		if !s.AddBytes(id(i)) {
			t.Fatalf("id %d of %d: got refused; want taken", i, limit)
		}
	}
	if !s.AddBytes(id(7)) {
		t.Errorf("a member again when full: got refused; want taken")
	}
	if s.AddBytes(id(limit)) {
		t.Errorf("an id past the limit: got taken; want refused")
	}
	if s.AddBytes(make([]byte, 20)) {
		t.Errorf("the null id: got taken; want refused")
	}
	n := 0
	for range s.All() {
		n++
	}
	if n != limit {
		t.Errorf("All: got %d members; want %d", n, limit)
	}
}
