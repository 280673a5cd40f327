package parent

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gotd/internal/daemon/config"
	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/msg"
)

// upkeeping is a repository's upkeep state, by repository name: the
// process running on it, if any (one at a time), and the last run.
type upkeeping struct {
	proc *child
	// started is when the last run started, which the interval counts
	// from; outcome says how it ended, for gotctl info.
	started time.Time
	outcome string
	// failed says the last run failed; left is how many packs the
	// repository had when it ended (the interval's exception counts
	// from there), name and path which it is.
	failed     bool
	left       int
	name, path string
	done       *ipc.UpkeepDone // the running process's report, once sent
	// callers are gotctl upkeep connections answered when the run
	// ends.
	callers []*msg.Conn
}

// afterPush starts upkeep on the repository named name if a push left
// it past its thresholds: more packs, loose objects or loose references
// than its settings allow, upkeep on, none running there, and the
// interval passed since the last run.
//
// Within the interval, pushes that added packs past the threshold and
// past what the last run left start a geometric repack that never
// turns full: it costs what the small packs hold, while every pack
// more costs each fetch (a burst of 1,000 pushes left 986 packs for
// the interval). After a failed run everything waits for the interval.
func (d *daemon) afterPush(name string) {
	r := d.cfg.FindRepository(name)
	if r == nil || d.halted {
		return
	}
	set := d.cfg.UpkeepFor(r)
	u := d.upkeeps[r.Name]
	if set.Off || u != nil && u.proc != nil {
		return
	}
	packs, loose := storageCounts(r.Path)
	refs := looseRefs(r.Path, set.LooseRefs+1)
	if packs <= set.Packs && loose <= set.Loose && refs <= set.LooseRefs {
		return
	}
	due := u == nil || time.Since(u.started) >= set.Interval
	rolling := !due && !u.failed && packs > set.Packs && packs > u.left
	if !due && !rolling {
		return
	}
	d.log.Info("starting upkeep", "repo", r.Name, "packs", packs, "loose_objects", loose, "loose_refs", refs, "geometric_only", rolling)
	if err := d.startUpkeep(r, false, rolling); err != nil {
		d.log.Error("cannot start upkeep", "repo", r.Name, "err", err)
	}
}

// storageCounts counts a repository's packs, and estimates its loose
// objects from one of the 256 fan-out directories, as C Git's gc
// --auto does: reading them all would cost the parent a directory
// walk per push.
func storageCounts(path string) (packs, loose int) {
	if es, err := os.ReadDir(filepath.Join(path, "objects", "pack")); err == nil {
		for _, e := range es {
			if strings.HasSuffix(e.Name(), ".pack") && !strings.HasPrefix(e.Name(), ".") {
				packs++
			}
		}
	}
	if es, err := os.ReadDir(filepath.Join(path, "objects", "17")); err == nil {
		for _, e := range es {
			if !strings.HasPrefix(e.Name(), "tmp_") {
				loose++
			}
		}
	}
	return packs, loose * 256
}

// looseRefs counts the files under the repository's refs directory,
// up to limit: the parent only needs to know whether the threshold is
// passed, and stops reading there.
func looseRefs(path string, limit int) int {
	n := 0
	var walk func(dir string, depth int)
	walk = func(dir string, depth int) {
		es, err := os.ReadDir(dir)
		if err != nil {
			return
		}
		for _, e := range es {
			if n >= limit {
				return
			}
			switch {
			case strings.HasPrefix(e.Name(), ".") || strings.HasSuffix(e.Name(), ".lock"):
			case e.IsDir():
				// Reference names are bounded; so is the walk.
				if depth < 64 {
					walk(filepath.Join(dir, e.Name()), depth+1)
				}
			case e.Type().IsRegular():
				n++
			}
		}
	}
	walk(filepath.Join(path, "refs"), 0)
	return n
}

// startUpkeep starts an upkeep process on r, none running there: a
// full repack if full (gotctl upkeep), else a geometric one that turns
// full only if it leaves more packs than r's threshold and rolling is
// not set. The references are packed if more are loose than r's
// threshold, or at all with full.
func (d *daemon) startUpkeep(r *config.Repository, full, rolling bool) error {
	u := d.upkeeps[r.Name]
	if u == nil {
		u = &upkeeping{}
		d.upkeeps[r.Name] = u
	}
	ch, err := d.spawn(RoleUpkeep, 0, nil)
	if err != nil {
		return err
	}
	u.proc, u.started, u.done, u.name, u.path = ch, time.Now(), nil, r.Name, r.Path
	set := d.cfg.UpkeepFor(r)
	start := &ipc.UpkeepStart{Path: r.Path, Name: r.Name, Grace: uint64(set.Grace / time.Second), Full: full, Packs: uint32(set.Packs), LooseRefs: uint32(set.LooseRefs)}
	if rolling {
		start.Packs = 0 // geometric only, never turned full
	}
	if full {
		start.LooseRefs = 0
	}
	if err := ipc.Send(ch.ch, start, nil); err != nil {
		ch.kill()
		return fmt.Errorf("upkeep start: %w", err)
	}
	return nil
}

// upkeepOf returns the upkeep state whose process is ch, or nil.
func (d *daemon) upkeepOf(ch *child) *upkeeping {
	for _, u := range d.upkeeps {
		if u.proc == ch {
			return u
		}
	}
	return nil
}

// fromUpkeep handles the one message of an upkeep process.
func (d *daemon) fromUpkeep(u *upkeeping, raw msg.Msg) error {
	if u.done != nil {
		return fmt.Errorf("unexpected message %d", raw.Type)
	}
	var m ipc.UpkeepDone
	if _, err := ipc.Check(raw, &m, false); err != nil {
		return err
	}
	u.done = &m
	return nil
}

// upkeepExited records how an upkeep run ended and answers the gotctl
// callers waiting for it.
func (d *daemon) upkeepExited(u *upkeeping) {
	ch := u.proc
	u.proc = nil
	status, text := uint32(ipc.StatusOK), ""
	switch m := u.done; {
	case m == nil:
		status, text = ipc.StatusFailed, fmt.Sprintf("failed: the upkeep process exited without a report (%v)", ch.status)
		d.log.Error("upkeep process failed", "pid", ch.pid(), "err", ch.status)
		if r := d.cfg.FindRepository(u.name); r != nil {
			d.removeDeadLocks(r, "upkeep run")
		}
	case m.Status == ipc.UpkeepOK:
		text = fmt.Sprintf("done: %d objects packed, %d packs removed, %d unreachable objects removed, %d kept for their grace period", m.Objects, m.Packs, m.Pruned, m.Young)
		if m.Refs > 0 {
			text += fmt.Sprintf(", %d references packed", m.Refs)
		}
	case m.Status == ipc.UpkeepPrecious:
		text = "skipped: the repository's objects are precious (extensions.preciousObjects); it is left as it is"
	case m.Status == ipc.UpkeepBusy:
		status, text = ipc.StatusFailed, "busy: another repack of the repository is running, or pushes held its prune lock; nothing removed"
	default:
		status, text = ipc.StatusFailed, "failed: "+m.Message
	}
	u.outcome = u.started.UTC().Format(time.RFC3339) + " " + text
	u.failed = status != ipc.StatusOK || u.done != nil && u.done.Status == ipc.UpkeepPrecious
	u.left, _ = storageCounts(u.path)
	for _, c := range u.callers {
		if status == ipc.StatusOK {
			ipc.Send(c, &ipc.Text{Text: text + "\n"}, nil)
			ipc.Send(c, &ipc.Done{Status: status}, nil)
		} else {
			ipc.Send(c, &ipc.Done{Status: status, Message: truncate(text, ipc.MaxMessage)}, nil)
		}
		c.Close()
	}
	u.callers = nil
}

// upkeepNow runs upkeep on the repository named name for gotctl
// upkeep, whatever its thresholds and settings, and answers conn when
// the run ends; one already running answers it too.
func (d *daemon) upkeepNow(conn *msg.Conn, name string) {
	r := d.cfg.FindRepository(name)
	if r == nil {
		ipc.Send(conn, &ipc.Done{Status: ipc.StatusRefused, Message: "no such repository"}, nil)
		conn.Close()
		return
	}
	if u := d.upkeeps[r.Name]; u == nil || u.proc == nil {
		if err := d.startUpkeep(r, true, false); err != nil {
			d.log.Error("cannot start upkeep", "repo", r.Name, "err", err)
			ipc.Send(conn, &ipc.Done{Status: ipc.StatusFailed, Message: "cannot start upkeep"}, nil)
			conn.Close()
			return
		}
	}
	u := d.upkeeps[r.Name]
	u.callers = append(u.callers, conn)
}

// upkeepInfo describes the last upkeep runs, for gotctl info.
func (d *daemon) upkeepInfo(b *strings.Builder) {
	for _, r := range d.cfg.Repositories {
		u := d.upkeeps[r.Name]
		switch {
		case u == nil:
		case u.proc != nil:
			fmt.Fprintf(b, "upkeep %q: running since %s\n", r.Name, u.started.UTC().Format(time.RFC3339))
		case u.outcome != "":
			fmt.Fprintf(b, "upkeep %q: %s\n", r.Name, u.outcome)
		}
	}
}
