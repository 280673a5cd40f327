// Package fetch is gotd's fetch process, one per sync of a pull mirror
// (gotd.conf's "mirror from"): it fetches from the upstream, the one
// host and port its sandbox lets it reach, indexes the pack into the
// quarantine the parent made, checking every object, and hands the
// reference updates to session_write, which checks that each new value
// is there with everything it reaches (this process's word would not
// do, so it does not check that first), installs the pack and moves
// the references. It reads the repository and writes only in the
// quarantine.
package fetch

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"golang.org/x/crypto/ssh"

	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/msg"
	"gotd/internal/git/repo"
	"gotd/internal/protocol/receive"
	"gotd/internal/protocol/remote"
	"gotd/internal/protocol/wire"
)

// ioTimeout bounds each read and write of the upstream's connection.
const ioTimeout = 2 * time.Minute

// Main fetches from start's upstream into start.Quarantine and sends
// the outcome to writer, session_write's channel: the MirrorRefs and a
// MirrorFetched, or a Failed whose message says why for the operator.
// The sync is bounded by start.Timeout as a whole, the pack by
// start's limits. The error is writer's channel's only.
func Main(ctx context.Context, log *slog.Logger, start *ipc.MirrorStart, writer *msg.Conn, r *repo.Repo) error {
	log = log.With("repo", start.Name, "upstream", start.URL)
	began := time.Now()
	// The process ends with the fetch: the collector's target it sets
	// for a large pack needs no restoring.
	packObjects, _ := receive.GCForPack()
	opts := remote.FetchOptions{
		URL:  start.URL,
		Repo: r,
		Limits: wire.Limits{MaxPackSize: int64(start.MaxPackSize), MaxObjects: uint32(start.MaxObjects),
			MaxObjectSize: int64(start.MaxObjectSize)},
		Timeout:     time.Duration(start.Timeout) * time.Second,
		IOTimeout:   ioTimeout,
		MinFree:     int64(start.MinFree),
		Prune:       true,
		Log:         log,
		Progress:    func(m string) { log.Debug("upstream", "progress", m) },
		CA:          start.CA,
		PackObjects: packObjects,
	}
	if len(start.Namespaces) > 0 {
		opts.Take = func(name string) bool { return ipc.InNamespaces(name, start.Namespaces) }
	}
	if start.AuthUser != "" || start.AuthPassword != "" {
		opts.Auth = &remote.BasicAuth{User: start.AuthUser, Password: start.AuthPassword}
	}
	if start.KeyFile != "" || start.KnownHosts != "" || len(start.HostKeys) > 0 {
		opts.SSH = &remote.SSH{KeyFile: start.KeyFile, KnownHosts: start.KnownHosts}
		for _, k := range start.HostKeys {
			pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k))
			if err != nil {
				return fail(log, writer, fmt.Errorf("host key: %w", err))
			}
			opts.SSH.HostKeys = append(opts.SSH.HostKeys, pk)
		}
	}
	got, err := remote.FetchPack(ctx, opts, start.Quarantine)
	if err != nil {
		return fail(log, writer, err)
	}
	for _, u := range got.Updates {
		m := &ipc.MirrorRef{Name: u.Name}
		if !u.Old.IsNull() {
			m.Old = u.Old.Bytes()
		}
		if !u.New.IsNull() {
			m.New = u.New.Bytes()
		}
		if err := ipc.Send(writer, m, nil); err != nil {
			return fmt.Errorf("fetch: session_write: %w", err)
		}
	}
	done := &ipc.MirrorFetched{Head: got.Head}
	if p := got.Pack; p != nil {
		// The indexer writes only in the quarantine; session_write
		// checks that again.
		if filepath.Dir(p.PackPath) != start.Quarantine {
			return fail(log, writer, fmt.Errorf("pack indexed outside the quarantine: %s", p.PackPath))
		}
		done.PackIndexed = ipc.PackIndexed{Pack: p.PackPath, Index: p.IndexPath, Rev: p.RevPath, Count: p.Count,
			ThinBases: uint32(p.ThinBases), Checksum: p.Checksum}
	}
	log.Info("fetched", "updates", len(got.Updates), "objects", done.Count, "elapsed", time.Since(began).Round(time.Millisecond))
	if err := ipc.Send(writer, done, nil); err != nil {
		return fmt.Errorf("fetch: session_write: %w", err)
	}
	return nil
}

// fail tells session_write that the fetch failed: the error, clipped,
// is for the operator (the remote package quotes what the upstream
// said).
func fail(log *slog.Logger, writer *msg.Conn, err error) error {
	log.Warn("fetch failed", "err", err)
	text := err.Error()
	if len(text) > ipc.MaxMessage {
		text = text[:ipc.MaxMessage-3] + "..."
	}
	if err := ipc.Send(writer, &ipc.Failed{Message: text}, nil); err != nil {
		return fmt.Errorf("fetch: session_write: %w", err)
	}
	return nil
}
