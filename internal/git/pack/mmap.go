package pack

import (
	"sync"

	"gotd/internal/mmapfile"
)

// mapping is a read-only view of a whole file (see mmapfile), closed at
// most once however many readers share it.
type mapping struct {
	data []byte
	file *mmapfile.File // nil for views made from memory (tests)

	once sync.Once
	err  error
}

// mapFile maps the file at path, or reads it where it cannot be mapped.
func mapFile(path string) (*mapping, error) {
	f, err := mmapfile.Open(path)
	if err != nil {
		return nil, err
	}
	return &mapping{data: f.Data, file: f}, nil
}

func (m *mapping) close() error {
	if m == nil {
		return nil
	}
	m.once.Do(func() {
		m.err = m.file.Close()
		m.data = nil
	})
	return m.err
}
