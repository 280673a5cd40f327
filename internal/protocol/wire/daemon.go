package wire

import (
	"bytes"
	"errors"
)

// DaemonRequest is the first packet of a git:// connection
// (gitprotocol-pack(5), "Git Transport"):
// "git-upload-pack /path\0host=name\0\0version=2\0".
type DaemonRequest struct {
	Service string // "git-upload-pack", "git-receive-pack" or "git-upload-archive"
	Path    string
	Host    string // as sent, port included; "" if absent
	// Extra holds the parameters after the double NUL ("version=2").
	Extra []string
}

// ErrBadDaemonRequest is returned for a malformed git:// request.
var ErrBadDaemonRequest = errors.New("malformed git:// request")

// ParseDaemonRequest parses the payload of a git:// request packet.
func ParseDaemonRequest(p []byte) (DaemonRequest, error) {
	var req DaemonRequest
	p = bytes.TrimSuffix(p, []byte{'\n'}) // some clients end the path with LF and no host
	cmd, rest, _ := bytes.Cut(p, []byte{0})
	service, path, ok := bytes.Cut(cmd, []byte{' '})
	if !ok || len(path) == 0 || bytes.IndexByte(path, '\n') >= 0 {
		return req, ErrBadDaemonRequest
	}
	switch s := string(service); s {
	case "git-upload-pack", "git-receive-pack", "git-upload-archive":
		req.Service = s
	default:
		return req, ErrBadDaemonRequest
	}
	req.Path = string(path)
	if h, ok := bytes.CutPrefix(rest, []byte("host=")); ok {
		host, after, ok := bytes.Cut(h, []byte{0})
		if !ok || len(host) == 0 || bytes.ContainsAny(host, "\n ") {
			return req, ErrBadDaemonRequest
		}
		req.Host, rest = string(host), after
	}
	if len(rest) == 0 {
		return req, nil
	}
	// Extra parameters follow a second NUL, each NUL-terminated.
	if len(rest) < 2 || rest[0] != 0 || rest[len(rest)-1] != 0 {
		return req, ErrBadDaemonRequest
	}
	for _, kv := range bytes.Split(rest[1:len(rest)-1], []byte{0}) {
		if len(kv) == 0 {
			return req, ErrBadDaemonRequest
		}
		req.Extra = append(req.Extra, string(kv))
	}
	return req, nil
}
