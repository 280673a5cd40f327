package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// makeDirs makes dir and the parents it lacks 0755 whatever the umask,
// as the daemon's own directories must be: the SSH host key's directory
// may also hold the notification spool (/var/lib/gotd by default on
// Linux), which the daemon's user must reach; the key itself is 0600.
// Directories that exist are left as they are.
func makeDirs(dir string) error {
	var missing []string
	for p := filepath.Clean(dir); ; p = filepath.Dir(p) {
		_, err := os.Lstat(p)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) || p == filepath.Dir(p) {
			return err
		}
		missing = append(missing, p)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Mkdir(missing[i], 0o755); err != nil {
			if errors.Is(err, fs.ErrExist) {
				continue // made meanwhile by someone else: theirs
			}
			return err
		}
		if err := os.Chmod(missing[i], 0o755); err != nil {
			return err
		}
	}
	return nil
}
