package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestExecFIFOKilledDestination: when the run kills the exec case's
// destination before a source opened the FIFO (Ctrl-C, --timeout, a
// source that failed to start), the destination's cat, blocked opening
// the FIFO for reading, must not be left behind.
func TestExecFIFOKilledDestination(t *testing.T) {
	if s := execSkip(); s != "" {
		t.Skip(s)
	}
	dir := t.TempDir()
	e := &env{size: 1 << 20, exe: mustExecutable(t), dir: dir, stderr: os.Stderr}
	fifo := filepath.Join(dir, "wire.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dst, err := e.start(ctx, "wire-dst", "exec", "--size", "1048576", "--listen", fifo)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dst.expect(ctx, "ready"); err != nil {
		dst.kill()
		t.Fatal(err)
	}
	// Let the shell start and block (itself or its cat) in open(2).
	deadline := time.Now().Add(10 * time.Second)
	for len(processesWith(fifo)) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	dst.kill()
	removeFIFO(fifo)
	deadline = time.Now().Add(5 * time.Second)
	for len(processesWith(fifo)) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if left := processesWith(fifo); len(left) > 0 {
		for _, pid := range left {
			if p, err := os.FindProcess(pid); err == nil {
				p.Kill()
			}
		}
		t.Fatalf("processes left behind holding %s: %v", fifo, left)
	}
	if _, err := os.Stat(fifo); !os.IsNotExist(err) {
		t.Errorf("the FIFO is still there: %v", err)
	}
}

// mustExecutable returns this test binary, which plays the children.
func mustExecutable(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// processesWith returns the pids of the processes whose command line
// mentions s.
func processesWith(s string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		var pid int
		for _, c := range e.Name() {
			if c < '0' || c > '9' {
				pid = -1
				break
			}
			pid = pid*10 + int(c-'0')
		}
		if pid <= 0 || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), s) && !strings.Contains(string(b), "wire-dst") {
			pids = append(pids, pid)
		}
	}
	return pids
}
