//go:build linux

package sandbox

import (
	"fmt"

	"github.com/landlock-lsm/go-landlock/landlock"
	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
)

// anyPathAccess is every filesystem right but execution.
const anyPathAccess = ll.AccessFSWriteFile | ll.AccessFSReadFile | ll.AccessFSReadDir |
	ll.AccessFSRemoveDir | ll.AccessFSRemoveFile | ll.AccessFSMakeChar | ll.AccessFSMakeDir |
	ll.AccessFSMakeReg | ll.AccessFSMakeSock | ll.AccessFSMakeFifo | ll.AccessFSMakeBlock |
	ll.AccessFSMakeSym | ll.AccessFSRefer | ll.AccessFSTruncate | ll.AccessFSIoctlDev

// Apply confines the calling process (all its threads) by p. Facilities
// the kernel lacks are listed in the Report; an error means a facility
// that exists could not be applied, and the process must not go on.
func Apply(p Policy) (Report, error) {
	var rep Report
	rules := []landlock.Rule{}
	if len(p.ReadDirs) > 0 {
		rules = append(rules, landlock.RODirs(p.ReadDirs...))
	}
	if len(p.WriteDirs) > 0 {
		rules = append(rules, landlock.RWDirs(p.WriteDirs...).WithRefer())
	}
	if len(p.ReadFiles) > 0 {
		rules = append(rules, landlock.ROFiles(p.ReadFiles...).IgnoreIfMissing())
	}
	if p.AnyPath {
		rules = append(rules, landlock.PathAccess(anyPathAccess, "/"))
	}
	if len(p.ExecFiles) > 0 {
		rules = append(rules, landlock.PathAccess(ll.AccessFSExecute|ll.AccessFSReadFile, p.ExecFiles...))
	}
	if p.Sockets {
		for _, port := range p.ConnectTCP {
			rules = append(rules, landlock.ConnectTCP(port))
		}
	}
	abi := landlockABI()
	switch {
	case abi <= 0:
		rep.Missing = append(rep.Missing, "landlock")
	default:
		cfg := landlock.V7.BestEffort()
		var err error
		if p.Sockets && p.ConnectTCP == nil {
			err = cfg.RestrictPaths(rules...)
		} else {
			err = cfg.Restrict(rules...)
			rep.TCP = abi >= 4
		}
		if err != nil {
			return rep, fmt.Errorf("sandbox %s: landlock: %w", p.Role, err)
		}
		rep.Filesystem = true
		if abi < 4 && !(p.Sockets && p.ConnectTCP == nil) {
			rep.Missing = append(rep.Missing, "landlock TCP rules (ABI 4)")
		}
	}
	ok, err := applySeccomp(p)
	if err != nil {
		return rep, fmt.Errorf("sandbox %s: seccomp: %w", p.Role, err)
	}
	rep.Syscalls = ok
	if !ok {
		rep.Missing = append(rep.Missing, "seccomp")
	}
	return rep, nil
}
