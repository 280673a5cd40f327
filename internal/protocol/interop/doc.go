// Package interop tests the protocol layer against Git clients other
// than C Git: libgit2 (through pygit2), dulwich and go-git, each
// talking to an in-process git:// server on loopback. It has no code
// of its own outside its tests.
package interop
