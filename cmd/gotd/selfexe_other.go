//go:build !linux

package main

// selfExe returns the binary's path: it is re-executed, and unveiled,
// by path.
func selfExe(exe string) (string, error) { return exe, nil }

// nameProcess does nothing: the binary is executed by its path, whose
// name the system shows.
func nameProcess() {}
