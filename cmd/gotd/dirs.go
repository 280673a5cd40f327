package main

import "gotd/internal/daemon/files"

// makeDirs makes dir and the parents it lacks 0755 whatever the umask,
// as the daemon's own directories must be: the SSH host key's directory
// may also hold the notification spool (/var/lib/gotd by default on
// Linux), which the daemon's user must reach; the key itself is 0600.
// Directories that exist are left as they are.
func makeDirs(dir string) error { return files.MakeDirs(dir, 0o755) }
