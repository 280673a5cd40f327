package upload

import (
	"context"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/walk"
	"gotd/internal/gittest"
	"gotd/internal/protocol/sideband"
)

// multiPackSource returns a generated repository of several packs with
// the multi-pack-index and bitmap C Git's multi-pack-index write
// --bitmap makes, and no pack bitmap.
func multiPackSource(t *testing.T, format string) string {
	t.Helper()
	src := source(t, format)
	gittest.Git(t, src, "repack", "-adq", "--no-write-bitmap-index")
	for i := range 3 {
		blob := strings.TrimSpace(gittest.GitInput(t, src, []byte("pushed "+strconv.Itoa(i)+"\n"), "hash-object", "-w", "--stdin"))
		tree := strings.TrimSpace(gittest.GitInput(t, src, []byte("100644 blob "+blob+"\tpushed.txt\n"), "mktree"))
		c := strings.TrimSpace(gittest.Git(t, src, "commit-tree", tree, "-p", "main", "-m", "pushed"))
		gittest.Git(t, src, "update-ref", "refs/heads/main", c)
		gittest.Git(t, src, "repack", "-dq") // one pack each
	}
	gittest.Git(t, src, "multi-pack-index", "write", "--bitmap")
	if bms, _ := filepath.Glob(filepath.Join(src, "objects", "pack", "*.bitmap")); len(bms) != 1 || !strings.Contains(bms[0], "multi-pack-index-") {
		t.Fatalf("bitmaps %v; want the multi-pack-index's alone", bms)
	}
	return src
}

// TestMidxBitmap: a fetch from a repository whose only bitmap is its
// multi-pack-index's (C Git's) lists objects with it, exactly those
// rev-list lists, and a full clone's pack holds every object.
func TestMidxBitmap(t *testing.T) {
	for _, format := range []string{"sha1", "sha256"} {
		t.Run(format, func(t *testing.T) {
			src := multiPackSource(t, format)
			r, req := cloneRequest(t, src)
			wk, bitmapped, done := openWalker(r, true)
			defer done()
			if wk.Bitmap == nil || bitmapped != nil {
				t.Fatalf("walker bitmap %v, bitmapped pack %v; want the multi-pack-index's and none", wk.Bitmap != nil, bitmapped != nil)
			}
			// Wants and haves: every branch, against an older commit.
			old := strings.TrimSpace(gittest.Git(t, src, "rev-parse", "main~5"))
			oldID, err := oid.ParseHexAny(old)
			if err != nil {
				t.Fatal(err)
			}
			for _, haves := range [][]oid.ID{nil, {oldID}} {
				var got []string
				err := wk.ObjectsFor(context.Background(), walk.Spec{Wants: req.Wants, Haves: haves}, func(id oid.ID, _ object.Type, _ uint32) error {
					got = append(got, id.String())
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				args := []string{"rev-list", "--objects", "--all"}
				if haves != nil {
					args = append(args, "^"+old)
				}
				var want []string
				for _, l := range strings.Split(strings.TrimSpace(gittest.Git(t, src, args...)), "\n") {
					want = append(want, strings.Fields(l)[0])
				}
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("haves %v: listed %d objects; rev-list %d", haves, len(got), len(want))
				}
			}

			pk, _ := sendOver(t, r, req, Framing{Sideband: sideband.MaxPacket64, Progress: true})
			dst := gittest.InitBare(t, format)
			gittest.GitInput(t, dst, pk, "index-pack", "--stdin", "--strict")
			if got, want := len(gittest.Objects(t, dst)), len(gittest.Objects(t, src)); got != want {
				t.Errorf("clone's pack holds %d objects; the repository %d", got, want)
			}
		})
	}
}
