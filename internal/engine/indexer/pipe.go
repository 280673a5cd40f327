package indexer

import (
	"fmt"
	"sync"
	"sync/atomic"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
)

// While the scan inflates entries one after the other (it has to: only
// inflating an entry tells where the next one starts), hashing and
// checking the non-delta objects it finds can go on in parallel. With
// more than one thread the scan hands every non-delta object of at most
// maxPipedSize bytes, inflated, to a hashPipe, whose goroutines hash and
// check it; larger objects are hashed inline as they stream.

// maxPipedSize is the largest object handed to the hash pipe; it is no
// more than MaxCheckBlobSize, so Check receives the data of every piped
// object.
const maxPipedSize = MaxCheckBlobSize

// pipeBuffers bounds the buffers in flight, and so the memory of the
// pipe: at most pipeBuffers*(maxPipedSize+1) bytes.
const pipeBuffers = 16

type hashJob struct {
	dst  []byte // the entry's slot in indexer.ids
	typ  object.Type
	off  uint64
	data []byte
}

type hashPipe struct {
	ix      *indexer
	jobs    chan hashJob
	free    chan []byte
	nbufs   int
	wg      sync.WaitGroup
	stopped bool
	failed  atomic.Bool
	mu      sync.Mutex
	err     error
}

func newHashPipe(ix *indexer, workers int) *hashPipe {
	p := &hashPipe{
		ix:   ix,
		jobs: make(chan hashJob, pipeBuffers),
		free: make(chan []byte, pipeBuffers),
	}
	for range workers {
		p.wg.Add(1)
		go p.work()
	}
	return p
}

func (p *hashPipe) work() {
	defer p.wg.Done()
	h := oid.NewHasher(p.ix.f)
	var hdr [32]byte
	for j := range p.jobs {
		if !p.failed.Load() {
			p.fail(p.hash(h, hdr[:0], j))
		}
		p.free <- j.data
	}
}

func (p *hashPipe) hash(h *oid.Hasher, hdr []byte, j hashJob) error {
	h.Reset()
	h.Write(object.AppendHeader(hdr, j.typ, int64(len(j.data))))
	h.Write(j.data)
	id, err := h.ID()
	if err != nil {
		return fmt.Errorf("indexer: %s %s at offset %d: %w", j.typ, id, j.off, err)
	}
	copy(j.dst, id.Raw())
	if check := p.ix.opts.Check; check != nil {
		if err := check(j.typ, id, j.data); err != nil {
			return fmt.Errorf("indexer: %s %s: %w", j.typ, id, err)
		}
	}
	return nil
}

func (p *hashPipe) fail(err error) {
	if err == nil {
		return
	}
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.mu.Unlock()
	p.failed.Store(true)
}

// buffer returns a buffer for the next object, waiting for one to come
// back when all are in flight.
func (p *hashPipe) buffer() []byte {
	select {
	case b := <-p.free:
		return b
	default:
	}
	if p.nbufs < pipeBuffers {
		p.nbufs++
		return nil
	}
	return <-p.free
}

// stop waits for the jobs sent so far and returns the first error.
func (p *hashPipe) stop() error {
	if !p.stopped {
		p.stopped = true
		close(p.jobs)
		p.wg.Wait()
	}
	return p.err
}
