package channel

import "golang.org/x/sys/unix"

// SetCork sets TCP_CORK (QEMU's qio_channel_set_cork): while corked the
// kernel sends only full segments, so a burst of small writes leaves as few
// packets; uncorking sends what is pending. Linux only; on other sockets it
// returns an error wrapping errors.ErrUnsupported.
func (s *Socket) SetCork(cork bool) error {
	if s.network != "tcp" {
		return s.unsupported("setsockopt", "TCP_CORK")
	}
	v := 0
	if cork {
		v = 1
	}
	var serr error
	err := s.rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_CORK, v)
	})
	if err == nil {
		err = serr
	}
	return opError("setsockopt", s.name, err)
}
