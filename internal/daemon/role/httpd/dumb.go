package httpd

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"gotd/internal/daemon/frontend"
	"gotd/internal/daemon/gitcmd"
	"gotd/internal/daemon/ipc"
	"gotd/internal/protocol/dumb"
)

// dumbRoute maps the path of a GET of the dumb HTTP protocol
// (gitprotocol-http(5), "Dumb Clients"; GET only) to its repository and the
// file below it: REPO/info/refs (without ?service=, which parseRoute
// checks), REPO/HEAD, REPO/objects/info/…, REPO/objects/XX/… and
// REPO/objects/pack/…. ok is false for any other path. The file's
// name is checked by the session (protocol/dumb), not here.
func dumbRoute(p string) (rt route, ok bool) {
	for _, suffix := range []string{"/info/refs", "/HEAD"} {
		if strings.HasSuffix(p, suffix) {
			return route{repo: strings.TrimSuffix(p, suffix), file: suffix[1:], service: gitcmd.UploadPack, mode: ipc.ModeDumb}, true
		}
	}
	// Object and pack names hold no "/objects/": the last one
	// separates the repository's name from the file's.
	i := strings.LastIndex(p, "/objects/")
	if i < 0 || strings.Count(p[i+1:], "/") != 2 {
		return rt, false
	}
	return route{repo: p[:i], file: p[i+1:], service: gitcmd.UploadPack, mode: ipc.ModeDumb}, true
}

// checkDumb routes a dumb read, refusing what it cannot be.
func checkDumb(r *http.Request) (route, int) {
	rt, ok := dumbRoute(r.URL.Path)
	switch {
	case !ok:
		return rt, http.StatusNotFound
	case r.Method != http.MethodGet:
		return rt, http.StatusMethodNotAllowed
	}
	rt.repo = strings.Trim(rt.repo, "/")
	if rt.repo == "" || len(rt.repo) > ipc.MaxRepoName || len(rt.file) > dumb.MaxPath {
		return rt, http.StatusNotFound
	}
	return rt, 0
}

// serveDumb answers a dumb GET from the session's frames on mine:
// the file with its content type and length, or 404; a request the
// parent refused is answered as refused does.
func (srv *server) serveDumb(w http.ResponseWriter, r *http.Request, log *slog.Logger, rt route, account string, slot *frontend.Slot,
	st *frontend.Settings, lb *limitedBody, client *frontend.Client, mine *net.UnixConn) {
	h, err := dumb.ReadHeader(mine)
	if err != nil {
		done := client.Wait()
		if done.Status == ipc.StatusOK {
			log.Warn("dumb read: bad answer from the session", "err", err)
			fail(w, http.StatusInternalServerError, "internal server error")
			return
		}
		srv.refused(w, log, rt, account, st, lb, done, err)
		return
	}
	if account != "" {
		if err := slot.Become(account); err != nil {
			mine.Close()
			client.Wait()
			srv.s.Refused("connection refused: "+err.Error(), r.RemoteAddr, "user", account)
			w.Header().Set("Retry-After", "10")
			fail(w, http.StatusServiceUnavailable, err.Error())
			return
		}
	}
	if !h.Found {
		mine.Close()
		client.Wait()
		fail(w, http.StatusNotFound, "not found")
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", h.ContentType)
	hd.Set("Content-Length", strconv.FormatInt(h.Size, 10))
	hd.Set("X-Content-Type-Options", "nosniff")
	if h.Immutable {
		// Named by its content: as http-backend's hdr_cache_forever.
		hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		hd.Set("Cache-Control", "no-cache, max-age=0, must-revalidate")
		hd.Set("Pragma", "no-cache")
		hd.Set("Expires", "Fri, 01 Jan 1980 00:00:00 GMT")
	}
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		io.CopyN(w, mine, h.Size)
		mine.Close() // a client gone early stops the session
	}()
	done := client.WaitWhile(copied, func() { rc.SetWriteDeadline(time.Now()) })
	if done.Status != ipc.StatusOK {
		log.Info("dumb read failed", "repo", rt.repo, "file", rt.file, "message", done.Message)
	}
}
