package migration

import (
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/internal/hello"
	"github.com/livemig/livemig/internal/iovec"
)

// Sizes of a Stream's buffers, as QEMU's IO_BUF_SIZE and MAX_IOV_SIZE.
const (
	BufferSize = 32 << 10 // bytes of the write buffer and of the read buffer
	MaxIOV     = 64       // slices queued before a Stream flushes
)

// Stream is the QEMUFile equivalent: a buffered, big-endian migration stream
// over a [channel.Channel].
//
// Writes are buffered in a 32 KiB buffer and an iovec list of at most 64
// slices: PutByte, PutBE16/32/64 and PutBuffer copy into the buffer,
// PutBufferNoCopy queues the caller's slice itself, and everything queued
// goes to the channel in one WriteBuffers (one writev) when the buffer or
// the list is full and on Flush. Reads are buffered in another 32 KiB buffer.
//
// Errors are sticky, as in bufio: "If an error occurs writing to a Writer,
// no more data will be accepted and all subsequent writes, and Flush, will
// return the error." A Stream keeps the first error of any operation, read
// or write; later puts do nothing, later gets return zero, and Err returns
// it. A clean end of the stream is io.EOF; an end inside a value is
// io.ErrUnexpectedEOF.
//
// Goroutines: the write methods (Put*, Write, Flush, SetRateLimit's
// pacing) must be called from one goroutine at a time, and the read methods
// (Get*, Peek, Read) from one goroutine at a time, which may be another.
// Err, SetErr, Stats, SetRateLimit, SetStallTimeout and Shutdown may be
// called from any goroutine; Shutdown unblocks pending reads, writes and
// rate-limit waits, which then fail with ErrStreamShutdown (it wraps
// net.ErrClosed). Close flushes, so it belongs to the writing goroutine;
// to abort a Stream from elsewhere, call Shutdown, then Close once the
// other goroutines are done.
//
// A progress watchdog fails a write that moves no byte for the Stream's
// stall timeout (2 minutes by default) with a *StallError; see
// SetStallTimeout. Reads are not watched.
//
// Unlike bufio there is no Reset: a Stream owns its channel for life.
//
// A Stream is normally used in one direction, as a QEMUFile is:
// the source writes the main stream and the destination reads it;
// ReturnPath gives a second Stream over the same channel for the other
// direction.
type Stream struct {
	ch    channel.Channel
	raw   channel.Channel // the transport under TLS or DTLS; ch without them
	owner bool            // Close closes ch
	peer  *hello.Hello    // the hello the peer sent; nil without one
	who   string          // the peer's identity; see PeerIdentity

	// write side
	wbuf    []byte
	wn      int // bytes used in wbuf
	iovArr  [MaxIOV][]byte
	iov     net.Buffers // iovArr[:n], handed to WriteBuffers
	lastBuf bool        // the last iov is the open region of wbuf
	pending int         // bytes queued in iov
	limit   rateLimiter
	zc      zeroCopyState // MSG_ZEROCOPY sending; see SetZeroCopy

	// read side
	rbuf       []byte
	rpos, rend int

	// shared
	errMu     sync.Mutex
	err       error
	errSet    atomic.Bool
	done      chan struct{} // closed by Shutdown and Close
	closeOnce sync.Once
	closeErr  error
	rp        *Stream

	stallTimeout atomic.Int64 // nanoseconds; 0 = off
	watch        stallWatch
	chunkArr     [MaxIOV][]byte // backs chunk
	chunk        net.Buffers    // writeCalls' piece of iov

	written, read, flushes atomic.Int64
}

// NewStream returns a Stream over ch, without hello, with the stall
// timeout DefaultStallTimeout. Closing the Stream closes ch.
func NewStream(ch channel.Channel) *Stream {
	s := &Stream{ch: ch, raw: ch, owner: true, done: make(chan struct{})}
	s.limit.done = s.done
	s.stallTimeout.Store(int64(DefaultStallTimeout))
	return s
}

// Channel returns the channel the Stream reads and writes.
func (s *Stream) Channel() channel.Channel { return s.ch }

// SessionID returns the session the peer's hello named: on a source, the
// session the destination placed the channel in; on a destination, the
// session the source announced. It is zero when the hello was skipped
// (Config.Raw, NewStream) or went one way only from this side (a source
// on exec or file).
func (s *Stream) SessionID() SessionID {
	if s.peer == nil {
		return SessionID{}
	}
	return s.peer.Session
}

// Err returns the first error the Stream met, or nil.
func (s *Stream) Err() error {
	if !s.errSet.Load() {
		return nil
	}
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

// SetErr records err as the Stream's error if it has none yet, as QEMU's
// qemu_file_set_error; a nil err does nothing.
func (s *Stream) SetErr(err error) {
	if err == nil {
		return
	}
	s.errMu.Lock()
	if s.err == nil {
		s.err = err
		s.errSet.Store(true)
	}
	s.errMu.Unlock()
}

// StreamStats are a Stream's counters.
type StreamStats struct {
	Written int64 // bytes handed to the channel
	Read    int64 // bytes received from the channel
	Flushes int64 // WriteBuffers calls
}

// Stats returns the Stream's counters; it may be called from any
// goroutine. What is queued but not yet written is Buffered, on the
// writing goroutine.
func (s *Stream) Stats() StreamStats {
	return StreamStats{Written: s.written.Load(), Read: s.read.Load(), Flushes: s.flushes.Load()}
}

// Buffered returns the number of bytes queued for writing: copied into the
// buffer or queued by PutBufferNoCopy.
func (s *Stream) Buffered() int { return s.pending }

// Available returns the free space of the write buffer.
func (s *Stream) Available() int {
	if s.wbuf == nil {
		return BufferSize
	}
	return len(s.wbuf) - s.wn
}

// PutByte queues one byte.
func (s *Stream) PutByte(b byte) {
	if s.wn < len(s.wbuf) && s.lastBuf && len(s.iov) < MaxIOV {
		s.wbuf[s.wn] = b
		s.wn++
		s.iov[len(s.iov)-1] = s.wbuf[s.wn-int(len(s.iov[len(s.iov)-1]))-1 : s.wn]
		s.pending++
		return
	}
	s.putSlow([]byte{b})
}

// PutBE16 queues v in big-endian order.
func (s *Stream) PutBE16(v uint16) {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	s.PutBuffer(b[:])
}

// PutBE32 queues v in big-endian order.
func (s *Stream) PutBE32(v uint32) {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	s.PutBuffer(b[:])
}

// PutBE64 queues v in big-endian order.
func (s *Stream) PutBE64(v uint64) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	s.PutBuffer(b[:])
}

// PutBuffer copies p into the write buffer, flushing as it fills.
func (s *Stream) PutBuffer(p []byte) {
	s.putSlow(p)
}

// PutBufferNoCopy queues p itself, without copying, such as a guest page.
// The caller must not modify p until the next Flush returns (or the next
// put that flushes, which Buffered going to 0 shows); the Stream does not
// retain p after that. With zero copy on (SetZeroCopy) the kernel reads p
// after the put that flushes it: p must stay unchanged until the next
// Flush or Close returns. Slices shorter than 512 bytes are copied
// instead. A slice that continues the one queued before it in memory (the
// next page of the same RAM) extends its iovec, as QEMU's add_to_iovec
// does; the Stream flushes at MaxIOV slices or 256 KiB queued, whichever
// comes first.
func (s *Stream) PutBufferNoCopy(p []byte) {
	if len(p) < 512 {
		s.putSlow(p)
		return
	}
	if s.errSet.Load() {
		return
	}
	s.ensureW()
	if len(s.iov) >= MaxIOV {
		if s.flush(); s.errSet.Load() {
			return
		}
	}
	if n := len(s.iov); n > 0 && !s.lastBuf && iovec.Continues(s.iov[n-1], p) {
		// p follows the slice queued last in memory (the next page of
		// the same RAM): one iovec, as QEMU's add_to_iovec merges.
		last := s.iov[n-1]
		s.iov[n-1] = last[:len(last)+len(p)]
	} else {
		s.iov = append(s.iov, p)
	}
	s.lastBuf = false
	s.pending += len(p)
	if len(s.iov) >= MaxIOV || s.pending >= maxPendingNoCopy {
		s.flush()
	}
}

// maxPendingNoCopy is the number of queued bytes at which PutBufferNoCopy
// flushes even when merged slices keep the iov list short: MaxIOV pages,
// as when no two pages are adjacent.
const maxPendingNoCopy = MaxIOV * 4096

// Write queues a copy of p, like PutBuffer, and returns len(p) and nil, or
// 0 and the sticky error. It makes a Stream an io.Writer.
func (s *Stream) Write(p []byte) (int, error) {
	s.putSlow(p)
	if err := s.Err(); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes everything queued to the channel with one WriteBuffers and
// returns the sticky error. After an error it writes nothing: what was
// queued is dropped. With zero copy on (SetZeroCopy), it also waits until
// the kernel has released every page sent since the last Flush.
func (s *Stream) Flush() error {
	if s.pending > 0 {
		s.flush()
	}
	s.releaseZeroCopy()
	return s.Err()
}

func (s *Stream) ensureW() {
	if s.wbuf == nil {
		s.wbuf = make([]byte, BufferSize)
		s.iov = s.iovArr[:0]
	}
}

func (s *Stream) putSlow(p []byte) {
	if s.errSet.Load() {
		return
	}
	s.ensureW()
	for len(p) > 0 {
		if s.wn == len(s.wbuf) || (!s.lastBuf && len(s.iov) >= MaxIOV) {
			if s.flush(); s.errSet.Load() {
				return
			}
		}
		n := copy(s.wbuf[s.wn:], p)
		if s.lastBuf {
			last := s.iov[len(s.iov)-1]
			s.iov[len(s.iov)-1] = s.wbuf[s.wn-len(last) : s.wn+n]
		} else {
			s.iov = append(s.iov, s.wbuf[s.wn:s.wn+n])
			s.lastBuf = true
		}
		s.wn += n
		s.pending += n
		p = p[n:]
		if len(s.iov) >= MaxIOV && s.wn == len(s.wbuf) {
			if s.flush(); s.errSet.Load() {
				return
			}
		}
	}
}

// flush writes the iov list, pacing with the rate limiter. After an error
// (which another goroutine may have set) it drops the list unwritten.
func (s *Stream) flush() {
	if s.pending == 0 {
		return
	}
	var err error
	if !s.errSet.Load() {
		err = s.limit.wait(s.pending)
	}
	switch {
	case s.errSet.Load():
		// Nothing more goes to the wire, as in bufio, even when the error
		// came from another goroutine during the rate-limit wait.
	case err != nil:
		s.SetErr(err)
	case s.zc.w != nil:
		s.flushZeroCopy()
	default:
		w, err := s.watchedWrite(opWrite, &s.iov)
		s.written.Add(w)
		s.flushes.Add(1)
		if err != nil {
			s.SetErr(s.closedErr(fmt.Errorf("migration: %w", err)))
		}
	}
	clear(s.iovArr[:])
	s.iov = s.iovArr[:0]
	s.wn = 0
	s.lastBuf = false
	s.pending = 0
}

// closedErr returns ErrStreamShutdown if the Stream was shut down, else err.
func (s *Stream) closedErr(err error) error {
	select {
	case <-s.done:
		return ErrStreamShutdown
	default:
		return err
	}
}

// Shutdown ends the Stream at once, as qemu_file_shutdown: it sets the
// sticky error to ErrStreamShutdown first (on the ReturnPath Stream too),
// so nothing read afterwards is taken for data, then shuts the transport
// down in both directions, beneath TLS, which unblocks pending reads and
// writes on both ends without waiting for them. It does not close the
// channel.
func (s *Stream) Shutdown() error {
	s.SetErr(ErrStreamShutdown)
	s.closeDone()
	s.errMu.Lock()
	rp := s.rp
	s.errMu.Unlock()
	if rp != nil {
		rp.SetErr(ErrStreamShutdown)
		rp.closeDone()
	}
	var err error
	if s.raw != s.ch {
		// A TLS writer blocked on a full socket holds the TLS write lock
		// that close_notify needs: shut the socket first.
		err = s.raw.Shutdown(channel.Both)
	}
	if e := s.ch.Shutdown(channel.Both); err == nil {
		err = e
	}
	if err != nil {
		return fmt.Errorf("migration: shutting down %s: %w", s.ch.Name(), err)
	}
	return nil
}

func (s *Stream) closeDone() {
	s.errMu.Lock()
	select {
	case <-s.done:
	default:
		close(s.done)
	}
	s.errMu.Unlock()
}

// Close flushes what is queued (unless the Stream has an error), then
// closes the channel, unblocking every pending operation. Close is
// idempotent; it returns the first error of the flush or of closing the
// channel, but not an earlier sticky error. Closing a ReturnPath Stream
// flushes it and leaves the channel to the Stream it came from.
func (s *Stream) Close() error {
	s.closeOnce.Do(func() {
		var err error
		if s.Err() == nil && s.pending > 0 {
			s.flush()
			err = s.Err()
		}
		if s.Err() == nil {
			// Zero copy: the caller may reuse its pages once Close returns.
			s.releaseZeroCopy()
			err = s.Err()
		}
		s.SetErr(fmt.Errorf("migration: stream closed: %w", net.ErrClosed))
		s.closeDone()
		s.watchStop()
		if s.owner {
			if cerr := s.ch.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("migration: closing %s: %w", s.ch.Name(), cerr)
			}
			s.errMu.Lock()
			rp := s.rp
			s.errMu.Unlock()
			if rp != nil {
				rp.SetErr(fmt.Errorf("migration: stream closed: %w", net.ErrClosed))
				rp.closeDone()
			}
		}
		s.closeErr = err
	})
	return s.closeErr
}

// ReturnPath returns a Stream over the same channel for the opposite
// direction, as qemu_file_get_return_path: on the source it reads what the
// destination writes to its own ReturnPath. Every call returns the same
// Stream, which has its own buffers, counters, error, rate limit and
// stall timeout (at first s's).
// Closing it does not close the channel; closing s does.
func (s *Stream) ReturnPath() *Stream {
	return s.returnPath(true)
}

// returnPathIfAny returns the return path Stream if ReturnPath made one.
func (s *Stream) returnPathIfAny() *Stream { return s.returnPath(false) }

func (s *Stream) returnPath(create bool) *Stream {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	if s.rp == nil && create {
		s.rp = &Stream{ch: s.ch, raw: s.raw, peer: s.peer, done: make(chan struct{})}
		s.rp.limit.done = s.rp.done
		s.rp.stallTimeout.Store(s.stallTimeout.Load())
	}
	return s.rp
}
