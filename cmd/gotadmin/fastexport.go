package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"gotd/internal/engine/fastexport"
)

// cmdFastExport writes the history of references as a git fast-import
// stream on standard output: gotadmin fast-export [-q] [-r
// repository-path] [reference ...].
func cmdFastExport(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("fast-export")
	quiet := fs.Bool("q", false, "print no warnings")
	rflag := fs.String("r", "", "repository path")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	r, err := openRepo(*rflag)
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
