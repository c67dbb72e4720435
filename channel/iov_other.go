//go:build !linux

package channel

import (
	"io"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// iovecs writes one slice per write(2) outside Linux, where a portable
// writev is not at hand.
type iovecs struct{}

func (w *iovecs) writev(rc syscall.RawConn, bufs *net.Buffers) (int64, error) {
	var total int64
	for len(*bufs) > 0 {
		p := (*bufs)[0]
		if len(p) == 0 {
			consume(bufs, 0)
			continue
		}
		var n int
		var werr error
		err := rc.Write(func(fd uintptr) bool {
			n, werr = unix.Write(int(fd), p)
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
