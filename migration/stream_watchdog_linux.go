package migration

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// sendQueueLen returns the bytes in the kernel send queue of the socket
// behind rc (SIOCOUTQ: not yet acknowledged over tcp, not yet read by the
// peer over a unix socket); ok is false for a descriptor without one.
func sendQueueLen(rc syscall.RawConn) (n int, ok bool) {
	var err error
	if cerr := rc.Control(func(fd uintptr) { n, err = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) }); cerr != nil || err != nil {
		return 0, false
	}
	return n, true
}
