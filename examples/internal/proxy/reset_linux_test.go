package proxy

import (
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/livemig/livemig/internal/testwait"
)

// tcpState returns the kernel's TCP state of c (unix.BPF_TCP_* values)
// and how many received bytes wait unread in its queue.
func tcpState(t testing.TB, c *net.TCPConn) (state uint8, queued int) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		var info *unix.TCPInfo
		if info, gerr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); gerr != nil {
			return
		}
		state = info.State
		queued, gerr = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
	}); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return state, queued
}

// resetPeer starts a raw proxy from a plain tcp listener to a plain tcp
// listener of the test's own, connects a source to it and returns the
// source, the destination's end of the proxied connection and the
// proxy's log.
func resetPeer(t *testing.T) (src, dst *net.TCPConn, logs *logLines) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	addr, logs := runProxy(t, &Options{Raw: true, Listen: "tcp:127.0.0.1:0", To: "tcp:" + ln.Addr().String()})
	c, err := net.Dial("tcp", addr.Inet.Host+":"+addr.Inet.Port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ln.(*net.TCPListener).SetDeadline(testwait.Deadline(t))
	d, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return c.(*net.TCPConn), d.(*net.TCPConn), logs
}

// TestResetAfterEnd: the destination resets its connection after the
// proxy has passed it the whole stream and its end, as a QEMU destination
// does when it closes with bytes unread: the proxy logs the connection as
// closed, naming the reset as QEMU's normal way of ending, not as a cut.
// The source is still reset: the proxy does not pass a reset on as a
// clean end.
func TestResetAfterEnd(t *testing.T) {
	src, dst, logs := resetPeer(t)
	if _, err := src.Write(payload); err != nil {
		t.Fatal(err)
	}
	if err := src.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	// The destination reads nothing: once the whole stream and the
	// proxy's FIN (CLOSE_WAIT) are queued, closing resets the connection.
	testwait.Until(t, "the stream and its end queued at the destination", func() bool {
		state, queued := tcpState(t, dst)
		return state == unix.BPF_TCP_CLOSE_WAIT && queued == len(payload)
	})
	dst.Close()
	ctx := testCtx(t)
	line := logs.waitFor(ctx, t, "connection 1: c")
	if !strings.Contains(line, "connection 1: closed: peer reset after the end of the stream (QEMU's normal way of ending)") {
		t.Errorf("logged %q, want the connection closed by a reset after the end of the stream", line)
	}
	src.SetReadDeadline(testwait.Deadline(t))
	if _, err := io.ReadAll(src); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("the source read %v after the destination's reset, want ECONNRESET", err)
	}
}

// TestResetMidStream: the destination reads part of the stream and
// resets its connection (SO_LINGER 0) while the source has not ended it:
// a failure, logged as a cut, and the source is reset.
func TestResetMidStream(t *testing.T) {
	src, dst, logs := resetPeer(t)
	if _, err := src.Write(payload); err != nil {
		t.Fatal(err)
	}
	dst.SetReadDeadline(testwait.Deadline(t))
	if _, err := io.ReadFull(dst, make([]byte, len(payload)/2)); err != nil {
		t.Fatal(err)
	}
	// All of the rest has reached the destination: the proxy is done
	// writing and waits for the source, which has not ended the stream.
	testwait.Until(t, "the rest of the stream queued at the destination", func() bool {
		_, queued := tcpState(t, dst)
		return queued == len(payload)-len(payload)/2
	})
	if err := dst.SetLinger(0); err != nil {
		t.Fatal(err)
	}
	dst.Close()
	ctx := testCtx(t)
	line := logs.waitFor(ctx, t, "connection 1: c")
	if !strings.Contains(line, "connection 1: cut after") || !strings.Contains(line, "connection reset by peer") {
		t.Errorf("logged %q, want a cut naming the reset", line)
	}
	src.SetReadDeadline(testwait.Deadline(t))
	if _, err := io.ReadAll(src); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("the source read %v after the destination's reset, want ECONNRESET", err)
	}
}
