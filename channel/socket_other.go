//go:build !linux

package channel

import (
	"context"
	"fmt"
	"net"
	"os"
	"syscall"
)

// SetCork returns an error wrapping errors.ErrUnsupported: TCP_CORK is
// Linux only.
func (s *Socket) SetCork(cork bool) error {
	return s.unsupported("setsockopt", "TCP_CORK")
}

type zeroCopy struct{}

// WriteBuffersZeroCopy is WriteBuffers: MSG_ZEROCOPY is Linux only.
func (s *Socket) WriteBuffersZeroCopy(bufs *net.Buffers) (int64, error) {
	return s.WriteBuffers(bufs)
}

// EnableZeroCopy returns an error wrapping errors.ErrUnsupported:
// MSG_ZEROCOPY is Linux only.
func (s *Socket) EnableZeroCopy() error {
	return s.unsupported("setsockopt", "SO_ZEROCOPY")
}

// Flush returns nil: nothing is ever queued without a copy.
func (s *Socket) Flush() error { return nil }

// vsockConn is never built outside Linux.
type vsockConn struct{ net.Conn }

func (c *vsockConn) SyscallConn() (syscall.RawConn, error) { return nil, errUnsupported }

func dialVsock(ctx context.Context, address string) (net.Conn, error) {
	return nil, fmt.Errorf("vsock: %w", errUnsupported)
}

func listenVsock(ctx context.Context, address string) (net.Listener, error) {
	return nil, fmt.Errorf("vsock: %w", errUnsupported)
}

func fromVsockFile(f *os.File) (net.Conn, bool, error) { return nil, false, nil }

// ZeroCopyStats reports zero: zero-copy is Linux only.
func (s *Socket) ZeroCopyStats() (completed, copied uint64) { return 0, 0 }
