package channel

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// zeroCopy is the MSG_ZEROCOPY state of a Socket. It is used only by the
// writer (WriteBuffersZeroCopy and Flush), so it needs no lock.
type zeroCopy struct {
	iov     iovecs
	tried   bool   // SO_ZEROCOPY was attempted
	enabled bool   // SO_ZEROCOPY is on
	err     error  // why SO_ZEROCOPY is off, once tried
	sent    uint32 // sendmsg calls that queued data with MSG_ZEROCOPY
	done    uint32 // completions read from the error queue
	copied  uint64 // completions for which the kernel copied after all
	total   uint64 // completions in all

	// One sendmsg, as a func made once, so that a send allocates nothing:
	// sendFn is send bound to this state, sendIov its input, sendN and
	// sendErrno its results.
	sendFn    func(fd uintptr) bool
	sendIov   []unix.Iovec
	sendN     uintptr
	sendErrno syscall.Errno
}

// send is the body of one sendmsg with MSG_ZEROCOPY of z.sendIov, for
// RawConn.Write; it reports done unless the socket would block.
func (z *zeroCopy) send(fd uintptr) bool {
	var msg unix.Msghdr
	msg.Iov = &z.sendIov[0]
	msg.SetIovlen(len(z.sendIov))
	z.sendN, _, z.sendErrno = unix.Syscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&msg)), unix.MSG_ZEROCOPY)
	return z.sendErrno != unix.EAGAIN
}

// WriteBuffersZeroCopy implements [ZeroCopyWriter] on tcp sockets on
// Linux: it enables SO_ZEROCOPY on first use and sends with MSG_ZEROCOPY,
// so the kernel transmits from the caller's pages; they must not change
// until Flush returns. If the kernel refuses SO_ZEROCOPY, or the socket is
// not tcp, it is WriteBuffers. On ENOBUFS (too many pages pinned) it
// flushes and retries once, then copies, as QEMU does.
func (s *Socket) WriteBuffersZeroCopy(caller *net.Buffers) (total int64, err error) {
	if !s.zeroCopyOn() {
		return s.WriteBuffers(caller)
	}
	retried := false
	defer s.zc.iov.clear()
	// Send from the merged list, if slices were merged, and consume the
	// caller's list by what was sent, as WriteBuffers does.
	bufs := caller
	merged := s.mergeAdjacent(*caller)
	if merged {
		s.wv = s.merged
		bufs = &s.wv
	}
	defer func() {
		if merged {
			s.wv = nil
			s.doneMerged(caller, merged, total)
		}
	}()
	for len(*bufs) > 0 {
		iov := s.zc.iov.load(*bufs)
		if len(iov) == 0 {
			consume(bufs, 0)
			break
		}
		if s.zc.sendFn == nil {
			s.zc.sendFn = s.zc.send
		}
		s.zc.sendIov = iov
		err := s.rc.Write(s.zc.sendFn)
		s.zc.sendIov = nil
		n, errno := s.zc.sendN, s.zc.sendErrno
		if err == nil && errno != 0 {
			err = errno
		}
		if err == unix.EINTR {
			continue
		}
		if err == unix.ENOBUFS {
			if !retried {
				retried = true
				if ferr := s.Flush(); ferr != nil {
					return total, ferr
				}
				continue
			}
			// The kernel will not pin more: copy this batch.
			work := *bufs
			s.wv = work
			m, err := writeBuffers(s.conn, &s.wv)
			work, s.wv = s.wv, nil
			*bufs = work
			if err != nil {
				err = opError("writev", s.name, err)
			}
			return total + m, err
		}
		if err != nil {
			return total, opError("sendmsg", s.name, err)
		}
		retried = false
		if n == 0 {
			return total, opError("sendmsg", s.name, unix.EIO)
		}
		s.zc.sent++
		total += int64(n)
		consume(bufs, int64(n))
	}
	return total, nil
}

func (s *Socket) zeroCopyOn() bool {
	if !s.zc.tried {
		s.zc.err = s.enableZeroCopy()
		s.zc.tried = true
		s.zc.enabled = s.zc.err == nil
	}
	return s.zc.enabled
}

func (s *Socket) enableZeroCopy() error {
	if s.network != "tcp" {
		return opError("setsockopt", s.name, fmt.Errorf("SO_ZEROCOPY: a %s socket sends by copying; MSG_ZEROCOPY needs tcp: %w", s.network, errors.ErrUnsupported))
	}
	var serr error
	err := s.rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ZEROCOPY, 1)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return opError("setsockopt", s.name, fmt.Errorf("SO_ZEROCOPY: the kernel refused: %w", err))
	}
	return nil
}

// EnableZeroCopy turns SO_ZEROCOPY on now and returns why it cannot be
// on: the socket is not tcp (an error wrapping errors.ErrUnsupported), or
// the kernel refused the option (older than Linux 4.14, or a policy). On
// success WriteBuffersZeroCopy sends with MSG_ZEROCOPY; without this call
// it tries on first use and silently writes by copying when it cannot.
// Later calls return the first call's result. Call it from the writing
// goroutine.
func (s *Socket) EnableZeroCopy() error {
	s.zeroCopyOn()
	return s.zc.err
}

// Flush implements [ZeroCopyWriter]: it reads the socket's error queue until
// the kernel has reported every MSG_ZEROCOPY send complete. It returns nil
// at once when nothing is outstanding.
func (s *Socket) Flush() error {
	if !s.zc.enabled || s.zc.done == s.zc.sent {
		return nil
	}
	var oob [128]byte
	var rerr error
	err := s.rc.Write(func(fd uintptr) bool {
		for s.zc.done != s.zc.sent {
			_, oobn, _, _, err := unix.Recvmsg(int(fd), nil, oob[:], unix.MSG_ERRQUEUE)
			if err == unix.EINTR {
				continue
			}
			if err == unix.EAGAIN {
				return false // wait: the queue wakes the poller with EPOLLERR
			}
			if err != nil {
				rerr = err
				return true
			}
			if err := s.zc.complete(oob[:oobn]); err != nil {
				rerr = err
				return true
			}
		}
		return true
	})
	if err == nil {
		err = rerr
	}
	return opError("flush", s.name, err)
}

// complete accounts one error-queue message.
func (z *zeroCopy) complete(oob []byte) error {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		ok := (m.Header.Level == unix.SOL_IP && m.Header.Type == unix.IP_RECVERR) ||
			(m.Header.Level == unix.SOL_IPV6 && m.Header.Type == unix.IPV6_RECVERR)
		if !ok || len(m.Data) < int(unsafe.Sizeof(unix.SockExtendedErr{})) {
			continue
		}
		ee := (*unix.SockExtendedErr)(unsafe.Pointer(&m.Data[0]))
		if ee.Origin != unix.SO_EE_ORIGIN_ZEROCOPY {
			if ee.Errno != 0 {
				return unix.Errno(ee.Errno)
			}
			continue
		}
		if ee.Errno != 0 {
			return unix.Errno(ee.Errno)
		}
		// ee_info..ee_data is an inclusive range of send ids.
		n := ee.Data - ee.Info + 1
		z.done += n
		z.total += uint64(n)
		if ee.Code&unix.SO_EE_CODE_ZEROCOPY_COPIED != 0 {
			z.copied += uint64(n)
		}
	}
	if int32(z.sent-z.done) < 0 {
		return errors.New("zero-copy completion for a send never made")
	}
	return nil
}

// ZeroCopyStats reports how many MSG_ZEROCOPY sends the kernel has
// completed since the socket was made and how many of those it copied
// after all (always, on loopback). Call it from the writing goroutine.
func (s *Socket) ZeroCopyStats() (completed, copied uint64) {
	return s.zc.total, s.zc.copied
}
