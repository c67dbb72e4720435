package migration

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/livemig/livemig/channel"
)

// The stall watchdog's default and its off switch.
const (
	// DefaultStallTimeout is the stall timeout of a Stream made by
	// NewStream, and of a Config whose StallTimeout is 0.
	DefaultStallTimeout = 2 * time.Minute

	// StallTimeoutOff, as Config.StallTimeout, turns the stall watchdog
	// off; so does any other negative value. (A zero Config field means
	// the default, as for every timeout of Config; Stream.SetStallTimeout
	// takes 0 for off.)
	StallTimeoutOff time.Duration = -1
)

// StallError is the sticky error of a Stream whose write made no progress
// for its stall timeout (see [Stream.SetStallTimeout]): the peer stopped
// reading, as a stopped (SIGSTOP) or hung process does, or the link died
// without a reset. It implements net.Error with Timeout true, and
// errors.Is(err, os.ErrDeadlineExceeded) holds.
type StallError struct {
	Op      string        // what was blocked: "write" or "zero-copy flush"
	Channel string        // the Name of the Stream's channel
	Stalled time.Duration // how long nothing moved; at least StallTimeout
	// StallTimeout is the Stream's stall timeout when it failed.
	StallTimeout time.Duration
}

// Error says what stalled, on which channel and for how long, as in
// "migration: write on tcp 127.0.0.1:41234->127.0.0.1:4444 stalled: no
// progress for 2m0.2s (stall timeout 2m0s)".
func (e *StallError) Error() string {
	return fmt.Sprintf("migration: %s on %s stalled: no progress for %v (stall timeout %v)",
		e.Op, e.Channel, e.Stalled.Round(time.Millisecond), e.StallTimeout)
}

// Timeout reports true: a stall is a timeout.
func (e *StallError) Timeout() bool { return true }

// Temporary reports true, as for every timeout.
//
// Deprecated: as net.Error's Temporary, it is ill-defined; use Timeout.
func (e *StallError) Temporary() bool { return true }

// Unwrap returns os.ErrDeadlineExceeded.
func (e *StallError) Unwrap() error { return os.ErrDeadlineExceeded }

// SetStallTimeout sets the Stream's progress watchdog: a write to the
// channel (a flush, or waiting for zero-copy completions) that moves no
// byte for d fails the Stream with a *StallError as its sticky error.
// d <= 0 turns the watchdog off. A Stream from NewStream starts with
// DefaultStallTimeout, one from a Task with its Config's StallTimeout; a
// ReturnPath Stream starts with the value of the Stream it came from. It
// may be called from any goroutine and applies from the next write.
//
// Progress is bytes moving, so a slow link never trips the watchdog. On a
// socket, a pipe or a command ([channel.Socket], [channel.FilePair],
// [channel.Command]) the Stream gives each write a write deadline of d/8
// and goes on with the rest when it passes: a byte moved if the kernel
// took any of the write, or (tcp and unix on Linux) if the socket's send
// queue (SIOCOUTQ) changed, as it does while the peer takes bytes and the
// writer sleeps. Other channels, TLS and DTLS among them, cannot go on
// after a write deadline: the Stream hands them at most 64 KiB per write
// call (four full TLS records, one system call of the TLS layer) and a
// byte moved when a call returns or the send queue of the socket beneath
// changed; a stalled call is ended by a past write deadline when the
// channel has deadlines ([channel.Deadliner]), otherwise by Shutdown. A
// stall is reported after at least d, and at most about d + d/4, without
// progress. While the watchdog is on, the Stream sets the channel's write
// deadline; do not set it yourself.
//
// Only writes are watched. A Stream that waits for nothing (between
// flushes, or during rate-limit waits) never stalls, and neither does a
// read: a reader cannot tell a stopped peer from one with nothing to send,
// such as a source paused before switchover. Bound reads with a deadline
// or an idle timeout of the application (migrate-dest has one) that calls
// Shutdown.
func (s *Stream) SetStallTimeout(d time.Duration) {
	s.stallTimeout.Store(int64(max(d, 0)))
}

// StallTimeout returns the Stream's stall timeout; 0 means off.
func (s *Stream) StallTimeout() time.Duration {
	return time.Duration(s.stallTimeout.Load())
}

// writeOp is a write call of the channel that the watchdog watches.
type writeOp uint8

const (
	opWrite         writeOp = iota // WriteBuffers
	opWriteZeroCopy                // WriteBuffersZeroCopy
	opZeroCopyFlush                // waiting for zero-copy completions
)

func (op writeOp) String() string {
	if op == opZeroCopyFlush {
		return "zero-copy flush"
	}
	return "write"
}

// stallChunk is the most a Stream hands a channel that cannot go on after
// a write deadline per write call while the watchdog is on: a multiple of
// the TLS record size, so TLS still sends full records.
const stallChunk = 64 << 10

// call makes one write call of the channel: op on bufs, which it
// consumes.
func (s *Stream) call(op writeOp, bufs *net.Buffers) (int64, error) {
	switch op {
	case opWrite:
		return s.ch.WriteBuffers(bufs)
	case opWriteZeroCopy:
		return s.zc.w.WriteBuffersZeroCopy(bufs)
	}
	return 0, s.zc.w.Flush()
}

// watchedWrite runs op on bufs (nil for opZeroCopyFlush) under the
// watchdog and returns the bytes written. A stall is set as the Stream's
// sticky error and returned.
func (s *Stream) watchedWrite(op writeOp, bufs *net.Buffers) (int64, error) {
	d := time.Duration(s.stallTimeout.Load())
	if d <= 0 {
		return s.call(op, bufs)
	}
	switch s.ch.(type) {
	case *channel.Socket, *channel.FilePair, *channel.Command:
		if n, ok, err := s.writeWindows(op, bufs, d); ok {
			return n, err
		}
	}
	return s.writeCalls(op, bufs)
}

// writeWindows runs op with write deadlines d/8 apart, going on after
// each while bytes move; ok is false, with nothing written, when the
// channel refuses a deadline (a descriptor in blocking mode).
func (s *Stream) writeWindows(op writeOp, bufs *net.Buffers, d time.Duration) (total int64, ok bool, err error) {
	dl := s.ch.(channel.Deadliner)
	since := time.Now() // when a byte last moved
	var queued int
	queuedOK := false
	var completed uint64
	zs, hasZS := s.ch.(interface {
		ZeroCopyStats() (completed, copied uint64)
	})
	if op == opZeroCopyFlush && hasZS {
		completed, _ = zs.ZeroCopyStats()
	}
	for {
		if err := dl.SetWriteDeadline(time.Now().Add(stallCheck(d))); err != nil {
			if total == 0 {
				return 0, false, nil
			}
			return total, true, err
		}
		n, err := s.call(op, bufs)
		total += n
		now := time.Now()
		if n > 0 {
			since = now
		}
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) || s.errSet.Load() {
			dl.SetWriteDeadline(time.Time{})
			return total, true, err
		}
		if op == opZeroCopyFlush && hasZS {
			if c, _ := zs.ZeroCopyStats(); c != completed {
				completed, since = c, now
			}
		}
		s.watch.mu.Lock()
		q, qOK := s.sendQueue()
		s.watch.mu.Unlock()
		if qOK {
			switch {
			case !queuedOK:
				// The first reading: bytes that left the queue
				// before it went unseen, so count from now.
				queued, queuedOK, since = q, true, now
			case q != queued:
				queued, since = q, now
			}
		}
		if stalled := now.Sub(since); stalled >= d {
			dl.SetWriteDeadline(time.Time{})
			err := &StallError{Op: op.String(), Channel: s.ch.Name(), Stalled: stalled, StallTimeout: d}
			s.SetErr(err)
			return total, true, s.Err()
		}
	}
}

// writeCalls runs op in calls of at most stallChunk bytes, each watched
// by the Stream's timer (see stallWatch).
func (s *Stream) writeCalls(op writeOp, bufs *net.Buffers) (int64, error) {
	if op == opZeroCopyFlush {
		watched := s.watchBegin(op)
		_, err := s.call(op, nil)
		if watched {
			s.watchEnd()
		}
		return 0, err
	}
	var total int64
	for len(*bufs) > 0 {
		// s.chunk, not a local: a list handed to the channel through
		// the interface would escape to the heap on every call.
		s.chunk = s.chunkArr[:0]
		size := 0
		for _, b := range *bufs {
			if size+len(b) > stallChunk {
				b = b[:stallChunk-size]
			}
			s.chunk = append(s.chunk, b)
			if size += len(b); size == stallChunk {
				break
			}
		}
		watched := s.watchBegin(op)
		n, err := s.call(op, &s.chunk)
		if watched {
			s.watchEnd()
		}
		clear(s.chunkArr[:])
		s.chunk = nil
		total += n
		consumeBuffers(bufs, n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// consumeBuffers drops the first n bytes of *v, as WriteBuffers consumes
// its list, setting the slices it drops to nil.
func consumeBuffers(v *net.Buffers, n int64) {
	for len(*v) > 0 {
		l := int64(len((*v)[0]))
		if l > n {
			(*v)[0] = (*v)[0][n:]
			return
		}
		n -= l
		(*v)[0] = nil
		*v = (*v)[1:]
	}
}

// stallWatch is the progress watchdog of a Stream whose channel cannot go
// on after a write deadline (writeCalls). While a write call is pending,
// a timer checks every stallCheck(timeout) whether bytes moved since the
// last check (the call returned, or the send queue changed) and fails the
// Stream once they have not for the timeout. Between calls the timer
// lapses.
type stallWatch struct {
	mu       sync.Mutex
	timer    *time.Timer
	armed    bool    // the timer is set
	op       writeOp // the pending call, if pending
	pending  bool
	since    time.Time // when progress was last seen
	rc       syscall.RawConn
	probe    probeState
	queued   int  // the send queue at the last check
	queuedOK bool // queued is a reading of this armed period
	stopped  bool // the Stream is closed
}

type probeState uint8

const (
	probeUnknown probeState = iota
	probeOK
	probeNone // the transport has no send queue to read
)

// stallCheck is how often a pending write is checked.
func stallCheck(timeout time.Duration) time.Duration {
	return max(timeout/8, time.Millisecond)
}

// watchBegin starts watching a write call op; it reports whether the
// watchdog is on, in which case watchEnd must follow the call. It is
// called from the writing goroutine.
func (s *Stream) watchBegin(op writeOp) bool {
	d := time.Duration(s.stallTimeout.Load())
	if d <= 0 {
		return false
	}
	w := &s.watch
	w.mu.Lock()
	w.op, w.pending = op, true
	w.since = time.Now() // the call before this one, if any, returned
	if !w.armed && !w.stopped {
		w.armed = true
		if w.timer == nil {
			w.timer = time.AfterFunc(stallCheck(d), s.watchCheck)
		} else {
			w.timer.Reset(stallCheck(d))
		}
	}
	w.mu.Unlock()
	return true
}

// watchEnd ends the watch of the write call that watchBegin started.
func (s *Stream) watchEnd() {
	w := &s.watch
	w.mu.Lock()
	w.pending = false
	w.mu.Unlock()
}

// watchStop stops the watchdog for good (Close).
func (s *Stream) watchStop() {
	w := &s.watch
	w.mu.Lock()
	w.stopped = true
	if w.timer != nil {
		w.timer.Stop()
	}
	w.armed = false
	w.mu.Unlock()
}

// watchCheck runs on the timer: it notes progress, fails the Stream when
// there was none for the timeout, and sets the timer again while a write
// is pending.
func (s *Stream) watchCheck() {
	d := time.Duration(s.stallTimeout.Load())
	w := &s.watch
	w.mu.Lock()
	if !w.pending || d <= 0 || w.stopped {
		w.armed = false
		w.queuedOK = false
		w.mu.Unlock()
		return
	}
	now := time.Now()
	if q, ok := s.sendQueue(); ok {
		switch {
		case !w.queuedOK:
			// The first reading: bytes that moved before it went
			// unseen, so the stall is counted from now.
			w.queued, w.queuedOK, w.since = q, true, now
		case q != w.queued:
			w.queued, w.since = q, now
		}
	}
	if stalled := now.Sub(w.since); stalled >= d {
		op := w.op
		w.armed = false
		w.queuedOK = false
		w.mu.Unlock()
		s.stall(&StallError{Op: op.String(), Channel: s.ch.Name(), Stalled: stalled, StallTimeout: d})
		return
	}
	w.timer.Reset(stallCheck(d))
	w.mu.Unlock()
}

// sendQueue reads the kernel send queue of the Stream's transport (the
// socket beneath TLS); ok is false where there is none to read. It is
// called with watch.mu held.
func (s *Stream) sendQueue() (n int, ok bool) {
	w := &s.watch
	if w.probe == probeUnknown {
		w.probe = probeNone
		if nc, isNC := s.raw.(channel.NetConner); isNC {
			if sc, isSC := nc.NetConn().(syscall.Conn); isSC {
				if rc, err := sc.SyscallConn(); err == nil {
					if _, ok := sendQueueLen(rc); ok {
						w.rc, w.probe = rc, probeOK
					}
				}
			}
		}
	}
	if w.probe != probeOK {
		return 0, false
	}
	return sendQueueLen(w.rc)
}

// aLongTimeAgo is a deadline that has passed, as in net/http.
var aLongTimeAgo = time.Unix(1, 0)

// stall makes err the Stream's sticky error and unblocks the pending
// write: with a past write deadline where the channel takes one, else
// with Shutdown. Nothing is done if the Stream already has an error.
func (s *Stream) stall(err *StallError) {
	s.errMu.Lock()
	first := s.err == nil
	if first {
		s.err = err
		s.errSet.Store(true)
	}
	s.errMu.Unlock()
	if !first {
		return
	}
	if d, ok := s.ch.(channel.Deadliner); ok && d.SetWriteDeadline(aLongTimeAgo) == nil {
		return
	}
	s.Shutdown()
}
