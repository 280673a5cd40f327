// Package mmapfile maps files read-only into memory, for the index and
// pack files that gotd reads by random access. A mapping stays valid
// after the file is renamed or removed, until it is released.
package mmapfile

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// MaxSize bounds the size of a file this package maps (1 TiB).
const MaxSize = 1 << 40

// Map maps the whole file at path read-only. The file must not be empty.
// The caller must not write to the slice and must release it with Unmap,
// after which it must not be used.
func Map(path string) ([]byte, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fd.Close()
	st, err := fd.Stat()
	if err != nil {
		return nil, err
	}
	return MapFile(fd, st.Size())
}

// MapFile maps the first size bytes of the open file f read-only, as Map
// does; the mapping stays valid after f is closed.
func MapFile(f *os.File, size int64) ([]byte, error) {
	if size <= 0 || size > MaxSize {
		return nil, fmt.Errorf("mmapfile: %s: size %d out of range", f.Name(), size)
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmapfile: map %s: %w", f.Name(), err)
	}
	return data, nil
}

// Unmap releases a slice returned by Map. Unmap(nil) does nothing.
func Unmap(data []byte) error {
	if data == nil {
		return nil
	}
	return unix.Munmap(data)
}

// File is a read-only view of a whole file: a mapping where the file
// system allows one, else the file read into memory.
type File struct {
	// Data is the file's content. The caller must not write to it and
	// must not use it after Close.
	Data []byte

	mapped bool
}

// Open maps the file at path, or reads it when it cannot be mapped. An
// empty file yields an empty Data.
func Open(path string) (*File, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() == 0 {
		return &File{Data: []byte{}}, nil
	}
	data, err := Map(path)
	if err == nil {
		return &File{Data: data, mapped: true}, nil
	}
	if st.Size() > MaxSize {
		return nil, err
	}
	data, rerr := os.ReadFile(path)
	if rerr != nil {
		return nil, err
	}
	return &File{Data: data}, nil
}

// Close releases the view. Closing a nil File does nothing.
func (f *File) Close() error {
	if f == nil || f.Data == nil {
		return nil
	}
	data := f.Data
	f.Data = nil
	if !f.mapped {
		return nil
	}
	return Unmap(data)
}

// Release tells the kernel that the process no longer needs the pages
// of a mapping it has read (madvise MADV_DONTNEED): they leave the
// process's resident set and stay in the page cache, and Data stays
// valid, its pages read again when next used. A walk that reads a
// whole pack by random access calls it now and then, so that the
// pack's size is not counted in the process's memory by its end. A view
// read into memory is left as it is.
func (f *File) Release() error {
	if f == nil || !f.mapped || len(f.Data) == 0 {
		return nil
	}
	if err := unix.Madvise(f.Data, unix.MADV_DONTNEED); err != nil {
		return fmt.Errorf("mmapfile: release: %w", err)
	}
	return nil
}
