package migration

import (
	"net"

	"github.com/livemig/livemig/channel"
)

// Abort ends the Stream as a cut, never as a clean end, for a relay whose
// other side broke: its peer must not take what it received for a whole
// stream. Abort sets the sticky error to ErrStreamShutdown, as Shutdown
// does, so nothing queued is flushed, and closes the transport beneath any
// TLS or DTLS without close_notify. A tcp connection is reset (SO_LINGER
// 0): the peer's next read fails with ECONNRESET instead of returning the
// end of the stream, also when the peer accepts a TLS stream that ends
// without close_notify (Config.Raw, as QEMU's main channel does, and
// before QEMU 10.0 its multifd channels). unix and vsock sockets,
// commands, files and descriptors have no reset: their peer sees the end
// of its input and must tell a cut from the end by the stream's content
// (QEMU's loader fails on a stream that ends before its EOF section).
//
// Abort then closes the Stream, which unblocks pending reads and writes.
// It may be called from any goroutine, also while others read and write.
// Later calls, and Close, do nothing and return Abort's result. On a
// ReturnPath Stream it aborts the channel shared with the Stream it came
// from.
func (s *Stream) Abort() error {
	s.SetErr(ErrStreamShutdown)
	if nc, ok := s.raw.(channel.NetConner); ok {
		if tc, ok := nc.NetConn().(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
	}
	if s.raw != s.ch || !s.owner {
		// Beneath TLS: closing the socket first leaves no way for
		// close_notify to go out when Close closes the TLS channel.
		_ = s.raw.Close()
	}
	return s.Close()
}
