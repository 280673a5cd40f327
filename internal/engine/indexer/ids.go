package indexer

import "gotd/internal/git/oid"

// idChunk is how many ids an idStore holds per allocation.
const idChunk = 4096

// idStore holds the id of every entry apart from the entries, in
// chunks of the hash size times idChunk bytes: 20 bytes an object for
// SHA-1, where an oid.ID in the entry took 33 and its padding, and no
// chunk is ever copied or moved as the pack's objects are counted, so
// that the goroutines hashing objects may write into slots while the
// scan adds more. Only the scan (and the completion of a thin pack,
// alone) adds entries.
type idStore struct {
	f      oid.Format
	size   int
	chunks [][]byte
}

func newIDStore(f oid.Format) idStore { return idStore{f: f, size: f.Size()} }

// slot returns where the id of entry i is stored, allocating its chunk
// if needed; it must not be called concurrently with itself.
func (s *idStore) slot(i int) []byte {
	for len(s.chunks) <= i/idChunk {
		s.chunks = append(s.chunks, make([]byte, idChunk*s.size))
	}
	return s.at(i)
}

// at returns the slot of entry i, whose chunk slot allocated.
func (s *idStore) at(i int) []byte {
	j := i % idChunk * s.size
	return s.chunks[i/idChunk][j : j+s.size : j+s.size]
}

// get returns the id of entry i.
func (s *idStore) get(i int) oid.ID { return oid.MustFromBytes(s.f, s.at(i)) }

// set records the id of entry i.
func (s *idStore) set(i int, id oid.ID) { copy(s.at(i), id.Raw()) }
