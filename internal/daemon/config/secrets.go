package config

import (
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
)

// Secrets is a parsed gotd-secrets.conf: credentials for HTTP
// notifications, by label.
type Secrets struct {
	Auth map[string]*AuthSecret
	HMAC map[string]string
	// Passwords (bcrypt hashes) and Tokens (SHA-256 hashes) of the
	// front-ends' accounts, by account name.
	Passwords map[string]string
	Tokens    map[string][]string
	// File is the file's name, and lines the line of each account's
	// first "password" or "token" entry (keyed "password NAME",
	// "token NAME"), for warnings about them.
	File  string
	lines map[string]int
}

// where is "file:line" of an account's entry of kind ("password",
// "token"), or the file's name when the line is unknown.
func (s *Secrets) where(kind, account string) string {
	if n, ok := s.lines[kind+" "+account]; ok {
		return fmt.Sprintf("%s:%d", s.File, n)
	}
	return s.File
}

// AuthSecret is an "auth" entry.
type AuthSecret struct{ User, Password string }

// ParseSecretsFile reads a secrets file, which must be owned by root
// (user and group) and not writable by its group nor accessible to
// others, as gotd-secrets.conf(5) requires. checkOwner false skips the
// ownership check (tests, and gotd run by an ordinary user). The file
// must not be a symbolic link.
func ParseSecretsFile(path string, checkOwner bool) (*Secrets, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	return ReadSecrets(f, path, checkOwner)
}

// ReadSecrets reads and parses the secrets file open as f, named path
// in messages, from its start, and checks its owner and mode as
// ParseSecretsFile does. The caller closes f. A reload reads the file
// from a descriptor gotctl opened as root (the daemon's user may not
// open it).
func ReadSecrets(f *os.File, path string, checkOwner bool) (*Secrets, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	if checkOwner {
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || st.Uid != 0 || st.Gid != 0 {
			return nil, fmt.Errorf("%s: must be owned by root:root", path)
		}
		if fi.Mode().Perm()&0o037 != 0 {
			return nil, fmt.Errorf("%s: must not be writable by its group or accessible to others", path)
		}
	}
	data, err := ReadAll(f, MaxFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ParseSecrets(path, data)
}

// MaxFile bounds the configuration and secrets files a reload reads.
const MaxFile = 16 << 20

// ReadAll reads f from its start (a descriptor passed by gotctl may
// have been read by it), at most max bytes.
func ReadAll(f *os.File, max int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(io.NewSectionReader(f, 0, max+1), max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("larger than %d bytes", max)
	}
	return data, nil
}

// ParseSecrets parses secrets: one entry per line, "auth LABEL user
// USER password PASSWORD", "hmac LABEL SECRET", "password ACCOUNT
// BCRYPT-HASH" or "token ACCOUNT sha256:HEX"; blank lines and lines
// starting with '#' are ignored; words may be quoted with ' or " and
// use backslash escapes.
func ParseSecrets(file string, data []byte) (*Secrets, error) {
	s := &Secrets{Auth: map[string]*AuthSecret{}, HMAC: map[string]string{},
		Passwords: map[string]string{}, Tokens: map[string][]string{}, File: file, lines: map[string]int{}}
	var errs []string
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		words, err := splitWords(line)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s:%d: %v", file, n, err))
			continue
		}
		if len(words) == 0 || strings.HasPrefix(words[0], "#") {
			continue
		}
		switch {
		case words[0] == "auth" && len(words) == 6 && words[2] == "user" && words[4] == "password":
			if _, dup := s.Auth[words[1]]; dup {
				errs = append(errs, fmt.Sprintf("%s:%d: duplicate auth entry %s", file, n, words[1]))
			}
			s.Auth[words[1]] = &AuthSecret{User: words[3], Password: words[5]}
		case words[0] == "hmac" && len(words) == 3:
			if _, dup := s.HMAC[words[1]]; dup {
				errs = append(errs, fmt.Sprintf("%s:%d: duplicate hmac entry %s", file, n, words[1]))
			}
			s.HMAC[words[1]] = words[2]
		case words[0] == "password" && len(words) == 3:
			if _, dup := s.Passwords[words[1]]; dup {
				errs = append(errs, fmt.Sprintf("%s:%d: duplicate password for %s", file, n, words[1]))
			}
			if err := checkPasswordHash(words[2]); err != nil {
				errs = append(errs, fmt.Sprintf("%s:%d: %v", file, n, err))
			}
			s.Passwords[words[1]] = words[2]
			s.lines["password "+words[1]] = n
		case words[0] == "token" && len(words) == 3:
			if err := checkTokenHash(words[2]); err != nil {
				errs = append(errs, fmt.Sprintf("%s:%d: %v", file, n, err))
			}
			if _, ok := s.lines["token "+words[1]]; !ok {
				s.lines["token "+words[1]] = n
			}
			s.Tokens[words[1]] = append(s.Tokens[words[1]], words[2])
		default:
			errs = append(errs, fmt.Sprintf("%s:%d: syntax error", file, n))
		}
	}
	if len(errs) > 0 {
		return nil, &Error{Problems: errs}
	}
	return s, nil
}

// splitWords splits a line into blank-separated words with quoting.
func splitWords(line string) ([]string, error) {
	var words []string
	var b strings.Builder
	inWord := false
	var quote byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case c == '\\' && i+1 < len(line) && quote != '\'':
			i++
			b.WriteByte(line[i])
			inWord = true
		case quote != 0:
			b.WriteByte(c)
		case c == '"' || c == '\'':
			quote, inWord = c, true
		case c == ' ' || c == '\t' || c == '\r':
			if inWord {
				words = append(words, b.String())
				b.Reset()
				inWord = false
			}
		default:
			b.WriteByte(c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quoted string")
	}
	if inWord {
		words = append(words, b.String())
	}
	return words, nil
}
