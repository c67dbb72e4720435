//go:build linux

package channel_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/internal/testwait"
)

// startCommand starts cmdline and closes it when the test ends.
func startCommand(t testing.TB, cmdline string) *channel.Command {
	t.Helper()
	c, err := channel.StartCommand(cmdline)
	if err != nil {
		t.Fatalf("StartCommand(%q): %v", cmdline, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readAllBounded reads c to EOF with a deadline.
func readAllBounded(t testing.TB, c channel.Channel) []byte {
	t.Helper()
	if d, ok := c.(channel.Deadliner); ok {
		d.SetReadDeadline(testwait.Deadline(t))
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading %s: %v", c.Name(), err)
	}
	return b
}

func TestCommandCat(t *testing.T) {
	c := startCommand(t, "cat")
	data := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB, more than a pipe holds
	go func() {
		c.Write(data)
		c.Shutdown(channel.Write)
	}()
	if got := readAllBounded(t, c); !bytes.Equal(got, data) {
		t.Fatalf("cat echoed %d bytes, want %d", len(got), len(data))
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	assertReaped(t, c.Pid())
}

func TestCommandShutdownWriteClosesStdin(t *testing.T) {
	c := startCommand(t, "wc -c; echo done")
	c.Write([]byte("12345"))
	if err := c.Shutdown(channel.Write); err != nil {
		t.Fatal(err)
	}
	got := strings.Fields(string(readAllBounded(t, c)))
	if len(got) != 2 || got[0] != "5" || got[1] != "done" {
		t.Fatalf("output %q, want [5 done]", got)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) {
		t.Errorf("Write after Shutdown(Write) = %v, want EPIPE", err)
	}
}

func TestCommandFailures(t *testing.T) {
	tests := []struct {
		name    string
		cmdline string
		grace   time.Duration
		// want is the message after `channel: command "CMDLINE" `.
		want       string
		wantCode   int
		wantStderr string // suffix of the tail
		killed     bool
	}{
		{
			// sh reports a missing command with status 127 (POSIX 2.8.2).
			name: "not found", cmdline: "livemig-no-such-command --flag",
			want: "not found (exit status 127); stderr: ", wantCode: 127,
			wantStderr: "livemig-no-such-command: not found\n",
		},
		{
			name: "exit 3", cmdline: "echo first line >&2; echo disk on fire >&2; exit 3",
			want: "exited with status 3; stderr: disk on fire", wantCode: 3,
			wantStderr: "first line\ndisk on fire\n",
		},
		{
			name: "killed by a signal", cmdline: "echo dying >&2; kill -KILL $$",
			want: "was killed by signal SIGKILL; stderr: dying", wantCode: -1,
			wantStderr: "dying\n",
		},
		{
			// QEMU's exec: channel aborts with SIGTERM: a child that does not
			// exit when its input closes gets it after the grace period.
			// The grace is also how long the child has to die of SIGTERM
			// before SIGKILL: 1 s here and 500 ms below (a busy loop), not
			// 50 ms, so that a loaded machine's scheduling delay does not
			// turn the SIGTERM into a SIGKILL.
			name: "ignores stdin EOF", cmdline: "echo waiting >&2; sleep 30", grace: time.Second,
			want: "did not exit after its input closed and was killed by SIGTERM; stderr: waiting", wantCode: -1,
			wantStderr: "waiting\n", killed: true,
		},
		{
			name: "exits 4 on SIGTERM", cmdline: "trap 'exit 4' TERM; echo trapped >&2; while :; do :; done", grace: 500 * time.Millisecond,
			want: "did not exit after its input closed; after SIGTERM it exited with status 4; stderr: trapped", wantCode: 4,
			wantStderr: "trapped\n", killed: true,
		},
		{
			name: "ignores SIGTERM too", cmdline: "trap '' TERM; echo stubborn >&2; sleep 30", grace: 50 * time.Millisecond,
			want: "did not exit after its input closed and was killed by SIGKILL; stderr: stubborn", wantCode: -1,
			wantStderr: "stubborn\n", killed: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := startCommand(t, tt.cmdline)
			if tt.grace > 0 {
				c.SetGracePeriod(tt.grace)
				// Let the shell run far enough to print and trap.
				waitForStderr(t, c, strings.TrimSpace(tt.wantStderr))
			} else {
				readAllBounded(t, c) // output ends when the child does
			}
			// A Close that waited for a child ignoring its input and
			// SIGTERM (sleep 30) would say Killed false; one that never
			// returned fails at the test binary's -timeout.
			err := testwait.Go(c.Close).Result(t, "Close")
			var ee *channel.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("Close = %v (%T), want *channel.ExitError", err, err)
			}
			wantMsg := "channel: command " + strconv.Quote(tt.cmdline) + " " + tt.want
			if !strings.HasPrefix(err.Error(), wantMsg) {
				t.Errorf("message:\n got %q\nwant %q", err.Error(), wantMsg)
			}
			if ee.ExitCode() != tt.wantCode {
				t.Errorf("ExitCode() = %d, want %d", ee.ExitCode(), tt.wantCode)
			}
			if !strings.HasSuffix(string(ee.Stderr), tt.wantStderr) {
				t.Errorf("Stderr = %q, want it to end with %q", ee.Stderr, tt.wantStderr)
			}
			if ee.Killed != tt.killed {
				t.Errorf("Killed = %v, want %v", ee.Killed, tt.killed)
			}
			var xe *exec.ExitError
			if !errors.As(err, &xe) {
				t.Errorf("error does not wrap *exec.ExitError")
			}
			assertReaped(t, c.Pid())
			if err := c.Close(); !errors.Is(err, os.ErrClosed) && !errors.Is(err, errNetClosed) {
				t.Errorf("second Close = %v, want net.ErrClosed", err)
			}
		})
	}
}

// waitForStderr waits until the child has written want to its stderr.
func waitForStderr(t testing.TB, c *channel.Command, want string) {
	t.Helper()
	testwait.Until(t, fmt.Sprintf("the child writing %q to stderr", want), func() bool {
		return strings.Contains(string(channel.CommandStderrForTest(c)), want)
	})
}

func TestCommandStderrTail(t *testing.T) {
	c := startCommand(t, "head -c 10000 /dev/zero | tr '\\0' a >&2; echo >&2; echo END >&2; exit 1")
	readAllBounded(t, c)
	var ee *channel.ExitError
	if err := c.Close(); !errors.As(err, &ee) {
		t.Fatalf("Close = %v", err)
	}
	if len(ee.Stderr) != 4<<10 || !strings.HasSuffix(string(ee.Stderr), "aaaa\nEND\n") {
		t.Errorf("Stderr is %d bytes ending %q; want the last %d ending aaaa\\nEND\\n",
			len(ee.Stderr), ee.Stderr[max(0, len(ee.Stderr)-10):], 4<<10)
	}
	if !strings.HasSuffix(ee.Error(), "; stderr: END") {
		t.Errorf("message %q should quote the last line", ee.Error())
	}
}

// TestCommandClosedStdout: a child still writing when Close closes its
// stdout dies of SIGPIPE; Close caused that, so it is not an error.
func TestCommandClosedStdout(t *testing.T) {
	c := startCommand(t, "yes")
	buf := make([]byte, 10)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close = %v, want nil", err)
	}
	assertReaped(t, c.Pid())
}

func TestCommandWriteToExitedChild(t *testing.T) {
	c := startCommand(t, "exit 0")
	<-channel.CommandExitedForTest(c)
	var err error
	for range 10 {
		if _, err = c.Write(make([]byte, 128<<10)); err != nil {
			break
		}
	}
	if !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("Write to an exited child = %v, want EPIPE", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
}

// TestCommandKillsProcessGroup: background jobs of the shell die with it.
func TestCommandKillsProcessGroup(t *testing.T) {
	c := startCommand(t, "sleep 30 & sleep 30 & echo started >&2; wait")
	c.SetGracePeriod(50 * time.Millisecond)
	waitForStderr(t, c, "started")
	pgid := c.Pid()
	start := time.Now()
	err := c.Close()
	t.Logf("Close = %v after %v", err, time.Since(start))
	// Zombies waiting for init to reap them do not count: this machine's
	// init may be slow to reap orphans.
	testwait.Until(t, fmt.Sprintf("process group %d with no live member after Close", pgid), func() bool {
		return liveInGroup(t, pgid) == ""
	})
}

// assertReaped checks that pid is gone, not a zombie.
func assertReaped(t testing.TB, pid int) {
	t.Helper()
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil); !errors.Is(err, syscall.ECHILD) {
		t.Errorf("wait4(%d) = %v; want ECHILD (already reaped)", pid, err)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
		t.Errorf("/proc/%d still exists", pid)
	}
}

// TestCommandWriteSaysWhy: writing to a child that is gone because it
// failed says why, without waiting for Close.
func TestCommandWriteSaysWhy(t *testing.T) {
	c := startCommand(t, "livemig-no-such-command")
	var err error
	for range 10 {
		if _, err = c.Write(make([]byte, 128<<10)); err != nil {
			break
		}
	}
	var ee *channel.ExitError
	if !errors.Is(err, syscall.EPIPE) || !errors.As(err, &ee) || ee.ExitCode() != 127 {
		t.Fatalf("Write = %v; want EPIPE wrapping the *channel.ExitError", err)
	}
	want := `write exec livemig-no-such-command: broken pipe: channel: command "livemig-no-such-command" not found (exit status 127); stderr: `
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("message:\n got %q\nwant %q...", err, want)
	}
}

// TestCommandKillsLeftoverJobs: a shell that exits at once but leaves a
// background job running (one that ignores its input closing and holds
// none of its pipes) does not leave it behind: Close ends the rest of the
// process group too. Members that are only zombies waiting for init to
// reap them do not count (a container's init may reap slowly).
func TestCommandKillsLeftoverJobs(t *testing.T) {
	c := startCommand(t, "sleep 30 >/dev/null 2>&1 & echo started >&2")
	c.SetGracePeriod(50 * time.Millisecond)
	waitForStderr(t, c, "started")
	pgid := c.Pid()
	if live := liveInGroup(t, pgid); live == "" {
		t.Fatalf("process group %d has no live member before Close", pgid)
	}
	if err := c.Close(); err != nil {
		t.Logf("Close = %v", err)
	}
	t.Cleanup(func() { syscall.Kill(-pgid, syscall.SIGKILL) }) // should the test fail
	testwait.Until(t, fmt.Sprintf("process group %d with no live member (a background job of the shell outlived Close)", pgid), func() bool {
		return liveInGroup(t, pgid) == ""
	})
}

// liveInGroup lists, as ps prints them, the processes of group pgid that
// are not zombies.
func liveInGroup(t *testing.T, pgid int) string {
	t.Helper()
	out, err := exec.Command("ps", "-eo", "pgid=,stat=,pid=,args=").Output()
	if err != nil {
		t.Fatalf("ps: %v", err)
	}
	var live []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == strconv.Itoa(pgid) && !strings.HasPrefix(f[1], "Z") {
			live = append(live, line)
		}
	}
	return strings.Join(live, "\n")
}
