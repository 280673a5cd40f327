// Package mmapfile maps files read-only into memory, for the index and
// pack files that gotd reads by random access. A mapping stays valid
// after the file is renamed or removed, until Close.
package mmapfile

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// MaxSize bounds the size of a file this package maps (64 GiB).
const MaxSize = 1 << 36

// File is a read-only mapping of a whole file.
type File struct {
	// Data is the file's content. The caller must not write to it and
	// must not use it after Close.
	Data []byte

	mapped bool
}

// Open maps the file at path. An empty file yields an empty mapping.
func Open(path string) (*File, error) {
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
		return &File{Data: []byte{}}, nil
	case size < 0 || size > MaxSize:
		return nil, fmt.Errorf("mmapfile: %s: size %d out of range", path, size)
	}
	data, err := unix.Mmap(int(fd.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		// Some filesystems cannot map; read the file instead.
		data, rerr := os.ReadFile(path)
		if rerr != nil {
			return nil, fmt.Errorf("mmapfile: map %s: %w", path, err)
		}
		return &File{Data: data}, nil
	}
	return &File{Data: data, mapped: true}, nil
}

// Close releases the mapping.
func (f *File) Close() error {
	if f == nil || f.Data == nil {
		return nil
	}
	data := f.Data
	f.Data = nil
	if !f.mapped {
		return nil
	}
	return unix.Munmap(data)
}
