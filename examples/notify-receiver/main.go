// Command notify-receiver is an example receiver of gotd's HTTP
// notifications: it accepts a POST only when its X-Gotd-Signature header
// is the HMAC-SHA256 of the body under the secret shared with gotd (the
// hmac entry of gotd-secrets.conf) and, when a user is set, when basic
// authentication matches; it then prints the JSON document.
//
//	GOTD_HMAC_SECRET=... notify-receiver -listen 127.0.0.1:8000 [-user U -password P]
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strings"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8000", "address to listen on")
	user := flag.String("user", "", "user name basic authentication must give (empty: none)")
	password := flag.String("password", "", "its password")
	flag.Parse()
	secret := os.Getenv("GOTD_HMAC_SECRET")
	if secret == "" {
		log.Fatal("set GOTD_HMAC_SECRET to the hmac secret shared with gotd")
	}
	h := &receiver{secret: []byte(secret), user: *user, password: *password, out: os.Stdout}
	log.Fatal(http.ListenAndServe(*listen, h))
}

// receiver checks and prints notifications.
type receiver struct {
	secret         []byte
	user, password string
	out            io.Writer
}

// maxBody bounds a notification document.
const maxBody = 8 << 20

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	if rc.user != "" {
		u, p, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(rc.user)) != 1 ||
			subtle.ConstantTimeCompare([]byte(p), []byte(rc.password)) != 1 {
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		http.Error(w, "body unreadable or too large", http.StatusBadRequest)
		return
	}
	if !validSignature(rc.secret, body, r.Header.Get("X-Gotd-Signature")) {
		http.Error(w, "bad signature", http.StatusForbidden)
		return
	}
	fmt.Fprintf(rc.out, "%s\n", body)
}

// validSignature reports whether sig is "sha256=<hex>" of the body's
// HMAC-SHA256 under secret, compared in constant time.
func validSignature(secret, body []byte, sig string) bool {
	hexSum, ok := strings.CutPrefix(sig, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSum)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hmac.Equal(got, m.Sum(nil))
}
