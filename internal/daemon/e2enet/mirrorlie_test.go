package e2enet

import (
	"bytes"
	"compress/zlib"
	"crypto/rand"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gotd/internal/gittest"
)

// packObject is an object of a hand-made pack: its type number (1
// commit, 3 blob) and content.
type packObject struct {
	kind int
	data []byte
}

// objectID is the SHA-1 id of an object of kind with data.
func objectID(kind int, data []byte) string {
	name := map[int]string{1: "commit", 2: "tree", 3: "blob", 4: "tag"}[kind]
	h := sha1.New()
	fmt.Fprintf(h, "%s %d\x00", name, len(data))
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))
}

// packEntry encodes one undeltified object of a pack.
func packEntry(o packObject) []byte {
	var b bytes.Buffer
	size := len(o.data)
	c := byte(o.kind<<4) | byte(size&15)
	size >>= 4
	for size > 0 {
		b.WriteByte(c | 0x80)
		c = byte(size & 0x7f)
		size >>= 7
	}
	b.WriteByte(c)
	z := zlib.NewWriter(&b)
	z.Write(o.data)
	z.Close()
	return b.Bytes()
}

// makePack is a whole version 2 pack of objs.
func makePack(objs []packObject) []byte {
	var b bytes.Buffer
	b.WriteString("PACK")
	binary.Write(&b, binary.BigEndian, uint32(2))
	binary.Write(&b, binary.BigEndian, uint32(len(objs)))
	for _, o := range objs {
		b.Write(packEntry(o))
	}
	sum := sha1.Sum(b.Bytes())
	b.Write(sum[:])
	return b.Bytes()
}

// pkt is one pkt-line.
func pkt(s string) string { return fmt.Sprintf("%04x%s", len(s)+4, s) }

// lie is what the fake upstream answers on one path: the value it
// advertises for refs/heads/main, and what it writes after the
// client's request (its "done").
type lie struct {
	main string
	body func(w io.Writer)
}

// fakeUpstream is a git:// server that lies: it speaks protocol version
// 0 just well enough for a fetch and answers each path as lies say. It
// serves until the test ends; each connection is bounded in time.
func fakeUpstream(t *testing.T, lies map[string]lie) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				serveLie(c, lies)
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

// readPkt reads one pkt-line's payload; flush is "".
func readPkt(r io.Reader) (string, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return "", err
	}
	n, err := strconv.ParseUint(string(hdr[:]), 16, 16)
	if err != nil || n == 1 || n == 2 || n == 3 || n > 65520 {
		return "", fmt.Errorf("bad pkt-line header %q", hdr)
	}
	if n == 0 {
		return "", nil
	}
	buf := make([]byte, n-4)
	_, err = io.ReadFull(r, buf)
	return string(buf), err
}

func serveLie(c net.Conn, lies map[string]lie) {
	req, err := readPkt(c)
	if err != nil {
		return
	}
	path, _, _ := strings.Cut(strings.TrimPrefix(req, "git-upload-pack "), "\x00")
	lie, ok := lies[path]
	if !ok {
		io.WriteString(c, pkt("ERR no such repository\n"))
		return
	}
	io.WriteString(c, pkt(lie.main+" refs/heads/main\x00ofs-delta side-band-64k agent=fake/1.0\n")+"0000")
	for {
		line, err := readPkt(c)
		if err != nil {
			return
		}
		if line == "done\n" {
			break
		}
	}
	io.WriteString(c, pkt("NAK\n"))
	lie.body(sideband{c})
	io.WriteString(c, "0000")
}

// sideband writes the pack on side-band-64k's band 1.
type sideband struct{ w io.Writer }

func (s sideband) Write(p []byte) (int, error) {
	for n := 0; n < len(p); {
		chunk := p[n:min(len(p), n+65515)]
		if _, err := io.WriteString(s.w, pkt("\x01"+string(chunk))); err != nil {
			return n, err
		}
		n += len(chunk)
	}
	return len(p), nil
}

// TestMirrorLyingUpstream: an upstream that lies — a reference to an
// object it never sends, a pack missing the tree of the commit it
// names, a corrupt commit, an endless pack — leaves each mirror exactly
// as it was (references, packs, no quarantine left), gotctl sync fails
// saying why, and gotctl info shows the last error; the daemon goes on
// serving the mirror.
func TestMirrorLyingUpstream(t *testing.T) {
	root := mirrorRoot(t)
	src := filepath.Join(root, "src.git")
	run(t, "git", "init", "-q", "--bare", "-b", "main", src)
	gittest.Generate(t, src, gittest.History{Commits: 6, Files: 4})

	random := func() string {
		b := make([]byte, 20)
		rand.Read(b)
		return hex.EncodeToString(b)
	}
	// A commit whose tree nobody sends.
	orphan := []byte(fmt.Sprintf("tree %s\nauthor A <a@example.org> 1700000000 +0000\ncommitter A <a@example.org> 1700000000 +0000\n\norphan\n", random()))
	// A commit that is not one.
	corrupt := []byte("tree nonsense\n\nnot a commit\n")
	lies := map[string]lie{
		"/absent": {main: random(), body: func(w io.Writer) { w.Write(makePack(nil)) }},
		"/missing": {main: objectID(1, orphan), body: func(w io.Writer) {
			w.Write(makePack([]packObject{{1, orphan}}))
		}},
		"/corrupt": {main: objectID(1, corrupt), body: func(w io.Writer) {
			w.Write(makePack([]packObject{{1, corrupt}}))
		}},
		// A pack that never ends: blobs of random bytes, more than
		// it announced would fit the mirror's max pack size, until
		// the client hangs up (or 256 MiB, to bound the test).
		"/endless": {main: random(), body: func(w io.Writer) {
			var hdr bytes.Buffer
			hdr.WriteString("PACK")
			binary.Write(&hdr, binary.BigEndian, uint32(2))
			binary.Write(&hdr, binary.BigEndian, uint32(1<<20))
			if _, err := w.Write(hdr.Bytes()); err != nil {
				return
			}
			blob := make([]byte, 64<<10)
			for sent := 0; sent < 256<<20; sent += len(blob) {
				rand.Read(blob)
				if _, err := w.Write(packEntry(packObject{3, blob})); err != nil {
					return
				}
			}
		}},
	}
	port := fakeUpstream(t, lies)
	wants := map[string]string{
		"absent":  "refs/heads/main: object " + lies["/absent"].main,
		"missing": "the pack is incomplete",
		"corrupt": "is invalid",
		"endless": "pack",
	}
	var blocks string
	for name := range wants {
		path := filepath.Join(root, name+".git")
		run(t, "git", "clone", "-q", "--bare", src, path)
		if os.Geteuid() == 0 {
			run(t, "chown", "-R", rootDaemon, path)
		}
		blocks += fmt.Sprintf("repository \"%s\" {\n\tpath \"%s\"\n\tpermit ro anonymous\n\tmirror from \"git://127.0.0.1:%d/%s\" every 1h\n\tpush {\n\t\tmax pack size 1M\n\t}\n}\n",
			name, path, port, name)
	}
	before := headsAndTags(t, src)
	s := start(t, options{extraTop: blocks})
	packs := func(gitDir string) string {
		names, _ := filepath.Glob(filepath.Join(gitDir, "objects", "pack", "*"))
		return strings.Join(names, "\n")
	}
	for name, want := range wants {
		path := filepath.Join(root, name+".git")
		packsBefore := packs(path)
		out, err := s.sync(name)
		t.Logf("%s: %s", name, strings.TrimSpace(out))
		if err == nil || !strings.Contains(out, "sync failed") || !strings.Contains(out, want) {
			t.Errorf("%s: gotctl sync: got %v\n%s\nwant failed with %q", name, err, out, want)
		}
		if got := headsAndTags(t, path); got != before {
			t.Errorf("%s: references moved:\n%s\nwant\n%s", name, got, before)
		}
		if got := packs(path); got != packsBefore {
			t.Errorf("%s: packs changed:\n%s\nwant\n%s", name, got, packsBefore)
		}
		if left := leftovers(t, path); len(left) > 0 {
			t.Errorf("%s: left behind: %v", name, left)
		}
		fsck(t, path)
		info := s.waitMirrorInfo(fmt.Sprintf("mirror %q from git://127.0.0.1:%d/%s: last success never, last error 2", name, port, name))
		// Tried again after 30 seconds, or 60 after the failure of the
		// sync at start too, not after its hour.
		_, next, _ := strings.Cut(info[strings.Index(info, fmt.Sprintf("mirror %q", name)):], "next attempt ")
		next, _, _ = strings.Cut(next, "\n")
		if at, err := time.Parse(time.RFC3339, next); err != nil || time.Until(at) > 65*time.Second {
			t.Errorf("%s: next attempt %q, %v; want within a minute", name, next, err)
		}
		// Still served.
		dir := s.clientDir("clone-" + name)
		s.mustGit(dir, nil, "clone", "-q", "--mirror", s.gitURL(name), "c")
	}
}
