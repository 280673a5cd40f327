//go:build !unix

package pack

import (
	"fmt"
	"os"
)

// mapFile reads the whole file at path: this system has no mmap we use.
func mapFile(path string) (*mapping, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > maxMapSize {
		return nil, fmt.Errorf("pack: %s: size %d out of range", path, st.Size())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return &mapping{data: data}, nil
}

func unmap([]byte) error { return nil }
