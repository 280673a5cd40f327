// Command gotctl controls a running gotd through its socket (gotctl(8)):
// info, stop, reload, upkeep and sync.
package main

import (
	"flag"
	"fmt"
	"os"

	"gotd/internal/daemon/config"
	"gotd/internal/daemon/ipc"
	"gotd/internal/daemon/msg"
)

const version = "0.1"

func main() {
	os.Exit(run(os.Args[1:]))
}

func usage() int {
	fmt.Fprintln(os.Stderr, "usage: gotctl [-hV] [-f socket] info | stop | reload [-c config] [-s secrets] | upkeep repository | sync repository")
	return 1
}

func run(args []string) int {
	fs := flag.NewFlagSet("gotctl", flag.ContinueOnError)
	fs.Usage = func() { usage() }
	socket := fs.String("f", config.DefaultSocket, "gotd's `socket`")
	showVersion := fs.Bool("V", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return 1
	}
	if *showVersion {
		fmt.Println("gotctl", version)
		return 0
	}
	if fs.NArg() < 1 {
		return usage()
	}
	cmd := fs.Arg(0)
	var rl *reloader
	var repoName string
	switch cmd {
	case "info", "stop":
		if fs.NArg() != 1 {
			return usage()
		}
	case "upkeep", "sync":
		if fs.NArg() != 2 || fs.Arg(1) == "" || len(fs.Arg(1)) > ipc.MaxRepoName {
			return usage()
		}
		repoName = fs.Arg(1)
	case "reload":
		rs := flag.NewFlagSet("reload", flag.ContinueOnError)
		rs.Usage = func() { usage() }
		rl = &reloader{}
		rs.StringVar(&rl.config, "c", "", "configuration `file` (default: the daemon's)")
		rs.StringVar(&rl.secrets, "s", "", "secrets `file` (default: the daemon's)")
		if err := rs.Parse(fs.Args()[1:]); err != nil || rs.NArg() > 0 {
			return usage()
		}
	default:
		fmt.Fprintf(os.Stderr, "gotctl: unknown command %q\n", cmd)
		return usage()
	}
	conn, err := msg.Dial(*socket)
	if err != nil {
		fmt.Fprintf(os.Stderr, "gotctl: %v\n", err)
		return 1
	}
	defer conn.Close()
	if err := ipc.Send(conn, &ipc.Control{Command: cmd, Repo: repoName}, nil); err != nil {
		fmt.Fprintf(os.Stderr, "gotctl: %v\n", err)
		return 1
	}
	if rl != nil {
		if err := rl.send(conn); err != nil {
			fmt.Fprintf(os.Stderr, "gotctl: reload: %v\n", err)
			return 1
		}
	}
	for {
		raw, err := conn.Recv()
		if err != nil {
			fmt.Fprintf(os.Stderr, "gotctl: gotd closed the connection: %v\n", err)
			return 1
		}
		if raw.Type == ipc.TypeReloadBind && rl != nil {
			if err := rl.bind(conn, raw); err != nil {
				fmt.Fprintf(os.Stderr, "gotctl: reload: %v\n", err)
				return 1
			}
			continue
		}
		if raw.Type == ipc.TypeText {
			var t ipc.Text
			if _, err := ipc.Check(raw, &t, false); err != nil {
				fmt.Fprintf(os.Stderr, "gotctl: %v\n", err)
				return 1
			}
			os.Stdout.WriteString(t.Text)
			continue
		}
		var done ipc.Done
		if _, err := ipc.Check(raw, &done, false); err != nil {
			fmt.Fprintf(os.Stderr, "gotctl: %v\n", err)
			return 1
		}
		if done.Status != ipc.StatusOK {
			fmt.Fprintf(os.Stderr, "gotctl: %s: %s\n", cmd, done.Message)
			return 1
		}
		return 0
	}
}
