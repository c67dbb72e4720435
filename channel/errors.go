package channel

import (
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// OpError is the error type returned by channels. It is rendered like
// net.OpError: "write tcp 127.0.0.1:4444->127.0.0.1:38920: broken pipe".
//
// Err is the cause with the standard library's own *net.OpError,
// *os.SyscallError and *os.PathError layers removed, so it is usually a
// syscall.Errno, [net.ErrClosed], os.ErrDeadlineExceeded or an error of this
// package. OpError implements net.Error; Timeout reports whether Err is a
// timeout.
type OpError struct {
	// Op is the operation: "read", "write", "writev", "shutdown", "dial",
	// "listen", "accept", "open", "close", "sendmsg", "recvmsg", "flush",
	// "setsockopt".
	Op string
	// Channel is the Name of the channel, or the network and address for
	// dial and listen; it may be empty.
	Channel string
	// Err is the cause; it is never nil.
	Err error
}

// Error renders "Op Channel: Err", like net.OpError.
func (e *OpError) Error() string {
	if e == nil {
		return "<nil>"
	}
	var b strings.Builder
	b.WriteString(e.Op)
	if e.Channel != "" {
		b.WriteByte(' ')
		b.WriteString(e.Channel)
	}
	b.WriteString(": ")
	if e.Err == nil {
		b.WriteString("<nil>")
	} else {
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns Err.
func (e *OpError) Unwrap() error { return e.Err }

// Timeout reports whether the error is a timeout (a passed deadline).
func (e *OpError) Timeout() bool {
	var t interface{ Timeout() bool }
	return errors.As(e.Err, &t) && t.Timeout()
}

// Temporary reports whether the error is a timeout or temporary.
//
// Deprecated: as net.Error's Temporary, it is ill-defined; use Timeout or
// errors.Is.
func (e *OpError) Temporary() bool {
	if e.Timeout() {
		return true
	}
	var t interface{ Temporary() bool }
	return errors.As(e.Err, &t) && t.Temporary()
}

var _ net.Error = (*OpError)(nil)

// errUnsupported is wrapped for capabilities a channel does not have.
var errUnsupported = errors.ErrUnsupported

// cause strips the standard library's wrapping layers from err and maps the
// os package's closed-file error to net.ErrClosed, so that every channel
// reports a closed channel the same way.
func cause(err error) error {
	for {
		switch e := err.(type) {
		case *net.OpError:
			err = e.Err
			continue
		case *os.SyscallError:
			err = e.Err
			continue
		case *os.PathError:
			err = e.Err
			continue
		}
		break
	}
	if errors.Is(err, os.ErrClosed) && !errors.Is(err, net.ErrClosed) {
		return net.ErrClosed
	}
	return err
}

// opError wraps err for op on the channel called name. io.EOF is returned
// unwrapped so that readers see it as io.Reader's contract demands.
func opError(op, name string, err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	if oe, ok := err.(*OpError); ok {
		return oe
	}
	return &OpError{Op: op, Channel: name, Err: cause(err)}
}

// errClosed is returned by operations on a closed channel.
func errClosed(op, name string) error {
	return &OpError{Op: op, Channel: name, Err: net.ErrClosed}
}

// stderrTail is how many bytes of a child's standard error an [*ExitError]
// keeps: the last 4 KiB.
const stderrTail = 4 << 10

// ExitError is returned by [Command.Close] when the child did not exit
// cleanly: a non-zero exit status, a signal, or it was killed because it
// did not exit after its input closed. It wraps the *exec.ExitError and
// carries the last 4 KiB of the child's standard error.
type ExitError struct {
	// Command is the shell command line, or for [StartArgv] the program
	// and its arguments, quoted where needed.
	Command string
	// Err is the result of waiting for the child; its ProcessState has the
	// exit status or signal.
	Err *exec.ExitError
	// Stderr is the tail of the child's standard error, at most 4 KiB.
	Stderr []byte
	// Killed reports that the child ignored the end of its input for the
	// grace period and Close killed it (SIGTERM, then SIGKILL).
	Killed bool
}

// Error says how the child ended and quotes the last line of its standard
// error.
func (e *ExitError) Error() string {
	var b strings.Builder
	b.WriteString("channel: command ")
	b.WriteString(quote(e.Command))
	b.WriteByte(' ')
	b.WriteString(e.describe())
	if line := lastLine(e.Stderr); line != "" {
		b.WriteString("; stderr: ")
		b.WriteString(line)
	}
	return b.String()
}

func (e *ExitError) describe() string {
	if e.Err == nil || e.Err.ProcessState == nil {
		return "failed"
	}
	ws, _ := e.Err.ProcessState.Sys().(syscall.WaitStatus)
	switch {
	case e.Killed && ws.Signaled():
		return "did not exit after its input closed and was killed by " + signalName(ws.Signal())
	case e.Killed && ws.Exited():
		return "did not exit after its input closed; after SIGTERM it exited with status " + strconv.Itoa(ws.ExitStatus())
	case ws.Signaled():
		return "was killed by signal " + signalName(ws.Signal())
	case ws.Exited() && ws.ExitStatus() == 127:
		return "not found (exit status 127)"
	case ws.Exited() && ws.ExitStatus() == 126:
		return "cannot be executed (exit status 126)"
	case ws.Exited():
		return "exited with status " + strconv.Itoa(ws.ExitStatus())
	}
	return e.Err.Error()
}

// Unwrap returns Err.
func (e *ExitError) Unwrap() error {
	if e.Err == nil {
		return nil
	}
	return e.Err
}

// ExitCode is the child's exit status, or -1 if a signal ended it.
func (e *ExitError) ExitCode() int {
	if e.Err == nil {
		return -1
	}
	return e.Err.ExitCode()
}

func signalName(s syscall.Signal) string {
	if n := unix.SignalName(s); n != "" {
		return n
	}
	return "signal " + strconv.Itoa(int(s))
}

func lastLine(b []byte) string {
	s := strings.TrimRight(string(b), "\r\n\t ")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 512 {
		s = "..." + s[len(s)-512:]
	}
	return strings.ToValidUTF8(s, "?")
}

func quote(s string) string {
	const max = 200
	if len(s) > max {
		s = s[:max] + "..."
	}
	return strconv.Quote(s)
}
