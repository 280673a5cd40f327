package repo

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"gotd/internal/git/oid"
	"gotd/internal/git/perm"
	"gotd/internal/git/refs"
)

// InitOptions say what kind of repository Init creates. The zero value
// creates a SHA-1 repository whose HEAD names refs/heads/main.
type InitOptions struct {
	Format oid.Format // 0 means SHA-1
	Branch string     // branch HEAD points at; "" means "main"
	// Shared is the repository's core.sharedRepository (perm.Parse
	// reads it): "" for a private repository, whose files and
	// directories grant nothing to other users; "group" lets the
	// group read and write it.
	Shared string
}

// Init creates a new empty bare repository at path, which must not exist
// or be an empty directory, and opens it. On failure nothing it created
// is left behind.
func Init(path string, o InitOptions) (*Repo, error) {
	if o.Format == 0 {
		o.Format = oid.SHA1
	}
	if !o.Format.Valid() {
		return nil, fmt.Errorf("repo: invalid object format")
	}
	if o.Branch == "" {
		o.Branch = "main"
	}
	head := "refs/heads/" + o.Branch
	if err := refs.CheckName(head); err != nil {
		return nil, fmt.Errorf("repo: invalid branch name %q: %w", o.Branch, err)
	}
	sh, err := perm.Parse(o.Shared)
	if err != nil {
		return nil, fmt.Errorf("repo: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("repo: %w", err)
	}
	created := false
	switch entries, err := os.ReadDir(abs); {
	case errors.Is(err, fs.ErrNotExist):
		// Missing parents as the umask has them; the repository as it
		// is shared.
		if err := os.MkdirAll(filepath.Dir(abs), 0o777); err != nil {
			return nil, fmt.Errorf("repo: %w", err)
		}
		if err := sh.Mkdir(abs); err != nil {
			return nil, fmt.Errorf("repo: %w", err)
		}
		created = true
	case err != nil:
		return nil, fmt.Errorf("repo: %w", err)
	case len(entries) > 0:
		return nil, fmt.Errorf("repo: %s: directory exists and is not empty", path)
	}
	if err := populate(abs, o.Format, head, sh, o.Shared); err != nil {
		if created {
			os.RemoveAll(abs)
		} else {
			clearDir(abs)
		}
		return nil, err
	}
	return Open(abs, Options{})
}

func populate(dir string, f oid.Format, head string, sh perm.Shared, shared string) error {
	if err := sh.FixDir(dir); err != nil {
		return fmt.Errorf("repo: %w", err)
	}
	for _, d := range []string{"objects", "objects/info", "objects/pack", "refs", "refs/heads", "refs/tags"} {
		if err := sh.Mkdir(filepath.Join(dir, d)); err != nil {
			return fmt.Errorf("repo: %w", err)
		}
	}
	// SHA-256 needs repositoryformatversion 1 and the objectformat
	// extension; SHA-1 repositories stay at version 0 so that every Git
	// version can read them.
	cfg := "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n"
	if f != oid.SHA1 {
		cfg = "[core]\n\trepositoryformatversion = 1\n\tfilemode = true\n\tbare = true\n" +
			"[extensions]\n\tobjectformat = " + f.String() + "\n"
	}
	if sh.IsShared() {
		cfg = strings.Replace(cfg, "\tbare = true\n", "\tbare = true\n\tsharedrepository = "+shared+"\n", 1)
	}
	files := []struct{ name, data string }{
		{"config", cfg},
		{"description", "Unnamed repository; edit this file 'description' to name the repository.\n"},
		{"HEAD", "ref: " + head + "\n"},
	}
	for _, file := range files {
		if err := writeFileSync(filepath.Join(dir, file.name), []byte(file.data), sh); err != nil {
			return fmt.Errorf("repo: %w", err)
		}
	}
	return nil
}

func writeFileSync(path string, data []byte, sh perm.Shared) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := sh.Chmod(f, 0o666); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func clearDir(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}
