package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
)

// reportFD is the descriptor on which the daemonised gotd tells the
// process that started it how its start went: "ready", or why it
// failed.
const reportFD = 3

// maxReport bounds what the starting process reads of that report.
const maxReport = 16 << 10

// daemonize starts gotd again in a new session, detached from the
// terminal, and returns once it serves: every socket bound, the user
// found, every long-lived process started. Otherwise it returns why
// the daemon failed, which it wrote on its report pipe, so that the
// operator sees it on standard error and gotd's exit status says it
// (issue 20: errors went to a standard error that was /dev/null).
func daemonize() error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Env = append(os.Environ(), "GOTD_DAEMON=1")
	cmd.ExtraFiles = []*os.File{w} // reportFD
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start() // standard streams are /dev/null
	w.Close()
	if err != nil {
		return err
	}
	// Until the daemon closes its end: at once after its report, or by
	// exiting. Its children never hold the pipe.
	b, _ := io.ReadAll(io.LimitReader(r, maxReport))
	switch report := strings.TrimSpace(string(b)); report {
	case "ready":
		return cmd.Process.Release()
	case "":
		return fmt.Errorf("the daemon exited during start-up: %v", cmd.Wait())
	default:
		cmd.Wait()
		return errors.New(report)
	}
}

// startReport is the daemonised gotd's end of the report pipe; it does
// nothing in the foreground or once the report is made.
type startReport struct {
	mu sync.Mutex
	f  *os.File
}

// startup is this process's report.
var startup startReport

// open takes the report pipe, if this process was started with one,
// and keeps its children from inheriting it.
func (s *startReport) open() {
	var st syscall.Stat_t
	if err := syscall.Fstat(reportFD, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFIFO {
		return
	}
	syscall.CloseOnExec(reportFD)
	s.f = os.NewFile(reportFD, "start-up report")
}

// ready reports that the daemon serves.
func (s *startReport) ready() { s.send("ready") }

// fail reports why the daemon did not start.
func (s *startReport) fail(err error) { s.send(err.Error()) }

func (s *startReport) send(text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return
	}
	s.f.WriteString(text + "\n")
	s.f.Close()
	s.f = nil
}
