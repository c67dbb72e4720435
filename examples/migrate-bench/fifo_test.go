package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/livemig/livemig/internal/testwait"
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
	ctx := testwait.Context(t)
	dst, err := e.start(ctx, "wire-dst", "exec", "--size", "1048576", "--listen", fifo)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dst.expect(ctx, "ready"); err != nil {
		dst.kill()
		t.Fatal(err)
	}
	// Wait until the shell (itself or its cat) is blocked in open(2).
	testwait.Until(t, "a process blocked opening "+fifo, func() bool {
		for _, pid := range processesWith(fifo) {
			if blockedOpeningFIFO(pid) {
				return true
			}
		}
		return false
	})
	dst.kill()
	removeFIFO(fifo)
	testwait.Until(t, "no process holding "+fifo, func() bool { return len(processesWith(fifo)) == 0 })
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
// blockedOpeningFIFO reports whether process pid sleeps in the kernel's
// FIFO open (its wchan), or, where the kernel hides wchan, sleeps.
func blockedOpeningFIFO(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	if f := bytes.Fields(stat[i+1:]); len(f) == 0 || string(f[0]) != "S" {
		return false
	}
	wchan, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/wchan")
	switch w := string(wchan); {
	case err != nil, w == "", w == "0":
		return true
	default:
		return w == "wait_for_partner" || w == "fifo_open"
	}
}

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
