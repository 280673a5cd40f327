// Package gitcmd parses the command a Git client asks an SSH server to
// run ("git-upload-pack '/project.git'"), as gotsh receives it from
// sshd and the built-in SSH front-end from its exec request. Only the
// two Git services are accepted, with one repository argument quoted
// the way Git quotes it; anything else is refused without echoing it.
package gitcmd

import (
	"errors"
	"strings"
)

// Services.
const (
	UploadPack    = "git-upload-pack"
	ReceivePack   = "git-receive-pack"
	UploadArchive = "git-upload-archive" // git archive --remote
)

// ErrRefused is returned for any command that is not a Git service
// request; its text is safe to show the client.
var ErrRefused = errors.New("only git-upload-pack, git-receive-pack and git-upload-archive are allowed")

// maxRepoName bounds the repository argument.
const maxRepoName = 1024

// Parse splits command into the service and the repository name. It
// accepts "git-upload-pack ARG", "git-receive-pack ARG",
// "git-upload-archive ARG" and the forms "git upload-pack ARG", "git
// receive-pack ARG", "git upload-archive ARG", where ARG is one word
// in single quotes (with '\” for a quote, as Git writes it) or a bare
// word without shell metacharacters. The name loses a leading "/" and a
// "~/" (clients send both), and must be a relative path without "..",
// empty components or control characters.
func Parse(command string) (service, repo string, err error) {
	rest, ok := "", false
	for _, prefix := range []string{UploadPack, ReceivePack, UploadArchive, "git upload-pack", "git receive-pack", "git upload-archive"} {
		if r, found := strings.CutPrefix(command, prefix+" "); found {
			service, rest, ok = "git-"+strings.TrimPrefix(strings.TrimPrefix(prefix, "git-"), "git "), r, true
			break
		}
	}
	if !ok {
		return "", "", ErrRefused
	}
	arg, err := unquote(strings.TrimLeft(rest, " "))
	if err != nil {
		return "", "", err
	}
	repo, err = cleanName(arg)
	if err != nil {
		return "", "", err
	}
	return service, repo, nil
}

// unquote reads exactly one shell word.
func unquote(s string) (string, error) {
	if s == "" {
		return "", ErrRefused
	}
	if s[0] != '\'' {
		// A bare word: no shell metacharacters, "~" only as "~/".
		if strings.ContainsAny(strings.TrimPrefix(s, "~/"), " \t\n'\"\\$`;&|<>()*?[]{}!#~") {
			return "", ErrRefused
		}
		return s, nil
	}
	var b strings.Builder
	for i := 1; ; {
		j := strings.IndexByte(s[i:], '\'')
		if j < 0 {
			return "", ErrRefused
		}
		b.WriteString(s[i : i+j])
		i += j + 1
		if i == len(s) {
			return b.String(), nil
		}
		// '\'' inside the argument.
		if !strings.HasPrefix(s[i:], "\\''") {
			return "", ErrRefused
		}
		b.WriteByte('\'')
		i += 3
	}
}

// cleanName turns the argument into a repository name.
func cleanName(arg string) (string, error) {
	bad := errors.New("invalid repository name")
	if len(arg) > maxRepoName {
		return "", bad
	}
	name := strings.TrimPrefix(arg, "~/")
	name = strings.TrimPrefix(name, "/")
	name = strings.TrimSuffix(name, "/")
	if name == "" {
		return "", bad
	}
	for _, c := range name {
		if c < ' ' || c == 0x7f {
			return "", bad
		}
	}
	for _, part := range strings.Split(name, "/") {
		if part == "" || part == "." || part == ".." {
			return "", bad
		}
	}
	return name, nil
}
