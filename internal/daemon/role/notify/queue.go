package notify

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Delivery is one notification for one target, as the queue keeps it
// until it is delivered or given up.
type Delivery struct {
	// Seq orders deliveries; the queue assigns it.
	Seq uint64 `json:"seq"`
	// Repo is the repository pushed to.
	Repo string `json:"repo"`
	// Target names where it goes: "email:<recipient>" or "url:<URL>",
	// looked up in the repository's notify settings when it is sent, so
	// that credentials stay in the secrets file, not in the spool.
	Target string `json:"target"`
	// Body is what is sent: the mail message, or the JSON document.
	Body []byte `json:"body"`
	// Queued is when the push was told; Attempts, Next and LastError
	// are the delivery's history.
	Queued    time.Time `json:"queued"`
	Attempts  int       `json:"attempts"`
	Next      time.Time `json:"next"`
	LastError string    `json:"last_error,omitempty"`

	size int64 // of its file, in the queue's index
}

// Queue is the notify process's persistent queue: one file per delivery
// in a spool directory, written to a temporary name, synced and renamed,
// so that a delivery is either wholly in the queue or not at all, and
// the queue survives a crash or a restart of gotd. The deliveries'
// histories are kept in memory as well (their bodies are read when
// sent), so that looking for what is due reads no file. A Queue is
// safe for concurrent use by the goroutines of one process; one process
// at a time may own a spool directory.
type Queue struct {
	dir   string
	mu    sync.Mutex
	seq   uint64      // the last sequence number given
	index []*Delivery // queued, in order, without bodies
	bytes int64       // their files' sizes
}

// Bounds of the spool: a receiver down for a day behind a busy
// repository must not fill the disk. Deliveries past them are refused
// (ErrFull) and logged.
var (
	maxQueued      = 100_000
	maxQueuedBytes = int64(1 << 30)
)

// ErrFull is Add's error when the spool is at its bounds.
var ErrFull = errors.New("notify: spool full")

// ErrBadFile is the error of a delivery whose file does not decode.
var ErrBadFile = errors.New("damaged delivery")

// spoolSuffix ends the name of every queued delivery; temporary files
// start with tempPrefix.
const (
	spoolSuffix = ".json"
	tempPrefix  = ".tmp-"
	badSuffix   = ".bad"
)

// OpenQueue opens the spool directory dir, creating it (mode 0700) if it
// does not exist, removes temporary files a crash left behind and reads
// the queued deliveries. A file that does not decode (a damaged disk, a
// hand edit) is renamed with a ".bad" suffix, out of the queue, and
// reported in bad, so that one broken file does not stop the others.
func OpenQueue(dir string) (q *Queue, bad []error, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("notify: spool: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("notify: spool: %w", err)
	}
	q = &Queue{dir: dir}
	var seqs []uint64
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, tempPrefix) {
			os.Remove(filepath.Join(dir, name))
			continue
		}
		base, ok := strings.CutSuffix(name, spoolSuffix)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		if seq, err := strconv.ParseUint(base, 10, 64); err == nil {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	for _, seq := range seqs {
		q.seq = max(q.seq, seq)
		d, size, err := q.read(seq)
		if err != nil {
			bad = append(bad, err)
			continue
		}
		d.Body, d.size = nil, size
		q.index = append(q.index, d)
		q.bytes += size
	}
	return q, bad, nil
}

func (q *Queue) path(seq uint64) string {
	return filepath.Join(q.dir, fmt.Sprintf("%020d%s", seq, spoolSuffix))
}

// read decodes the file of delivery seq, moving it aside if it does not
// decode.
func (q *Queue) read(seq uint64) (*Delivery, int64, error) {
	p := q.path(seq)
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, 0, fmt.Errorf("notify: spool: %w", err)
	}
	d := new(Delivery)
	if err := json.Unmarshal(data, d); err != nil || d.Seq != seq {
		if err == nil {
			err = fmt.Errorf("sequence number %d in a file named %d", d.Seq, seq)
		}
		os.Rename(p, p+badSuffix)
		return nil, 0, fmt.Errorf("notify: spool: %s: %v; moved aside: %w", p, err, ErrBadFile)
	}
	return d, int64(len(data)), nil
}

// find returns the position of delivery seq in the index.
func (q *Queue) find(seq uint64) (int, bool) {
	return slices.BinarySearchFunc(q.index, seq, func(d *Delivery, seq uint64) int { return cmp.Compare(d.Seq, seq) })
}

// Add gives d the next sequence number and queues it durably.
func (q *Queue) Add(d *Delivery) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.index) >= maxQueued || q.bytes >= maxQueuedBytes {
		return ErrFull
	}
	q.seq++
	d.Seq = q.seq
	size, err := q.write(d)
	if err != nil {
		return err
	}
	q.index = append(q.index, d.entry(size))
	q.bytes += size
	return nil
}

// Update rewrites a queued delivery, after a failed attempt; d has its
// body (Load).
func (q *Queue) Update(d *Delivery) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	i, ok := q.find(d.Seq)
	if !ok {
		return fmt.Errorf("notify: spool: delivery %d is not queued", d.Seq)
	}
	size, err := q.write(d)
	if err != nil {
		return err
	}
	q.bytes += size - q.index[i].size
	q.index[i] = d.entry(size)
	return nil
}

// entry is d as the index keeps it: without its body.
func (d *Delivery) entry(size int64) *Delivery {
	e := *d
	e.Body, e.size = nil, size
	return &e
}

// write stores d under its sequence number: temporary file, sync,
// rename, sync of the directory. It returns the file's size.
func (q *Queue) write(d *Delivery) (int64, error) {
	data, err := json.Marshal(d)
	if err != nil {
		return 0, fmt.Errorf("notify: spool: %w", err)
	}
	f, err := os.CreateTemp(q.dir, tempPrefix)
	if err != nil {
		return 0, fmt.Errorf("notify: spool: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, q.path(d.Seq))
	}
	if err != nil {
		os.Remove(tmp)
		return 0, fmt.Errorf("notify: spool: %w", err)
	}
	return int64(len(data)), q.syncDir()
}

func (q *Queue) syncDir() error {
	dir, err := os.Open(q.dir)
	if err != nil {
		return fmt.Errorf("notify: spool: %w", err)
	}
	defer dir.Close()
	if err := dir.Sync(); err != nil {
		return fmt.Errorf("notify: spool: %w", err)
	}
	return nil
}

// Remove takes a delivery out of the queue: sent, or given up.
func (q *Queue) Remove(d *Delivery) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if i, ok := q.find(d.Seq); ok {
		q.bytes -= q.index[i].size
		q.index = slices.Delete(q.index, i, i+1)
	}
	if err := os.Remove(q.path(d.Seq)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("notify: spool: %w", err)
	}
	return q.syncDir()
}

// Len returns how many deliveries are queued.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.index)
}

// Pending returns the queued deliveries in order, without their bodies:
// copies, which the caller may change.
func (q *Queue) Pending() []*Delivery {
	q.mu.Lock()
	defer q.mu.Unlock()
	ds := make([]*Delivery, len(q.index))
	for i, e := range q.index {
		c := *e
		ds[i] = &c
	}
	return ds
}

// Load returns queued delivery d with its body, read from its file. A
// file that no longer decodes is moved aside and the delivery taken out
// of the queue (ErrBadFile).
func (q *Queue) Load(d *Delivery) (*Delivery, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	i, ok := q.find(d.Seq)
	if !ok {
		return nil, fmt.Errorf("notify: spool: delivery %d is not queued", d.Seq)
	}
	full, _, err := q.read(d.Seq)
	if errors.Is(err, ErrBadFile) {
		q.bytes -= q.index[i].size
		q.index = slices.Delete(q.index, i, i+1)
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	full.size = q.index[i].size
	return full, nil
}

// Retry policy: the first retry after retryFirst, each next one after
// twice as long as the one before, up to retryMax; a delivery still
// failing giveUpAfter after it was queued is given up.
const (
	retryFirst  = 10 * time.Second
	retryMax    = 30 * time.Minute
	giveUpAfter = 24 * time.Hour
)

// Failed records a failed attempt of d at now with err, and reports
// whether to try again (then d.Next says when) or give up.
func (d *Delivery) Failed(now time.Time, err error) (again bool) {
	d.Attempts++
	d.LastError = err.Error()
	wait := retryFirst
	for i := 1; i < d.Attempts && wait < retryMax; i++ {
		wait *= 2
	}
	wait = min(wait, retryMax)
	d.Next = now.Add(wait)
	return d.Next.Sub(d.Queued) <= giveUpAfter
}
