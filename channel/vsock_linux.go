package channel

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// parseVsock parses "cid:port". For listening, an empty cid means any
// (VMADDR_CID_ANY) and port 0 means any free port.
func parseVsock(address string, listen bool) (cid, port uint32, err error) {
	c, p, ok := strings.Cut(address, ":")
	if !ok {
		return 0, 0, fmt.Errorf("vsock address %q: want CID:PORT", address)
	}
	if c == "" && listen {
		cid = unix.VMADDR_CID_ANY
	} else {
		v, err := strconv.ParseUint(c, 10, 32)
		if err != nil {
			return 0, 0, fmt.Errorf("vsock address %q: bad CID %q", address, c)
		}
		cid = uint32(v)
	}
	v, err := strconv.ParseUint(p, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("vsock address %q: bad port %q", address, p)
	}
	port = uint32(v)
	if listen && port == 0 {
		port = unix.VMADDR_PORT_ANY
	}
	return cid, port, nil
}

// vsockConn is a net.Conn over an AF_VSOCK stream socket. The descriptor is
// non-blocking and registered with the runtime poller through os.NewFile,
// so deadlines work and Close unblocks pending calls.
type vsockConn struct {
	f            *os.File
	rc           syscall.RawConn
	laddr, raddr *VsockAddr
	iov          iovecs // writer only
}

var _ net.Conn = (*vsockConn)(nil)

func newVsockConn(fd int) (*vsockConn, error) {
	f := os.NewFile(uintptr(fd), "vsock")
	c := &vsockConn{f: f}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	c.rc = rc
	if sa, err := unix.Getsockname(fd); err == nil {
		if vm, ok := sa.(*unix.SockaddrVM); ok {
			c.laddr = &VsockAddr{vm.CID, vm.Port}
		}
	}
	if sa, err := unix.Getpeername(fd); err == nil {
		if vm, ok := sa.(*unix.SockaddrVM); ok {
			c.raddr = &VsockAddr{vm.CID, vm.Port}
		}
	}
	return c, nil
}

func (c *vsockConn) opErr(op string, err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	var src, dst net.Addr
	if c.laddr != nil {
		src = c.laddr
	}
	if c.raddr != nil {
		dst = c.raddr
	}
	return &net.OpError{Op: op, Net: "vsock", Source: src, Addr: dst, Err: cause(err)}
}

func (c *vsockConn) Read(p []byte) (int, error) {
	n, err := c.f.Read(p)
	return n, c.opErr("read", err)
}

func (c *vsockConn) Write(p []byte) (int, error) {
	n, err := c.f.Write(p)
	return n, c.opErr("write", err)
}

// WriteBuffers writes bufs with writev(2).
func (c *vsockConn) WriteBuffers(bufs *net.Buffers) (int64, error) {
	n, err := c.iov.writev(c.rc, bufs)
	return n, c.opErr("writev", err)
}

func (c *vsockConn) Close() error { return c.opErr("close", c.f.Close()) }

func (c *vsockConn) LocalAddr() net.Addr {
	if c.laddr == nil {
		return nil
	}
	return c.laddr
}

func (c *vsockConn) RemoteAddr() net.Addr {
	if c.raddr == nil {
		return nil
	}
	return c.raddr
}

func (c *vsockConn) SetDeadline(t time.Time) error {
	return c.opErr("set deadline", c.f.SetDeadline(t))
}

func (c *vsockConn) SetReadDeadline(t time.Time) error {
	return c.opErr("set deadline", c.f.SetReadDeadline(t))
}

func (c *vsockConn) SetWriteDeadline(t time.Time) error {
	return c.opErr("set deadline", c.f.SetWriteDeadline(t))
}

func (c *vsockConn) SyscallConn() (syscall.RawConn, error) { return c.rc, nil }

// dialVsock connects to "cid:port", honouring ctx.
func dialVsock(ctx context.Context, address string) (net.Conn, error) {
	cid, port, err := parseVsock(address, false)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	err = unix.Connect(fd, &unix.SockaddrVM{CID: cid, Port: port})
	if err != nil && err != unix.EINPROGRESS {
		unix.Close(fd)
		return nil, os.NewSyscallError("connect", err)
	}
	c, err := newVsockConn(fd)
	if err != nil {
		return nil, err
	}
	if d, ok := ctx.Deadline(); ok {
		c.f.SetWriteDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { c.f.SetWriteDeadline(time.Unix(1, 0)) })
	var cerr error
	werr := c.rc.Write(func(fd uintptr) bool {
		v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil {
			cerr = err
			return true
		}
		if v != 0 {
			cerr = unix.Errno(v)
			return true
		}
		_, err = unix.Getpeername(int(fd))
		if err == unix.ENOTCONN {
			return false // still connecting
		}
		cerr = err
		return true
	})
	if !stop() {
		c.f.Close()
		return nil, ctx.Err()
	}
	if werr == nil {
		werr = cerr
	}
	if werr != nil {
		c.f.Close()
		return nil, os.NewSyscallError("connect", cause(werr))
	}
	c.f.SetWriteDeadline(time.Time{})
	if sa, err := unix.Getpeername(int(fdOf(c))); err == nil {
		if vm, ok := sa.(*unix.SockaddrVM); ok {
			c.raddr = &VsockAddr{vm.CID, vm.Port}
		}
	}
	if sa, err := unix.Getsockname(int(fdOf(c))); err == nil {
		if vm, ok := sa.(*unix.SockaddrVM); ok {
			c.laddr = &VsockAddr{vm.CID, vm.Port}
		}
	}
	return c, nil
}

func fdOf(c *vsockConn) uintptr {
	var fd uintptr
	c.rc.Control(func(f uintptr) { fd = f })
	return fd
}

// vsockListener is a net.Listener on an AF_VSOCK socket.
type vsockListener struct {
	f    *os.File
	rc   syscall.RawConn
	addr *VsockAddr
}

func listenVsock(ctx context.Context, address string) (net.Listener, error) {
	cid, port, err := parseVsock(address, true)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrVM{CID: cid, Port: port}); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("bind", err)
	}
	if err := unix.Listen(fd, 128); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("listen", err)
	}
	l := &vsockListener{addr: &VsockAddr{cid, port}}
	if sa, err := unix.Getsockname(fd); err == nil {
		if vm, ok := sa.(*unix.SockaddrVM); ok {
			l.addr = &VsockAddr{vm.CID, vm.Port}
		}
	}
	l.f = os.NewFile(uintptr(fd), "vsock-listener")
	if l.rc, err = l.f.SyscallConn(); err != nil {
		l.f.Close()
		return nil, err
	}
	return l, nil
}

func (l *vsockListener) Accept() (net.Conn, error) {
	var nfd int
	var aerr error
	err := l.rc.Read(func(fd uintptr) bool {
		nfd, _, aerr = unix.Accept4(int(fd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		return aerr != unix.EAGAIN
	})
	if err == nil {
		err = aerr
	}
	if err != nil {
		return nil, &net.OpError{Op: "accept", Net: "vsock", Addr: l.addr, Err: cause(err)}
	}
	c, err := newVsockConn(nfd)
	if err != nil {
		return nil, err // not a nil *vsockConn inside the net.Conn
	}
	return c, nil
}

func (l *vsockListener) Close() error {
	if err := l.f.Close(); err != nil {
		return &net.OpError{Op: "close", Net: "vsock", Addr: l.addr, Err: cause(err)}
	}
	return nil
}

func (l *vsockListener) Addr() net.Addr { return l.addr }

// fromVsockFile makes a vsock conn of f if f is an AF_VSOCK socket. It
// reports false if f is some other socket.
func fromVsockFile(f *os.File) (net.Conn, bool, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, false, err
	}
	var domain int
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		domain, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
	}); err != nil {
		return nil, false, err
	}
	if gerr != nil || domain != unix.AF_VSOCK {
		return nil, false, nil
	}
	var nfd int
	var derr error
	rc.Control(func(fd uintptr) { nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) })
	if derr != nil {
		return nil, true, os.NewSyscallError("dup", derr)
	}
	if err := unix.SetNonblock(nfd, true); err != nil {
		unix.Close(nfd)
		return nil, true, os.NewSyscallError("fcntl", err)
	}
	c, err := newVsockConn(nfd)
	if err != nil {
		return nil, true, err
	}
	return c, true, nil
}
