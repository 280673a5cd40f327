package dumb

import (
	"regexp"
	"testing"
)

// served are the only paths Open may answer.
var served = regexp.MustCompile(`^(info/refs|HEAD|objects/info/packs|objects/[0-9a-f]{2}/[0-9a-f]{38}([0-9a-f]{24})?|objects/pack/pack-[0-9a-f]{40}([0-9a-f]{24})?\.(pack|idx))$`)

// FuzzOpen asks Open for any path of a real repository: what it
// answers must be one of the files of the dumb protocol.
func FuzzOpen(f *testing.F) {
	_, r, want := fixture(f, "sha1")
	blob := want["loose"]
	for _, s := range []string{"info/refs", "HEAD", "objects/info/packs", "objects/" + blob[:2] + "/" + blob[2:],
		"objects/../config", "objects/pack/../../config", "objects/info/alternates", "objects//" + blob} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		file, err := Open(r, path, nil)
		if err != nil {
			return
		}
		file.Body.Close()
		if !served.MatchString(path) {
			t.Fatalf("Open(%q) served a file", path)
		}
	})
}
