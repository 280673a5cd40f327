package receive

import "golang.org/x/sys/unix"

// freeSpace returns the bytes an unprivileged user may still write on
// dir's file system.
func freeSpace(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.F_bavail * int64(st.F_bsize), nil
}
