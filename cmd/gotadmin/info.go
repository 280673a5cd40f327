package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"gotd/internal/git/oid"
	"gotd/internal/git/refs"
)

// cmdInfo describes a repository: gotadmin info [-r repository-path].
func cmdInfo(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("info")
	rflag := fs.String("r", "", "repository path")
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

	fmt.Fprintf(stdout, "repository: %s\n", r.GitDir)
	fmt.Fprintf(stdout, "object format: %s\n", r.Format)
	head, err := r.Refs.Read("HEAD")
	switch {
	case err != nil:
		fmt.Fprintf(stdout, "HEAD: unreadable: %v\n", err)
	case head.Target != "":
		if _, err := r.Refs.Resolve("HEAD"); errors.Is(err, refs.ErrNotFound) {
			fmt.Fprintf(stdout, "HEAD: %s (unborn)\n", head.Target)
		} else {
			fmt.Fprintf(stdout, "HEAD: %s\n", head.Target)
		}
	default:
		fmt.Fprintf(stdout, "HEAD: %s (detached)\n", head.ID)
	}

	nrefs := 0
	if err := r.Refs.List("refs/", func(refs.Ref) error { nrefs++; return nil }); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "references: %d\n", nrefs)

	var nloose, looseSize int64
	err = r.Loose.ForEach(func(id oid.ID) error {
		nloose++
		hex := id.String()
		if st, err := os.Stat(filepath.Join(r.ObjectsDir(), hex[:2], hex[2:])); err == nil {
			looseSize += st.Size()
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "loose objects: %d\n", nloose)
	fmt.Fprintf(stdout, "loose objects size: %s\n", humanSize(looseSize))

	packs := r.Packs()
	var packed, packSize int64
	var bitmaps []string
	for _, p := range packs {
		packed += int64(p.Count())
		packSize += p.Size()
		bm := strings.TrimSuffix(p.Path(), ".pack") + ".bitmap"
		if _, err := os.Stat(bm); err == nil {
			bitmaps = append(bitmaps, filepath.Base(bm))
		}
	}
	fmt.Fprintf(stdout, "pack files: %d\n", len(packs))
	fmt.Fprintf(stdout, "packed objects: %d\n", packed)
	fmt.Fprintf(stdout, "packed size: %s\n", humanSize(packSize))
	fmt.Fprintf(stdout, "bitmaps: %s\n", yesList(bitmaps))
	fmt.Fprintf(stdout, "commit-graph: %s\n", yesNo(exists(filepath.Join(r.ObjectsDir(), "info", "commit-graph")) ||
		exists(filepath.Join(r.ObjectsDir(), "info", "commit-graphs", "commit-graph-chain"))))
	fmt.Fprintf(stdout, "multi-pack-index: %s\n", yesNo(exists(filepath.Join(r.PackDir(), "multi-pack-index"))))
	return nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func yesList(names []string) string {
	if len(names) == 0 {
		return "no"
	}
	return "yes (" + strings.Join(names, ", ") + ")"
}
