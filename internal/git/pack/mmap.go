package pack

import "sync"

// maxMapSize bounds the files this package maps (1 TiB): larger sizes
// come from a broken stat, not from a repository.
const maxMapSize = 1 << 40

// mapping is a read-only view of a whole file, mapped or read. Its data
// must not be written to, nor used after close.
type mapping struct {
	data   []byte
	mapped bool

	once sync.Once
	err  error
}

// close releases the mapping; later calls do nothing. A nil mapping is
// fine to close.
func (m *mapping) close() error {
	if m == nil {
		return nil
	}
	m.once.Do(func() {
		if m.mapped {
			m.err = unmap(m.data)
		}
		m.data = nil
	})
	return m.err
}
