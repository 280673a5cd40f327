// Package auth is gotd's auth process, one per connection: it checks
// that the connection's peer is the user the parent names, looks the
// user and its groups up, evaluates the repository's permit and deny
// rules (the last match wins, no match means no access) and answers
// once. It reads only the user and group databases, opened before it
// confined itself.
//
// For a client of httpd it is the verifier instead: the parent sends
// it the password or token the client presented and the account's
// hashes, and it answers whether they match. The hashes never reach
// httpd, and auth has no network.
package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"

	"golang.org/x/crypto/bcrypt"

	"gotd/internal/daemon/config"
	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/msg"
	"gotd/internal/daemon/users"
)

// Main answers the parent's one request, looking the user up in db,
// which it closes; or, for a client of httpd, checks its secret.
func Main(ctx context.Context, log *slog.Logger, parent *msg.Conn, db *users.DB) error {
	defer db.Close()
	raw, err := parent.Recv()
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	if raw.Type == ipc.TypeVerify {
		var v ipc.Verify
		if _, err := ipc.Check(raw, &v, false); err != nil {
			return fmt.Errorf("auth: %w", err)
		}
		return ipc.Send(parent, &ipc.Verdict{OK: Verify(&v)}, nil)
	}
	var req ipc.AuthRequest
	f, err := ipc.Check(raw, &req, true)
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	conn := msg.FromFile(f)
	defer conn.Close()
	// The parent has this from listen; the kernel says it again, so
	// that neither of them can make a client someone else.
	uid, _, _, err := conn.PeerCred()
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	if uid != req.UID {
		return fmt.Errorf("auth: peer is uid %d, not %d", uid, req.UID)
	}
	id, err := identity(db, int(req.UID))
	if err != nil {
		return err
	}
	repo := &config.Repository{Name: req.Repo}
	for _, r := range req.Rules {
		repo.Rules = append(repo.Rules, config.Rule{Deny: r.Deny, Write: r.Write, Ident: r.Ident})
	}
	access := repo.Access(id)
	log.Debug("access", "user", id.User, "uid", id.UID, "repo", req.Repo, "access", access)
	res := &ipc.AuthResult{Access: uint32(access), User: id.User}
	if req.Groups && access >= config.Read {
		if len(id.Groups) > ipc.MaxGroups || len(id.GIDs) > ipc.MaxGroups || ipc.GroupBytes(id.Groups) > ipc.MaxGroupBytes {
			// The push policy could not be matched against them all:
			// denied rather than let a rule naming one be missed.
			log.Warn("access denied: the user's groups are too many for the push policy", "user", id.User, "groups", len(id.GIDs))
			res.Access = uint32(config.Denied)
		} else {
			res.Groups = id.Groups
			for _, gid := range id.GIDs {
				res.GIDs = append(res.GIDs, uint32(gid))
			}
		}
	}
	return ipc.Send(parent, res, nil)
}

// identity is who uid is: its name and its groups. A uid without an
// account matches only rules naming it by number.
func identity(db *users.DB, uid int) (config.Identity, error) {
	id := config.Identity{UID: uid}
	u, err := db.ByUID(uid)
	if err != nil {
		return id, fmt.Errorf("auth: %w", err)
	}
	if u == nil {
		id.User = strconv.Itoa(uid)
		return id, nil
	}
	id.User = u.Name
	gs, err := db.Groups(u)
	if err != nil {
		return id, fmt.Errorf("auth: %w", err)
	}
	for _, g := range gs {
		id.Groups = append(id.Groups, g.Name)
		id.GIDs = append(id.GIDs, g.GID)
	}
	if len(gs) == 0 {
		id.GIDs = []int{u.GID}
	}
	return id, nil
}

// hashes counts the bcrypt comparisons Verify made, for tests.
var hashes atomic.Int64

// Verify reports whether v.Secret is one of v.Tokens or, with
// v.Password, the password of v.Hash. Every call makes exactly one
// bcrypt comparison with v.Hash, matched or not, and compares against
// every token: its cost does not tell whether the account exists, has
// a password, or has tokens.
func Verify(v *ipc.Verify) bool {
	sum := sha256.Sum256([]byte(v.Secret))
	presented := []byte("sha256:" + hex.EncodeToString(sum[:]))
	token := 0
	for _, t := range v.Tokens {
		token |= subtle.ConstantTimeCompare([]byte(t), presented)
	}
	hashes.Add(1)
	password := bcrypt.CompareHashAndPassword([]byte(v.Hash), []byte(v.Secret)) == nil
	return token == 1 || (v.Password && password)
}
