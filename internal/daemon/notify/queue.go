package notify

import (
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
}

// Queue is the notify process's persistent queue: one file per delivery
// in a spool directory, written to a temporary name, synced and renamed,
// so that a delivery is either wholly in the queue or not at all, and
// the queue survives a crash or a restart of gotd. A Queue is safe for
// concurrent use by the goroutines of one process; one process at a time
// may own a spool directory.
type Queue struct {
	dir string
	mu  sync.Mutex
	seq uint64 // the last sequence number given
}

// spoolSuffix ends the name of every queued delivery; temporary files
// start with tempPrefix.
const (
	spoolSuffix = ".json"
	tempPrefix  = ".tmp-"
	badSuffix   = ".bad"
)

// OpenQueue opens the spool directory dir, creating it (mode 0700) if it
// does not exist, and removes temporary files a crash left behind.
func OpenQueue(dir string) (*Queue, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("notify: spool: %w", err)
	}
	q := &Queue{dir: dir}
	names, err := q.names()
	if err != nil {
		return nil, err
	}
	if len(names) > 0 {
		q.seq = names[len(names)-1]
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("notify: spool: %w", err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	return q, nil
}

// names returns the sequence numbers of the queued deliveries, in order.
func (q *Queue) names() ([]uint64, error) {
	ents, err := os.ReadDir(q.dir)
	if err != nil {
		return nil, fmt.Errorf("notify: spool: %w", err)
	}
	var seqs []uint64
	for _, e := range ents {
		base, ok := strings.CutSuffix(e.Name(), spoolSuffix)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		if seq, err := strconv.ParseUint(base, 10, 64); err == nil {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	return seqs, nil
}

func (q *Queue) path(seq uint64) string {
	return filepath.Join(q.dir, fmt.Sprintf("%020d%s", seq, spoolSuffix))
}

// Add gives d the next sequence number and queues it durably.
func (q *Queue) Add(d *Delivery) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.seq++
	d.Seq = q.seq
	return q.write(d)
}

// Update rewrites a queued delivery, after a failed attempt.
func (q *Queue) Update(d *Delivery) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, err := os.Stat(q.path(d.Seq)); err != nil {
		return fmt.Errorf("notify: spool: delivery %d: %w", d.Seq, err)
	}
	return q.write(d)
}

// write stores d under its sequence number: temporary file, sync,
// rename, sync of the directory.
func (q *Queue) write(d *Delivery) error {
	data, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("notify: spool: %w", err)
	}
	f, err := os.CreateTemp(q.dir, tempPrefix)
	if err != nil {
		return fmt.Errorf("notify: spool: %w", err)
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
		return fmt.Errorf("notify: spool: %w", err)
	}
	return q.syncDir()
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
	if err := os.Remove(q.path(d.Seq)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("notify: spool: %w", err)
	}
	return q.syncDir()
}

// Len returns how many deliveries are queued.
func (q *Queue) Len() (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	seqs, err := q.names()
	return len(seqs), err
}

// Pending returns the queued deliveries in order. A file that does not
// decode (a damaged disk, a hand edit) is renamed with a ".bad" suffix,
// out of the queue, and reported in bad, so that one broken file does
// not stop the others.
func (q *Queue) Pending() (ds []*Delivery, bad []error, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	seqs, err := q.names()
	if err != nil {
		return nil, nil, err
	}
	for _, seq := range seqs {
		p := q.path(seq)
		data, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("notify: spool: %w", err)
		}
		d := new(Delivery)
		if err := json.Unmarshal(data, d); err != nil || d.Seq != seq {
			if err == nil {
				err = fmt.Errorf("sequence number %d in a file named %d", d.Seq, seq)
			}
			bad = append(bad, fmt.Errorf("notify: spool: %s: %v; moved aside", p, err))
			os.Rename(p, p+badSuffix)
			continue
		}
		ds = append(ds, d)
	}
	return ds, bad, nil
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
