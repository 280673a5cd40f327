package e2enet

import (
	"bytes"
	"crypto/sha1"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zlib"

	"gotd/internal/git/object"
	"gotd/internal/git/oid"
	"gotd/internal/git/pack"
)

// deltaBombPack is a pack of a 64 KiB blob and a delta against it that
// declares a result of size bytes, made by copying the blob over and
// over (one byte of delta per 64 KiB): a few KiB on the wire.
func deltaBombPack(size uint64) (p []byte, base oid.ID) {
	blob := bytes.Repeat([]byte("0123456789abcdef"), 1<<12)
	d := pack.AppendDeltaSize(nil, uint64(len(blob)))
	d = pack.AppendDeltaSize(d, size)
	for n := uint64(0); n < size; n += 1 << 16 {
		d = append(d, 0x80)
	}
	p = pack.AppendHeader(nil, 2)
	deflate := func(b []byte) {
		var z bytes.Buffer
		zw, _ := zlib.NewWriterLevel(&z, zlib.BestCompression)
		zw.Write(b)
		zw.Close()
		p = append(p, z.Bytes()...)
	}
	p = pack.AppendEntryHeader(p, object.Blob, uint64(len(blob)))
	deflate(blob)
	off := uint64(len(p))
	p = pack.AppendEntryHeader(p, object.OfsDelta, uint64(len(d)))
	p = pack.AppendOfs(p, off-pack.HeaderSize)
	deflate(d)
	sum := sha1.Sum(p)
	base, _ = object.ID(oid.SHA1, object.Blob, blob)
	return append(p, sum[:]...), base
}

// patterned returns n bytes that compress well but are not one byte
// repeated, so that git stores them as a file of that size.
func patterned(n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 4096 {
		copy(b[i:], fmt.Sprintf("block %12d\n", i))
	}
	return b
}

// TestObjectSizeLimit: with the default "max object size" (100M) a
// delta bomb (a 1.9 GB result declared in a pack of a few KiB) and a
// C Git push of a file over the bound are refused with a message naming
// it, leaving the repository as it was; with the bound raised by a
// reload, the file is pushed and cloned, and both repositories pass
// git fsck --full --strict.
func TestObjectSizeLimit(t *testing.T) {
	s := start(t, options{})
	src := filepath.Join(s.dir, "test.git")
	const want = "pack has an object over the maximum size of 104857600 bytes"
	refsBefore, packsBefore := refs(t, src), packs(t, src)
	unchanged := func(what string) {
		t.Helper()
		if got := refs(t, src); got != refsBefore {
			t.Errorf("%s changed the server's references:\n%s\nwere:\n%s", what, got, refsBefore)
		}
		if got := packs(t, src); got != packsBefore {
			t.Errorf("%s left packs: %s, were %s", what, got, packsBefore)
		}
		if q := quarantinesLeft(src); len(q) > 0 {
			t.Errorf("%s left quarantines %v", what, q)
		}
		fsck(t, src)
	}

	// The delta bomb, over smart HTTP.
	bomb, base := deltaBombPack(1900 << 20)
	body := pktLine(fmt.Sprintf("%s %s refs/heads/bomb\x00report-status\n", strings.Repeat("0", 40), base)) + "0000" + string(bomb)
	req, _ := http.NewRequest("POST", s.httpURL("", "test")+"/git-receive-pack", strings.NewReader(body))
	req.SetBasicAuth(rwAccount, password)
	req.Header.Set("Content-Type", "application/x-git-receive-pack-request")
	began := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(answer, []byte("unpack "+want)) {
		t.Errorf("delta bomb of %d bytes: %d %q; want %q", len(bomb), resp.StatusCode, answer, want)
	}
	t.Logf("delta bomb of %d bytes refused in %v", len(bomb), time.Since(began))
	unchanged("the delta bomb")

	// A file over the bound, pushed by C Git over SSH.
	env := []string{"GIT_SSH_COMMAND=" + s.sshCommand(s.writerKey)}
	url := s.sshURL(rwAccount, "test")
	work := filepath.Join(s.clientDir("big"), "w")
	s.mustGit(filepath.Dir(work), env, "clone", "-q", url, "w")
	big := patterned(110 << 20)
	if err := os.WriteFile(filepath.Join(work, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	s.mustGit(work, nil, "add", "big.bin")
	s.mustGit(work, nil, "commit", "-q", "-m", "big")
	if out, err := s.git(work, env, "push", url, "HEAD:main"); err == nil || !strings.Contains(out, want) {
		t.Errorf("push of a 110 MiB file: %v; want a refusal with %q:\n%s", err, want, out)
	}
	unchanged("the push of a 110 MiB file")

	// Raised, it lands, and a clone brings it back whole.
	conf, err := os.ReadFile(s.conf)
	if err != nil {
		t.Fatal(err)
	}
	raised := strings.Replace(string(conf), "\tpermit ro anonymous\n\n}\nrepository \"private\"",
		"\tpermit ro anonymous\n\tpush max object size 120M\n}\nrepository \"private\"", 1)
	if raised == string(conf) {
		t.Fatalf("test repository block not found in:\n%s", conf)
	}
	write(t, s.conf, raised, 0o644)
	if out, err := s.gotctl("reload"); err != nil {
		t.Fatalf("gotctl reload: %v\n%s", err, out)
	}
	s.mustGit(work, env, "push", "-q", url, "HEAD:main")
	fsck(t, src)
	clone := filepath.Join(s.clientDir("big-clone"), "c")
	s.mustGit(filepath.Dir(clone), nil, "clone", "-q", s.gitURL("test"), "c")
	got, err := os.ReadFile(filepath.Join(clone, "big.bin"))
	if err != nil || !bytes.Equal(got, big) {
		t.Errorf("cloned big.bin: %d bytes, %v; want the %d bytes pushed", len(got), err, len(big))
	}
	fsck(t, clone)
}

// rolePeaks samples the peak resident memory (VmHWM) of the daemon's
// processes by role until stop is closed, then returns it in KiB.
func rolePeaks(root int, stop chan struct{}) <-chan map[string]int {
	out := make(chan map[string]int, 1)
	go func() {
		peaks := map[string]int{}
		for {
			for _, pid := range descendants(root) {
				cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				argv0, _, _ := strings.Cut(string(cmdline), "\x00")
				role, ok := strings.CutPrefix(argv0, "gotd: ")
				if !ok {
					continue
				}
				status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
				if _, after, ok := strings.Cut(string(status), "\nVmHWM:"); ok {
					if f := strings.Fields(after); len(f) > 0 {
						var kb int
						fmt.Sscan(f[0], &kb)
						peaks[role] = max(peaks[role], kb)
					}
				}
			}
			select {
			case <-stop:
				out <- peaks
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return out
}

// bombCommit returns a pack of a commit whose tree holds the delta bomb
// of deltaBombPack (as "big"), with the commit's id.
func bombCommit(size uint64) (p []byte, commit oid.ID) {
	bomb, _ := deltaBombPack(size)
	blob := bytes.Repeat([]byte("0123456789abcdef"), 1<<12)
	h := oid.SHA1.New()
	h.Write(object.AppendHeader(nil, object.Blob, int64(size)))
	for n := uint64(0); n < size; n += uint64(len(blob)) {
		h.Write(blob)
	}
	big := oid.MustFromBytes(oid.SHA1, h.Sum(nil))
	tree := append([]byte("100644 big\x00"), big.Raw()...)
	treeID, _ := object.ID(oid.SHA1, object.Tree, tree)
	c := []byte(fmt.Sprintf("tree %s\nauthor A U Thor <author@example.com> 1700000000 +0000\ncommitter A U Thor <author@example.com> 1700000000 +0000\n\nbomb\n", treeID))
	commit, _ = object.ID(oid.SHA1, object.Commit, c)
	// The bomb's two entries, then the tree and the commit.
	p = bomb[:len(bomb)-sha1.Size]
	p[11] = 4 // object count
	for _, o := range []struct {
		t    object.Type
		data []byte
	}{{object.Tree, tree}, {object.Commit, c}} {
		p = pack.AppendEntryHeader(p, o.t, uint64(len(o.data)))
		var z bytes.Buffer
		zw := zlib.NewWriter(&z)
		zw.Write(o.data)
		zw.Close()
		p = append(p, z.Bytes()...)
	}
	sum := sha1.Sum(p)
	return append(p, sum[:]...), commit
}

// TestLargeDeltaPushedAndFetched: under a raised "max object size", a
// pack of a few KiB whose delta makes a 300 MiB file is accepted, and a
// partial clone that leaves the file out then fetches it alone (its
// base is not sent: the delta cannot be sent as stored). Both repo_write
// and session_read stay far below the file's size: the one hashes the
// file as its delta produces it, the other compresses it so (issue
// 18). The clone has the file, and both repositories pass git fsck.
func TestLargeDeltaPushedAndFetched(t *testing.T) {
	s := start(t, options{extraTest: "\tpush max object size 1G"})
	src := filepath.Join(s.dir, "test.git")
	const size = 300 << 20
	p, commit := bombCommit(size)
	body := pktLine(fmt.Sprintf("%s %s refs/heads/big\x00report-status\n", strings.Repeat("0", 40), commit)) + "0000" + string(p)
	req, _ := http.NewRequest("POST", s.httpURL("", "test")+"/git-receive-pack", strings.NewReader(body))
	req.SetBasicAuth(rwAccount, password)
	req.Header.Set("Content-Type", "application/x-git-receive-pack-request")
	stop := make(chan struct{})
	peaks := rolePeaks(s.daemon.Process.Pid, stop)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	close(stop)
	if !bytes.Contains(answer, []byte("unpack ok")) || !bytes.Contains(answer, []byte("ok refs/heads/big")) {
		t.Fatalf("push of a %d-byte pack making a %d MiB file: %d %q", len(p), size>>20, resp.StatusCode, answer)
	}
	pushPeaks := <-peaks
	fsck(t, src)

	clone := filepath.Join(s.clientDir("lazy"), "c")
	s.mustGit(filepath.Dir(clone), nil, "clone", "-q", "--no-checkout", "--filter=blob:limit=1k", "-b", "big", s.gitURL("test"), "c")
	stop = make(chan struct{})
	peaks = rolePeaks(s.daemon.Process.Pid, stop)
	out := s.mustGit(clone, nil, "cat-file", "-s", "big:big")
	close(stop)
	fetchPeaks := <-peaks
	if strings.TrimSpace(out) != fmt.Sprint(size) {
		t.Errorf("lazily fetched file: size %q; want %d", out, size)
	}
	fsck(t, clone)
	t.Logf("peak memory: push %v KiB, fetch %v KiB", pushPeaks, fetchPeaks)
	// A fetch is served by one process, its session: no other role
	// started for it (repo_read did, issue 18). The spare session_read
	// started as the fetch took the last one is for the next client;
	// the web process of anonymous visitors runs from the start.
	for role := range fetchPeaks {
		if role != "session_read" && role != "spare session_read" && role != "gitd" && role != "httpd" && role != "sshd" && role != "listen" && role != "notify" && role != "web" {
			t.Errorf("the fetch started a %s process; want session_read alone", role)
		}
	}
	for _, c := range []struct {
		role  string
		peaks map[string]int
	}{{"repo_write", pushPeaks}, {"session_read", fetchPeaks}} {
		kb, ok := c.peaks[c.role]
		if !ok {
			t.Errorf("no %s process seen", c.role)
		}
		if kb > 96<<10 {
			t.Errorf("%s reached %d MiB for a %d MiB file; want at most 96", c.role, kb>>10, size>>20)
		}
	}
}
