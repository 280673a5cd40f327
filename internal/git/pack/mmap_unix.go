//go:build unix

package pack

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// mapFile maps the whole file at path read-only. Files that cannot be
// mapped (some filesystems refuse) are read into memory instead; they
// are the files of a repository, whose size the host already bounds.
func mapFile(path string) (*mapping, error) {
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
	switch {
	case size == 0:
		return &mapping{data: []byte{}}, nil
	case size < 0 || size > maxMapSize:
		return nil, fmt.Errorf("pack: %s: size %d out of range", path, size)
	}
	data, err := unix.Mmap(int(fd.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		data, rerr := os.ReadFile(path)
		if rerr != nil {
			return nil, fmt.Errorf("pack: map %s: %w", path, err)
		}
		return &mapping{data: data}, nil
	}
	return &mapping{data: data, mapped: true}, nil
}

func unmap(data []byte) error { return unix.Munmap(data) }
