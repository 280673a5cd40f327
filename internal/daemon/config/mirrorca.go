package config

import (
	"crypto/x509"
	"io"
	"os"
)

// MaxMirrorCA bounds a mirror's CA file (ipc.MaxCA): a few dozen
// certificates.
const MaxMirrorCA = 32 << 10

// MirrorCA is a mirror's "ca FILE" option, pull or push, for an https
// URL: the PEM certificates, read when the configuration is, that are
// the only roots the server's certificate is verified against instead
// of the system's.
type MirrorCA struct {
	CAFile string
	CA     []byte
}

// caOption parses "ca FILE" into o, reading the file, and reports
// whether the current token began it.
func (p *parser) caOption(line int, o *MirrorCA) bool {
	if !p.is("ca") {
		return false
	}
	p.advance()
	o.CAFile = p.cleanPath(line, "mirror ca file", p.str("a CA file"))
	f, err := os.Open(o.CAFile)
	if err != nil {
		p.errorf(line, "mirror ca: %v", err)
		return true
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxMirrorCA+1))
	switch {
	case err != nil:
		p.errorf(line, "mirror ca: %v", err)
	case len(b) > MaxMirrorCA:
		p.errorf(line, "mirror ca: %s is larger than %d bytes", o.CAFile, MaxMirrorCA)
	case !x509.NewCertPool().AppendCertsFromPEM(b):
		p.errorf(line, "mirror ca: no PEM certificate in %s", o.CAFile)
	default:
		o.CA = b
	}
	return true
}

// checkCA refuses a CA for a URL of another kind than https.
func (p *parser) checkCA(line int, o *MirrorCA, kind string) {
	if o.CAFile != "" && kind != "https" {
		p.errorf(line, "mirror ca is for https URLs")
	}
}
