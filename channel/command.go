package channel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

var _ Channel = (*Command)(nil)
var _ Deadliner = (*Command)(nil)

// defaultGracePeriod is how long [Command.Close] waits for the child to
// exit after closing its stdin and stdout, before SIGTERM, and again after
// SIGTERM before SIGKILL.
const defaultGracePeriod = 3 * time.Second

// Command is a Channel over a child process (QEMU's exec: migration): Write
// feeds the child's standard input, Read reads its standard output. The
// child runs "/bin/sh -c CMDLINE" in its own process group; its standard
// error is kept, last 4 KiB, for the error Close returns.
//
// Shutdown(Write) closes the child's stdin, so it reads end of file.
// Close closes stdin and stdout and waits for the child. A child that has
// not exited after the grace period (3 s by default, see
// [Command.SetGracePeriod]) gets SIGTERM, and SIGKILL one more grace
// period later; each goes to the child's whole process group. Background
// jobs still in that group after the shell exits get the same treatment,
// so none outlives Close. Close returns
// nil if the child exited with status 0 (or died of SIGPIPE writing to the
// stdout that Close had closed), else an *[ExitError].
//
// A goroutine waits for the child from the start, so it is reaped even if
// Close is never called: no zombie is left behind. Command follows the
// Channel concurrency rule.
type Command struct {
	p       *FilePair
	cmdline string
	cmd     *exec.Cmd
	stderr  *tail
	exited  chan struct{} // closed when the child is reaped
	waitErr error         // set before exited is closed
	grace   atomic.Int64

	closeOnce sync.Once
	closeErr  error
}

// StartCommand runs /bin/sh -c cmdline with pipes to its stdin and stdout
// and returns at once. A command that does not exist is reported by Close
// (and is an ExitError saying "not found"), since the shell looks it up;
// StartCommand fails only if the shell cannot start.
func StartCommand(cmdline string) (*Command, error) {
	return startCommand(context.Background(), cmdline, []string{"/bin/sh", "-c", cmdline})
}

// StartArgv runs the program argv[0] with the arguments argv[1:] and no
// shell, as QEMU's JSON exec address does: every argument reaches the
// program as it is, spaces, quotes and '$' included. As in QEMU, argv[0]
// is the program's path, absolute or relative to the working directory,
// and is not looked up in PATH. Unlike StartCommand it fails at once if
// the program cannot be started (missing, not executable). The child is
// otherwise handled as StartCommand's; the Command's name and an
// ExitError's Command are argv, each item quoted where it needs it.
func StartArgv(argv []string) (*Command, error) {
	if len(argv) == 0 || argv[0] == "" {
		return nil, opError("exec", "exec", errors.New("no program: argv is empty"))
	}
	return startCommand(context.Background(), argvString(argv), argv)
}

// argvString spells argv for messages: items joined by spaces, each one
// that is empty or holds anything beyond letters, digits and -_./=:@%+,
// in double quotes with Go escapes.
func argvString(argv []string) string {
	var b strings.Builder
	for i, a := range argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		plain := a != ""
		for _, c := range a {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.ContainsRune("-_./=:@%+,", c)) {
				plain = false
				break
			}
		}
		if plain {
			b.WriteString(a)
		} else {
			b.WriteString(strconv.Quote(a))
		}
	}
	return b.String()
}

// startCommand starts argv; cmdline is how messages name it.
func startCommand(ctx context.Context, cmdline string, argv []string) (*Command, error) {
	name := "exec " + cmdline
	if len(name) > 120 {
		name = name[:117] + "..."
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, opError("exec", name, err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, opError("exec", name, err)
	}
	t := &tail{}
	// Path is set directly, not through exec.Command, so that argv[0] is
	// never looked up in PATH (QEMU spawns it without G_SPAWN_SEARCH_PATH).
	cmd := &exec.Cmd{Path: argv[0], Args: argv}
	cmd.Stdin = inR
	cmd.Stdout = outW
	cmd.Stderr = t
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Grandchildren that keep stderr open must not hold up the reaping.
	cmd.WaitDelay = time.Second
	err = cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, opError("exec", name, err)
	}
	c := &Command{
		cmdline: cmdline,
		cmd:     cmd,
		stderr:  t,
		exited:  make(chan struct{}),
	}
	c.p = NewFilePair(outR, inW)
	c.p.setName(name)
	c.grace.Store(int64(defaultGracePeriod))
	go func() {
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

// SetGracePeriod sets how long Close waits before each signal; d <= 0
// means the default.
func (c *Command) SetGracePeriod(d time.Duration) {
	if d <= 0 {
		d = defaultGracePeriod
	}
	c.grace.Store(int64(d))
}

// Pid returns the child's process ID, which is also its process group ID.
func (c *Command) Pid() int { return c.cmd.Process.Pid }

// exitedChan returns a channel that is closed once the child has exited and
// been reaped.
func (c *Command) exitedChan() <-chan struct{} { return c.exited }

// stderrSoFar returns a copy of the last 4 KiB the child wrote to
// its standard error so far.
func (c *Command) stderrSoFar() []byte { return c.stderr.bytes() }

// Name returns "exec " and the command line.
func (c *Command) Name() string { return c.p.Name() }

// Read implements [Channel]: it reads the child's standard output.
func (c *Command) Read(b []byte) (int, error) { return c.p.Read(b) }

// Write implements [Channel]: it writes the child's standard input. If the
// child has exited with an error, the broken pipe error also wraps its
// [*ExitError], so the cause shows at once (not only from Close).
func (c *Command) Write(b []byte) (int, error) {
	n, err := c.p.Write(b)
	return n, c.explain(err)
}

// WriteBuffers implements [Channel] with writev(2) to the child's stdin.
// Errors are as for Write.
func (c *Command) WriteBuffers(bufs *net.Buffers) (int64, error) {
	n, err := c.p.WriteBuffers(bufs)
	return n, c.explain(err)
}

// explain adds the child's exit status to a broken-pipe error: the child
// closed its stdin by exiting, and why is what the caller needs to know.
func (c *Command) explain(err error) error {
	var oe *OpError
	if !errors.As(err, &oe) || !errors.Is(oe.Err, syscall.EPIPE) || c.p.wrShut.Load() {
		return err
	}
	if !c.waitFor(exitWait) {
		return err
	}
	if ee := c.exitError(false); ee != nil {
		return &OpError{Op: oe.Op, Channel: oe.Channel, Err: fmt.Errorf("%w: %w", oe.Err, ee)}
	}
	return err
}

// exitWait is how long a write that failed with EPIPE waits for the child
// to be reaped, to say why it went away.
const exitWait = time.Second

// Shutdown implements [Channel]: Shutdown(Write) closes the child's stdin,
// Shutdown(Read) its stdout (a child writing more then dies of SIGPIPE).
func (c *Command) Shutdown(how Direction) error { return c.p.Shutdown(how) }

// SetDeadline implements [Deadliner].
func (c *Command) SetDeadline(t time.Time) error { return c.p.SetDeadline(t) }

// SetReadDeadline implements [Deadliner].
func (c *Command) SetReadDeadline(t time.Time) error { return c.p.SetReadDeadline(t) }

// SetWriteDeadline implements [Deadliner].
func (c *Command) SetWriteDeadline(t time.Time) error { return c.p.SetWriteDeadline(t) }

// Close closes the pipes, waits for the child (killing it after the grace
// period) and reports how it ended: nil or an *[ExitError]. Calls after the
// first return an error wrapping net.ErrClosed.
func (c *Command) Close() error {
	first := false
	c.closeOnce.Do(func() {
		first = true
		c.closeErr = c.close()
	})
	if !first {
		return errClosed("close", c.p.name)
	}
	return c.closeErr
}

func (c *Command) close() error {
	c.p.Close()
	grace := time.Duration(c.grace.Load())
	killed := false
	if !c.waitFor(grace) {
		killed = true
		syscall.Kill(-c.cmd.Process.Pid, syscall.SIGTERM)
		if !c.waitFor(grace) {
			syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
			<-c.exited
		}
	}
	err := c.exitError(killed)
	c.endGroup(grace)
	return err
}

// endGroup ends the rest of the child's process group once the shell has
// been reaped: background jobs that outlive it (and hold none of its
// pipes, so the shell was not held up) get one more grace period, then
// SIGTERM, then SIGKILL, like the shell itself. They are not our children
// (init reaps them), so endGroup polls for the group to hold no live
// process (see groupAlive).
func (c *Command) endGroup(grace time.Duration) {
	pgid := c.cmd.Process.Pid
	gone := func(d time.Duration) bool {
		deadline := time.Now().Add(d)
		for {
			if !groupAlive(pgid) {
				return true
			}
			if !time.Now().Before(deadline) {
				return false
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if gone(0) || gone(grace) {
		return
	}
	syscall.Kill(-pgid, syscall.SIGTERM)
	if gone(grace) {
		return
	}
	syscall.Kill(-pgid, syscall.SIGKILL)
}

// exitError turns the result of waiting for the child into Close's error.
// Call it only once exited is closed.
func (c *Command) exitError(killed bool) error {
	err := c.waitErr
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		if errors.Is(err, exec.ErrWaitDelay) {
			return nil // exited 0; a grandchild kept stderr open
		}
		return &OpError{Op: "wait", Channel: c.p.name, Err: err}
	}
	ws, _ := ee.Sys().(syscall.WaitStatus)
	if !killed && (ws.Signaled() && ws.Signal() == syscall.SIGPIPE ||
		ws.Exited() && ws.ExitStatus() == 128+int(syscall.SIGPIPE)) {
		return nil // we closed its stdout (the shell reports 141 for a job it forked)
	}
	return &ExitError{Command: c.cmdline, Err: ee, Stderr: c.stderr.bytes(), Killed: killed}
}

func (c *Command) waitFor(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.exited:
		return true
	case <-t.C:
		return false
	}
}

// tail keeps the last stderrTail bytes written to it.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	if len(p) >= stderrTail {
		t.buf = append(t.buf[:0], p[len(p)-stderrTail:]...)
		return n, nil
	}
	if over := len(t.buf) + len(p) - stderrTail; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	t.buf = append(t.buf, p...)
	return n, nil
}

func (t *tail) bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.buf...)
}
