package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"gotd/internal/engine/fastexport"
	"gotd/internal/git/repo"
)

// exportDeltaCache bounds the delta bases fast-export keeps. History
// is read oldest first, while packs store the newest version of a file
// whole and older ones as deltas against it: each blob read resolves a
// chain that the next version of the file shares, so the cache decides
// how often chains are rebuilt. On git.git, 24 MiB cost 39 s of CPU and
// 64 MiB 31 s (git fast-export: 34 s, with its 96 MiB default).
const exportDeltaCache = 64 << 20

// exportGCPercent is the garbage collector's target during an export.
// The live heap is mostly the delta base cache and the marks, neither
// of which churns much; collecting at half growth rather than at
// doubling keeps the peak near C Git's for a few percent more of CPU.
const exportGCPercent = 50

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
	defer debug.SetGCPercent(debug.SetGCPercent(exportGCPercent))
	opts := fastexport.Options{Refs: fs.Args()}
	if !*quiet {
		opts.Warn = func(msg string) { fmt.Fprintf(os.Stderr, "gotadmin: warning: %s\n", msg) }
	}
	return fastexport.Export(ctx, r, stdout, opts)
}
