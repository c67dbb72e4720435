package proxy

import (
	"net"

	"golang.org/x/sys/unix"

	"github.com/livemig/livemig/channel"
)

// peerSent returns a function that reports whether the peer of ch has
// sent any bytes yet, read by the proxy or not: the kernel's count of
// bytes received on a tcp connection (tcpi_bytes_received of TCP_INFO),
// which needs no read and so does not disturb the handshake reading the
// same socket. For other channels, and when getsockopt fails, it reports
// true: accept order then holds strictly. (Kernels before Linux 4.1 have
// no such count and leave it 0: there every connection still in its
// handshake loses its place, and connections go on in the order they
// became ready.)
func peerSent(ch channel.Channel) func() bool {
	nc, ok := ch.(channel.NetConner)
	if !ok {
		return alwaysSent
	}
	tc, ok := nc.NetConn().(*net.TCPConn)
	if !ok {
		return alwaysSent
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return alwaysSent
	}
	return func() bool {
		sent := true
		err := rc.Control(func(fd uintptr) {
			if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
				sent = info.Bytes_received > 0
			}
		})
		return sent || err != nil
	}
}

func alwaysSent() bool { return true }
