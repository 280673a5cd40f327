package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"

	"gotd/internal/daemon/config"
	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/parent"
)

// frontends binds the listening sockets of the configured network
// front-ends and reads the keys they need: the SSH host key (made on
// first start) and the HTTPS certificates.
func frontends(cfg *config.Config, log *slog.Logger) ([]parent.Frontend, error) {
	var fes []parent.Frontend
	if len(cfg.SSH) > 0 {
		files, err := bind(log, parent.RoleSSHD, cfg.SSH)
		if err != nil {
			return nil, err
		}
		key, err := hostKey(cfg.SSHHostKey, log)
		if err != nil {
			return nil, err
		}
		fes = append(fes, parent.Frontend{Role: parent.RoleSSHD, Via: ipc.ViaSSH, Listeners: files,
			Credentials: []ipc.Credential{{Kind: ipc.CredHostKey, Key: key}}})
	}
	if len(cfg.Git) > 0 {
		files, err := bind(log, parent.RoleGitD, cfg.Git)
		if err != nil {
			return nil, err
		}
		fes = append(fes, parent.Frontend{Role: parent.RoleGitD, Via: ipc.ViaGit, Listeners: files})
	}
	if len(cfg.HTTP) > 0 {
		files, err := bind(log, parent.RoleHTTPD, cfg.HTTP)
		if err != nil {
			return nil, err
		}
		fe := parent.Frontend{Role: parent.RoleHTTPD, Via: ipc.ViaHTTP, Listeners: files}
		for i, l := range cfg.HTTP {
			if l.Certificate == "" {
				continue
			}
			cert, err := os.ReadFile(l.Certificate)
			if err != nil {
				return nil, err
			}
			key, err := os.ReadFile(l.Key)
			if err != nil {
				return nil, err
			}
			if len(cert)+len(key) > ipc.MaxPEM {
				return nil, fmt.Errorf("%s, %s: certificate and key larger than %d bytes", l.Certificate, l.Key, ipc.MaxPEM)
			}
			fe.Credentials = append(fe.Credentials, ipc.Credential{Kind: ipc.CredTLS, Listener: uint32(i), Cert: cert, Key: key})
		}
		fes = append(fes, fe)
	}
	return fes, nil
}

// bind listens on each address and returns the sockets as files for
// the front-end's process.
func bind(log *slog.Logger, role string, ls []config.Listen) ([]*os.File, error) {
	var files []*os.File
	for _, l := range ls {
		nl, err := net.Listen("tcp", l.Addr())
		if err != nil {
			return nil, err
		}
		log.Info("listening", "front-end", role, "address", nl.Addr().String())
		f, err := nl.(*net.TCPListener).File()
		nl.Close()
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}

// hostKey reads the SSH host key at path, or makes a new ed25519 key
// there (and its public half in path.pub) when there is none.
func hostKey(path string, log *slog.Logger) ([]byte, error) {
	fi, err := os.Lstat(path)
	switch {
	case err == nil && !fi.Mode().IsRegular():
		return nil, fmt.Errorf("%s: not a regular file", path)
	case err == nil:
		if fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("%s: SSH host key accessible to others", path)
		}
		key, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		if _, err := ssh.ParsePrivateKey(key); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return key, nil
	case !errors.Is(err, os.ErrNotExist):
		return nil, err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "gotd host key")
	if err != nil {
		return nil, err
	}
	key := pem.EncodeToMemory(block)
	if err := makeDirs(filepath.Dir(path)); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(key); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path+".pub", ssh.MarshalAuthorizedKey(sp), 0o644); err != nil {
		return nil, err
	}
	log.Info("made a new SSH host key", "path", path, "fingerprint", ssh.FingerprintSHA256(sp))
	return key, nil
}
