package main

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"

	"gotd/internal/daemon/config"
)

// checkMirror checks what a pull mirror needs on the system, for gotd
// -n: its SSH key and known_hosts files are there, readable by u (nil
// when unknown), the key a private key without a passphrase; and u may
// write the repository, which its syncs do whatever its rules say.
func checkMirror(r *config.Repository, u *daemonUser) []string {
	m := r.Mirror
	var probs []string
	readable := func(what, path string) ([]byte, bool) {
		fi, err := os.Stat(path)
		if err != nil {
			probs = append(probs, fmt.Sprintf("mirror %s: %v", what, err))
			return nil, false
		}
		if u != nil && !u.may(fi, 0o4) {
			probs = append(probs, fmt.Sprintf("mirror %s: the daemon's user %s cannot read %s", what, u.name, path))
			return nil, false
		}
		data, err := os.ReadFile(path)
		if err != nil {
			probs = append(probs, fmt.Sprintf("mirror %s: %v", what, err))
			return nil, false
		}
		return data, true
	}
	if m.KeyFile != "" {
		if data, ok := readable("key", m.KeyFile); ok {
			if _, err := ssh.ParsePrivateKey(data); err != nil {
				probs = append(probs, fmt.Sprintf("mirror key: %s: %v", m.KeyFile, err))
			}
		}
	}
	if m.KnownHosts != "" {
		readable("known hosts", m.KnownHosts)
	}
	if u == nil || u.uid == 0 {
		return probs
	}
	for _, sub := range []string{"objects", "objects/pack", "refs"} {
		p := filepath.Join(r.Path, sub)
		if fi, err := os.Stat(p); err == nil && !u.may(fi, 0o3) {
			probs = append(probs, fmt.Sprintf("the daemon's user %s cannot write %s, which the mirror's syncs do", u.name, p))
			break
		}
	}
	return probs
}
