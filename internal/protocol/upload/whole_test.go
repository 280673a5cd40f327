package upload

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotd/internal/git/oid"
	"gotd/internal/git/pack"
	"gotd/internal/git/refs"
	"gotd/internal/git/repo"
	"gotd/internal/gittest"
	"gotd/internal/protocol/pktline"
	"gotd/internal/protocol/sideband"
)

// packedSource returns a generated repository packed into one pack with
// a bitmap, and that pack's bytes.
func packedSource(t *testing.T) (string, []byte) {
	t.Helper()
	src := source(t, "sha1")
	gittest.Git(t, src, "repack", "-adbq")
	packs, _ := filepath.Glob(filepath.Join(src, "objects", "pack", "*.pack"))
	if len(packs) != 1 {
		t.Fatalf("%d packs after repack", len(packs))
	}
	b, err := os.ReadFile(packs[0])
	if err != nil {
		t.Fatal(err)
	}
	return src, b
}

// cloneRequest is what a full clone of dir asks for.
func cloneRequest(t *testing.T, dir string) (*repo.Repo, *PackRequest) {
	t.Helper()
	r, err := repo.Open(dir, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	req := &PackRequest{OfsDelta: true, IncludeTag: true, Thin: true}
	r.Refs.List("refs/", func(ref refs.Ref) error {
		req.Wants = append(req.Wants, ref.ID)
		return nil
	})
	return r, req
}

// sendOver runs SendPack framed as f onto one end of a pipe and returns
// the pack read from the other end, side-band framing removed, and
// whether the progress messages (when f asks for them) say that it was
// the stored pack reused whole.
func sendOver(t *testing.T, r *repo.Repo, req *PackRequest, f Framing) ([]byte, bool) {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	got := make(chan []byte)
	var progress bytes.Buffer
	go func() {
		var out bytes.Buffer
		if f.Sideband == 0 {
			io.Copy(&out, pr)
		} else {
			rd := pktline.NewReader(pr)
			for {
				kind, p, err := rd.Read()
				if err != nil || kind != pktline.Data {
					break
				}
				if len(p) > f.Sideband-4 {
					t.Errorf("packet of %d bytes over %d", len(p)+4, f.Sideband)
				}
				switch p[0] {
				case sideband.Data:
					out.Write(p[1:])
				case sideband.Progress:
					progress.Write(p[1:])
				}
			}
		}
		got <- out.Bytes()
	}()
	n, err := SendPack(context.Background(), r, req, f, pw)
	pw.Close()
	if err != nil {
		t.Fatal(err)
	}
	b := <-got
	if n == 0 {
		t.Fatal("no objects sent")
	}
	return b, strings.Contains(progress.String(), "pack-reused")
}

// TestWholePack checks that a full clone of a repository packed with a
// bitmap gets the stored pack byte for byte, bare or on either
// side-band, and that anything less or more than that pack is built
// the ordinary way.
func TestWholePack(t *testing.T) {
	src, stored := packedSource(t)
	r, req := cloneRequest(t, src)
	for _, f := range []Framing{{}, {Sideband: sideband.MaxPacket, Progress: true}, {Sideband: sideband.MaxPacket64, Progress: true}} {
		got, reused := sendOver(t, r, req, f)
		if !bytes.Equal(got, stored) {
			t.Errorf("framing %+v: sent %d bytes, not the stored pack (%d bytes)", f, len(got), len(stored))
		}
		if f.Progress && !reused {
			t.Errorf("framing %+v: progress does not say the stored pack was reused", f)
		}
	}
	// Through a writer that is not a descriptor: the buffered copy.
	var buf bytes.Buffer
	if _, err := SendPack(context.Background(), r, req, Framing{}, &buf); err != nil || !bytes.Equal(buf.Bytes(), stored) {
		t.Errorf("buffered: %v, %d bytes", err, buf.Len())
	}

	// One branch: fewer objects than the pack.
	one := *req
	one.Wants = one.Wants[:1]
	prog := Framing{Sideband: sideband.MaxPacket64, Progress: true}
	if got, _ := sendOver(t, r, &one, prog); bytes.Equal(got, stored) {
		t.Error("a fetch of one branch got the whole pack")
	}
	// Without ofs-delta the stored offsets cannot be sent.
	noOfs := *req
	noOfs.OfsDelta = false
	if _, reused := sendOver(t, r, &noOfs, prog); reused {
		t.Error("a client without ofs-delta got the stored pack")
	}

	// A commit and a tag made after packing are loose: a clone needs
	// them, so the stored pack is no longer the whole answer; its
	// entries lead it, the tag follows.
	gittest.Git(t, src, "tag", "-a", "-m", "late", "late-tag", "HEAD")
	id, err := oid.ParseHexAny(strings.TrimSpace(gittest.Git(t, src, "rev-parse", "late-tag")))
	if err != nil {
		t.Fatal(err)
	}
	r2, req2 := cloneRequest(t, src)
	got, reused := sendOver(t, r2, req2, prog)
	if bytes.Equal(got, stored) {
		t.Error("the stored pack was sent though a tag is outside it")
	}
	if end := len(stored) - len(r2.Packs()[0].Checksum()); !reused || len(got) < end || !bytes.Equal(got[pack.HeaderSize:end], stored[pack.HeaderSize:end]) {
		t.Error("the stored pack's entries do not lead the answer")
	}
	dst := gittest.InitBare(t, r2.Format.String())
	gittest.GitInput(t, dst, got, "index-pack", "--stdin", "--strict")
	gittest.Git(t, dst, "update-ref", "refs/tags/late-tag", id.String())
	gittest.Git(t, dst, "fsck", "--full", "--strict", "--no-dangling")
	// Without include-tag and without wanting it, the tag is not part
	// of the answer.
	want := req2.Wants[:0:0]
	for _, w := range req2.Wants {
		if w != id {
			want = append(want, w)
		}
	}
	req2.Wants, req2.IncludeTag = want, false
	if got, reused := sendOver(t, r2, req2, prog); !reused || !bytes.Equal(got, stored) {
		t.Error("the stored pack was not sent for the refs it covers")
	}
}
