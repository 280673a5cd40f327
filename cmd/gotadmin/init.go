package main

import (
	"context"
	"io"

	"gotd/internal/git/oid"
	"gotd/internal/git/repo"
)

// cmdInit creates an empty bare repository: gotadmin init [-A sha1|sha256]
// [-b branch] [-s shared] repository-path. Without -s other users get
// no access to it.
func cmdInit(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("init")
	algo := fs.String("A", "sha1", "object format: sha1 or sha256")
	branch := fs.String("b", "main", "branch HEAD points at")
	shared := fs.String("s", "", "core.sharedRepository: group, all or an octal mode")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errUsage
	}
	format, err := oid.ParseFormat(*algo)
	if err != nil {
		return err
	}
	r, err := repo.Init(fs.Arg(0), repo.InitOptions{Format: format, Branch: *branch, Shared: *shared})
	if err != nil {
		return err
	}
	return r.Close()
}
