//go:build !linux

package channel

import (
	"io"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// iovecs writes with unix.Writev outside Linux.
type iovecs struct{}

func (w *iovecs) writev(rc syscall.RawConn, bufs *net.Buffers) (int64, error) {
	var total int64
	for len(*bufs) > 0 {
		iov := *bufs
		if len(iov) > maxIovecs {
			iov = iov[:maxIovecs]
		}
		var n int
		var werr error
		err := rc.Write(func(fd uintptr) bool {
			n, werr = unix.Writev(int(fd), iov)
			return werr != unix.EAGAIN
		})
		if err == nil {
			err = werr
		}
		if n < 0 {
			n = 0
		}
		if err == unix.EINTR {
			continue
		}
		if n > 0 {
			total += int64(n)
			consume(bufs, int64(n))
		}
		if err != nil {
			return total, err
		}
		if n == 0 {
			return total, io.ErrShortWrite
		}
	}
	return total, nil
}
