package refs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"gotd/internal/git/oid"
)

// Bounds of what Update writes into a reflog entry; longer values are
// cut (at a UTF-8 boundary).
const (
	MaxLogName    = 128
	MaxLogEmail   = 128
	MaxLogMessage = 256
)

// maxLogLine bounds the part of a reflog line ReadLog keeps: the rest
// of a longer line (a long message another writer left) is skipped and
// the entry's message is cut.
const maxLogLine = 4096

// Who is the identity and reason recorded in the reflog entry of an
// update (gitrepository-layout(5), "logs/refs"). The zero Who records
// nothing.
type Who struct {
	// Name and Email identify who made the change; they are cleaned
	// of control characters and angle brackets and cut to MaxLogName
	// and MaxLogEmail bytes when written. Email may be empty.
	Name, Email string
	// When is the time of the change; the zero time is the time of
	// writing. It is written in UTC.
	When time.Time
	// Message says how the reference changed (such as
	// "push via ssh: forced-update"); whitespace runs become one
	// space and it is cut to MaxLogMessage bytes.
	Message string
}

// IsZero reports whether w records nothing.
func (w Who) IsZero() bool { return w.Name == "" && w.Email == "" && w.Message == "" }

// LogEntry is one line of a reflog.
type LogEntry struct {
	// Old and New are the reference's values before and after the
	// change; the null id is "did not exist" (New null: deleted).
	Old, New oid.ID
	// Name and Email are the identity written with the entry.
	Name, Email string
	// When is the entry's time, in the time zone it was written with.
	When time.Time
	// Message is the entry's reason, "" for none.
	Message string
}

// appendLogLine appends the reflog line of a change of a reference
// from old to new by w to dst, in C Git's format:
// "<old> <new> <name> <<email>> <seconds> <zone>\t<message>\n".
func appendLogLine(dst []byte, old, new oid.ID, w Who) []byte {
	when := w.When
	if when.IsZero() {
		when = time.Now()
	}
	dst = old.AppendHex(dst)
	dst = append(dst, ' ')
	dst = new.AppendHex(dst)
	dst = append(dst, ' ')
	dst = append(dst, cleanIdent(w.Name, MaxLogName)...)
	dst = append(dst, " <"...)
	dst = append(dst, cleanIdent(w.Email, MaxLogEmail)...)
	dst = append(dst, "> "...)
	dst = strconv.AppendInt(dst, when.Unix(), 10)
	dst = append(dst, " +0000"...)
	if msg := cleanMessage(w.Message); msg != "" {
		dst = append(dst, '\t')
		dst = append(dst, msg...)
	}
	return append(dst, '\n')
}

// cleanIdent keeps a name or an email from ending the identity early
// or breaking the line, as C Git's ident code strips them: control
// characters and '<', '>' are dropped, surrounding spaces trimmed.
func cleanIdent(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f || r == '<' || r == '>' || r == utf8.RuneError {
			return -1
		}
		return r
	}, s)
	return cut(strings.TrimSpace(s), max)
}

// cleanMessage makes one line of a reflog message: runs of whitespace
// and control characters become one space, as C Git's copy_reflog_msg
// does, and the result is cut to MaxLogMessage bytes.
func cleanMessage(s string) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r == utf8.RuneError {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
		if b.Len() > MaxLogMessage {
			break
		}
	}
	return cut(b.String(), MaxLogMessage)
}

// cut returns s cut to at most max bytes at a UTF-8 boundary.
func cut(s string, max int) string {
	if len(s) <= max {
		return s
	}
	for max > 0 && !utf8.RuneStart(s[max]) {
		max--
	}
	return s[:max]
}

// ParseLogLine parses one reflog line, without its newline, as C Git
// reads it (refs/files-backend.c, show_one_reflog_ent): two ids of
// format f, an identity "name <email>", a time in seconds and a zone,
// then, after a tab, the message. It allocates only the strings it
// returns.
func ParseLogLine(f oid.Format, line []byte) (LogEntry, error) {
	var e LogEntry
	hs := f.HexSize()
	if len(line) < 2*hs+2 || line[hs] != ' ' || line[2*hs+1] != ' ' {
		return e, errors.New("refs: reflog entry: bad ids")
	}
	var err error
	if e.Old, err = oid.ParseHexBytes(f, line[:hs]); err != nil {
		return e, errors.New("refs: reflog entry: bad old id")
	}
	if e.New, err = oid.ParseHexBytes(f, line[hs+1:2*hs+1]); err != nil {
		return e, errors.New("refs: reflog entry: bad new id")
	}
	rest := line[2*hs+2:]
	if i := bytes.IndexByte(rest, '\t'); i >= 0 {
		e.Message = string(rest[i+1:])
		rest = rest[:i]
	}
	lt := bytes.IndexByte(rest, '<')
	gt := bytes.IndexByte(rest, '>')
	if lt < 0 || gt < lt {
		return e, errors.New("refs: reflog entry: bad identity")
	}
	e.Name = string(bytes.TrimSpace(rest[:lt]))
	e.Email = string(rest[lt+1 : gt])
	fields := bytes.Fields(rest[gt+1:])
	if len(fields) != 2 {
		return e, errors.New("refs: reflog entry: bad date")
	}
	secs, err := strconv.ParseInt(string(fields[0]), 10, 64)
	if err != nil || secs < 0 || secs > 1<<40 {
		return e, errors.New("refs: reflog entry: bad date")
	}
	zone := fields[1]
	if len(zone) != 5 || zone[0] != '+' && zone[0] != '-' {
		return e, errors.New("refs: reflog entry: bad time zone")
	}
	hhmm, err := strconv.Atoi(string(zone[1:]))
	if err != nil || hhmm%100 >= 60 {
		return e, errors.New("refs: reflog entry: bad time zone")
	}
	off := (hhmm/100*60 + hhmm%100) * 60
	if zone[0] == '-' {
		off = -off
	}
	e.When = time.Unix(secs, 0).In(time.FixedZone(string(zone), off))
	return e, nil
}

// LogPath returns the path of the reflog of name ("HEAD" or a name
// CheckName accepts) in the store.
func (s *Store) LogPath(name string) (string, error) {
	if err := checkReadName(name); err != nil {
		return "", err
	}
	return filepath.Join(s.gitDir, "logs", filepath.FromSlash(name)), nil
}

// ReadLog calls fn with each entry of name's reflog, oldest first, and
// stops at fn's first error, which it returns. A reference without a
// reflog has no entries. A line that does not parse is passed to bad,
// if set, with its number (from 1) and skipped; a line longer than
// 4 KiB is read in its first 4 KiB (its message is cut). The file is
// read through a 4 KiB buffer whatever its size, and fn's entry is
// fn's to keep.
func (s *Store) ReadLog(name string, fn func(LogEntry) error, bad func(line int, err error)) error {
	path, err := s.LogPath(name)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("refs: read reflog of %s: %w", name, err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return fmt.Errorf("refs: reflog of %s is not a file", name)
	}
	return readLog(f, s.format, fn, bad)
}

// readLog is ReadLog's loop over r.
func readLog(r io.Reader, f oid.Format, fn func(LogEntry) error, bad func(int, error)) error {
	br := bufio.NewReaderSize(r, maxLogLine)
	for n := 1; ; n++ {
		line, err := br.ReadSlice('\n')
		long := errors.Is(err, bufio.ErrBufferFull)
		if len(line) == 0 && err != nil {
			if err == io.EOF {
				return nil
			}
			return fmt.Errorf("refs: read reflog: %w", err)
		}
		line = bytes.TrimSuffix(line, []byte{'\n'})
		e, perr := ParseLogLine(f, line)
		if long {
			// The rest of the line is skipped.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			if err != nil && err != io.EOF {
				return fmt.Errorf("refs: read reflog: %w", err)
			}
		}
		if perr != nil {
			if bad != nil {
				bad(n, perr)
			}
		} else if err := fn(e); err != nil {
			return err
		}
		if err == io.EOF {
			return nil
		}
	}
}

// LogExists reports whether name has a reflog, as "git reflog exists"
// does.
func (s *Store) LogExists(name string) bool {
	path, err := s.LogPath(name)
	if err != nil {
		return false
	}
	st, err := os.Lstat(path)
	return err == nil && st.Mode().IsRegular()
}

// logAppend is a reflog line appended by a transaction, undone if the
// transaction fails before it changes a reference.
type logAppend struct {
	path string
	size int64 // the file's size before; -1: created
	dirs []string
}

// undo truncates the reflog back to its size before, or removes it and
// the directories made for it.
func (a *logAppend) undo() {
	if a.size >= 0 {
		// ftruncate(2), not truncate(2): the sandboxes allow the one
		// on a descriptor.
		if f, err := os.OpenFile(a.path, os.O_WRONLY|syscall.O_NOFOLLOW, 0); err == nil {
			f.Truncate(a.size)
			f.Close()
		}
		return
	}
	os.Remove(a.path)
	for i := len(a.dirs) - 1; i >= 0; i-- {
		if os.Remove(a.dirs[i]) != nil {
			break
		}
	}
}

// appendLog appends line to the reflog of name, creating it and its
// directories. A reflog left by a deleted reference that stands in
// the way (logs/refs/heads/a when refs/heads/a/b is written, or a
// directory of such reflogs at logs/refs/heads/a/b) is removed first:
// the reference it tells of cannot exist beside name. The file is
// synced before appendLog returns.
func (s *Store) appendLog(name string, line []byte) (*logAppend, error) {
	path := filepath.Join(s.gitDir, "logs", filepath.FromSlash(name))
	a := &logAppend{path: path, size: -1}
	for tries := 0; ; tries++ {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|syscall.O_NOFOLLOW, 0)
		if err == nil {
			st, err := f.Stat()
			if err != nil || !st.Mode().IsRegular() {
				f.Close()
				return nil, fmt.Errorf("refs: reflog of %s is not a file", name)
			}
			a.size = st.Size()
			return a, s.writeLog(f, a, line)
		}
		if tries > 3 {
			return nil, fmt.Errorf("refs: append to the reflog of %s: %w", name, err)
		}
		switch {
		case errors.Is(err, fs.ErrNotExist):
			f, err := s.createLog(a)
			if errors.Is(err, fs.ErrExist) {
				continue // created meanwhile
			}
			if err != nil {
				return nil, fmt.Errorf("refs: create the reflog of %s: %w", name, err)
			}
			return a, s.writeLog(f, a, line)
		case errors.Is(err, syscall.EISDIR):
			// Reflogs of deleted references below name.
			if err := os.RemoveAll(path); err != nil {
				return nil, fmt.Errorf("refs: reflog of %s: %w", name, err)
			}
		case errors.Is(err, syscall.ENOTDIR):
			s.removeLogInPath(name)
		default:
			return nil, fmt.Errorf("refs: append to the reflog of %s: %w", name, err)
		}
	}
}

// writeLog writes line to f, syncs and closes it; on error what was
// appended is undone.
func (s *Store) writeLog(f *os.File, a *logAppend, line []byte) error {
	if err := writeSync(f, line, true); err != nil {
		a.undo()
		return fmt.Errorf("refs: append to %s: %w", a.path, err)
	}
	return nil
}

// createLog creates a's reflog file and its missing directories,
// removing reflog files that stand where a directory must be.
func (s *Store) createLog(a *logAppend) (*os.File, error) {
	logs := filepath.Join(s.gitDir, "logs")
	rel, err := filepath.Rel(logs, filepath.Dir(a.path))
	if err != nil {
		return nil, err
	}
	dir := logs
	if err := s.Shared.Mkdir(dir); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	for _, comp := range strings.Split(rel, string(filepath.Separator)) {
		dir = filepath.Join(dir, comp)
		err := s.Shared.Mkdir(dir)
		if errors.Is(err, fs.ErrExist) {
			st, serr := os.Lstat(dir)
			if serr == nil && st.Mode().IsRegular() {
				// The reflog of a deleted reference.
				if err := os.Remove(dir); err != nil {
					return nil, err
				}
				err = s.Shared.Mkdir(dir)
			} else if serr == nil && !st.IsDir() {
				return nil, fmt.Errorf("%s is not a directory", dir)
			}
		}
		switch {
		case err == nil:
			a.dirs = append(a.dirs, dir)
		case !errors.Is(err, fs.ErrExist):
			return nil, err
		}
	}
	// Made private, then given the repository's permissions, which the
	// umask does not narrow.
	f, err := os.OpenFile(a.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, err
	}
	if err := s.Shared.Chmod(f, 0o666); err != nil {
		f.Close()
		os.Remove(a.path)
		return nil, err
	}
	return f, nil
}

// removeLogInPath removes the reflog files standing where directories
// of name's reflog path must be.
func (s *Store) removeLogInPath(name string) {
	for i := 0; i < len(name); i++ {
		if name[i] != '/' {
			continue
		}
		p := filepath.Join(s.gitDir, "logs", filepath.FromSlash(name[:i]))
		if st, err := os.Lstat(p); err == nil && st.Mode().IsRegular() {
			os.Remove(p)
		}
	}
}

// maxLogDepth bounds how deep ListLogs descends below logs/refs/.
const maxLogDepth = 64

// ListLogs calls fn with the name of every reflog in the store, those
// of deleted references included: "HEAD" if it has one, then the
// names under logs/refs/ in lexical order. Files whose names
// CheckName refuses, symbolic links and anything deeper than 64
// directories are skipped, so each name passed may be given to
// ReadLog. It stops at fn's first error and returns it.
func (s *Store) ListLogs(fn func(name string) error) error {
	if s.LogExists("HEAD") {
		if err := fn("HEAD"); err != nil {
			return err
		}
	}
	return s.listLogDir(filepath.Join(s.gitDir, "logs", "refs"), "refs", 0, fn)
}

func (s *Store) listLogDir(dir, prefix string, depth int, fn func(string) error) error {
	if depth > maxLogDepth {
		return nil
	}
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist) && depth == 0:
		return nil
	case err != nil:
		return fmt.Errorf("refs: list reflogs: %w", err)
	}
	for _, e := range ents {
		name := prefix + "/" + e.Name()
		switch {
		case e.IsDir():
			if err := s.listLogDir(filepath.Join(dir, e.Name()), name, depth+1, fn); err != nil {
				return err
			}
		case e.Type().IsRegular() && CheckName(name) == nil:
			if err := fn(name); err != nil {
				return err
			}
		}
	}
	return nil
}
