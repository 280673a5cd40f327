package interop

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gotd/internal/git/repo"
	"gotd/internal/protocol/pktline"
	"gotd/internal/protocol/receive"
	"gotd/internal/protocol/upload"
	"gotd/internal/protocol/wire"
)

// server is a git:// server on a loopback port serving the bare
// repositories under root, for reading and writing.
type server struct {
	root string
	addr string
	ln   net.Listener
	wg   sync.WaitGroup
	log  *slog.Logger

	mu     sync.Mutex
	errs   []error
	pushes []*receive.Result
}

func startServer(t *testing.T, root string) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{root: root, addr: ln.Addr().String(), ln: ln,
		log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				if err := s.serve(c); err != nil {
					s.mu.Lock()
					s.errs = append(s.errs, err)
					s.mu.Unlock()
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

// url returns the git:// URL of repository name.
func (s *server) url(name string) string { return "git://" + s.addr + "/" + name }

// serve handles one connection: the git:// request, then the service.
func (s *server) serve(c net.Conn) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	k, p, err := pktline.NewReader(c).Read()
	if err != nil || k != pktline.Data {
		return errors.New("no git:// request")
	}
	req, err := wire.ParseDaemonRequest(p)
	if err != nil {
		return err
	}
	name := strings.TrimPrefix(req.Path, "/")
	if strings.Contains(name, "..") {
		return errors.New("bad path")
	}
	r, err := repo.Open(filepath.Join(s.root, name), repo.Options{})
	if err != nil {
		wire.SendErr(pktline.NewWriter(c), wire.Errorf("no such repository"))
		return err
	}
	defer r.Close()
	version := wire.ParseVersion(strings.Join(req.Extra, ":"))
	switch req.Service {
	case "git-upload-pack":
		_, err = upload.Serve(ctx, c, c, upload.Options{Repo: r, Version: version, Log: s.log, Filter: true, Wants: upload.WantReachable})
	case "git-receive-pack":
		var res *receive.Result
		res, err = receive.Serve(ctx, c, c, receive.Options{Repo: r, Version: version, Log: s.log})
		s.mu.Lock()
		s.pushes = append(s.pushes, res)
		s.mu.Unlock()
	default:
		err = errors.New("unsupported service")
	}
	return err
}

// errors returns the errors sessions ended with so far.
func (s *server) sessionErrors() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.errs...)
}
