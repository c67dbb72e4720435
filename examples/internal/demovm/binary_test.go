package demovm

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/livemig/livemig/migration"
	"github.com/livemig/livemig/uri"
)

// destProc is migrate-dest running as a child process: the test binary
// run again (see TestMain), with its stderr kept and offered line by line.
type destProc struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	err   strings.Builder
	lines chan string
	done  chan struct{}
	state error // cmd.Wait's result, once done is closed
}

// startDest starts migrate-dest with args; it is killed (SIGKILL, which
// also ends a stopped process) and reaped when the test ends.
func startDest(t testing.TB, args ...string) *destProc {
	t.Helper()
	p := &destProc{lines: make(chan string, 1000), done: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], append([]string{"migrate-dest"}, args...)...)
	p.cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0")
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	se, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(se)
		for sc.Scan() {
			p.mu.Lock()
			p.err.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
		p.state = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("migrate-dest stderr:\n%s", p.stderr())
		}
	})
	return p
}

func (p *destProc) stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err.String()
}

// waitLine waits for a stderr line containing s and returns it.
func (p *destProc) waitLine(t testing.TB, s string) string {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case l := <-p.lines:
			if strings.Contains(l, s) {
				return l
			}
		case <-p.done:
			t.Fatalf("migrate-dest exited (%v) before a line with %q", p.state, s)
		case <-timeout:
			t.Fatalf("no line with %q from migrate-dest within 60 s", s)
		}
	}
}

// listening waits for the "listening on ADDR" line and returns ADDR.
func (p *destProc) listening(t testing.TB) string {
	t.Helper()
	_, addr, _ := strings.Cut(p.waitLine(t, "listening on "), "listening on ")
	return strings.TrimSpace(addr)
}

// lockedWriter serializes the writes of a main's goroutines.
type lockedWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestSourceStallsOnStoppedDest is issue 11's case: migrate-dest, a real
// process, is stopped with SIGSTOP in the middle of the first pass.
// migrate-source fails with one line naming the stall, after
// --stall-timeout without progress, instead of waiting forever. (The
// source is rate-limited so that the first pass lasts seconds: the stop
// lands in it however slow the machine.)
func TestSourceStallsOnStoppedDest(t *testing.T) {
	dest := startDest(t, "--incoming", "unix:"+filepath.Join(t.TempDir(), "m.sock"))
	addr := dest.listening(t)
	stopped := make(chan error, 1)
	go func() {
		// The destination prints "pass 1: N pages coming" as the pass
		// starts to arrive.
		for {
			select {
			case l := <-dest.lines:
				if strings.HasPrefix(l, "pass 1:") {
					stopped <- dest.cmd.Process.Signal(syscall.SIGSTOP)
					return
				}
			case <-dest.done:
				stopped <- nil
				return
			}
		}
	}()
	var stdout, stderr lockedWriter
	code := SourceMain([]string{"--to", addr, "--ram-size", "128M", "--dirty-rate", "0",
		"--max-bandwidth", "16M", "--stall-timeout", "500ms"}, &stdout, &stderr)
	if err := <-stopped; err != nil {
		t.Fatalf("SIGSTOP: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	last := lines[len(lines)-1]
	if code != 1 || !strings.HasPrefix(last, "migrate-source: ") || !strings.Contains(last, "stalled: no progress for") ||
		!strings.Contains(last, "(stall timeout 500ms)") {
		t.Fatalf("exit %d, last line %q; want 1 and the stall\nstderr:\n%s", code, last, stderr.String())
	}
	t.Logf("%s", last)
}

// exit waits for migrate-dest to exit (60 s at most) and returns its exit
// code.
func (p *destProc) exit(t testing.TB) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("migrate-dest still running after 60 s:\n%s", p.stderr())
	}
	var ee *exec.ExitError
	if errors.As(p.state, &ee) {
		return ee.ExitCode()
	}
	if p.state != nil {
		t.Fatalf("migrate-dest: %v", p.state)
	}
	return 0
}

// TestDestFailsAtOnce: an --incoming that cannot serve a source ends
// migrate-dest at once, exit 1, with one line naming the problem, instead
// of logging once (or every 100 ms) and waiting for ever: a missing file,
// a descriptor that is not open, a command that produces no stream, and
// credentials that no --object defines. (exec:false starts, so its
// "listening on" line comes first.)
func TestDestFailsAtOnce(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.state")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"missing file", []string{"--incoming", "file:" + missing}, missing + ": no such file or directory"},
		{"closed descriptor", []string{"--incoming", "fd:999"}, "fd:999: bad file descriptor"},
		{"exec false", []string{"--incoming", "exec:false"}, "exec false: hello:"},
		{"unknown credentials", []string{"--incoming", "tcp:127.0.0.1:0,tls-creds=tls0"}, `tls-creds "tls0"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startDest(t, tc.args...)
			code := p.exit(t)
			se := strings.TrimSpace(p.stderr())
			if first, rest, ok := strings.Cut(se, "\n"); ok && strings.HasPrefix(first, "migrate-dest: listening on ") {
				se = rest
			}
			if code != 1 || strings.Count(se, "\n") != 0 || !strings.HasPrefix(se, "migrate-dest: ") || !strings.Contains(se, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit 1 and one line naming %q", code, se, tc.want)
			}
		})
	}
}

// openMainOnly opens the main channel of a two-channel session on addr
// and never the second, so that the destination's session expires. The
// channel closes when the test ends.
func openMainOnly(t testing.TB, addr string) {
	t.Helper()
	a, err := uri.Parse(addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := migration.Dial(ctx, a, &migration.Config{Channels: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
}

// TestDestSessionTimeoutOnce: a session whose second channel never comes
// expires, and migrate-dest reports it once (the Server logged it and
// AcceptSession returned it, which migrate-dest printed again).
func TestDestSessionTimeoutOnce(t *testing.T) {
	dest := startDest(t, "--incoming", "unix:"+filepath.Join(t.TempDir(), "m.sock"), "--session-timeout", "200ms")
	openMainOnly(t, dest.listening(t))
	dest.waitLine(t, "missing channels")
	dest.cmd.Process.Signal(syscall.SIGTERM)
	dest.exit(t)
	if n := strings.Count(dest.stderr(), "missing channels"); n != 1 {
		t.Fatalf("the expired session is reported %d times, want once:\n%s", n, dest.stderr())
	}
}

// TestDestKeepsWaiting: migrate-dest goes on waiting, as its help says,
// after an expired session, a refused source and a migration that fails,
// each logged in one line, and exits 0 after the migration that
// completes. Each step waits for the line of the one before.
func TestDestKeepsWaiting(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "m.sock")
	dest := startDest(t, "--incoming", "unix:"+sock, "--session-timeout", "200ms")
	addr := dest.listening(t)

	openMainOnly(t, addr) // expires
	dest.waitLine(t, "missing channels")

	c, err := net.Dial("unix", sock) // refused: no hello
	if err != nil {
		t.Fatal(err)
	}
	c.Write(make([]byte, 64)) // a hello's 64 bytes, zero: a wrong magic
	dest.waitLine(t, "hello mismatch")
	c.Close()

	a, err := uri.Parse(addr) // fails: not the demo's stream
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bad, err := migration.DialSession(ctx, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	bad.Write([]byte("not a demo VM stream, long enough for a header"))
	bad.Close()
	dest.waitLine(t, "failed")

	var stdout, stderr lockedWriter
	if code := SourceMain([]string{"--to", addr, "--ram-size", "4M", "--dirty-rate", "0"}, &stdout, &stderr); code != 0 {
		t.Fatalf("migrate-source exit %d:\n%s", code, stderr.String())
	}
	if code := dest.exit(t); code != 0 {
		t.Fatalf("migrate-dest exit %d after a good migration", code)
	}
	se := dest.stderr()
	lines := func(s string) int {
		n := 0
		for _, l := range strings.Split(se, "\n") {
			if strings.Contains(l, s) {
				n++
			}
		}
		return n
	}
	for _, want := range []string{"missing channels", "hello mismatch", "failed"} {
		if n := lines(want); n != 1 {
			t.Errorf("%q in %d lines of migrate-dest's stderr, want 1", want, n)
		}
	}
	if n := lines("waiting for another source"); n != 2 {
		t.Errorf("%d lines say migrate-dest goes on waiting, want 2 (the expired and the failed session)", n)
	}
	if t.Failed() {
		t.Logf("migrate-dest stderr:\n%s", se)
	}
}
