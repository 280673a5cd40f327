package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"

	"gotd/internal/engine/packer"
	"gotd/internal/engine/upkeep"
)

// repackGCPercent is the garbage collector's target while a full
// repack runs. Most of its live heap is the repository's delta base
// cache, which holds no pointers, so collecting at a quarter of growth
// instead of the default doubling costs little CPU and keeps the peak
// near the live heap: on git.git, 682 MB of peak RSS instead of 822 MB
// for the same 13 s of CPU.
const repackGCPercent = 25

// cmdPack packs objects: gotadmin pack [-a] [-q] [-r repository-path].
// Without -a it packs the loose objects into a new pack. With -a it
// writes every object reachable from the references (and their recent
// reflog entries) into one pack with a reachability bitmap, then
// removes the packs and loose objects the new pack makes redundant and
// the packs' unreachable objects past the grace period (see
// upkeep.Repack); unreachable loose objects stay for cleanup.
func cmdPack(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("pack")
	all := fs.Bool("a", false, "pack all reachable objects into one pack, with a bitmap")
	quiet := fs.Bool("q", false, "suppress progress output")
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

	po := packer.Options{Progress: packProgress(*quiet)}
	if !*all {
		path, n, err := upkeep.PackLoose(ctx, r, po, owner(r.GitDir))
		if err != nil {
			return err
		}
		if n == 0 {
			fmt.Fprintln(stdout, "no loose objects to pack")
			return nil
		}
		fmt.Fprintf(stdout, "wrote %s (%d objects)\n", filepath.Base(path), n)
		return nil
	}
	defer debug.SetGCPercent(debug.SetGCPercent(repackGCPercent))
	rep, err := upkeep.Repack(ctx, r, upkeep.Options{Pack: po, Own: owner(r.GitDir)})
	if err != nil {
		return err
	}
	if rep.Pack == "" {
		fmt.Fprintln(stdout, "no reachable objects to pack")
	} else {
		fmt.Fprintf(stdout, "wrote %s (%d objects)\n", filepath.Base(rep.Pack), rep.Objects)
	}
	if g := rep.Graph; g != nil && g.Commits > 0 {
		fmt.Fprintf(stdout, "wrote a commit-graph layer of %d commits (%d layers)\n", g.Commits, g.Layers)
	}
	return nil
}

// packProgress returns the pack writer's progress function: C Git's
// lines on standard error, or nothing with quiet.
func packProgress(quiet bool) func(stage string, done, total int) {
	if quiet {
		return nil
	}
	return func(stage string, done, total int) {
		if done == total {
			fmt.Fprintf(os.Stderr, "\r%s: 100%% (%d/%d), done.\n", stage, done, total)
		} else if total > 0 && done%1000 == 0 {
			fmt.Fprintf(os.Stderr, "\r%s: %3d%% (%d/%d)", stage, done*100/total, done, total)
		}
	}
}
