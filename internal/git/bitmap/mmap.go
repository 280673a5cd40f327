package bitmap

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// maxFileSize bounds the size of a .bitmap file we map: far above any
// real one, and small enough that offsets fit comfortably in an int.
const maxFileSize = 1 << 36

// mapFile maps path read-only. The mapping outlives the descriptor,
// which is closed before returning.
func mapFile(path string) ([]byte, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fd.Close()
	st, err := fd.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	if size <= 0 || size > maxFileSize {
		return nil, fmt.Errorf("%s: size %d out of range", path, size)
	}
	data, err := unix.Mmap(int(fd.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap %s: %w", path, err)
	}
	return data, nil
}

func unmap(data []byte) error {
	if data == nil {
		return nil
	}
	return unix.Munmap(data)
}
