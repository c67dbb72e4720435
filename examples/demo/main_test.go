package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/livemig/livemig/examples/internal/demovm"
	"github.com/livemig/livemig/internal/leakcheck"
	"github.com/livemig/livemig/internal/testwait"
)

// TestMain lets the test binary play migrate-dest and migrate-source when
// the demo re-executes it, as the demo binary does.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "migrate-dest":
			os.Exit(demovm.DestMain(os.Args[2:], os.Stdout, os.Stderr))
		case "migrate-source":
			os.Exit(demovm.SourceMain(os.Args[2:], os.Stdout, os.Stderr))
		}
	}
	leakcheck.Main(m)
}

// TestDemo runs the whole demo with a small guest: two child processes,
// TLS with a throwaway CA, both summaries verified, the temporary directory
// removed.
func TestDemo(t *testing.T) {
	// A temporary directory of its own: another demo running on the
	// machine (a CI clone, a parallel go test) must not count as ours.
	t.Setenv("TMPDIR", t.TempDir())
	// The demo's own --timeout is out of the way: the test's context ends
	// it as go test's -timeout nears (2 minutes could pass on a busy
	// machine under -race).
	before, _ := filepath.Glob(filepath.Join(os.TempDir(), "livemig-demo*"))
	var stdout, stderr strings.Builder
	code := run(testwait.Context(t), []string{"--ram-size", "32M", "--dirty-rate", "20000", "--channels", "2", "--timeout", "1000h"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"[source] source summary:", "[dest]   destination summary:", "over 2 channel(s)", "demo: done in"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, " verified") != 2 {
		t.Errorf("want two verified checksums:\n%s", out)
	}
	if !strings.Contains(stderr.String(), "tls-creds=tls0") || !strings.Contains(stderr.String(), "pass 1") {
		t.Errorf("stderr lacks the TLS address or the progress:\n%s", stderr.String())
	}
	after, _ := filepath.Glob(filepath.Join(os.TempDir(), "livemig-demo*"))
	if len(after) > len(before) {
		t.Errorf("temporary directories left behind: %v", after)
	}
}

func TestDemoBadFlag(t *testing.T) {
	var stdout, stderr strings.Builder
	if code := run(t.Context(), []string{"--ram-size", "lots"}, &stdout, &stderr); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	if lines := strings.Count(strings.TrimSpace(stderr.String()), "\n"); lines != 0 || !strings.Contains(stderr.String(), "bad size") {
		t.Fatalf("want a one-line error naming the size, got:\n%s", stderr.String())
	}
}

func TestWritePKI(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr strings.Builder
	if code := run(t.Context(), []string{"--write-pki", dir}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, f := range []string{"server/ca-cert.pem", "server/server-cert.pem", "server/server-key.pem",
		"client/ca-cert.pem", "client/client-cert.pem", "client/client-key.pem"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
}

// lineWatcher is the demo's stderr in these tests: it keeps the output and
// calls onLine with each complete line.
type lineWatcher struct {
	mu      sync.Mutex
	b       strings.Builder
	partial string
	onLine  func(line string)
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	w.partial += string(p)
	for {
		line, rest, ok := strings.Cut(w.partial, "\n")
		if !ok {
			break
		}
		w.partial = rest
		if w.onLine != nil {
			w.onLine(line)
		}
	}
	return len(p), nil
}

func (w *lineWatcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestDemoChecksFlagsFirst: a number out of range is refused in one line,
// exit 1, before any child starts (finding 10: with --ram-size 0,
// --channels 0 or --dirty-rate -1 the demo started both, the source
// failed, and the demo waited its whole --timeout for the destination).
// The demo is given --timeout 1000h, and is cancelled should it start a
// child, so that a demo that would wait fails this test at once.
func TestDemoChecksFlagsFirst(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--ram-size", "0"}, "demo: --ram-size 0 bytes: want a multiple of 4096 bytes from 4096 bytes to 64.0 GiB"},
		{[]string{"--ram-size", "1000"}, "demo: --ram-size 1000 bytes: want a multiple of 4096 bytes"},
		{[]string{"--ram-size", "65G"}, "demo: --ram-size 69793218560 bytes: want a multiple of 4096 bytes"},
		{[]string{"--channels", "0"}, "demo: --channels 0: want 1..64"},
		{[]string{"--channels", "65"}, "demo: --channels 65: want 1..64"},
		{[]string{"--dirty-rate", "-1"}, "demo: --dirty-rate -1: want 0 or more"},
		{[]string{"--downtime-limit", "0s"}, "demo: --downtime-limit 0s: want a positive duration"},
		{[]string{"--downtime-limit", "-1ms"}, "demo: --downtime-limit -1ms: want a positive duration"},
		{[]string{"--timeout", "0s"}, "demo: --timeout 0s: want a positive duration"},
		{[]string{"--timeout", "-1s"}, "demo: --timeout -1s: want a positive duration"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			ctx, cancel := context.WithCancel(testwait.Context(t))
			defer cancel()
			stderr := &lineWatcher{onLine: func(line string) {
				if strings.HasPrefix(line, "demo: starting ") {
					cancel()
				}
			}}
			var stdout strings.Builder
			code := run(ctx, append([]string{"--timeout", "1000h"}, tc.args...), &stdout, stderr)
			got := stderr.String()
			if code != 1 || strings.Count(got, "\n") != 1 || !strings.HasPrefix(got, tc.want) {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit 1 and one line starting %q", code, got, tc.want)
			}
		})
	}
}

// TestDemoStopsTheOtherChild: when one child fails, the demo stops the
// other at once and reports the failed one. The source is limited to
// 1 byte/s, so it sits in its first rate-limit wait (for days) and would
// learn that its destination is gone only at its next write; the test
// kills migrate-dest once the source's first progress line shows it
// connected. --timeout is 1000h: a demo that waits for the source fails
// when the test's context ends, a tenth of -timeout before go test's
// deadline, rather than passing slowly.
func TestDemoStopsTheOtherChild(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	var killed []int
	stderr := &lineWatcher{}
	stderr.onLine = func(line string) {
		if strings.HasPrefix(line, "[source] [") && killed == nil {
			killed = children("migrate-dest")
			for _, pid := range killed {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	var stdout strings.Builder
	code := run(testwait.Context(t), []string{"--ram-size", "4M", "--dirty-rate", "0", "--max-bandwidth", "1", "--timeout", "1000h"}, &stdout, stderr)
	got := stderr.String()
	if len(killed) != 1 {
		t.Fatalf("killed migrate-dest %v, want one process; stderr:\n%s", killed, got)
	}
	lines := strings.Split(strings.TrimSpace(got), "\n")
	want := "demo: migrate-dest: signal: killed"
	if last := lines[len(lines)-1]; code != 1 || !strings.HasPrefix(last, want) {
		t.Fatalf("exit %d, last line %q; want exit 1 and %q...\nstderr:\n%s", code, last, want, got)
	}
	if left := children(""); len(left) != 0 {
		t.Fatalf("children left: %v", left)
	}
}

// children returns the pids of this process's children whose first
// argument is role (any child for ""): the demo runs this test binary
// as "migrate-dest" and "migrate-source".
func children(role string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and ')'.
		i := bytes.LastIndexByte(stat, ')')
		f := bytes.Fields(stat[i+1:])
		if len(f) < 2 || string(f[1]) != strconv.Itoa(os.Getpid()) {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		args := strings.Split(string(cmdline), "\x00")
		if role == "" || len(args) > 1 && args[1] == role {
			pids = append(pids, pid)
		}
	}
	return pids
}
