package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strings"

	"gotd/internal/engine/upkeep"
	"gotd/internal/git/refs"
	"gotd/internal/git/repo"
	"gotd/internal/protocol/receive"
	"gotd/internal/protocol/remote"
)

// cmdClone makes a bare repository whose refs/heads and refs/tags are
// the upstream's: gotadmin clone [-q] [-c ca-file] [-i identity-file]
// [-k known-hosts-file] URL repository-path. The URL is
// recorded as the repository's upstream (remote.origin.url) for
// gotadmin fetch.
func cmdClone(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("clone")
	quiet := fs.Bool("q", false, "quiet")
	sshOpts := sshFlags(fs)
	caFile := fs.String("c", "", "CA certificates (PEM) an https upstream is verified against instead of the system's")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ca, err := readCA(*caFile)
	if err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return errUsage
	}
	rawURL, path := fs.Arg(0), fs.Arg(1)
	if strings.ContainsAny(rawURL, "\n\"\\") {
		return fmt.Errorf("malformed URL %q", rawURL)
	}
	r, err := repo.Init(path, repo.InitOptions{})
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		r.Close()
		if !ok {
			os.RemoveAll(path)
		}
	}()
	res, err := fetchInto(ctx, r, rawURL, sshOpts(), ca, *quiet, stdout)
	if err != nil {
		return err
	}
	// The references go into packed-refs with their peeled values, as
	// git clone writes them: a listing then reads one file, not one per
	// reference, and a later fetch's check takes each tag's commit from
	// it instead of reading the tag (git.git's 1,016 references).
	if _, _, err := upkeep.PackRefs(r, 0); err != nil {
		return err
	}
	if res.Head != "" {
		if _, err := r.Refs.Read(res.Head); err == nil {
			if err := r.Refs.SetSymbolic("HEAD", res.Head); err != nil {
				return err
			}
		}
	}
	f, err := os.OpenFile(filepath.Join(r.GitDir, "config"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "[remote \"origin\"]\n\turl = \"%s\"\n", rawURL)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	ok = true
	return nil
}

// cmdFetch brings a repository's refs/heads and refs/tags to the
// upstream's: gotadmin fetch [-q] [-c ca-file] [-i identity-file] [-k
// known-hosts-file] [-r repository-path] [URL], from URL
// or the repository's recorded upstream.
func cmdFetch(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("fetch")
	quiet := fs.Bool("q", false, "quiet")
	rflag := fs.String("r", "", "repository path")
	sshOpts := sshFlags(fs)
	caFile := fs.String("c", "", "CA certificates (PEM) an https upstream is verified against instead of the system's")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ca, err := readCA(*caFile)
	if err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return errUsage
	}
	r, err := openRepo(*rflag)
	if err != nil {
		return err
	}
	defer r.Close()
	rawURL := fs.Arg(0)
	if rawURL == "" {
		u, ok := r.Config.Get("remote", "origin", "url")
		if !ok {
			return errors.New("no URL given and no upstream recorded (remote.origin.url)")
		}
		rawURL = u
	}
	_, err = fetchInto(ctx, r, rawURL, sshOpts(), ca, *quiet, stdout)
	return err
}

// fetchInto fetches rawURL into r, the references following the
// upstream's (Prune), and tells what moved. ca, if not empty, is the
// only roots an https upstream is verified against.
func fetchInto(ctx context.Context, r *repo.Repo, rawURL string, sshOpts *remote.SSH, ca []byte, quiet bool, stdout io.Writer) (*remote.FetchResult, error) {
	who := refs.Who{Name: "gotadmin", Message: "gotadmin fetch"}
	if u, err := user.Current(); err == nil {
		who.Name = u.Username
	}
	opts := remote.FetchOptions{URL: rawURL, Repo: r, Prune: true, Who: who, BeforeInstall: ownFiles(r.GitDir), SSH: sshOpts, CA: ca}
	if !quiet {
		opts.Progress = func(msg string) { fmt.Fprintln(os.Stderr, msg) }
	}
	var restore func()
	opts.PackObjects, restore = receive.GCForPack()
	defer restore()
	res, err := remote.Fetch(ctx, opts)
	if err != nil {
		return nil, err
	}
	for _, u := range res.Updates {
		fixOwner(r.GitDir, u.Name)
		if !quiet {
			fmt.Fprintf(stdout, "%s: %s -> %s\n", u.Name, idOrDash(u.Old), idOrDash(u.New))
		}
	}
	return res, nil
}

// sshFlags adds -i identity-file and -k known-hosts-file to fs; the
// function returned gives the SSH options once fs is parsed. As ssh(1)
// does, they default to the first of ~/.ssh/id_ed25519, id_ecdsa and
// id_rsa that exists, and to ~/.ssh/known_hosts: a host key is never
// accepted unless known_hosts names it.
func sshFlags(fs *flag.FlagSet) func() *remote.SSH {
	identity := fs.String("i", "", "SSH private key file")
	known := fs.String("k", "", "SSH known_hosts file")
	return func() *remote.SSH {
		o := &remote.SSH{KeyFile: *identity, KnownHosts: *known}
		home, err := os.UserHomeDir()
		if err != nil {
			return o
		}
		if o.KnownHosts == "" {
			o.KnownHosts = filepath.Join(home, ".ssh", "known_hosts")
		}
		if o.KeyFile == "" {
			for _, name := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
				p := filepath.Join(home, ".ssh", name)
				if _, err := os.Stat(p); err == nil {
					o.KeyFile = p
					break
				}
			}
		}
		return o
	}
}

// readCA reads the CA file of -c ("": none), at most remote.MaxCA
// bytes.
func readCA(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, remote.MaxCA+1))
	if err != nil {
		return nil, err
	}
	if len(b) > remote.MaxCA {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, remote.MaxCA)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("%s: %w", path, remote.ErrNoCA)
	}
	return b, nil
}
