package wire

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"gotd/internal/git/oid"
	"gotd/internal/protocol/pktline"
)

func TestParseVersion(t *testing.T) {
	for in, want := range map[string]int{
		"":                            V0,
		"version=1":                   V1,
		"version=2":                   V2,
		"version=3":                   V0,
		"foo=bar:version=2":           V2,
		"version=2:version=1":         V2,
		"version=1:object-format=sha": V1,
		"version=22":                  V0,
	} {
		if got := ParseVersion(in); got != want {
			t.Errorf("ParseVersion(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestCaps(t *testing.T) {
	c := ParseCaps("multi_ack  side-band-64k agent=git/2.39.5 object-format=sha1")
	if !c.Has("side-band-64k") || c.Has("side-band") || !c.Has("agent") {
		t.Errorf("Has wrong on %q", c)
	}
	if v, ok := c.Value("agent"); !ok || v != "git/2.39.5" {
		t.Errorf("agent = %q, %v", v, ok)
	}
	if u := c.Unknown([]string{"multi_ack", "side-band-64k", "agent", "object-format"}); u != "" {
		t.Errorf("Unknown = %q", u)
	}
	if u := c.Unknown([]string{"multi_ack", "agent", "object-format"}); u != "side-band-64k" {
		t.Errorf("Unknown = %q", u)
	}
}

func TestAdvertise(t *testing.T) {
	f := oid.SHA1
	a := oid.MustFromBytes(f, bytes.Repeat([]byte{0xaa}, 20))
	b := oid.MustFromBytes(f, bytes.Repeat([]byte{0xbb}, 20))
	var out bytes.Buffer
	pw := pktline.NewWriter(&out)
	refs := []Ref{{Name: "HEAD", ID: a}, {Name: "refs/tags/v1", ID: b, Peeled: a}}
	if err := Advertise(pw, f, refs, "ofs-delta agent=x", true); err != nil {
		t.Fatal(err)
	}
	want := "000eversion 1\n" +
		"0044" + a.String() + " HEAD\x00ofs-delta agent=x\n" +
		"003a" + b.String() + " refs/tags/v1\n" +
		"003d" + a.String() + " refs/tags/v1^{}\n" +
		"0000"
	if out.String() != want {
		t.Errorf("got  %q\nwant %q", out.String(), want)
	}
	out.Reset()
	if err := Advertise(pw, f, nil, "ofs-delta", false); err != nil {
		t.Fatal(err)
	}
	want = "0047" + strings.Repeat("0", 40) + " capabilities^{}\x00ofs-delta\n0000"
	if out.String() != want {
		t.Errorf("empty: got %q\nwant %q", out.String(), want)
	}
}

func TestErrors(t *testing.T) {
	inner := errors.New("open /srv/secret/path: permission denied")
	err := Wrap("cannot read repository", inner)
	if got := ClientMessage(err); got != "cannot read repository" {
		t.Errorf("ClientMessage = %q", got)
	}
	if got := ClientMessage(inner); got != "internal server error" {
		t.Errorf("ClientMessage of a plain error = %q", got)
	}
	if !errors.Is(err, inner) {
		t.Error("Wrap does not unwrap")
	}
	var out bytes.Buffer
	SendErr(pktline.NewWriter(&out), err)
	if out.String() != "001fERR cannot read repository\n" {
		t.Errorf("SendErr wrote %q", out.String())
	}
}

func TestLimits(t *testing.T) {
	l := Limits{MaxWants: 5, MaxPackSize: -1}.WithDefaults()
	if l.MaxWants != 5 || l.MaxHaves != DefaultLimits.MaxHaves || l.MaxPackSize != -1 {
		t.Errorf("WithDefaults = %+v", l)
	}
	if Exceeds(5, 5) || !Exceeds(6, 5) || Exceeds(1<<40, int64(-1)) {
		t.Error("Exceeds wrong")
	}
}

func TestParseDaemonRequest(t *testing.T) {
	good := map[string]DaemonRequest{
		"git-upload-pack /project.git\x00host=example.com:9418\x00":       {Service: "git-upload-pack", Path: "/project.git", Host: "example.com:9418"},
		"git-receive-pack /a b\x00host=h\x00\x00version=2\x00":            {Service: "git-receive-pack", Path: "/a b", Host: "h", Extra: []string{"version=2"}},
		"git-upload-pack /x\x00\x00version=2\x00object-format=sha256\x00": {Service: "git-upload-pack", Path: "/x", Extra: []string{"version=2", "object-format=sha256"}},
		"git-upload-pack /x\n":                {Service: "git-upload-pack", Path: "/x"},
		"git-upload-archive /x\x00host=h\x00": {Service: "git-upload-archive", Path: "/x", Host: "h"},
	}
	for in, want := range good {
		got, err := ParseDaemonRequest([]byte(in))
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseDaemonRequest(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{
		"", "git-upload-pack", "git-upload-pack ", "rm -rf /x\x00", "git-upload-pack /x\x00host=h",
		"git-upload-pack /x\x00hast=h\x00", "git-upload-pack /x\x00host=h\x00\x00version=2",
		"git-upload-pack /x\x00host=h\x00\x00\x00", "git-upload-pack /x\ny\x00host=h\x00",
	} {
		if _, err := ParseDaemonRequest([]byte(in)); err == nil {
			t.Errorf("ParseDaemonRequest(%q) accepted", in)
		}
	}
}

func FuzzParseDaemonRequest(f *testing.F) {
	f.Add([]byte("git-upload-pack /project.git\x00host=example.com\x00\x00version=2\x00"))
	f.Add([]byte("git-receive-pack /x\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := ParseDaemonRequest(b)
		if err != nil {
			return
		}
		if req.Path == "" || strings.ContainsAny(req.Path, "\n\x00") || strings.ContainsAny(req.Host, "\x00\n ") {
			t.Fatalf("accepted %q as %+v", b, req)
		}
		for _, e := range req.Extra {
			if e == "" || strings.Contains(e, "\x00") {
				t.Fatalf("extra %q from %q", e, b)
			}
		}
	})
}

func FuzzParseVersion(f *testing.F) {
	f.Add("version=2")
	f.Fuzz(func(t *testing.T, s string) {
		if v := ParseVersion(s); v < V0 || v > V2 {
			t.Fatalf("version %d", v)
		}
	})
}
