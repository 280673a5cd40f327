package receive

import "runtime/debug"

// LargePackGCPercent is the garbage collector's target while a process
// indexes or walks a pack of LargePack objects or more (a mirror's
// fetch in gotadmin and in the fetch process, session_write's check of
// what it fetched). Most of the live heap then holds no pointers (the
// indexer's entries, the ids, the object buffers, the set of named ids;
// the walk's seen-set), so collecting at a quarter of growth instead
// of at doubling costs little CPU and keeps the peak near the live
// heap: gotadmin clone of git.git, 174 MB of peak RSS and 31 s of CPU
// instead of 216 MB and 35 s (before the indexer's entries were made
// smaller).
const LargePackGCPercent = 25

// LargePack is the object count of a pack from which GCForPack lowers
// the collector's target. A smaller pack's heap stays within the few
// megabytes below which the collector's floor (4 MiB at the default
// target, a quarter of it at 25%) rules: at 25% throughout, a fetch of
// 100 commits of git.git took 0.29 to 0.33 s of CPU instead of 0.24
// to 0.26.
const LargePack = 1 << 16

// GCForPack returns a function to call with a pack's object count,
// which sets the collector's target to LargePackGCPercent for a pack of
// LargePack objects or more, and a function that restores the target
// it found.
func GCForPack() (packObjects func(uint32), restore func()) {
	prev, set := 0, false
	packObjects = func(n uint32) {
		if n >= LargePack && !set {
			prev, set = debug.SetGCPercent(LargePackGCPercent), true
		}
	}
	restore = func() {
		if set {
			debug.SetGCPercent(prev)
		}
	}
	return packObjects, restore
}
