package gitcmd

import "testing"

func TestParse(t *testing.T) {
	good := map[string][2]string{
		"git-upload-pack '/project.git'":       {UploadPack, "project.git"},
		"git-receive-pack 'openbsd/ports'":     {ReceivePack, "openbsd/ports"},
		"git upload-pack '/src'":               {UploadPack, "src"},
		"git receive-pack 'src.git'":           {ReceivePack, "src.git"},
		"git-upload-pack project.git":          {UploadPack, "project.git"},
		"git-upload-pack '~/x.git'":            {UploadPack, "x.git"},
		"git-upload-pack 'it'\\''s.git'":       {UploadPack, "it's.git"},
		"git-upload-pack '/a b/c.git/'":        {UploadPack, "a b/c.git"},
		"git-upload-pack  '/double-space.git'": {UploadPack, "double-space.git"},
		"git-upload-archive 'x'":               {UploadArchive, "x"},
		"git upload-archive '/a/b.git'":        {UploadArchive, "a/b.git"},
	}
	for in, want := range good {
		s, r, err := Parse(in)
		if err != nil || s != want[0] || r != want[1] {
			t.Errorf("Parse(%q) = %q, %q, %v; want %q", in, s, r, err, want)
		}
	}
	for _, in := range []string{
		"", "ls", "git-upload-pack", "git-upload-pack ''", "git-upload-archivex 'x'", "git-upload-pack 'x' 'y'",
		"git-upload-archive", "git-upload-archive '../x'", "git upload-archive 'x' --remote=y",
		"git-upload-pack 'x'; rm -rf /", "git-upload-pack x;ls", "git-upload-pack $(id)", "git-upload-pack 'unterminated",
		"git-upload-pack '../etc'", "git-upload-pack 'a/../../b'", "git-upload-pack 'a//b'", "git-upload-pack '/'",
		"git-upload-pack 'a\nb'", "git-upload-pack `id`", "git-upload-pack 'x'\\''", "sh -c 'git-upload-pack x'",
		"git-upload-pack 'x'y", "git-shell", "git-upload-pack '.'", "git-upload-pack ~other/x",
	} {
		if s, r, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) accepted: %q %q", in, s, r)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("git-upload-pack '/project.git'")
	f.Add("git receive-pack 'a'\\''b'")
	f.Add("git-upload-archive '/x.git'")
	f.Fuzz(func(t *testing.T, in string) {
		s, r, err := Parse(in)
		if err != nil {
			return
		}
		if s != UploadPack && s != ReceivePack && s != UploadArchive {
			t.Fatalf("service %q", s)
		}
		if r == "" || r[0] == '/' || len(r) > maxRepoName {
			t.Fatalf("repository %q from %q", r, in)
		}
		if _, err := cleanName(r); err != nil {
			t.Fatalf("repository %q from %q not clean", r, in)
		}
	})
}
