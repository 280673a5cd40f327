//go:build !linux

package upload

import (
	"io"
	"os"
)

// copyFile copies n bytes of src from off to dst through *buf.
func copyFile(dst io.Writer, src *os.File, off, n int64, buf *[]byte) error {
	return copyFileBuffered(dst, src, off, n, buf)
}

// cork does nothing here.
func cork(io.Writer, bool) {}
