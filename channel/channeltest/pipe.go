// Package channeltest helps test Channels: [Pipe] is an in-memory pair of
// connected channels, and [TestChannel] is the conformance suite every
// channel.Channel implementation (and every wrapper such as TLS) runs,
// modelled on golang.org/x/net/nettest.TestConn.
//
// # The suite
//
// TestChannel checks the contract in channel.Channel's doc: bytes arrive
// in order in both directions under concurrency, WriteBuffers with
// thousands of 4 KiB slices writes everything and consumes its argument,
// Shutdown(Write) gives the peer io.EOF while the other direction keeps
// working, Close unblocks a blocked Read and a blocked Write with an error
// wrapping net.ErrClosed, a second Close neither blocks nor panics, and
// every call after Close fails with such an error. A step that stays
// blocked fails the test, naming the step, instead of hanging it: a tenth
// of the test binary's -timeout before it expires, or at once under
// [TestChannelSynctest], which runs each check in a testing/synctest
// bubble and suits in-memory channels such as [Pipe]. No step has a time
// bound of its own, so a slow machine can make the suite take longer but
// not fail it. Close is checked on a Read and a Write seen to be blocked
// (their goroutine parked, or every goroutine of the bubble blocked), not
// after a sleep.
//
// # The pipe
//
// [Pipe] returns two ends joined by bounded in-memory buffers (64 KiB each
// way), so a writer blocks when its peer does not read, as with a socket.
package channeltest

import (
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"

	"github.com/livemig/livemig/channel"
)

// PipeCapacity is how many bytes each direction of a [Pipe] holds before
// Write blocks.
const PipeCapacity = 64 << 10

// Pipe returns two connected in-memory Channels: what one writes, the
// other reads. Each follows the channel.Channel contract exactly: one
// reader and one writer may run at once, Close unblocks both with an error
// wrapping net.ErrClosed, and a Close is seen by the peer as end of file
// (its reads) and a broken pipe (its writes, an error wrapping
// syscall.EPIPE).
func Pipe() (a, b *End) {
	ab, ba := newQueue(), newQueue()
	a = &End{rx: ba, tx: ab, name: "pipe a->b"}
	b = &End{rx: ab, tx: ba, name: "pipe b->a"}
	return a, b
}

// End is one end of a [Pipe]. It implements channel.Channel.
type End struct {
	rx, tx *queue
	name   string
	mu     sync.Mutex
	closed bool
}

var _ channel.Channel = (*End)(nil)

// queue is one direction of a Pipe.
type queue struct {
	mu        sync.Mutex
	cond      *sync.Cond
	buf       []byte
	wrClosed  bool // the writer shut down or closed: reads drain, then EOF
	rdClosed  bool // the reader is gone: writes fail with EPIPE
	rdAborted bool // the reading End was closed: reads fail with ErrClosed
	wrAborted bool // the writing End was closed: writes fail with ErrClosed
}

func newQueue() *queue {
	q := &queue{}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// Name returns "pipe a->b" or "pipe b->a".
func (e *End) Name() string { return e.name }

func (e *End) opErr(op string, err error) error {
	return &channel.OpError{Op: op, Channel: e.name, Err: err}
}

// Read implements channel.Channel.
func (e *End) Read(p []byte) (int, error) {
	q := e.rx
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		switch {
		case q.rdAborted:
			return 0, e.opErr("read", net.ErrClosed)
		case len(q.buf) > 0:
			if len(p) == 0 {
				return 0, nil
			}
			n := copy(p, q.buf)
			q.buf = q.buf[n:]
			if len(q.buf) == 0 {
				q.buf = nil
			}
			q.cond.Broadcast()
			return n, nil
		case q.wrClosed || q.rdClosed:
			return 0, io.EOF
		case len(p) == 0:
			return 0, nil
		}
		q.cond.Wait()
	}
}

// Write implements channel.Channel.
func (e *End) Write(p []byte) (int, error) {
	q := e.tx
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for {
		switch {
		case q.wrAborted:
			return n, e.opErr("write", net.ErrClosed)
		case q.wrClosed:
			return n, e.opErr("write", syscall.EPIPE)
		case q.rdClosed:
			return n, e.opErr("write", syscall.EPIPE)
		case n == len(p):
			return n, nil
		case len(q.buf) < PipeCapacity:
			m := min(len(p)-n, PipeCapacity-len(q.buf))
			q.buf = append(q.buf, p[n:n+m]...)
			n += m
			q.cond.Broadcast()
			continue
		}
		q.cond.Wait()
	}
}

// WriteBuffers implements channel.Channel, copying each slice.
func (e *End) WriteBuffers(bufs *net.Buffers) (int64, error) {
	var total int64
	for len(*bufs) > 0 {
		n, err := e.Write((*bufs)[0])
		total += int64(n)
		if err != nil {
			(*bufs)[0] = (*bufs)[0][n:]
			return total, err
		}
		(*bufs)[0] = nil
		*bufs = (*bufs)[1:]
	}
	return total, nil
}

// Shutdown implements channel.Channel.
func (e *End) Shutdown(how channel.Direction) error {
	if how < channel.Read || how > channel.Both {
		return e.opErr("shutdown", fmt.Errorf("invalid direction %d", int(how)))
	}
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return e.opErr("shutdown", net.ErrClosed)
	}
	if how&channel.Write != 0 {
		e.tx.mu.Lock()
		e.tx.wrClosed = true
		e.tx.cond.Broadcast()
		e.tx.mu.Unlock()
	}
	if how&channel.Read != 0 {
		e.rx.mu.Lock()
		e.rx.rdClosed = true
		e.rx.buf = nil
		e.rx.cond.Broadcast()
		e.rx.mu.Unlock()
	}
	return nil
}

// Close implements channel.Channel. Calls after the first return an error
// wrapping net.ErrClosed.
func (e *End) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return e.opErr("close", net.ErrClosed)
	}
	e.closed = true
	e.mu.Unlock()
	e.tx.mu.Lock()
	e.tx.wrClosed, e.tx.wrAborted = true, true
	e.tx.cond.Broadcast()
	e.tx.mu.Unlock()
	e.rx.mu.Lock()
	e.rx.rdClosed, e.rx.rdAborted = true, true
	e.rx.buf = nil
	e.rx.cond.Broadcast()
	e.rx.mu.Unlock()
	return nil
}
