package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"

	"gotd/internal/engine/fastimport"
)

// cmdFastImport reads a git fast-import stream from standard input into
// the repository: gotadmin fast-import [-fqv] [-r repository-path].
// The objects go into one new pack; the references are updated once
// the whole stream has been read.
func cmdFastImport(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("fast-import")
	force := fs.Bool("f", false, "update branches that would not fast-forward")
	quiet := fs.Bool("q", false, "print no statistics")
	rflag := fs.String("r", "", "repository path")
	verify := fs.Bool("v", false, "verify the new pack with the indexer before installing it")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return errUsage
	}
	r, err := openRepo(*rflag)
	if err != nil {
		return err
	}
	defer r.Close()
	bw := bufio.NewWriter(stdout)
	defer bw.Flush()
	st, err := fastimport.Import(ctx, r, os.Stdin, fastimport.Options{
		Force:    *force,
		Verify:   *verify,
		Progress: progressFlusher{bw},
		Warn:     func(msg string) { fmt.Fprintf(os.Stderr, "gotadmin: %s\n", msg) },
	})
	if st != nil && !*quiet {
		fmt.Fprintf(os.Stderr, "%d blobs, %d trees, %d commits, %d tags; %d objects written; %d references updated\n",
			st.Blobs, st.Trees, st.Commits, st.Tags, st.Written, st.Refs)
	}
	return err
}

// progressFlusher writes the stream's progress lines at once.
type progressFlusher struct{ w *bufio.Writer }

func (p progressFlusher) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	if err == nil {
		err = p.w.Flush()
	}
	return n, err
}
