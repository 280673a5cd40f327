// Package notify is gotd's notify process: the parent tells it about
// every push that moved references, and it sends the notifications the
// repository's notify blocks ask for. It has network access and no
// repository access. Delivery (email and HTTP) is not built yet: each
// push is logged, so that the daemon's shape, channel and sandbox are
// in place for it, and Queue is the persistent queue (a spool
// directory) deliveries are to go through.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/msg"
)

// Main handles notifications until the parent's channel closes.
func Main(ctx context.Context, log *slog.Logger, parent *msg.Conn) error {
	for {
		var n ipc.Notification
		if _, err := ipc.Recv(parent, &n, false); err != nil {
			if ctx.Err() != nil || errors.Is(err, os.ErrClosed) {
				return nil // the daemon is stopping
			}
			return fmt.Errorf("notify: %w", err)
		}
		log.Info("push", "repo", n.Repo, "user", n.User, "updated", n.Updated)
	}
}
