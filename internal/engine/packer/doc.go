// Package packer writes version 2 pack files (gitformat-pack(5)): the
// pack a fetch or clone receives and the packs gotadmin writes.
//
// Write streams a pack for a chosen list of objects. It copies what the
// repository already stores whenever it can: an object stored whole in a
// pack is written from the pack's compressed bytes, and a stored delta
// whose base is also sent is written from its compressed delta bytes, so
// neither is inflated nor deflated again. Other objects go through a delta
// search like C Git's (a sliding window over objects sorted by type, name
// hash and size) whose memory is bounded by Options.DeltaMemory. CopyPack
// sends a stored pack unchanged.
//
// The delta encoder, ComputeDelta and DeltaIndex, is exported for other
// pack writers and for tests.
package packer
