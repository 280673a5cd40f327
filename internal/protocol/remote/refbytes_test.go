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
