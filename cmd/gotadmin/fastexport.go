package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"gotd/internal/engine/fastexport"
	"gotd/internal/git/repo"
)

// exportDeltaCache bounds the delta bases fast-export keeps.
const exportDeltaCache = 24 << 20

// cmdFastExport writes the history of references as a git fast-import
// stream on standard output: gotadmin fast-export [-q] [-r
// repository-path] [reference ...].
func cmdFastExport(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("fast-export")
	quiet := fs.Bool("q", false, "print no warnings")
	rflag := fs.String("r", "", "repository path")
	err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	path := *rflag
	if path == "" {
		if path, err = os.Getwd(); err != nil {
			return err
		}
	}
	// History is read in order, each delta base soon after the last:
	// a smaller cache of bases costs little time and much memory.
	r, err := repo.Open(path, repo.Options{DeltaCacheSize: exportDeltaCache})
	if err != nil {
		return err
	}
	defer r.Close()
	opts := fastexport.Options{Refs: fs.Args()}
	if !*quiet {
		opts.Warn = func(msg string) { fmt.Fprintf(os.Stderr, "gotadmin: warning: %s\n", msg) }
	}
	return fastexport.Export(ctx, r, stdout, opts)
}
