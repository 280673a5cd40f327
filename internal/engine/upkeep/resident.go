package upkeep

import "gotd/internal/git/pack"

// releaseEvery is how many objects a pass over the repository lists or
// writes between two releases of the pages it read.
const releaseEvery = 1 << 14

// pageRelease lets the pages of packs that a long pass reads all over
// (Repack's walk of everything reachable; the writing of the new pack
// does the same with packer.Options.ReleasePages) leave the process's
// resident set every releaseEvery objects (pack.Pack.ReleasePages):
// they stay in the page cache, and are read again from there if needed.
// Without it, by the end of a repack of git.git the whole of its 317 MB
// pack counted in the process's memory besides what the repack itself
// holds. A failure to release only costs memory and is ignored.
type pageRelease struct {
	packs []*pack.Pack
	n     int
}

// tick counts one object and releases the pages every releaseEvery.
func (p *pageRelease) tick() {
	if p.n++; p.n%releaseEvery == 0 {
		p.release()
	}
}

// release releases the pages of every pack now.
func (p *pageRelease) release() {
	for _, pk := range p.packs {
		pk.ReleasePages()
	}
}
