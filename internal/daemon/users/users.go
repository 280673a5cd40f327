// Package users reads the system's user and group databases
// (/etc/passwd and /etc/group, passwd(5) and group(5)) without cgo or
// NSS, so that a sandboxed process needs only those two files: auth
// names a client's user and its groups, the parent finds the account
// its children run as.
package users

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Files of the databases.
var (
	PasswdFile = "/etc/passwd"
	GroupFile  = "/etc/group"
)

// User is an account.
type User struct {
	Name     string
	UID, GID int
	Home     string
}

// Group is a group and its supplementary members.
type Group struct {
	Name    string
	GID     int
	Members []string
}

// maxFile bounds what is read of a database.
const maxFile = 64 << 20

// DB is the user and group databases opened once. A process that
// confines itself opens them first and reads from the descriptors
// afterwards: a database replaced in the meantime (useradd writes a
// new file and renames it into place) is a new file its sandbox would
// not let it open (issue 19). It reads them as they were when opened;
// the next process sees the new ones. A DB is used by one goroutine.
type DB struct {
	passwd, group *os.File
}

// Open opens PasswdFile and GroupFile.
func Open() (*DB, error) {
	p, err := os.Open(PasswdFile)
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	g, err := os.Open(GroupFile)
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("users: %w", err)
	}
	return &DB{passwd: p, group: g}, nil
}

// Close closes the databases.
func (db *DB) Close() error {
	return errors.Join(db.passwd.Close(), db.group.Close())
}

// ByUID returns the first account with uid, or nil.
func (db *DB) ByUID(uid int) (*User, error) {
	return lookupUser(db.passwd, func(_ string, id int) bool { return id == uid })
}

// Groups returns the groups of u: its primary group and every group
// listing it as a member.
func (db *DB) Groups(u *User) ([]Group, error) {
	return groups(db.group, u)
}

// withFile calls fn with the database file opened by name.
func withFile[T any](name string, fn func(f *os.File) (T, error)) (T, error) {
	f, err := os.Open(name)
	if err != nil {
		var zero T
		return zero, fmt.Errorf("users: %w", err)
	}
	defer f.Close()
	return fn(f)
}

// fields calls fn with the colon-separated fields of each line of the
// database f, read from its start, that has at least n of them.
func fields(f *os.File, n int, fn func(f []string) bool) error {
	sc := bufio.NewScanner(io.NewSectionReader(f, 0, maxFile))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || line[0] == '+' || line[0] == '-' {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) < n {
			continue
		}
		if !fn(f) {
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("users: %s: %w", f.Name(), err)
	}
	return nil
}

// lookupUser finds the first account match accepts.
func lookupUser(passwd *os.File, match func(name string, uid int) bool) (*User, error) {
	var u *User
	err := fields(passwd, 7, func(f []string) bool {
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil || !match(f[0], uid) {
			return true
		}
		u = &User{Name: f[0], UID: uid, GID: gid, Home: f[5]}
		return false
	})
	return u, err
}

// ByName returns the account named name, or nil.
func ByName(name string) (*User, error) {
	return withFile(PasswdFile, func(f *os.File) (*User, error) {
		return lookupUser(f, func(n string, _ int) bool { return n == name })
	})
}

// ByUID returns the first account with uid, or nil.
func ByUID(uid int) (*User, error) {
	return withFile(PasswdFile, func(f *os.File) (*User, error) {
		return lookupUser(f, func(_ string, id int) bool { return id == uid })
	})
}

// Groups returns the groups of u: its primary group and every group
// listing it as a member.
func Groups(u *User) ([]Group, error) {
	return withFile(GroupFile, func(f *os.File) ([]Group, error) { return groups(f, u) })
}

// GroupByName returns the group named name, or nil.
func GroupByName(name string) (*Group, error) {
	return withFile(GroupFile, func(f *os.File) (*Group, error) {
		var g *Group
		err := fields(f, 4, func(fs []string) bool {
			gid, err := strconv.Atoi(fs[2])
			if err != nil || fs[0] != name {
				return true
			}
			g = &Group{Name: fs[0], GID: gid}
			if fs[3] != "" {
				g.Members = strings.Split(fs[3], ",")
			}
			return false
		})
		return g, err
	})
}

func groups(group *os.File, u *User) ([]Group, error) {
	var gs []Group
	err := fields(group, 4, func(f []string) bool {
		gid, err := strconv.Atoi(f[2])
		if err != nil {
			return true
		}
		var members []string
		if f[3] != "" {
			members = strings.Split(f[3], ",")
		}
		in := gid == u.GID
		for _, m := range members {
			if m == u.Name {
				in = true
			}
		}
		if in {
			gs = append(gs, Group{Name: f[0], GID: gid, Members: members})
		}
		return true
	})
	return gs, err
}
