package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotd/internal/git/repo"
	"gotd/internal/protocol/pktline"
)

// refStream is an ls-refs response made as it is read: n references
// whose names are long bytes each.
type refStream struct {
	n, long int
	i       int
	buf     bytes.Buffer
	pw      *pktline.Writer
}

func (s *refStream) Read(p []byte) (int, error) {
	if s.pw == nil {
		s.pw = pktline.NewWriter(&s.buf)
	}
	pw := s.pw
	for s.buf.Len() == 0 {
		if s.i == s.n {
			if s.n < 0 {
				return 0, io.EOF
			}
			pw.Flush()
			s.n = -1
			break
		}
		name := fmt.Sprintf("refs/heads/%d/", s.i)
		name += strings.Repeat("x", s.long-len(name))
		pw.WriteString(strings.Repeat("1", 40) + " " + name + "\n")
		s.i++
	}
	return s.buf.Read(p)
}

// streamed is a transport whose ls-refs response is a refStream.
type streamed struct{ refs *refStream }

func (s *streamed) advertisement(context.Context) (io.Reader, error) {
	return strings.NewReader("000eversion 2\n000cls-refs\n000afetch\n0000"), nil
}

func (s *streamed) command(_ context.Context, r io.Reader) (io.ReadCloser, error) {
	req, _ := io.ReadAll(r)
	if bytes.Contains(req, []byte("command=ls-refs")) {
		return io.NopCloser(s.refs), nil
	}
	return io.NopCloser(strings.NewReader("0000")), nil
}

func (s *streamed) close() {}

// TestFetchRefBytes: the names an upstream lists are bounded in bytes,
// not only in number: of 41,943 names of 4,000 bytes (160 MiB, within
// MaxRefs) the fetch reads those up to 128 MiB, then refuses them; of
// names of 40,000 bytes it reads one. Without the bound, a million names
// (MaxRefs) of 4 KiB were held: 4 GiB.
func TestFetchRefBytes(t *testing.T) {
	r, err := repo.Init(filepath.Join(t.TempDir(), "m.git"), repo.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, c := range []struct {
		name    string
		long    int
		maxRead int
		want    string
	}{
		{"long names", 4000, 128<<20/4000 + 1, "reference names over 128 MiB"},
		{"too long a name", 40000, 1, "a reference name over 4096 bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rs := &refStream{n: 160 << 20 / c.long, long: c.long}
			fe := &fetcher{opts: FetchOptions{Repo: r, MaxRefs: 1000000, Take: func(string) bool { return true }},
				t: &streamed{rs}, format: r.Format}
			fe.opts.Limits = fe.opts.Limits.WithDefaults()
			_, err := fe.run(context.Background())
			if !errors.Is(err, ErrUpstream) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v; want ErrUpstream saying %q", err, c.want)
			}
			// The reader runs ahead of the fetch by a packet at most.
			if rs.i > c.maxRead+1 {
				t.Errorf("the fetch read %d names of %d, want at most %d", rs.i, 160<<20/c.long, c.maxRead)
			}
		})
	}
}

// endlessV0 is a version 0 advertisement that lists references under
// refs/pull/, which a fetch does not take, without end (ten million).
type endlessV0 struct {
	i   int
	buf bytes.Buffer
	pw  *pktline.Writer
}

func (e *endlessV0) Read(p []byte) (int, error) {
	if e.pw == nil {
		e.pw = pktline.NewWriter(&e.buf)
		e.pw.WriteString(strings.Repeat("1", 40) + " refs/heads/main\x00side-band-64k ofs-delta\n")
	}
	for e.buf.Len() == 0 {
		if e.i == 10_000_000 {
			return 0, io.EOF // so that a failing test's fetch ends too
		}
		e.pw.WriteString(fmt.Sprintf("%s refs/pull/%d/head\n", strings.Repeat("2", 40), e.i))
		e.i++
	}
	return e.buf.Read(p)
}

type endlessTransport struct{ adv *endlessV0 }

func (e *endlessTransport) advertisement(context.Context) (io.Reader, error) { return e.adv, nil }
func (e *endlessTransport) command(context.Context, io.Reader) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader("0000")), nil
}
func (e *endlessTransport) close() {}

// TestFetchEndlessV0: a version 0 advertisement that goes on listing
// references the fetch does not take ends the fetch after MaxRefs
// lines, not at its timeout.
func TestFetchEndlessV0(t *testing.T) {
	r, err := repo.Init(filepath.Join(t.TempDir(), "m.git"), repo.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	adv := &endlessV0{}
	fe := &fetcher{opts: FetchOptions{Repo: r, MaxRefs: 1000, Take: func(name string) bool { return strings.HasPrefix(name, "refs/heads/") }},
		t: &endlessTransport{adv}, format: r.Format}
	fe.opts.Limits = fe.opts.Limits.WithDefaults()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := fe.run(ctx)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrUpstream) || !strings.Contains(err.Error(), "more than 1000 references") {
			t.Errorf("got %v; want ErrUpstream saying more than 1000 references", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the fetch was still reading the advertisement after 10 s")
	}
}
