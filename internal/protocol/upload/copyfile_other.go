//go:build !linux

package upload

import (
	"io"
	"os"
)

// copyFile copies n bytes of src from off to dst.
func copyFile(dst io.Writer, src *os.File, off, n int64) error {
	return copyFileBuffered(dst, src, off, n)
}

// cork does nothing here.
func cork(io.Writer, bool) {}
