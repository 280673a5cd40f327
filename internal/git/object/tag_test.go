package object

import (
	"testing"

	"gotd/internal/git/oid"
)

func TestParseTag(t *testing.T) {
	for _, f := range []oid.Format{oid.SHA1, oid.SHA256} {
		data := expand(f, "object <X>\ntype commit\ntag v1.0\ntagger T Agger <t@example.com> 1700000000 +0200\n\nrelease\n-----BEGIN PGP SIGNATURE-----\n")
		tg, err := ParseTag(f, data)
		if err != nil {
			t.Fatalf("%v: %v", f, err)
		}
		other, _ := ID(f, Blob, []byte("other\n"))
		if tg.Object != other || tg.Type != Commit || string(tg.Name) != "v1.0" ||
			tg.Tagger == nil || string(tg.Tagger.Name) != "T Agger" || tg.Tagger.TZ != 120 ||
			string(tg.Message) != "release\n-----BEGIN PGP SIGNATURE-----\n" {
			t.Errorf("%v: got %+v", f, tg)
		}
	}
	tg, err := ParseTag(oid.SHA1, expand(oid.SHA1, "object <X>\ntype blob\ntag old\n"))
	if err != nil || tg.Tagger != nil || tg.Message != nil || tg.Type != Blob {
		t.Errorf("tag without tagger: got %+v, %v", tg, err)
	}
	tg, err = ParseTag(oid.SHA1, expand(oid.SHA1, "object <X>\ntype tree\ntag t\nx-extra 1\ntagger bad\n\nm"))
	if err != nil || tg.Tagger == nil || string(tg.Tagger.Name) != "bad" || string(tg.Message) != "m" {
		t.Errorf("tag with extra header: got %+v, %v", tg, err)
	}
}

func TestParseTagMalformed(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    oid.Format
		data string
	}{
		{"empty", oid.SHA1, ""},
		{"no object", oid.SHA1, "type commit\ntag t\n"},
		{"object bad", oid.SHA1, "object <G>\ntype commit\ntag t\n"},
		{"object short", oid.SHA1, "object <S>\ntype commit\ntag t\n"},
		{"object unterminated", oid.SHA1, "object <X>"},
		{"no type", oid.SHA1, "object <X>\ntag t\n"},
		{"type unterminated", oid.SHA1, "object <X>\ntype commit"},
		{"bad type", oid.SHA1, "object <X>\ntype Commit\ntag t\n"},
		{"delta type", oid.SHA1, "object <X>\ntype ref-delta\ntag t\n"},
		{"no tag", oid.SHA1, "object <X>\ntype commit\ntagger T <t> 1 +0000\n"},
		{"tag unterminated", oid.SHA1, "object <X>\ntype commit\ntag t"},
		{"sha1 id in sha256", oid.SHA256, "object 0123456789012345678901234567890123456789\ntype commit\ntag t\n"},
		{"invalid format", 0, "object <X>\ntype commit\ntag t\n"},
	} {
		f := tc.f
		if f == 0 {
			f = oid.SHA1
		}
		if tg, err := ParseTag(tc.f, expand(f, tc.data)); err == nil {
			t.Errorf("%s: got %+v; want error", tc.name, tg)
		}
	}
}
