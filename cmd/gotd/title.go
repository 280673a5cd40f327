package main

import (
	"os"
	"unsafe"
)

// retitle renames the process as ps(1) shows it, as setproctitle(3)
// does: it writes title over the bytes of argv[0], which the kernel
// shows and which os.Args[0] shares (the runtime does not copy the
// arguments), and pads with NULs. A title longer than argv[0] is not
// written. os.Args[0] reads as the new title afterwards; nothing else
// holds it.
func retitle(title string) {
	a0 := os.Args[0]
	if len(title) > len(a0) || title == a0 {
		return
	}
	b := unsafe.Slice(unsafe.StringData(a0), len(a0))
	n := copy(b, title)
	clear(b[n:])
}
