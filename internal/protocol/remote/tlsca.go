package remote

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
)

// MaxCA bounds the PEM certificates of FetchOptions.CA and
// SendOptions.CA (a bundle of a few hundred certificates).
const MaxCA = 1 << 20

// ErrNoCA is wrapped by the error for a CA without a PEM certificate.
var ErrNoCA = errors.New("remote: no PEM certificate in the CA")

// setCA makes ca (PEM certificates; empty: none) the only roots an https
// transport verifies the server's certificate against, instead of the
// system's. Other transports have no certificates to verify.
func setCA(t transport, ca []byte) error {
	if len(ca) == 0 {
		return nil
	}
	if len(ca) > MaxCA {
		return errors.New("remote: CA larger than 1 MiB")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return ErrNoCA
	}
	h, ok := t.(*httpTransport)
	if !ok {
		return nil
	}
	tr, ok := h.client.Transport.(*http.Transport)
	if !ok {
		return errors.New("remote: http transport without TLS settings")
	}
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return nil
}
