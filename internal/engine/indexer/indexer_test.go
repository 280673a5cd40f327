package indexer

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"math"
	mathrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/gittest"
)

// TestIndexMatchesGit indexes packs written by C Git in every shape it
// writes them and compares the .idx and .rev with git index-pack's.
func TestIndexMatchesGit(t *testing.T) {
	for _, format := range []string{"sha1", "sha256"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			dir := repoWithHistory(t, format, 40)
			deep := filepath.Join(t.TempDir(), "deep.git")
			gittest.Git(t, "", "clone", "-q", "--bare", "--no-local", dir, deep)
			gittest.Git(t, deep, "repack", "-adfq", "--depth=250", "--window=250")
			tests := []struct {
				name string
				dir  string
				revs string
				args []string
			}{
				{"ofs deltas", dir, "", []string{"--all", "--revs", "--delta-base-offset"}},
				{"ref deltas", dir, "", []string{"--all", "--revs"}},
				{"no deltas", dir, "", []string{"--all", "--revs", "--depth=0"}},
				{"deep chains", deep, "", []string{"--all", "--revs", "--delta-base-offset"}},
				{"deep chains ref", deep, "", []string{"--all", "--revs"}},
				{"partial", dir, "main~10\n^main~20\n", []string{"--revs", "--delta-base-offset"}},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					p := packObjects(t, tt.dir, tt.revs, tt.args...)
					wantIdx, wantRev := gitIndexPack(t, tt.dir, p)
					for _, threads := range []int{1, 2, 4} {
						res, err := indexBytes(t, p, Options{Format: formatOf(format), Threads: threads, WriteRev: true})
						if err != nil {
							t.Fatalf("threads=%d: Index: %v", threads, err)
						}
						if got := readFile(t, res.PackPath); !bytes.Equal(got, p) {
							t.Errorf("threads=%d: pack written differs from the pack read", threads)
						}
						if got := readFile(t, res.IndexPath); !bytes.Equal(got, wantIdx) {
							t.Errorf("threads=%d: idx differs from git index-pack's (%d vs %d bytes)", threads, len(got), len(wantIdx))
						}
						if got := readFile(t, res.RevPath); !bytes.Equal(got, wantRev) {
							t.Errorf("threads=%d: rev differs from git index-pack's", threads)
						}
						if want := p[len(p)-formatOf(format).Size():]; !bytes.Equal(res.Checksum, want) {
							t.Errorf("threads=%d: got checksum %x; want %x", threads, res.Checksum, want)
						}
						if want := "pack-" + hexString(res.Checksum); filepath.Base(res.PackPath) != want+".pack" ||
							filepath.Base(res.IndexPath) != want+".idx" || filepath.Base(res.RevPath) != want+".rev" {
							t.Errorf("threads=%d: got paths %s %s %s; want %s.*", threads, res.PackPath, res.IndexPath, res.RevPath, want)
						}
						if res.ThinBases != 0 {
							t.Errorf("threads=%d: got ThinBases %d; want 0", threads, res.ThinBases)
						}
						for _, path := range []string{res.PackPath, res.IndexPath, res.RevPath} {
							st, err := os.Stat(path)
							if err != nil {
								t.Fatal(err)
							}
							// Read-only, closed to others: the zero
							// perm.Shared is a private repository's.
							if st.Mode().Perm() != 0o440 {
								t.Errorf("%s: got mode %v; want 0440", filepath.Base(path), st.Mode().Perm())
							}
						}
						if names := dirEntries(t, filepath.Dir(res.PackPath)); len(names) != 3 {
							t.Errorf("threads=%d: got files %q; want only the pack, idx and rev", threads, names)
						}
					}
				})
			}
		})
	}
}

// TestIndexFile indexes a pack in place, as gotadmin indexpack does.
func TestIndexFile(t *testing.T) {
	for _, format := range []string{"sha1", "sha256"} {
		t.Run(format, func(t *testing.T) {
			dir := repoWithHistory(t, format, 20)
			p := packObjects(t, dir, "", "--all", "--revs", "--delta-base-offset")
			wantIdx, wantRev := gitIndexPack(t, dir, p)
			path := filepath.Join(t.TempDir(), "pack-x.pack")
			if err := os.WriteFile(path, p, 0o444); err != nil {
				t.Fatal(err)
			}
			res, err := IndexFile(context.Background(), path, Options{Format: formatOf(format), WriteRev: true})
			if err != nil {
				t.Fatalf("IndexFile: %v", err)
			}
			base := strings.TrimSuffix(path, ".pack")
			if res.PackPath != path || res.IndexPath != base+".idx" || res.RevPath != base+".rev" {
				t.Errorf("got paths %s %s %s; want %s.{pack,idx,rev}", res.PackPath, res.IndexPath, res.RevPath, base)
			}
			if got := readFile(t, res.IndexPath); !bytes.Equal(got, wantIdx) {
				t.Errorf("idx differs from git index-pack's")
			}
			if got := readFile(t, res.RevPath); !bytes.Equal(got, wantRev) {
				t.Errorf("rev differs from git index-pack's")
			}

			// Junk after the trailer is an error for a file, and
			// leaves nothing behind.
			jdir := t.TempDir()
			junk := filepath.Join(jdir, "junk.pack")
			if err := os.WriteFile(junk, append(slices.Clip(p), 0), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := IndexFile(context.Background(), junk, Options{Format: formatOf(format)}); err == nil {
				t.Errorf("IndexFile with junk after the trailer: got nil error; want one")
			}
			if names := dirEntries(t, jdir); len(names) != 1 {
				t.Errorf("after failure got files %q; want only the pack", names)
			}
			if _, err := IndexFile(context.Background(), filepath.Join(jdir, "x.idx"), Options{Format: formatOf(format)}); err == nil {
				t.Errorf("IndexFile on a name without .pack: got nil error; want one")
			}
		})
	}
}

// TestIndexThin completes thin packs from the repository, as git
// index-pack --fix-thin does, and compares with what C Git produces.
func TestIndexThin(t *testing.T) {
	for _, format := range []string{"sha1", "sha256"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			src := repoWithHistory(t, format, 30)
			for _, tt := range []struct {
				name string
				args []string
			}{
				{"ofs", []string{"--delta-base-offset"}},
				{"ref", nil},
			} {
				t.Run(tt.name, func(t *testing.T) {
					dst := gittest.InitBare(t, format)
					gittest.Git(t, src, "push", "-q", dst, "main~8:refs/heads/main")
					args := append([]string{"--revs", "--thin"}, tt.args...)
					p := packObjects(t, src, "main\n^main~8\n", args...)

					// C Git's answer, in the receiving repository.
					out, err := gittest.Run(t, dst, p, "index-pack", "--fix-thin", "--stdin", "-v")
					if err != nil {
						t.Fatalf("git index-pack --fix-thin: %v", err)
					}
					gitPack := filepath.Join(dst, "objects", "pack", "pack-"+strings.Fields(out)[1]+".pack")
					if strings.Fields(out)[0] != "pack" {
						t.Fatalf("unexpected git index-pack output %q", out)
					}
					want := verifyPackIDs(t, dst, gitPack)

					// Without bases, the thin pack is refused.
					odir := t.TempDir()
					if _, err := indexBytes(t, p, Options{Format: formatOf(format), Dir: odir}); !errors.Is(err, ErrThin) {
						t.Errorf("thin pack without Bases: got %v; want ErrThin", err)
					}
					if names := dirEntries(t, odir); len(names) != 0 {
						t.Errorf("after failure got files %q; want none", names)
					}

					bases := &gitBases{t: t, dir: dst}
					res, err := indexBytes(t, p, Options{Format: formatOf(format), Bases: bases, WriteRev: true, Threads: 2})
					if err != nil {
						t.Fatalf("Index: %v", err)
					}
					if res.ThinBases == 0 || res.ThinBases != bases.calls {
						t.Errorf("got ThinBases %d and %d base reads; want the same, non-zero", res.ThinBases, bases.calls)
					}
					got := verifyPackIDs(t, dst, res.PackPath)
					if !slices.Equal(got, want) {
						t.Errorf("got objects %d, want %d (as git index-pack --fix-thin)", len(got), len(want))
					}
					if res.Count != uint32(len(want)) {
						t.Errorf("got Count %d; want %d", res.Count, len(want))
					}
					// Our idx for our completed pack must be what git
					// index-pack writes for it.
					wantIdx, wantRev := gitIndexPack(t, dst, readFile(t, res.PackPath))
					if !bytes.Equal(readFile(t, res.IndexPath), wantIdx) {
						t.Errorf("idx of the completed pack differs from git index-pack's")
					}
					if !bytes.Equal(readFile(t, res.RevPath), wantRev) {
						t.Errorf("rev of the completed pack differs from git index-pack's")
					}
				})
			}
		})
	}
}

// verifyPackIDs runs git verify-pack on a pack and returns its sorted
// object ids.
func verifyPackIDs(t testing.TB, dir, packPath string) []string {
	t.Helper()
	out := gittest.Git(t, dir, "verify-pack", "-v", strings.TrimSuffix(packPath, ".pack")+".idx")
	var ids []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 5 && len(f[0]) >= 40 && !strings.Contains(f[0], ":") {
			ids = append(ids, f[0])
		}
	}
	slices.Sort(ids)
	return ids
}

// TestIndexLeavesTrailingData checks that Index never consumes a byte
// after the trailer, whatever the reader returns per call, and that it
// still reads in large chunks.
func TestIndexLeavesTrailingData(t *testing.T) {
	dir := repoWithHistory(t, "sha1", 20)
	// Add a large incompressible blob and a large compressible one, so
	// the pack ends with long zlib streams.
	random := make([]byte, 3<<20)
	rand.Read(random)
	zeros := bytes.Repeat([]byte("compressible "), 400000)
	big := gittest.GitInput(t, dir, random, "hash-object", "-w", "--stdin")
	big2 := gittest.GitInput(t, dir, zeros, "hash-object", "-w", "--stdin")
	var text bytes.Buffer
	words := strings.Fields("the quick brown fox jumps over lazy dog pack index delta base object tree commit blob tag stream zlib huffman")
	for i := 0; text.Len() < 2<<20; i++ {
		text.WriteString(words[(i*7+i/3+int(random[i%len(random)]))%len(words)])
		text.WriteByte(" \n"[i%11/10])
	}
	textID := gittest.GitInput(t, dir, text.Bytes(), "hash-object", "-w", "--stdin")
	textLast := packObjects(t, dir, textID)
	full := packObjects(t, dir, "", "--all", "--revs", "--delta-base-offset")
	bigOnly := packObjects(t, dir, big+big2, "--delta-base-offset")
	bigLast := packObjects(t, dir, big2+big)
	empty := packObjects(t, dir, "")
	trailing := []byte("0000trailing protocol data that belongs to the next reader")

	readers := []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{"plain", func(r io.Reader) io.Reader { return r }},
		{"one byte", iotest.OneByteReader},
		{"half", iotest.HalfReader},
	}
	for _, pk := range []struct {
		name string
		p    []byte
	}{{"history", full}, {"big blobs", bigOnly}, {"big blob last", bigLast}, {"text blob", textLast}, {"empty", empty}} {
		for _, rd := range readers {
			if rd.name == "one byte" && len(pk.p) > 1<<20 {
				continue
			}
			t.Run(pk.name+"/"+rd.name, func(t *testing.T) {
				src := &countingReader{r: bytes.NewReader(append(slices.Clip(pk.p), trailing...))}
				res, err := Index(context.Background(), rd.wrap(src), Options{Format: oid.SHA1, Dir: t.TempDir()})
				if err != nil {
					t.Fatalf("Index: %v", err)
				}
				rest, _ := io.ReadAll(src.r)
				if !bytes.Equal(rest, trailing) {
					t.Errorf("got %d bytes left after the pack; want the %d trailing bytes", len(rest), len(trailing))
				}
				if res.Count == 0 && len(pk.p) > 32 {
					t.Errorf("got Count 0")
				}
				if rd.name == "plain" {
					// Never byte by byte. Near the end of a long Huffman
					// coded stream reads shrink to the tail's size.
					t.Logf("%d bytes in %d reads", len(pk.p), src.reads)
					if src.reads > len(pk.p)/16+64 {
						t.Errorf("got %d reads for %d bytes; want far fewer", src.reads, len(pk.p))
					}
				}
			})
		}
	}
}

// eofWithData returns io.EOF together with the last bytes, as some
// readers do.
type eofWithData struct{ r *bytes.Reader }

func (e eofWithData) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == nil && e.r.Len() == 0 {
		err = io.EOF
	}
	return n, err
}

// TestIndexEOFWithData: a reader that returns io.EOF with the last bytes
// of the pack is fine.
func TestIndexEOFWithData(t *testing.T) {
	dir := repoWithHistory(t, "sha1", 10)
	p := packObjects(t, dir, "", "--all", "--revs", "--delta-base-offset")
	for _, rd := range []io.Reader{eofWithData{bytes.NewReader(p)}, iotest.DataErrReader(bytes.NewReader(p))} {
		if _, err := Index(context.Background(), rd, Options{Format: oid.SHA1, Dir: t.TempDir()}); err != nil {
			t.Errorf("Index: %v", err)
		}
	}
}

// raggedReader returns 1 to n bytes per Read, as a socket may; the sizes
// come from a seeded source.
type raggedReader struct {
	r   io.Reader
	n   int
	rnd *mathrand.Rand
}

func (r *raggedReader) Read(p []byte) (int, error) {
	if k := 1 + r.rnd.IntN(r.n); len(p) > k {
		p = p[:k]
	}
	return r.r.Read(p)
}

// chunkReader returns at most n bytes per Read: a pack received in
// side-band packets, which C Git's upload-pack fills with 8 KiB at most.
type chunkReader struct {
	r io.Reader
	n int
}

func (c chunkReader) Read(p []byte) (int, error) {
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}

// TestIndexBuffered: inflating an entry from the bytes the scan has
// buffered (scanner.inflate's first try) writes the same pack, .idx and
// .rev as inflating every entry from the stream, reads no byte after the
// trailer, whatever sizes the reads return, and is how most entries are
// inflated. Entries straddle the end of the buffered bytes: blobs larger
// than the buffer holds (fastWant), blobs of a third of it, and the last
// entries of every pack, where the bound leaves little to read ahead.
func TestIndexBuffered(t *testing.T) {
	dir := repoWithHistory(t, "sha1", 20)
	history := packObjects(t, dir, "", "--all", "--revs", "--delta-base-offset")
	random := make([]byte, 3*fastWant)
	rand.Read(random)
	blobs := gittest.GitInput(t, dir, random, "hash-object", "-w", "--stdin")
	for i := 0; i < 9; i++ {
		part := random[i*fastWant/3 : (i+1)*fastWant/3]
		blobs += gittest.GitInput(t, dir, part, "hash-object", "-w", "--stdin")
	}
	large := packObjects(t, dir, blobs, "--delta-base-offset")
	// Enough entries for the bound to let topUp read ahead, and bytes
	// for it to move what it holds to the start of the buffer.
	var small []rawEntry
	for i := 0; len(small) < 3000; i += 100 {
		small = append(small, rawEntry{typ: object.Blob, size: -1, data: random[i : i+300]})
	}
	many := craft(oid.SHA1, -1, small...)
	trailing := []byte("0000trailing protocol data that belongs to the next reader")

	readers := []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{"plain", func(r io.Reader) io.Reader { return r }},
		{"8 KiB", func(r io.Reader) io.Reader { return chunkReader{r, 8 << 10} }},
		{"1 to 100", func(r io.Reader) io.Reader { return &raggedReader{r, 100, mathrand.New(mathrand.NewPCG(1, 2))} }},
		{"1 to 20000", func(r io.Reader) io.Reader { return &raggedReader{r, 20000, mathrand.New(mathrand.NewPCG(3, 4))} }},
		{"one byte", iotest.OneByteReader},
	}
	defer func() { tryBuffered = true }()
	for _, pk := range []struct {
		name string
		p    []byte
	}{{"history", history}, {"large blobs", large}, {"many blobs", many}} {
		for _, rd := range readers {
			if rd.name == "one byte" && len(pk.p) > 1<<20 {
				continue
			}
			t.Run(pk.name+"/"+rd.name, func(t *testing.T) {
				var files [2][3][]byte
				for i, buffered := range []bool{true, false} {
					tryBuffered = buffered
					src := bytes.NewReader(append(slices.Clip(pk.p), trailing...))
					res, err := Index(context.Background(), rd.wrap(src), Options{Format: oid.SHA1, Dir: t.TempDir(), WriteRev: true})
					if err != nil {
						t.Fatalf("buffer tried %v: Index: %v", buffered, err)
					}
					if rest, _ := io.ReadAll(src); !bytes.Equal(rest, trailing) {
						t.Fatalf("buffer tried %v: got %d bytes left after the pack; want the %d trailing bytes", buffered, len(rest), len(trailing))
					}
					files[i] = [3][]byte{readFile(t, res.PackPath), readFile(t, res.IndexPath), readFile(t, res.RevPath)}
				}
				for j, ext := range []string{"pack", "idx", "rev"} {
					if !bytes.Equal(files[0][j], files[1][j]) {
						t.Errorf("got a different .%s inflating from the buffer first", ext)
					}
				}
				if !bytes.Equal(files[0][0], pk.p) {
					t.Errorf("got a pack of %d bytes written; want the %d bytes sent", len(files[0][0]), len(pk.p))
				}

				// How many entries came from the buffer.
				tryBuffered = true
				ix, err := newIndexer(context.Background(), Options{Format: oid.SHA1, Threads: 2})
				if err != nil {
					t.Fatal(err)
				}
				s := newStreamReader(rd.wrap(bytes.NewReader(pk.p)), oid.SHA1.New(), nil, math.MaxUint64, true)
				if err := ix.scan(s, false); err != nil {
					t.Fatalf("scan: %v", err)
				}
				// Where the bound keeps topUp from reading ahead
				// (minTopUp), as in the two smaller packs and the end
				// of the third, what fill read is all there is, and
				// reads of a few bytes leave little.
				n := len(ix.entries)
				t.Logf("%d of %d entries inflated from the buffer", ix.nBuffered, n)
				large := rd.name == "plain" || rd.name == "8 KiB" || rd.name == "1 to 20000"
				switch {
				case pk.name != "large blobs" && large && ix.nBuffered < n*3/4:
					t.Errorf("got %d of %d entries inflated from the buffer; want three quarters at least", ix.nBuffered, n)
				case pk.name == "large blobs" && ix.nBuffered >= n:
					t.Errorf("got all %d entries inflated from the buffer; want the largest from the stream", n)
				case pk.name == "large blobs" && large && ix.nBuffered == 0:
					t.Errorf("got no entry inflated from the buffer; want some")
				}
			})
		}
	}
}

// TestIndexBufferedFails: a pack cut short, or a reader failing, fails
// the same whether entries are inflated from the buffer first or not,
// though topUp meets the end or the error earlier than fill would.
func TestIndexBufferedFails(t *testing.T) {
	random := make([]byte, 300300)
	rand.Read(random)
	var small []rawEntry
	for i := 0; len(small) < 3000; i += 100 {
		small = append(small, rawEntry{typ: object.Blob, size: -1, data: random[i : i+300]})
	}
	p := craft(oid.SHA1, -1, small...)
	defer func() { tryBuffered = true }()
	for _, tt := range []struct {
		name string
		r    func() io.Reader
	}{
		{"cut short", func() io.Reader { return chunkReader{bytes.NewReader(p[:len(p)/2]), 8 << 10} }},
		{"cut short, plain", func() io.Reader { return bytes.NewReader(p[:len(p)/2]) }},
		{"read error", func() io.Reader { return iotest.TimeoutReader(chunkReader{bytes.NewReader(p), 100 << 10}) }},
		{"error with data", func() io.Reader { return iotest.DataErrReader(chunkReader{bytes.NewReader(p[:len(p)/2]), 8 << 10}) }},
	} {
		var errs [2]error
		for i, buffered := range []bool{true, false} {
			tryBuffered = buffered
			_, errs[i] = Index(context.Background(), tt.r(), Options{Format: oid.SHA1, Dir: t.TempDir()})
		}
		if errs[0] == nil || errs[1] == nil || errs[0].Error() != errs[1].Error() {
			t.Errorf("%s: got %v with the buffer tried first, %v without; want the same error", tt.name, errs[0], errs[1])
		}
	}
}

type countingReader struct {
	r     *bytes.Reader
	reads int
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.reads++
	return c.r.Read(p)
}

// TestIndexEmptyPack: a pack without objects (a push that only deletes
// refs sends none, but a client may send an empty one) is valid.
func TestIndexEmptyPack(t *testing.T) {
	for _, f := range []oid.Format{oid.SHA1, oid.SHA256} {
		p := craft(f, 0)
		res, err := indexBytes(t, p, Options{Format: f, WriteRev: true})
		if err != nil {
			t.Fatalf("%s: Index: %v", f, err)
		}
		if res.Count != 0 {
			t.Errorf("%s: got Count %d; want 0", f, res.Count)
		}
		if m := parseIdx(t, f, readFile(t, res.IndexPath)); len(m) != 0 {
			t.Errorf("%s: got %d objects in idx; want 0", f, len(m))
		}
	}
}

// TestIndexCheck: Check sees every object once, with its content, and
// its refusal fails the index.
func TestIndexCheck(t *testing.T) {
	dir := repoWithHistory(t, "sha1", 20)
	p := packObjects(t, dir, "", "--all", "--revs", "--delta-base-offset")
	want := gittest.Objects(t, dir)
	var mu sync.Mutex
	seen := map[string]int{}
	check := func(typ object.Type, id oid.ID, data []byte) error {
		if got, err := object.ID(oid.SHA1, typ, data); err != nil || got != id {
			t.Errorf("Check got %s %s with content hashing to %s", typ, id, got)
		}
		mu.Lock()
		seen[id.String()]++
		mu.Unlock()
		return nil
	}
	if _, err := indexBytes(t, p, Options{Format: oid.SHA1, Check: check, Threads: 2}); err != nil {
		t.Fatalf("Index: %v", err)
	}
	if len(seen) != len(want) {
		t.Errorf("Check saw %d objects; want %d", len(seen), len(want))
	}
	for _, id := range want {
		if seen[id] != 1 {
			t.Errorf("Check saw %s %d times; want once", id, seen[id])
		}
	}

	// A refusal, of a base object or of a delta result, fails the index
	// and leaves no file behind.
	for _, refuse := range []object.Type{object.Commit, object.Tree, object.Blob} {
		odir := t.TempDir()
		_, err := Index(context.Background(), bytes.NewReader(p), Options{Format: oid.SHA1, Dir: odir,
			Check: func(typ object.Type, id oid.ID, data []byte) error {
				if typ == refuse {
					return errCheck
				}
				return nil
			}})
		if !errors.Is(err, errCheck) {
			t.Errorf("refusing %s: got %v; want errCheck", refuse, err)
		}
		if names := dirEntries(t, odir); len(names) != 0 {
			t.Errorf("after failure got files %q; want none", names)
		}
	}

	// A blob stored whole above MaxCheckBlobSize is passed without data.
	big := bytes.Repeat([]byte("x"), MaxCheckBlobSize+1)
	small := []byte("small\n")
	bp := craft(oid.SHA1, -1, rawEntry{typ: object.Blob, size: -1, data: big}, rawEntry{typ: object.Blob, size: -1, data: small})
	got := map[oid.ID][]byte{}
	_, err := indexBytes(t, bp, Options{Format: oid.SHA1, Check: func(typ object.Type, id oid.ID, data []byte) error {
		got[id] = data
		return nil
	}})
	if err != nil {
		t.Fatalf("Index: %v", err)
	}
	if d, ok := got[mustID(oid.SHA1, object.Blob, big)]; !ok || d != nil {
		t.Errorf("big blob: got data of %d bytes (seen %v); want nil", len(d), ok)
	}
	if d := got[mustID(oid.SHA1, object.Blob, small)]; !bytes.Equal(d, small) {
		t.Errorf("small blob: got %q; want %q", d, small)
	}
}

// TestIndexDuplicates: an object twice in one pack is refused, as git
// index-pack --strict (what receive-pack runs with fsck) refuses it.
// Plain git index-pack keeps both copies; pack.WriteIndex cannot write
// that, so this is the one place where Index is stricter than C Git.
func TestIndexDuplicates(t *testing.T) {
	dir := gittest.InitBare(t, "sha1")
	a, b := []byte("hello\n"), []byte("world\n")
	p := craft(oid.SHA1, -1,
		rawEntry{typ: object.Blob, size: -1, data: a},
		rawEntry{typ: object.Blob, size: -1, data: b},
		rawEntry{typ: object.Blob, size: -1, data: a})
	if _, err := gittest.Run(t, dir, p, "index-pack", "--strict", "--stdin"); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("git index-pack --strict: got %v; want it to refuse the pack", err)
	}
	for _, check := range []func(object.Type, oid.ID, []byte) error{nil, func(object.Type, oid.ID, []byte) error { return nil }} {
		odir := t.TempDir()
		_, err := indexBytes(t, p, Options{Format: oid.SHA1, Check: check, Dir: odir})
		if err == nil || !strings.Contains(err.Error(), "appears twice") {
			t.Errorf("duplicates (check %v): got %v; want an error about the object appearing twice", check != nil, err)
		}
		if names := dirEntries(t, odir); len(names) != 0 {
			t.Errorf("got files %q left; want none", names)
		}
	}
}
