package upload

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/pack"
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
			if wk.Bitmap == nil || bitmapped == nil || bitmapped.Count() >= wk.Bitmap.Lookup().Count() {
				t.Fatalf("walker bitmap %v, leading pack %v; want the multi-pack-index's and its preferred pack", wk.Bitmap != nil, bitmapped != nil)
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

// TestMidxLeadingPack: a clone of a repository whose only bitmap is its
// multi-pack-index's gets the entries of the multi-pack-index's
// preferred pack copied as stored at the start of its pack, the other
// objects after them, and C Git indexes it strictly with every object
// of the repository. A client without ofs-delta, and a fetch that does
// not want the whole preferred pack, get a pack built object by object
// that C Git indexes too.
func TestMidxLeadingPack(t *testing.T) {
	for _, format := range []string{"sha1", "sha256"} {
		t.Run(format, func(t *testing.T) {
			src := multiPackSource(t, format)
			gittest.Git(t, src, "tag", "-a", "-m", "old", "old-tag", "main~3")
			r, req := cloneRequest(t, src)
			_, lead, done := openWalker(r, true)
			done()
			if lead == nil {
				t.Fatal("no leading pack")
			}
			stored, err := lead.Bytes(pack.HeaderSize, uint64(lead.Size())-uint64(len(lead.Checksum())))
			if err != nil {
				t.Fatal(err)
			}
			prog := Framing{Sideband: sideband.MaxPacket64, Progress: true}
			check := func(name string, req *PackRequest, wantReused bool) {
				t.Helper()
				pk, reused := sendOver(t, r, req, prog)
				if reused != wantReused {
					t.Errorf("%s: pack reused %v; want %v", name, reused, wantReused)
				}
				if wantReused && (len(pk) < pack.HeaderSize+len(stored) || !bytes.Equal(pk[pack.HeaderSize:pack.HeaderSize+len(stored)], stored)) {
					t.Errorf("%s: pack does not begin with the preferred pack's entries", name)
				}
				dst := gittest.InitBare(t, format)
				gittest.GitInput(t, dst, pk, "index-pack", "--stdin", "--strict")
				for _, id := range req.Wants {
					gittest.Git(t, dst, "update-ref", "refs/want/"+id.String(), id.String())
				}
				gittest.Git(t, dst, "fsck", "--full", "--strict", "--no-dangling")
			}
			check("clone", req, true)
			pk, _ := sendOver(t, r, req, prog)
			dst := gittest.InitBare(t, format)
			gittest.GitInput(t, dst, pk, "index-pack", "--stdin", "--strict")
			if got, want := len(gittest.Objects(t, dst)), len(gittest.Objects(t, src)); got != want {
				t.Errorf("clone's pack holds %d objects; the repository %d", got, want)
			}

			noOfs := *req
			noOfs.OfsDelta = false
			check("without ofs-delta", &noOfs, false)

			// The oldest commit alone: not every object of the
			// preferred pack.
			root := strings.TrimSpace(gittest.Git(t, src, "rev-list", "--max-parents=0", "main"))
			id, err := oid.ParseHexAny(root)
			if err != nil {
				t.Fatal(err)
			}
			one := *req
			one.Wants = []oid.ID{id}
			check("root commit", &one, false)
		})
	}
}
