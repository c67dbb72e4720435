package migration

import (
	"fmt"
	"net"
	"sync"
)

// SourceSession is the source's end of a multi-channel migration: an
// ordered byte stream that it cuts into frames of up to 256 KiB and
// stripes across a main channel and Channels-1 multifd channels, each
// with its own TLS state and its own goroutine that encrypts and writes.
// [DialSession] makes one; the destination receives the bytes, in order,
// from its [DestinationSession].
//
// Its write methods mean what the Stream's of the same name mean: Write
// copies, PutBufferNoCopy queues the caller's memory, errors are sticky
// (Err), and Flush waits until everything queued is on the wire.
//
// # Pages
//
// A slice given to PutBufferNoCopy is never cut inside a page: the session
// cuts it only at multiples of Config.PageSize (default 4096) from its
// start, and a slice of at most one page, or one that fits the rest of a
// frame, travels whole in one frame. So the destination reads such a page
// with DestinationSession.Next (or within one ReadBuffer result) without a
// copy and without stitching. Bytes given to Write fill frames to the
// brim and may be cut anywhere.
//
// # Return path
//
// ReturnPath is the reverse direction of the main channel: what the
// destination writes to its DestinationSession.ReturnPath, such as page
// requests and acknowledgements, as QEMU's return path carries them. It
// stays open after CloseWrite, until Close.
//
// Write, PutBufferNoCopy, Flush, CloseWrite and Close must be called from
// one goroutine, and ReturnPath's reads from one goroutine, which may be
// another; ID, Channels, Err, Stats, RateLimit, SetRateLimit and Shutdown may be
// called from any goroutine.
type SourceSession struct {
	s        session
	pageSize int

	// The frame being filled is cur (header room, then the bytes Write
	// copied) and parts (its payload in order: slices of cur and the
	// caller's slices given to PutBufferNoCopy); curN is the payload's
	// length, tailCopied whether the last part ends cur.
	cur        []byte
	parts      net.Buffers
	curN       int
	tailCopied bool
	freeParts  chan net.Buffers
	seq        uint64
	ins        []chan sourceFrame
	writes     sync.WaitGroup // frames handed to a channel and not yet written

	endOnce   sync.Once
	endErr    error
	closeOnce sync.Once
	closeErr  error
}

type sourceFrame struct {
	seq   uint64
	buf   []byte      // header room and the copied bytes
	parts net.Buffers // the payload, in order
	n     int         // the payload's length
	end   bool
}

// newSourceSession starts a goroutine per channel of streams.
func newSourceSession(id SessionID, streams []*Stream, pageSize int) *SourceSession {
	ss := &SourceSession{pageSize: pageSize}
	ss.s.init(id, streams)
	ss.freeParts = make(chan net.Buffers, cap(ss.s.free))
	for _, st := range streams {
		in := make(chan sourceFrame, 1)
		ss.ins = append(ss.ins, in)
		ss.s.wg.Add(1)
		go ss.writeLane(st, in)
	}
	return ss
}

// ID returns the session's ID.
func (ss *SourceSession) ID() SessionID { return ss.s.id }

// Channels returns the number of channels of the session.
func (ss *SourceSession) Channels() int { return len(ss.s.streams) }

// Err returns the session's first error, or nil.
func (ss *SourceSession) Err() error { return ss.s.firstErr() }

// Stats sums the statistics of the session's channels in the stream's
// direction, frame headers included; the return path has its own (see
// Stream.Stats).
func (ss *SourceSession) Stats() StreamStats { return ss.s.stats() }

// ReturnPath returns the Stream that reads what the destination writes to
// its ReturnPath: the reverse direction of the main channel.
func (ss *SourceSession) ReturnPath() *Stream { return ss.s.returnPath() }

// SetRateLimit limits the session's total rate on the wire, in bytes per
// second, by giving each of its N channels a limit of bytesPerSecond/N;
// 0 removes the limit. DialSession applies Config.RateLimit this way.
func (ss *SourceSession) SetRateLimit(bytesPerSecond int64) {
	per := bytesPerSecond / int64(len(ss.s.streams))
	if bytesPerSecond > 0 && per == 0 {
		per = 1
	}
	for _, st := range ss.s.streams {
		st.SetRateLimit(per)
	}
}

// RateLimit returns the session's total rate limit in bytes per second:
// the sum of its channels' limits, 0 when unlimited.
func (ss *SourceSession) RateLimit() int64 {
	var t int64
	for _, st := range ss.s.streams {
		t += st.RateLimit()
	}
	return t
}

// Shutdown ends the session at once: every channel is shut down, and
// pending and later calls of Write, Flush and Close fail with
// ErrStreamShutdown, as Stream.Shutdown does. It returns the first error
// of shutting a channel down. Close must still be called.
func (ss *SourceSession) Shutdown() error { return ss.s.shutdown() }

// Write copies p into stripe frames and hands full frames to the
// channels. It returns len(p) and nil, or the number of bytes it took
// before the session failed and the session's first error.
//
// A frame is built in one buffer of stripeSize bytes, header first, so a
// full frame carries stripeSize-stripeHeaderSize bytes and leaves as one
// slice: over TLS, 16 whole records encrypted straight from the buffer,
// with no copy and no short record.
func (ss *SourceSession) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if !ss.startFrame() {
			return n - len(p), ss.Err()
		}
		c := min(len(p), stripePayload-ss.curN)
		ss.copyIn(p[:c])
		p = p[c:]
	}
	return n, ss.Err()
}

// copyIn copies p, which fits the frame being filled, into it.
func (ss *SourceSession) copyIn(p []byte) {
	start := len(ss.cur)
	ss.cur = append(ss.cur, p...)
	if ss.tailCopied {
		last := ss.parts[len(ss.parts)-1]
		ss.parts[len(ss.parts)-1] = last[:len(last)+len(p)]
	} else {
		ss.parts = append(ss.parts, ss.cur[start:])
		ss.tailCopied = true
	}
	ss.add(len(p))
}

// PutBufferNoCopy queues p without copying it, as Stream.PutBufferNoCopy
// does for one channel: a channel's goroutine writes p straight from the
// caller's memory (over TLS, encrypts it from there), so a guest page
// costs no copy on the source. The caller must not modify p until the
// next Flush (or CloseWrite, or Close) returns, or must accept, as QEMU
// does for the guest pages its dirty log sends again, that p's channel
// sends whatever p holds when it writes it. Pieces shorter than 512 bytes
// are copied. The type's documentation says where p may be cut; errors
// are sticky (Err).
func (ss *SourceSession) PutBufferNoCopy(p []byte) {
	for len(p) > 0 {
		if !ss.startFrame() {
			return
		}
		room := stripePayload - ss.curN
		c := len(p)
		if c > room {
			// Cut at a page boundary of p; a frame that has no room
			// for one more page leaves as it is.
			if c = room / ss.pageSize * ss.pageSize; c == 0 {
				ss.dispatchCur()
				continue
			}
		}
		if c < 512 {
			ss.copyIn(p[:c])
		} else {
			ss.parts = append(ss.parts, p[:c])
			ss.tailCopied = false
			ss.add(c)
		}
		p = p[c:]
	}
}

// startFrame makes sure a frame is being filled; it reports false when
// the session has failed or ended.
func (ss *SourceSession) startFrame() bool {
	if ss.Err() != nil {
		return false
	}
	if ss.cur != nil {
		return true
	}
	b := ss.s.getBuf()
	if b == nil {
		return false
	}
	ss.cur = b[:stripeHeaderSize] // room for the frame header
	select {
	case ss.parts = <-ss.freeParts:
	default:
		ss.parts = make(net.Buffers, 0, 2*stripeSize/4096)
	}
	return true
}

// add counts c payload bytes into the frame and hands it to its channel
// when it is full.
func (ss *SourceSession) add(c int) {
	if ss.curN += c; ss.curN == stripePayload {
		ss.dispatchCur()
	}
}

// dispatchCur hands the frame being filled to its channel.
func (ss *SourceSession) dispatchCur() {
	ss.dispatch(sourceFrame{buf: ss.cur, parts: ss.parts, n: ss.curN})
	ss.cur, ss.parts, ss.curN, ss.tailCopied = nil, nil, 0, false
}

func (ss *SourceSession) dispatch(f sourceFrame) {
	f.seq = ss.seq
	ss.seq++
	ss.writes.Add(1)
	select {
	case ss.ins[f.seq%uint64(len(ss.ins))] <- f:
	case <-ss.s.done:
		ss.recycle(f)
		ss.writes.Done()
	}
}

// recycle gives a frame's buffers back and drops its references to the
// caller's memory.
func (ss *SourceSession) recycle(f sourceFrame) {
	if f.buf != nil {
		ss.s.putBuf(f.buf)
	}
	if f.parts != nil {
		clear(f.parts)
		ss.freeParts <- f.parts[:0]
	}
}

// Flush sends the partial frame and waits until every channel has written
// its frames. It returns the session's first error.
func (ss *SourceSession) Flush() error {
	if ss.curN > 0 && ss.Err() == nil {
		ss.dispatchCur()
	}
	ss.writes.Wait()
	return ss.Err()
}

func (ss *SourceSession) writeLane(st *Stream, in chan sourceFrame) {
	defer ss.s.wg.Done()
	for f := range in {
		if ss.Err() == nil {
			writeFrame(st, f)
			if err := st.Flush(); err != nil {
				ss.s.fail(&channelError{ss.s.id, f.seq % uint64(len(ss.ins)), err})
			}
		}
		ss.recycle(f)
		ss.writes.Done()
	}
}

// writeFrame queues frame f on st.
func writeFrame(st *Stream, f sourceFrame) {
	if f.end {
		var hdr [stripeHeaderSize]byte
		putFrameHeader(hdr[:], frameEnd, 0, f.seq)
		st.PutBuffer(hdr[:])
		return
	}
	putFrameHeader(f.buf, frameData, f.n, f.seq)
	parts := f.parts
	if len(f.buf) > stripeHeaderSize && &parts[0][0] == &f.buf[stripeHeaderSize] {
		// The header and the copied bytes after it leave as one slice.
		st.PutBufferNoCopy(f.buf[:stripeHeaderSize+len(parts[0])])
		parts = parts[1:]
	} else {
		st.PutBuffer(f.buf[:stripeHeaderSize])
	}
	for _, p := range parts {
		st.PutBufferNoCopy(p)
	}
}

// CloseWrite ends the stream: it flushes and sends the end frame on every
// channel, after which the destination's Read returns io.EOF. The
// channels stay open, so the return path can still be read (a final
// acknowledgement, say) until Close; Err then returns an error wrapping
// net.ErrClosed, and later writes fail with it. Like Flush it waits while the
// destination does not read; Shutdown from another goroutine ends that
// wait. Later calls return the first call's result.
func (ss *SourceSession) CloseWrite() error {
	ss.endOnce.Do(func() {
		err := ss.Flush()
		if err == nil {
			for range ss.ins {
				ss.dispatch(sourceFrame{end: true})
			}
			err = ss.Flush()
		}
		for _, in := range ss.ins {
			close(in)
		}
		ss.s.wg.Wait()
		ss.endErr = err
		// Later writes fail; the return path is another Stream and goes on.
		ss.s.setErr(fmt.Errorf("migration: session %s: write after CloseWrite: %w", ss.s.id, net.ErrClosed))
	})
	return ss.endErr
}

// Close ends the stream as CloseWrite does, unless that was done, and
// closes every channel, returning the first error. Close is idempotent.
func (ss *SourceSession) Close() error {
	ss.closeOnce.Do(func() {
		err := ss.CloseWrite()
		for _, st := range ss.s.streams {
			if cerr := st.Close(); err == nil {
				err = cerr
			}
		}
		ss.closeErr = err
		ss.s.setErr(fmt.Errorf("migration: session closed: %w", net.ErrClosed))
		ss.s.end()
	})
	return ss.closeErr
}
