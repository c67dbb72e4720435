package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// childCommand is the first argument that makes this binary a child:
// "migrate-bench child ROLE ARGS...".
const childCommand = "child"

// childFunc is the main of a child role. It prints its lines on stdout:
// whatever the role's parent expects, typically "ready ADDRESS" and a
// final JSON object.
type childFunc func(ctx context.Context, args []string, stdout io.Writer) error

// childRoles returns every role a child can play.
func childRoles() map[string]childFunc {
	m := map[string]childFunc{}
	for _, part := range []map[string]childFunc{wireRoles(), qemuRoles(), handshakeRoles(), liveRoles()} {
		for k, v := range part {
			m[k] = v
		}
	}
	return m
}

// childMain runs a child role until it ends or its parent dies; it
// returns the exit code.
func childMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintf(stderr, "%s %s: missing role\n", name, childCommand)
		return 2
	}
	f := childRoles()[args[0]]
	if f == nil {
		fmt.Fprintf(stderr, "%s %s: unknown role %q\n", name, childCommand, args[0])
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), childTimeout)
	defer cancel()
	if err := f(ctx, args[1:], stdout); err != nil {
		fmt.Fprintf(stderr, "%s %s: %v\n", name, args[0], err)
		return 1
	}
	return 0
}

// childTimeout bounds a child's life, in case its parent's kill is lost.
const childTimeout = 10 * time.Minute

// proc is a child process seen from the parent: its stdout lines arrive
// on a channel, its stderr is kept for error messages.
type proc struct {
	role   string
	cmd    *exec.Cmd
	lines  chan string
	stderr *tail
	done   chan struct{} // closed when the process has been reaped
	err    error         // Wait's result, valid after done
}

// start runs this binary as "child ROLE args...". The process is killed
// when ctx ends or the parent dies.
func (e *env) start(ctx context.Context, role string, args ...string) (*proc, error) {
	return startProc(ctx, role, e.exe, append([]string{childCommand, role}, args...)...)
}

// startProc runs any program as a proc named role.
func startProc(ctx context.Context, role, path string, args ...string) (*proc, error) {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
	p := &proc{role: role, cmd: cmd, lines: make(chan string, 16), stderr: &tail{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	so, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", role, err)
	}
	go func() {
		sc := bufio.NewScanner(so)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// line returns the next line the child printed on stdout.
func (p *proc) line(ctx context.Context) (string, error) {
	select {
	case l, ok := <-p.lines:
		if ok {
			return l, nil
		}
		<-p.done
		if p.err != nil {
			return "", p.failure("exited without a result (" + p.err.Error() + ")")
		}
		return "", p.failure("exited without a result")
	case <-ctx.Done():
		return "", fmt.Errorf("waiting for %s: %w", p.role, ctx.Err())
	}
}

// expect reads the next line, which must start with prefix followed by a
// space, and returns the rest.
func (p *proc) expect(ctx context.Context, prefix string) (string, error) {
	l, err := p.line(ctx)
	if err != nil {
		return "", err
	}
	rest, ok := strings.CutPrefix(l, prefix+" ")
	if !ok {
		return "", fmt.Errorf("%s printed %q, want %q", p.role, l, prefix+" ...")
	}
	return rest, nil
}

// result decodes the next line as JSON into v and waits for the child to
// exit successfully.
func (p *proc) result(ctx context.Context, v any) error {
	l, err := p.line(ctx)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(l), v); err != nil {
		return fmt.Errorf("%s printed %q: %v", p.role, l, err)
	}
	return p.wait(ctx)
}

// pairResults reads the results of two children that talk to each other:
// first (the one that dials) into v1, then second (the one that listens)
// into v2. When first fails, second is given two seconds to exit and its
// own failure is added, since the cause is often on its side (a TLS
// alert names only the symptom).
func pairResults(ctx context.Context, first *proc, v1 any, second *proc, v2 any) error {
	if err := first.result(ctx, v1); err != nil {
		if serr := exitFailure(ctx, second, 2*time.Second); serr != nil {
			return fmt.Errorf("%w; and %w", err, serr)
		}
		return err
	}
	return second.result(ctx, v2)
}

// exitFailure gives p up to grace to exit and returns its failure, or
// nil when it succeeded or still runs (it is then left to the caller's
// kill).
func exitFailure(ctx context.Context, p *proc, grace time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	select {
	case <-p.done:
		if p.err != nil {
			return p.failure(p.err.Error())
		}
	case <-ctx.Done():
	}
	return nil
}

// wait waits for the child to exit and reports a failure with the end of
// its stderr.
func (p *proc) wait(ctx context.Context) error {
	select {
	case <-p.done:
		if p.err != nil {
			return p.failure(p.err.Error())
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for %s to exit: %w", p.role, ctx.Err())
	}
}

// failure returns an error saying that p's child did what, with the end
// of its stderr.
func (p *proc) failure(what string) error {
	if s := p.stderr.String(); s != "" {
		return fmt.Errorf("%s %s: %s", p.role, what, s)
	}
	return fmt.Errorf("%s %s", p.role, what)
}

// kill ends the child and waits until it is reaped. It is idempotent.
func (p *proc) kill() {
	if p.cmd.Process != nil {
		p.cmd.Process.Kill()
	}
	for range p.lines {
	}
	<-p.done
}

// tail keeps the last 2 KiB written to it.
type tail struct {
	mu sync.Mutex
	b  []byte
}

// Write keeps p, dropping what falls out of the last 2 KiB.
func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > 2048 {
		t.b = append(t.b[:0], t.b[len(t.b)-2048:]...)
	}
	return len(p), nil
}

// String returns what was kept, without surrounding white space.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}

// usage is CPU time and peak RSS.
type usage struct {
	CPU    time.Duration `json:"cpu_ns"`
	MaxRSS int64         `json:"max_rss_bytes"`
}

// selfUsage returns the CPU time of this process and of its reaped
// children (cat, for exec:) and the larger of their peak RSS.
func selfUsage() usage {
	var u usage
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if syscall.Getrusage(who, &ru) != nil {
			continue
		}
		u.CPU += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		u.MaxRSS = max(u.MaxRSS, ru.Maxrss<<10) // Linux reports KiB
	}
	return u
}

// procUsage returns the CPU time and peak RSS (VmHWM) of a running
// process from /proc, for processes that cannot report their own (QEMU).
func procUsage(pid int) (usage, error) {
	var u usage
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	// Fields after the command name, which is in parentheses and may
	// hold spaces: state is field 3, utime 14, stime 15.
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 {
		return u, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return u, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	const hz = 100 // USER_HZ on Linux
	for _, s := range f[11:13] {
		t, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return u, fmt.Errorf("/proc/%d/stat: %v", pid, err)
		}
		u.CPU += time.Duration(t) * time.Second / hz
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return u, fmt.Errorf("/proc/%d/status: VmHWM: %v", pid, err)
			}
			u.MaxRSS = kb << 10
		}
	}
	return u, nil
}
