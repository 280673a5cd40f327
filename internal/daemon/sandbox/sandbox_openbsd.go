//go:build openbsd

package sandbox

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// Apply confines the process with unveil and pledge.
func Apply(p Policy) (Report, error) {
	for _, d := range p.ReadDirs {
		if err := unix.Unveil(d, "r"); err != nil {
			return Report{}, fmt.Errorf("sandbox %s: unveil %s: %w", p.Role, d, err)
		}
	}
	for _, f := range p.ReadFiles {
		if err := unix.Unveil(f, "r"); err != nil {
			return Report{}, fmt.Errorf("sandbox %s: unveil %s: %w", p.Role, f, err)
		}
	}
	for _, d := range p.WriteDirs {
		if err := unix.Unveil(d, "rwc"); err != nil {
			return Report{}, fmt.Errorf("sandbox %s: unveil %s: %w", p.Role, d, err)
		}
	}
	if p.AnyPath {
		if err := unix.Unveil("/", "rwc"); err != nil {
			return Report{}, fmt.Errorf("sandbox %s: unveil /: %w", p.Role, err)
		}
	}
	for _, f := range p.ExecFiles {
		if err := unix.Unveil(f, "rx"); err != nil {
			return Report{}, fmt.Errorf("sandbox %s: unveil %s: %w", p.Role, f, err)
		}
	}
	if err := unix.UnveilBlock(); err != nil {
		return Report{}, fmt.Errorf("sandbox %s: unveil: %w", p.Role, err)
	}
	promises := []string{"stdio", "recvfd", "sendfd"}
	if len(p.ReadDirs)+len(p.ReadFiles)+len(p.WriteDirs) > 0 || p.AnyPath {
		promises = append(promises, "rpath")
	}
	if len(p.WriteDirs) > 0 || p.AnyPath {
		promises = append(promises, "wpath", "cpath", "fattr", "flock")
	}
	if p.Sockets {
		promises = append(promises, "inet", "unix", "dns")
	} else if p.Pairs || p.Accept {
		promises = append(promises, "inet") // accept(2) on the sockets it holds
	}
	if p.Exec {
		promises = append(promises, "proc", "exec", "id")
	}
	if err := unix.PledgePromises(strings.Join(promises, " ")); err != nil {
		return Report{}, fmt.Errorf("sandbox %s: pledge: %w", p.Role, err)
	}
	return Report{Filesystem: true, Syscalls: true}, nil
}
