// Package users reads the system's user and group databases
// (/etc/passwd and /etc/group, passwd(5) and group(5)) without cgo or
// NSS, so that a sandboxed process needs only those two files: auth
// names a client's user and its groups, the parent finds the account
// its children run as.
package users

import (
	"bufio"
	"bytes"
	"fmt"
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

// fields calls fn with the colon-separated fields of each line of file
// that has at least n of them.
func fields(file string, n int, fn func(f []string) bool) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("users: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
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
	return sc.Err()
}

// lookupUser finds the first account match accepts.
func lookupUser(match func(name string, uid int) bool) (*User, error) {
	var u *User
	err := fields(PasswdFile, 7, func(f []string) bool {
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
	return lookupUser(func(n string, _ int) bool { return n == name })
}

// ByUID returns the first account with uid, or nil.
func ByUID(uid int) (*User, error) {
	return lookupUser(func(_ string, id int) bool { return id == uid })
}

// Groups returns the groups of u: its primary group and every group
// listing it as a member.
func Groups(u *User) ([]Group, error) {
	var gs []Group
	err := fields(GroupFile, 4, func(f []string) bool {
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
