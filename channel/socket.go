package channel

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/livemig/livemig/internal/iovec"
)

var _ Channel = (*Socket)(nil)
var (
	_ net.Conn       = (*Socket)(nil)
	_ FDPasser       = (*Socket)(nil)
	_ ZeroCopyWriter = (*Socket)(nil)
	_ Deadliner      = (*Socket)(nil)
	_ NetConner      = (*Socket)(nil)
)

// Socket is a Channel over a connected stream socket: tcp, unix or vsock.
// [Dial] and [Listener.Accept] return Sockets; [NewSocket] wraps an
// existing connection.
//
// A Socket is also a net.Conn (its errors are [*OpError]s rather than
// *net.OpErrors), so code written for net.Conn can use it directly.
//
// Socket follows the Channel concurrency rule; in addition its option
// setters (SetNoDelay, SetKeepAlive, SetCork, deadlines) and Shutdown may be
// called from any goroutine. WriteFiles, WriteBuffersZeroCopy and Flush are
// write-side calls; ReadFiles is a read-side call.
type Socket struct {
	conn    net.Conn
	network string // "tcp", "unix" or "vsock"
	name    string
	rc      syscall.RawConn

	closeOnce sync.Once
	closeErr  error

	zc     zeroCopy    // write side only
	wv     net.Buffers // write side only: WriteBuffers' working header
	merged net.Buffers // write side only: the slices written, merged
}

// NewSocket wraps an established connection: a *net.TCPConn, a stream
// *net.UnixConn, or a conn returned by [Socket.NetConn] of a vsock Socket.
// The Socket owns c from then on. Other net.Conns (net.Pipe, tls.Conn) are
// refused: a Socket needs a kernel socket.
func NewSocket(c net.Conn) (*Socket, error) {
	if c == nil {
		return nil, errors.New("channel: NewSocket: nil connection")
	}
	s := &Socket{conn: c}
	var sc syscall.Conn
	switch c := c.(type) {
	case *net.TCPConn:
		s.network, sc = "tcp", c
	case *net.UnixConn:
		if n := c.LocalAddr().Network(); n != "unix" {
			return nil, fmt.Errorf("channel: NewSocket: %s socket is not a stream socket", n)
		}
		s.network, sc = "unix", c
	case *vsockConn:
		s.network, sc = "vsock", c
	default:
		return nil, fmt.Errorf("channel: NewSocket: unsupported connection type %T", c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, opError("open", s.network, err)
	}
	s.rc = rc
	s.name = connName(s.network, c.LocalAddr(), c.RemoteAddr())
	return s, nil
}

// connName renders "tcp local->remote" like net.OpError does.
func connName(network string, local, remote net.Addr) string {
	l, r := addrString(local), addrString(remote)
	switch {
	case l != "" && r != "":
		return network + " " + l + "->" + r
	case r != "":
		return network + " ->" + r
	case l != "":
		return network + " " + l
	}
	return network
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	if ua, ok := a.(*net.UnixAddr); ok && (ua == nil || ua.Name == "@") {
		return "" // unnamed
	}
	return a.String()
}

// Name returns the network and the local and remote addresses, as in
// "tcp 127.0.0.1:4444->127.0.0.1:38920".
func (s *Socket) Name() string { return s.name }

// Network returns "tcp", "unix" or "vsock".
func (s *Socket) Network() string { return s.network }

// LocalAddr returns the local address.
func (s *Socket) LocalAddr() net.Addr { return s.conn.LocalAddr() }

// RemoteAddr returns the peer's address.
func (s *Socket) RemoteAddr() net.Addr { return s.conn.RemoteAddr() }

// NetConn returns the connection underneath: a *net.TCPConn, a
// *net.UnixConn or, for vsock, a net.Conn of this package.
func (s *Socket) NetConn() net.Conn { return s.conn }

// Read implements [Channel].
func (s *Socket) Read(p []byte) (int, error) {
	n, err := s.conn.Read(p)
	if err != nil {
		err = opError("read", s.name, err)
	}
	return n, err
}

// Write implements [Channel].
func (s *Socket) Write(p []byte) (int, error) {
	n, err := s.conn.Write(p)
	if err != nil {
		err = opError("write", s.name, err)
	}
	return n, err
}

// WriteBuffers implements [Channel]: one writev per call for tcp and unix
// (more only if the kernel accepts part of the data, or for more than 1024
// slices), straight from the caller's slices. Slices that continue one
// another in memory (consecutive pages of one buffer, such as guest RAM)
// are merged into one iovec first, in a list of the Socket's own; *bufs
// is consumed as net.Buffers.WriteTo does all the same. It does not
// allocate (once the Socket's list has grown to the longest one merged).
func (s *Socket) WriteBuffers(bufs *net.Buffers) (int64, error) {
	// Work on a copy of the header held in s, so that bufs does not escape
	// through the net.Conn interface and a caller's local net.Buffers
	// stays on its stack.
	merged := s.mergeAdjacent(*bufs)
	if merged {
		s.wv = s.merged
	} else {
		s.wv = *bufs
	}
	n, err := writeBuffers(s.conn, &s.wv)
	if !merged {
		*bufs = s.wv
	}
	s.wv = nil
	s.doneMerged(bufs, merged, n)
	if err != nil {
		err = opError("writev", s.name, err)
	}
	return n, err
}

// mergeAdjacent reports whether slices of bufs continue one another in
// memory; if so, s.merged holds bufs with those merged (compactAdjacent),
// and bufs itself is left alone, so that it can be consumed as
// net.Buffers.WriteTo does: what is left are the caller's own slices not
// written, not merged ones.
func (s *Socket) mergeAdjacent(bufs net.Buffers) bool {
	for i := 1; i < len(bufs); i++ {
		if iovec.Continues(bufs[i-1], bufs[i]) {
			s.merged = compactAdjacent(append(s.merged[:0], bufs...))
			return true
		}
	}
	return false
}

// doneMerged finishes a write of n bytes of *bufs: with merged, from
// s.merged, which it empties (keeping no reference to the caller's memory),
// consuming *bufs by n; without, *bufs was written and consumed itself.
func (s *Socket) doneMerged(bufs *net.Buffers, merged bool, n int64) {
	if !merged {
		return
	}
	clear(s.merged[:cap(s.merged)])
	s.merged = s.merged[:0]
	consume(bufs, n)
}

// compactAdjacent merges, in place, each slice of bufs that continues the
// one before it in memory within its capacity (consecutive pages of one
// buffer, such as guest RAM), and returns the shorter list; the elements
// freed at its end are set to nil. The bytes and their order are
// unchanged; the kernel gets fewer, larger iovecs.
func compactAdjacent(bufs net.Buffers) net.Buffers {
	if len(bufs) < 2 {
		return bufs
	}
	j := 0
	for i := 1; i < len(bufs); i++ {
		b, next := bufs[j], bufs[i]
		if iovec.Continues(b, next) {
			bufs[j] = b[:len(b)+len(next)]
			continue
		}
		j++
		bufs[j] = next
	}
	clear(bufs[j+1:])
	return bufs[:j+1]
}

func writeBuffers(c net.Conn, bufs *net.Buffers) (int64, error) {
	if bw, ok := c.(interface {
		WriteBuffers(*net.Buffers) (int64, error)
	}); ok {
		return bw.WriteBuffers(bufs)
	}
	return bufs.WriteTo(c) // *net.TCPConn and *net.UnixConn: writev
}

// Shutdown implements [Channel] with shutdown(2): SHUT_RD, SHUT_WR or
// SHUT_RDWR.
func (s *Socket) Shutdown(how Direction) error {
	if !how.valid() {
		return &OpError{Op: "shutdown", Channel: s.name, Err: fmt.Errorf("invalid direction %d", int(how))}
	}
	var serr error
	err := s.rc.Control(func(fd uintptr) {
		switch how {
		case Read:
			serr = syscall.Shutdown(int(fd), syscall.SHUT_RD)
		case Write:
			serr = syscall.Shutdown(int(fd), syscall.SHUT_WR)
		default:
			serr = syscall.Shutdown(int(fd), syscall.SHUT_RDWR)
		}
	})
	if err == nil {
		err = serr
	}
	return opError("shutdown", s.name, err)
}

// Close closes the socket and unblocks pending calls, which return an error
// wrapping net.ErrClosed. Calls after the first return such an error too.
func (s *Socket) Close() error {
	first := false
	s.closeOnce.Do(func() {
		first = true
		s.closeErr = opError("close", s.name, s.conn.Close())
	})
	if !first {
		return errClosed("close", s.name)
	}
	return s.closeErr
}

// SetDeadline implements [Deadliner].
func (s *Socket) SetDeadline(t time.Time) error {
	return opError("set deadline", s.name, s.conn.SetDeadline(t))
}

// SetReadDeadline implements [Deadliner].
func (s *Socket) SetReadDeadline(t time.Time) error {
	return opError("set deadline", s.name, s.conn.SetReadDeadline(t))
}

// SetWriteDeadline implements [Deadliner].
func (s *Socket) SetWriteDeadline(t time.Time) error {
	return opError("set deadline", s.name, s.conn.SetWriteDeadline(t))
}

// SetNoDelay sets TCP_NODELAY (QEMU's qio_channel_set_delay(!noDelay)).
// Go enables it on new tcp connections. On other sockets it returns an
// error wrapping errors.ErrUnsupported.
func (s *Socket) SetNoDelay(noDelay bool) error {
	tc, ok := s.conn.(*net.TCPConn)
	if !ok {
		return s.unsupported("setsockopt", "TCP_NODELAY")
	}
	return opError("setsockopt", s.name, tc.SetNoDelay(noDelay))
}

// SetKeepAlive configures tcp keep-alive: cfg.Enable switches it on or
// off, and Idle, Interval and Count set TCP_KEEPIDLE, TCP_KEEPINTVL and
// TCP_KEEPCNT (zero means the system default, negative leaves the value
// unchanged), as net.TCPConn.SetKeepAliveConfig does. On other sockets it
// returns an error wrapping errors.ErrUnsupported.
func (s *Socket) SetKeepAlive(cfg net.KeepAliveConfig) error {
	tc, ok := s.conn.(*net.TCPConn)
	if !ok {
		return s.unsupported("setsockopt", "keep-alive")
	}
	return opError("setsockopt", s.name, tc.SetKeepAliveConfig(cfg))
}

func (s *Socket) unsupported(op, what string) error {
	return &OpError{Op: op, Channel: s.name, Err: fmt.Errorf("%s on a %s socket: %w", what, s.network, errUnsupported)}
}

var _ io.ReadWriteCloser = (*Socket)(nil)
