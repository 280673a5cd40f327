// Command gotsh is the login shell of accounts that may use Git on a
// gotd server and nothing else (gotsh(1)). sshd runs it as
// "gotsh -c 'git-upload-pack /repo.git'"; it checks the command,
// connects to gotd's socket, hands gotd its standard input and output
// together with the request and GIT_PROTOCOL, and waits for gotd's
// verdict: it never reads or writes the Git stream itself.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"gotd/internal/daemon/config"
	"gotd/internal/daemon/gitcmd"
	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/msg"
	"gotd/internal/daemon/sandbox"
	"gotd/internal/protocol/pktline"
)

func main() {
	os.Exit(run(os.Args))
}

// prog is the name in messages: gotsh, or git-upload-pack when linked
// under that name.
var prog = "gotsh"

func run(args []string) int {
	var command string
	switch name := filepath.Base(args[0]); {
	case name == gitcmd.UploadPack || name == gitcmd.ReceivePack || name == gitcmd.UploadArchive:
		// Installed under a service's name: the argument is the
		// repository.
		prog = name
		if len(args) != 2 {
			return refuse(gitcmd.ErrRefused.Error(), false)
		}
		command = name + " " + quote(args[1])
	case len(args) == 3 && args[1] == "-c":
		command = args[2]
	default:
		// An interactive login or anything else.
		return refuse(gitcmd.ErrRefused.Error(), false)
	}
	service, repo, err := gitcmd.Parse(command)
	if err != nil {
		return refuse(gitcmd.ErrRefused.Error(), true)
	}
	socket := os.Getenv("GOTD_UNIX_SOCKET")
	if socket == "" {
		socket = config.DefaultSocket
	}
	conn, err := msg.Dial(socket)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
		return refuse("the Git server is not available", true)
	}
	defer conn.Close()
	// Nothing but the connection from here on.
	sandbox.Apply(sandbox.Policy{Role: "gotsh"})
	hello := &ipc.Hello{Service: service, Repo: repo, Protocol: os.Getenv("GIT_PROTOCOL"),
		// Where the client is, for gotd's log.
		SSHRemote: ipc.SSHConnectionRemote(os.Getenv("SSH_CONNECTION"))}
	if len(hello.Protocol) > ipc.MaxProtocol {
		hello.Protocol = ""
	}
	if err := ipc.Send(conn, hello, nil); err != nil {
		return refuse("the Git server is not available", true)
	}
	if ipc.Send(conn, &ipc.Stream{}, os.Stdin) != nil || ipc.Send(conn, &ipc.Stream{Output: true}, os.Stdout) != nil {
		return refuse("the Git server is not available", true)
	}
	var done ipc.Done
	if _, err := ipc.Recv(conn, &done, false); err != nil {
		fmt.Fprintf(os.Stderr, "%s: the Git server ended the connection\n", prog)
		return 1
	}
	switch done.Status {
	case ipc.StatusOK:
		return 0
	case ipc.StatusRefused:
		return refuse(done.Message, true)
	}
	if done.Message != "" {
		fmt.Fprintf(os.Stderr, "%s: %s\n", prog, done.Message)
	}
	return 1
}

// refuse tells the client why, as an ERR packet that Git prints as
// "remote error" when the Git stream had not started, and on stderr.
func refuse(why string, errPacket bool) int {
	if errPacket {
		pw := pktline.NewWriter(os.Stdout)
		pw.WriteString("ERR " + why + "\n")
	}
	fmt.Fprintf(os.Stderr, "%s: %s\n", prog, why)
	return 1
}

// quote quotes a repository argument the way Git does, for gitcmd.
func quote(s string) string {
	q := "'"
	for _, r := range s {
		if r == '\'' {
			q += `'\''`
		} else {
			q += string(r)
		}
	}
	return q + "'"
}
