package e2enet

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The audit trail (issue 20): every request is one line of the
// daemon's log at its default verbosity, with who, through what, from
// where, on which repository, what was done and how it ended; and the
// noise that hid it is gone.

// requestLines returns the request records of the log that contain
// every one of want.
func requestLines(log string, want ...string) []string {
	var out []string
	for line := range strings.Lines(log) {
		if !strings.Contains(line, " msg=request ") {
			continue
		}
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(line, w)
		}
		if ok {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return out
}

// waitRequests waits up to 10 s for the log to hold n more request
// records than it held when it had before of them, and returns the new
// records, n or not.
func (s *server) waitRequests(before, n int) []string {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if len(requestLines(s.log.String())) >= before+n {
			break
		}
	}
	// Records that come late are one too many as well.
	time.Sleep(100 * time.Millisecond)
	return requestLines(s.log.String())[before:]
}

// expectRequests is waitRequests that fails the test unless exactly n
// records came.
func (s *server) expectRequests(before, n int, what string) []string {
	s.t.Helper()
	got := s.waitRequests(before, n)
	if len(got) != n {
		s.t.Fatalf("%s: %d request records; want %d:\n%s\nlog:\n%s", what, len(got), n, strings.Join(got, "\n"), s.log.String())
	}
	return got
}

// checkRecord checks that a record has each of want, a key=value
// attribute or an exact part of one, and no attribute twice.
func checkRecord(t *testing.T, what, line string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(line, " "+w) {
			t.Errorf("%s: record lacks %q:\n%s", what, w, line)
		}
	}
	seen := map[string]bool{}
	for _, m := range attrKey.FindAllStringSubmatch(line, -1) {
		if seen[m[1]] {
			t.Errorf("%s: %s twice:\n%s", what, m[1], line)
		}
		seen[m[1]] = true
	}
}

// attrKey finds the keys of a text handler's line (outside quotes, as
// values with spaces are quoted and reference lists have no "=").
var attrKey = regexp.MustCompile(`(?:^| )([a-z_]+)=(?:"(?:[^"\\]|\\.)*"|\S*)`)

// TestAuditTrail: a clone, a fetch, a push, a forced push, a deletion
// and refusals through each transport, by a daemon at its default
// verbosity (no -v): before, none of them left a line.
func TestAuditTrail(t *testing.T) {
	t.Parallel() // long and not timed: runs beside the other such tests, after the timed ones
	s := start(t, options{quiet: true, extraTest: "permit ro " + currentUser(t)})
	sshEnv := []string{"GIT_SSH_COMMAND=" + s.sshCommand(s.writerKey)}
	readerEnv := []string{"GIT_SSH_COMMAND=" + s.sshCommand(s.readerKey)}
	httpURL := s.httpURL(rwAccount+":"+strings.ReplaceAll(password, " ", "%20"), "test")
	work := s.clientDir("audit")
	w := filepath.Join(work, "w")
	commit := func(name string) string {
		t.Helper()
		os.WriteFile(filepath.Join(w, name), []byte(name+"\n"), 0o644)
		s.mustGit(w, nil, "add", ".")
		s.mustGit(w, nil, "commit", "-q", "-m", name)
		return strings.TrimSpace(s.mustGit(w, nil, "rev-parse", "HEAD"))
	}
	n := len(requestLines(s.log.String()))

	// A clone over SSH: one record, the account's.
	s.mustGit(work, sshEnv, "clone", "-q", s.sshURL(rwAccount, "test"), "w")
	rec := s.expectRequests(n, 1, "clone over ssh")[0]
	n++
	checkRecord(t, "clone over ssh", rec, "user=writer", "transport=ssh", "remote=127.0.0.1:", "repo=test", "action=clone",
		"outcome=ok", "wants=", "haves=0", "objects=", "bytes=")
	base := strings.TrimSpace(s.mustGit(w, nil, "rev-parse", "HEAD"))

	// Another clone, anonymous over git://, for the fetch below.
	s.mustGit(work, nil, "clone", "-q", s.gitURL("test"), "anon")
	rec = s.expectRequests(n, 1, "clone over git://")[0]
	n++
	checkRecord(t, "clone over git://", rec, "user=anonymous", "transport=git", "remote=127.0.0.1:", "repo=test", "action=clone", "outcome=ok")

	// A fast-forward over HTTP: the advertisement leaves no record, the
	// push one, with the reference.
	ff := commit("one")
	s.mustGit(w, nil, "push", "-q", httpURL, "HEAD:main")
	rec = s.expectRequests(n, 1, "push over http")[0]
	n++
	checkRecord(t, "push over http", rec, "user=writer", "transport=http", "remote=127.0.0.1:", "repo=test", "action=push",
		"outcome=ok", "updated=1", "commands=1", fmt.Sprintf(`refs="refs/heads/main %s->%s fast-forward"`, base, ff))

	// A fetch with haves.
	s.mustGit(filepath.Join(work, "anon"), nil, "fetch", "-q", "origin")
	rec = s.expectRequests(n, 1, "fetch over git://")[0]
	n++
	checkRecord(t, "fetch over git://", rec, "user=anonymous", "transport=git", "action=fetch", "outcome=ok", "wants=1", "objects=")
	if strings.Contains(rec, " haves=0 ") {
		t.Errorf("fetch: no haves counted:\n%s", rec)
	}

	// A forced push over SSH.
	s.mustGit(w, nil, "reset", "-q", "--hard", "HEAD~1")
	forced := commit("two")
	s.mustGit(w, sshEnv, "push", "-q", "--force", s.sshURL(rwAccount, "test"), "HEAD:main")
	rec = s.expectRequests(n, 1, "forced push")[0]
	n++
	checkRecord(t, "forced push", rec, "user=writer", "transport=ssh", "action=push", "outcome=ok",
		fmt.Sprintf(`refs="refs/heads/main %s->%s forced"`, ff, forced))

	// A branch created, then deleted.
	s.mustGit(w, sshEnv, "push", "-q", s.sshURL(rwAccount, "test"), "HEAD:refs/heads/topic")
	rec = s.expectRequests(n, 1, "creation")[0]
	n++
	zero := strings.Repeat("0", len(forced))
	checkRecord(t, "creation", rec, fmt.Sprintf(`refs="refs/heads/topic %s->%s created"`, zero, forced))
	s.mustGit(w, nil, "push", "-q", httpURL, ":refs/heads/topic")
	rec = s.expectRequests(n, 1, "deletion")[0]
	n++
	checkRecord(t, "deletion", rec, "transport=http", "action=push", "outcome=ok",
		fmt.Sprintf(`refs="refs/heads/topic %s->%s deleted"`, forced, zero))

	// A read-only account pushing is refused, with the reason.
	if out, err := s.git(w, readerEnv, "push", "-q", s.sshURL(roAccount, "test"), "HEAD:refs/heads/ro"); err == nil {
		t.Fatalf("push by a read-only account succeeded:\n%s", out)
	}
	rec = s.expectRequests(n, 1, "read-only push")[0]
	n++
	checkRecord(t, "read-only push", rec, "user=reader", "transport=ssh", "repo=test", "action=push", "outcome=refused",
		`reason="read-only user pushing"`)

	// Anonymous requests for a private repository are refused: the
	// first with its record, the others counted (issue 18's review: a
	// line per refusal let anyone write the log).
	for i := range 5 {
		if out, err := s.git(work, nil, "ls-remote", s.gitURL("private")); err == nil {
			t.Fatalf("anonymous ls-remote %d of private succeeded:\n%s", i, out)
		}
	}
	var refused []string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if refused = logLines(s.log.String(), `msg="requests refused: no such repository"`); len(refused) >= 2 {
			break
		}
	}
	if len(refused) != 2 {
		t.Fatalf("refusals of anonymous clients: %d lines; want the first and the count:\n%s", len(refused), s.log.String())
	}
	checkRecord(t, "first anonymous refusal", refused[0], "user=anonymous", "transport=git", "repo=private", "outcome=refused",
		`reason="no rule permits the user"`)
	checkRecord(t, "summary of anonymous refusals", refused[1], "count=4", "sources=1", "top=127.0.0.1")

	// gotsh, as OpenSSH runs it: the address of the SSH client.
	s.mustGit(work, s.gotshSSHEnv("192.0.2.7 50123 127.0.0.1 22"), "clone", "-q", "--bare", "ssh://gotd/test", "sh.git")
	rec = s.expectRequests(n, 1, "clone through gotsh")[0]
	checkRecord(t, "clone through gotsh", rec, "user="+currentUser(t), "transport=gotsh", "remote=192.0.2.7:50123", "repo=test",
		"action=clone", "outcome=ok")
}

// logLines returns the lines of log that contain s.
func logLines(log, s string) []string {
	var out []string
	for line := range strings.Lines(log) {
		if strings.Contains(line, s) {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return out
}

// gotshSSHEnv is gotshEnv with SSH_CONNECTION set as OpenSSH's sshd
// sets it for the login shell.
func (s *server) gotshSSHEnv(conn string) []string {
	script := filepath.Join(s.dir, "gotsh-as-sshd")
	if _, err := os.Stat(script); err != nil {
		write(s.t, script, fmt.Sprintf("#!/bin/sh\nSSH_CONNECTION='%s' GOTD_UNIX_SOCKET='%s' exec '%s' -c \"$2\"\n",
			conn, s.socket, filepath.Join(s.bin, "gotsh")), 0o755)
	}
	return []string{"GIT_SSH=" + script, "GIT_SSH_VARIANT=simple"}
}

// TestAuditNoise: with -v, where the detail of each request shows,
// what was noise is gone: a warning for every auth process the parent
// ends once it has answered (about half of all gotsh connections), a
// "push done" line for every HTTP advertisement, the transport as a
// number, uid 0 for network clients (which read as root) and the
// repository twice on a line.
func TestAuditNoise(t *testing.T) {
	s := start(t, options{extraTest: "permit ro " + currentUser(t)})
	work := s.clientDir("noise")
	for i := range 6 {
		s.mustGit(work, s.gotshEnv(), "clone", "-q", "--bare", "ssh://gotd/test", fmt.Sprintf("g%d.git", i))
	}
	s.mustGit(work, nil, "clone", "-q", s.gitURL("test"), "w")
	w := filepath.Join(work, "w")
	os.WriteFile(filepath.Join(w, "noise"), []byte("noise\n"), 0o644)
	s.mustGit(w, nil, "add", ".")
	s.mustGit(w, nil, "commit", "-q", "-m", "noise")
	s.mustGit(w, nil, "push", "-q", s.httpURL(rwAccount+":"+strings.ReplaceAll(password, " ", "%20"), "test"), "HEAD:main")
	s.mustGit(work, nil, "ls-remote", s.httpURL("", "test"))
	for _, repo := range []string{"private", "missing"} {
		if out, err := s.git(work, nil, "ls-remote", s.gitURL(repo)); err == nil {
			t.Fatalf("anonymous ls-remote of %s succeeded:\n%s", repo, out)
		}
	}
	records := s.waitRequests(0, 9)
	log := s.log.String()
	for _, noise := range []string{"msg=\"child failed\" role=parent child=auth", "updated=0 commands=0", " via=", ` uid=0 user=""`} {
		if got := logLines(log, noise); len(got) > 0 {
			t.Errorf("noise %q in the log:\n%s", noise, strings.Join(got, "\n"))
		}
	}
	for line := range strings.Lines(log) {
		if strings.Count(line, " repo=") > 1 {
			t.Errorf("repo twice: %s", line)
		}
	}
	if len(records) != 9 {
		t.Errorf("%d request records for gotsh clones, a clone, a push and an ls-remote; want 9:\n%s", len(records), strings.Join(records, "\n"))
	}
}
