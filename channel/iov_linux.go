package channel

import (
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// iovecs is a reusable iovec array for writev(2) from a net.Buffers, so a
// vectored write allocates nothing once the array has grown. It is used by
// one writer at a time.
type iovecs struct {
	v []unix.Iovec
}

// load fills the array from bufs (at most maxIovecs non-empty slices) and
// returns it.
func (w *iovecs) load(bufs net.Buffers) []unix.Iovec {
	w.v = w.v[:0]
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		if len(w.v) == maxIovecs {
			break
		}
		var iov unix.Iovec
		iov.Base = &b[0]
		iov.SetLen(len(b))
		w.v = append(w.v, iov)
	}
	return w.v
}

// clear drops the references to the caller's memory.
func (w *iovecs) clear() {
	clear(w.v[:cap(w.v)])
	w.v = w.v[:0]
}

// writev writes all of *bufs to the descriptor behind rc, waiting in the
// runtime poller when it would block, and consumes *bufs.
func (w *iovecs) writev(rc syscall.RawConn, bufs *net.Buffers) (int64, error) {
	defer w.clear()
	var total int64
	for len(*bufs) > 0 {
		iov := w.load(*bufs)
		if len(iov) == 0 {
			consume(bufs, 0)
			*bufs = (*bufs)[len(*bufs):]
			break
		}
		var n uintptr
		var errno syscall.Errno
		err := rc.Write(func(fd uintptr) bool {
			n, _, errno = unix.Syscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
			return errno != unix.EAGAIN
		})
		if err == nil && errno != 0 {
			err = errno
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return total, err
		}
		if n == 0 {
			return total, unix.EIO
		}
		total += int64(n)
		consume(bufs, int64(n))
	}
	return total, nil
}
