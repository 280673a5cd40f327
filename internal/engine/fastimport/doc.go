// Package fastimport reads a git fast-import stream (git-fast-import(1))
// into a repository: it is what `gotadmin fast-import` runs, the
// counterpart of `git fast-import`, and gives every object the id C Git's
// fast-import gives it.
//
// Objects go into one new pack, never loose files: each is appended to a
// temporary pack as it is read (a blob as a delta against the blob before
// it, a tree against its previous version, when that is smaller, as C
// Git does), duplicates of what the repository or the pack already holds
// are skipped, and at the end the pack's count and trailer are written
// and its .idx and .rev are written from the offsets and CRCs recorded
// while writing it (pack.WriteIndex, pack.WriteRev), the .idx renamed
// into place last since it makes the pack visible; with Options.Verify
// the project's indexer reads the pack again and checks every object
// instead. Only then are the references updated, in one transaction.
//
// Trees are kept as C Git keeps them: per branch, a tree of directories
// loaded only when a change reaches into them, the changed ones stored
// when the commit is, at most a few branches' trees loaded at a time.
// Blobs are not held beyond the one being read and the one before it
// (the delta base); an exact-length blob of 8 MiB or more is hashed and
// compressed as it is read.
//
// The stream is untrusted: every line, data block, the number of marks
// and of branches are bounded (Options), paths are checked as C Git's
// verify_path does, reference names as check-ref-format does, and
// features that would make the stream read or write files (marks files)
// are refused, as C Git refuses them without --allow-unsafe-features.
package fastimport
