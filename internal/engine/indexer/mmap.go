package indexer

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// mapFile maps the first size bytes of f read-only; the mapping stays
// valid after f is closed.
func mapFile(f *os.File, size uint64) ([]byte, error) {
	if size == 0 || size > uint64(maxInt) {
		return nil, fmt.Errorf("cannot map %d bytes", size)
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap %s: %w", f.Name(), err)
	}
	return data, nil
}

func unmap(data []byte) {
	if data != nil {
		unix.Munmap(data)
	}
}

const maxInt = int(^uint(0) >> 1)
