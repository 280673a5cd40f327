package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testCA is a self-signed certificate (any will do: only its form is
// checked when the configuration is read).
const testCA = `-----BEGIN CERTIFICATE-----
MIIBejCCAR+gAwIBAgIUGhGetSC6jvD4Jm+6fgjxP+Zta84wCgYIKoZIzj0EAwIw
EjEQMA4GA1UEAwwHdGVzdCBDQTAeFw0yNjEyMDcxMTM4NDZaFw0zNjEyMDQxMTM4
NDZaMBIxEDAOBgNVBAMMB3Rlc3QgQ0EwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNC
AASznMY1DmdLePbJcVS0nZOMCdtxzBo6/SW5T35UvsSrVDJcPO4HPfk45ch9Xpxx
RsXfRzcYc5IXZaY0SteOuRSTo1MwUTAdBgNVHQ4EFgQUnbTzwzQoisE+FcOxwpcq
uisnCXEwHwYDVR0jBBgwFoAUnbTzwzQoisE+FcOxwpcquisnCXEwDwYDVR0TAQH/
BAUwAwEB/zAKBggqhkjOPQQDAgNJADBGAiEA+gPRnC7zOzsOteppwnm2z0vcZBdh
B9smtKMZLKXISnQCIQCiaIXbKpoIDBGrurekcFy33mjA3lK70sAEkJrmcPR+Sw==
-----END CERTIFICATE-----
`

// TestMirrorCA: "ca FILE" of mirror from and mirror to reads the
// file's certificates into the configuration; a file that is missing,
// holds no certificate or is too large, and a CA for a URL that is not
// https, are refused with the line.
func TestMirrorCA(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	notPEM := filepath.Join(dir, "not.pem")
	large := filepath.Join(dir, "large.pem")
	os.WriteFile(ca, []byte(testCA), 0o644)
	os.WriteFile(notPEM, []byte("hello\n"), 0o644)
	os.WriteFile(large, bytes.Repeat([]byte(testCA), MaxMirrorCA/len(testCA)+1), 0o644)
	parse := func(line string) (*Repository, error) {
		c, err := Parse("m.conf", []byte("repository \"r\" {\n\tpath \"/r\"\n\t"+line+"\n}\n"), Options{})
		if err != nil {
			return nil, err
		}
		return c.Repositories[0], nil
	}
	r, err := parse(`mirror from "https://example.org/a.git" ca "` + ca + `"`)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Mirror.CA; string(got) != testCA || r.Mirror.CAFile != ca {
		t.Errorf("mirror from: CA %q from %q; want the file's", got, r.Mirror.CAFile)
	}
	r, err = parse(`mirror to "https://example.org/a.git" ca "` + ca + `"`)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.MirrorTo) != 1 || string(r.MirrorTo[0].CA) != testCA {
		t.Errorf("mirror to: got %+v; want the file's CA", r.MirrorTo)
	}
	for _, tc := range []struct{ line, want string }{
		{`mirror from "https://h/a" ca "` + filepath.Join(dir, "none") + `"`, "m.conf:3: mirror ca: open"},
		{`mirror from "https://h/a" ca "` + notPEM + `"`, "m.conf:3: mirror ca: no PEM certificate"},
		{`mirror from "https://h/a" ca "` + large + `"`, "m.conf:3: mirror ca: " + large + " is larger than"},
		{`mirror from "https://h/a" ca "ca.pem"`, "m.conf:3: mirror ca file must be an absolute path"},
		{`mirror from "http://h/a" ca "` + ca + `"`, "m.conf:3: mirror ca is for https URLs"},
		{`mirror from "git://h/a" ca "` + ca + `"`, "m.conf:3: mirror ca is for https URLs"},
		{`mirror to "git://h/a" ca "` + ca + `"`, "m.conf:3: mirror ca is for https URLs"},
		{`mirror to "https://h/a" ca "` + notPEM + `"`, "m.conf:3: mirror ca: no PEM certificate"},
	} {
		_, err := parse(tc.line)
		var cerr *Error
		if !errors.As(err, &cerr) || len(cerr.Problems) == 0 {
			t.Errorf("%q: got error %v; want %q", tc.line, err, tc.want)
			continue
		}
		if got := cerr.Problems[0]; !strings.HasPrefix(got, tc.want) {
			t.Errorf("%q: got %q; want %q", tc.line, got, tc.want)
		}
	}
}
