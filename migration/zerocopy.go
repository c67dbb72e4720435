package migration

import (
	"errors"
	"fmt"

	"github.com/livemig/livemig/channel"
)

// zeroCopyHeld is how many write buffers a zero-copy Stream hands to the
// kernel before it waits for their release: the copied bytes of a batch
// (PutByte, PutBE32, PutBuffer) live in the write buffer, which the kernel
// may still be reading after the batch's sendmsg returns.
const zeroCopyHeld = 8

// zeroCopyState is a Stream's MSG_ZEROCOPY state, used by the writing
// goroutine only.
type zeroCopyState struct {
	w        channel.ZeroCopyWriter // nil when zero copy is off
	unflushd bool                   // sends not yet released by w.Flush
	held     [][]byte               // write buffers the kernel may still read
	free     [][]byte               // write buffers released, to reuse
}

// zeroCopyEnabler is implemented by channels that can say up front why
// MSG_ZEROCOPY is unavailable ([channel.Socket]).
type zeroCopyEnabler interface {
	EnableZeroCopy() error
}

// SetZeroCopy turns zero-copy sending on or off, as QEMU's zero-copy-send
// migration parameter: with it on, every batch is sent with MSG_ZEROCOPY
// ([channel.ZeroCopyWriter]), so the kernel transmits the pages queued by
// PutBufferNoCopy from the caller's memory instead of copying them into
// the socket buffer.
//
// The price is the rule QEMU states for zero-copy-send: a page queued by
// PutBufferNoCopy must stay unchanged until the next Flush (or Close)
// returns, not merely until the batch is written, since the kernel reads
// it until the peer has acknowledged it. Flush and Close wait for that
// release. Bytes copied into the Stream's write buffer (PutByte, PutBE*,
// PutBuffer) are safe: the Stream keeps up to 8 write buffers in flight
// and waits for the kernel before reusing them.
//
// SetZeroCopy(true) fails, leaving zero copy off, when the channel cannot
// send without copying: a channel that is not a [channel.ZeroCopyWriter]
// (TLS and DTLS encrypt into buffers of their own; files and commands),
// a socket that is not tcp, or a kernel that refuses SO_ZEROCOPY. On
// loopback the kernel accepts MSG_ZEROCOPY but copies anyway; the
// channel's ZeroCopyStats tell. SetZeroCopy(false) flushes first. It must
// be called from the writing goroutine; it returns the sticky error if
// the Stream has one.
func (s *Stream) SetZeroCopy(on bool) error {
	if err := s.Err(); err != nil {
		return err
	}
	if !on {
		if s.zc.w == nil {
			return nil
		}
		err := s.Flush()
		s.zc = zeroCopyState{}
		return err
	}
	if s.zc.w != nil {
		return nil
	}
	zw, ok := s.ch.(channel.ZeroCopyWriter)
	if !ok {
		return fmt.Errorf("migration: zero copy on %s: the channel cannot send without copying (%T is not a channel.ZeroCopyWriter; TLS and DTLS encrypt into their own buffers): %w",
			s.ch.Name(), s.ch, errors.ErrUnsupported)
	}
	if en, ok := s.ch.(zeroCopyEnabler); ok {
		if err := en.EnableZeroCopy(); err != nil {
			return fmt.Errorf("migration: zero copy on %s: %w", s.ch.Name(), err)
		}
	}
	s.zc.w = zw
	return nil
}

// ZeroCopy reports whether SetZeroCopy turned zero copy on.
func (s *Stream) ZeroCopy() bool { return s.zc.w != nil }

// flushZeroCopy writes the iov list with MSG_ZEROCOPY. If the batch holds
// bytes of the write buffer, that buffer stays with the kernel and the
// Stream continues with another one, waiting for the kernel to release
// them all once zeroCopyHeld are in flight.
func (s *Stream) flushZeroCopy() {
	w, err := s.watchedWrite(opWriteZeroCopy, &s.iov)
	s.written.Add(w)
	s.flushes.Add(1)
	s.zc.unflushd = true
	if err != nil {
		s.SetErr(s.closedErr(fmt.Errorf("migration: %w", err)))
		return
	}
	if s.wn == 0 {
		return
	}
	s.zc.held = append(s.zc.held, s.wbuf)
	if len(s.zc.held) >= zeroCopyHeld {
		if s.releaseZeroCopy(); s.errSet.Load() {
			return
		}
	}
	if n := len(s.zc.free); n > 0 {
		s.wbuf = s.zc.free[n-1]
		s.zc.free[n-1] = nil
		s.zc.free = s.zc.free[:n-1]
	} else {
		s.wbuf = make([]byte, BufferSize)
	}
}

// releaseZeroCopy waits until the kernel has released every zero-copy
// send, then recycles the write buffers it held. It sets the sticky error
// when the wait fails.
func (s *Stream) releaseZeroCopy() {
	if s.zc.w == nil || !s.zc.unflushd {
		return
	}
	if _, err := s.watchedWrite(opZeroCopyFlush, nil); err != nil {
		s.SetErr(s.closedErr(fmt.Errorf("migration: waiting for zero-copy sends: %w", err)))
		return
	}
	s.zc.unflushd = false
	s.zc.free = append(s.zc.free, s.zc.held...)
	clear(s.zc.held)
	s.zc.held = s.zc.held[:0]
}
