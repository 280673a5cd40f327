package memlimit

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// TestCeiling checks that a process whose memory passes its budget is
// ended, the client told first, and that one within it is not.
func TestCeiling(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	exited := make(chan int, 1)
	told := make(chan bool, 1)
	c := &Ceiling{Limit: 64 << 20, Tell: func() { told <- true }, exit: func(code int) { exited <- code }}
	c.Start()
	if got := debug.SetMemoryLimit(-1); got != 48<<20 {
		t.Errorf("soft limit %d; want %d", got, 48<<20)
	}
	select {
	case <-exited:
		t.Fatal("ended within its budget")
	case <-time.After(100 * time.Millisecond):
	}
	hog := make([][]byte, 0, 128)
	for range 96 {
		b := make([]byte, 1<<20)
		for i := range b {
			b[i] = 1
		}
		hog = append(hog, b)
	}
	select {
	case code := <-exited:
		if code != ExitCode {
			t.Errorf("exit code %d; want %d", code, ExitCode)
		}
		select {
		case <-told:
		default:
			t.Error("the client was not told")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("not ended 96 MiB into a budget of 64")
	}
	_ = hog
}

// TestIdleWatcher checks that the watcher of a process far below its
// budget does not wake on a clock: idle for 300 ms it looks only after
// collections (none forced here, or a few the test's runtime makes),
// where a 10 ms clock looked 30 times.
func TestIdleWatcher(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	c := &Ceiling{Limit: 1 << 40, exit: func(int) { t.Error("ended far below its budget") }}
	c.Start()
	time.Sleep(300 * time.Millisecond)
	if n := c.looks.Load(); n > 5 {
		t.Errorf("the watcher looked %d times in 300 ms of idleness; want at most 5", n)
	}
	// A collection has it look again.
	before := c.looks.Load()
	runtime.GC()
	deadline := time.Now().Add(2 * time.Second)
	for c.looks.Load() == before && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if c.looks.Load() == before {
		t.Error("the watcher did not look after a collection")
	}
}
