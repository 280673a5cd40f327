package parent

import (
	"errors"
	"fmt"
	"time"

	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/msg"
	"gotd/internal/daemon/role/metrics"
)

// startMetrics starts the metrics process on the sockets of the
// "listen metrics" lines, if there are any.
func (d *daemon) startMetrics() error {
	if len(d.opts.Metrics) == 0 {
		return nil
	}
	p, err := d.spawn(RoleMetrics, 0, d.opts.Metrics)
	if err != nil {
		return err
	}
	d.metrics = p
	return nil
}

// fromMetrics answers the metrics process's one message, a scrape,
// with the counts of the Recorder and the daemon's state now.
func (d *daemon) fromMetrics(raw msg.Msg) error {
	var m ipc.MetricsScrape
	if _, err := ipc.Check(raw, &m, false); err != nil {
		return err
	}
	queued := int(d.nstate.queued) + len(d.nstate.backlog)
	snap := d.recorder.Snapshot(m.Seq, !d.halted, len(d.clients), queued)
	if err := ipc.Send(d.metrics.ch, snap, nil); err != nil {
		return fmt.Errorf("parent: metrics: %w", err)
	}
	return nil
}

// metricsExited starts the metrics process again after it died.
func (d *daemon) metricsExited() {
	if d.halted {
		return
	}
	d.log.Error("metrics exited: starting it again", "err", d.metrics.status)
	d.afterDelay(event{restartMetrics: true})
}

// restartMetrics starts the metrics process again, unless the daemon
// is stopping or one runs.
func (d *daemon) restartMetrics() {
	if d.halted || (d.metrics != nil && !d.metrics.exited) {
		return
	}
	if err := d.startMetrics(); err != nil {
		d.log.Error("cannot start metrics", "err", err)
		d.afterDelay(event{restartMetrics: true})
	}
}

// sessionStats keeps a session's report of its request for the
// metrics, counted when the client is done.
func (d *daemon) sessionStats(c *client, raw msg.Msg) error {
	if c.state != stateServing || c.stats != nil {
		return errors.New("session stats out of turn")
	}
	var m ipc.SessionStats
	if _, err := ipc.Check(raw, &m, false); err != nil {
		return err
	}
	// session_read lists and sends; session_write receives, or lists
	// for an HTTP advertisement.
	ok := m.Kind != ipc.KindPush && (m.Kind == ipc.KindArchive) == (c.rec.mode == ipc.ModeArchive)
	if c.write {
		ok = m.Kind == ipc.KindPush || (m.Kind == ipc.KindLsRefs && c.connect.Mode == ipc.ModeAdvertise)
	}
	if !ok {
		return fmt.Errorf("session stats of kind %d from the wrong session", m.Kind)
	}
	c.stats = &m
	return nil
}

// countDone counts c, which is done, with the outcome it was told.
func (d *daemon) countDone(c *client, done *ipc.Done) {
	d.recorder.Done(metrics.Request{Via: c.connect.Via, Write: c.write, Archive: c.rec.mode == ipc.ModeArchive, Stats: c.stats,
		Status: done.Status, Reason: done.Reason, Duration: time.Since(c.since)})
}
