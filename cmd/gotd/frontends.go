package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/crypto/ssh"

	"gotd/internal/daemon/config"
	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/role/parent"
)

// frontends binds the listening sockets of the configured network
// front-ends and reads the keys they need: the SSH host keys (made on
// first start) and the HTTPS certificates.
func frontends(cfg *config.Config, log *slog.Logger) ([]parent.Frontend, error) {
	var fes []parent.Frontend
	open := func(path string) (*os.File, error) {
		return os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	}
	if len(cfg.SSH) > 0 {
		files, err := bind(log, parent.RoleSSHD, cfg.SSH)
		if err != nil {
			return nil, err
		}
		for _, path := range cfg.SSHHostKeys {
			if err := makeHostKey(path, log); err != nil {
				return nil, err
			}
		}
		keys, err := parent.HostKeys(cfg, open)
		if err != nil {
			return nil, err
		}
		fes = append(fes, parent.Frontend{Role: parent.RoleSSHD, Via: ipc.ViaSSH, Listeners: files, Listens: cfg.SSH, Credentials: keys})
	}
	if len(cfg.Git) > 0 {
		files, err := bind(log, parent.RoleGitD, cfg.Git)
		if err != nil {
			return nil, err
		}
		fes = append(fes, parent.Frontend{Role: parent.RoleGitD, Via: ipc.ViaGit, Listeners: files, Listens: cfg.Git})
	}
	if len(cfg.HTTP) > 0 {
		files, err := bind(log, parent.RoleHTTPD, cfg.HTTP)
		if err != nil {
			return nil, err
		}
		fe := parent.Frontend{Role: parent.RoleHTTPD, Via: ipc.ViaHTTP, Listeners: files, Listens: cfg.HTTP}
		for i, l := range cfg.HTTP {
			if l.Certificate == "" {
				continue
			}
			c, err := parent.TLSCredential(l, i, open)
			if err != nil {
				return nil, err
			}
			fe.Credentials = append(fe.Credentials, c)
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

// makeHostKey makes a new SSH host key at path (and its public half in
// path.pub) when there is none, of the type its name says as
// ssh-keygen -A names them: ECDSA (P-256) for a name with "ecdsa", RSA
// (3072 bits) for "rsa", ed25519 otherwise.
func makeHostKey(path string, log *slog.Logger) error {
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		return err // there is one, checked as it is read
	}
	var priv crypto.Signer
	var err error
	switch base := filepath.Base(path); {
	case strings.Contains(base, "ecdsa"):
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case strings.Contains(base, "rsa"):
		priv, err = rsa.GenerateKey(rand.Reader, 3072)
	default:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		return err
	}
	block, err := ssh.MarshalPrivateKey(priv, "gotd host key")
	if err != nil {
		return err
	}
	key := pem.EncodeToMemory(block)
	if err := makeDirs(filepath.Dir(path)); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(key); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	sp, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		return err
	}
	if err := os.WriteFile(path+".pub", ssh.MarshalAuthorizedKey(sp), 0o644); err != nil {
		return err
	}
	log.Info("made a new SSH host key", "path", path, "type", sp.Type(), "fingerprint", ssh.FingerprintSHA256(sp))
	return nil
}
