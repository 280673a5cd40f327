package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"runtime/debug"
	"time"

	"gotd/internal/engine/packer"
	"gotd/internal/engine/upkeep"
)

// cmdCleanup repacks and removes what is redundant or unreachable:
// gotadmin cleanup [-anpq] [-r repository-path], as OpenBSD gotadmin's
// cleanup. -a removes unreachable objects whatever their age, -n only
// says what would be removed, -p also removes pack indexes whose pack
// is gone, -q prints nothing but errors (and, with -n, the list).
func cmdCleanup(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("cleanup")
	all := fs.Bool("a", false, "remove unreachable objects regardless of their age")
	dry := fs.Bool("n", false, "show what would be removed, remove nothing")
	lonely := fs.Bool("p", false, "remove pack indexes without a pack file")
	quiet := fs.Bool("q", false, "suppress progress and summary output")
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

	say := func(format string, a ...any) {
		if !*quiet {
			fmt.Fprintf(stdout, format, a...)
		}
	}
	if *lonely {
		idxs, err := upkeep.RemoveLonelyIndexes(r, *dry)
		for _, idx := range idxs {
			if *dry {
				fmt.Fprintf(stdout, "would be removed: %s\n", filepath.Base(idx))
			} else {
				say("removed %s\n", filepath.Base(idx))
			}
		}
		if err != nil {
			return err
		}
	}
	defer debug.SetGCPercent(debug.SetGCPercent(repackGCPercent))
	rep, err := upkeep.Repack(ctx, r, upkeep.Options{
		PruneLoose: true,
		All:        *all,
		DryRun:     *dry,
		Pack:       packer.Options{Progress: packProgress(*quiet || *dry)},
		Own:        owner(r.GitDir),
	})
	if err != nil {
		return err
	}
	if *dry {
		for _, p := range rep.RemovedPacks {
			fmt.Fprintf(stdout, "would be repacked and removed: %s\n", filepath.Base(p))
		}
		for _, id := range rep.Pruned {
			fmt.Fprintf(stdout, "would be removed: %s\n", id)
		}
		say("%d reachable objects would be packed; %d unreachable objects (%s) would be removed, %d kept as younger than %s\n",
			rep.Objects, len(rep.Pruned), humanSize(rep.PrunedBytes), rep.Young, graceText(upkeep.DefaultGrace))
		return nil
	}
	if rep.Pack != "" {
		say("wrote %s (%d objects)\n", filepath.Base(rep.Pack), rep.Objects)
	}
	say("removed %d pack files and %d loose objects already packed\n", len(rep.RemovedPacks), rep.RedundantLoose)
	say("removed %d unreachable objects (%s)\n", len(rep.Pruned), humanSize(rep.PrunedBytes))
	if rep.Young > 0 {
		say("kept %d unreachable objects younger than %s (%d written out loose)\n", rep.Young, graceText(upkeep.DefaultGrace), rep.Loosened)
	}
	for _, p := range rep.KeptPacks {
		say("left %s alone: it has a .keep file\n", filepath.Base(p))
	}
	if g := rep.Graph; g != nil && g.Commits > 0 {
		say("wrote a commit-graph layer of %d commits (%d layers)\n", g.Commits, g.Layers)
	}
	return nil
}

// graceText says a grace period in days.
func graceText(d time.Duration) string {
	return fmt.Sprintf("%.0f days", d.Hours()/24)
}
