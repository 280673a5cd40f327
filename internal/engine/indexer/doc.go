// Package indexer turns a pack stream into an installed pack: it is what
// receives the pack of a push and what `gotadmin indexpack` runs. It is
// the counterpart of git-index-pack(1).
//
// Indexing works in two phases, as C Git's index-pack does:
//
//  1. One pass over the stream (gitformat-pack(5), "pack-*.pack files
//     have the following format"): every byte is hashed for the pack
//     trailer and copied to a temporary file in Options.Dir, every entry
//     is inflated once to find where its zlib stream ends and to verify
//     it. A non-delta object larger than MaxCheckBlobSize is hashed while
//     it inflates, so a large blob is never held in memory; smaller ones
//     are hashed and checked on other goroutines while the scan goes on
//     (pipe.go). Of a delta only its position and its base (an offset or
//     an object id) are remembered.
//  2. Delta resolution, on Options.Threads goroutines: each worker takes
//     the next non-delta object that has delta children, inflates it
//     from the temporary file and walks its delta tree depth-first,
//     applying each child's delta, hashing and checking the result. The
//     bases on the current path are kept in memory within a budget
//     (deltaBaseBudget); bases evicted to stay inside it are rebuilt when
//     needed again. A large blob that is no ofs-delta's base is never
//     built: it is hashed as a pack.DeltaReader produces it, so that a
//     delta making gigabytes out of a small base costs buffers.
//
// A thin pack (ref-deltas against objects the pack does not carry) is
// completed from Options.Bases: each missing base is appended to the pack,
// and the header count and trailer are rewritten, as `git index-pack
// --fix-thin` does. Then the .idx (version 2) and optionally the .rev file
// are written and the files renamed to pack-<checksum>.{pack,rev,idx},
// the .idx last because its presence is what makes a pack visible.
//
// Everything read from the stream is bounded: the object count by
// Options.MaxObjects, the pack by Options.MaxPackSize, every inflated
// object and delta result by Options.MaxObjectSize (checked against the
// declared size before anything is allocated, and again while
// inflating), delta chains by maxDeltaDepth.
package indexer
