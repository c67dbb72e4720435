package migration

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// DestinationSession is the destination's end of a multi-channel
// migration: it reads the frames the source's [SourceSession] striped
// across its channels, a goroutine per channel reading and decrypting
// ahead, and hands out the bytes in the order the source wrote them.
// [Server.AcceptSession] makes one.
//
// Read copies, as Stream.Read does. ReadBuffer and Next lend the session's
// own memory instead: a page the source gave PutBufferNoCopy comes out of
// Next whole, without a copy (see SourceSession on pages).
//
// ReturnPath writes to the source, on the reverse direction of the main
// channel.
//
// Read, ReadBuffer and Next must be called from one goroutine, and
// ReturnPath's writes from one goroutine, which may be another; ID,
// Channels, Err, Stats, PeerIdentity and Shutdown may be called from any
// goroutine.
type DestinationSession struct {
	s         session
	outs      []chan destFrame
	startOnce sync.Once

	cur     destFrame // the frame being read
	off     int       // how much of cur.buf has been read
	next    uint64    // the sequence number of the next frame
	scratch []byte    // Next's copy of bytes that span frames

	closeOnce sync.Once
	closeErr  error
}

type destFrame struct {
	buf []byte // the payload
	end bool
}

// newDestinationSession makes the destination's end over streams. Its
// channels start reading with start, when the session is handed to the
// user, so that a session nobody accepted yet holds no stripe buffer and
// no read-ahead goroutine.
func newDestinationSession(id SessionID, streams []*Stream) *DestinationSession {
	ds := &DestinationSession{}
	ds.s.init(id, streams)
	return ds
}

// start starts a goroutine per channel that reads frames ahead. It does
// nothing after Close or the second time.
func (ds *DestinationSession) start() {
	ds.startOnce.Do(func() {
		if ds.Err() != nil {
			return
		}
		n := uint64(len(ds.s.streams))
		for i, st := range ds.s.streams {
			out := make(chan destFrame, 1)
			ds.outs = append(ds.outs, out)
			ds.s.wg.Add(1)
			go ds.readLane(st, uint64(i), n, out)
		}
	})
}

// ID returns the session's ID.
func (ds *DestinationSession) ID() SessionID { return ds.s.id }

// Channels returns the number of channels of the session.
func (ds *DestinationSession) Channels() int { return len(ds.s.streams) }

// Err returns the session's first error, or nil. At the end of the
// stream it is io.EOF.
func (ds *DestinationSession) Err() error { return ds.s.firstErr() }

// Stats sums the statistics of the session's channels in the stream's
// direction, frame headers included; the return path has its own (see
// Stream.Stats).
func (ds *DestinationSession) Stats() StreamStats { return ds.s.stats() }

// PeerIdentity returns the identity of the source, as
// Stream.PeerIdentity does; every channel of a session has the same.
func (ds *DestinationSession) PeerIdentity() string { return ds.s.who }

// ReturnPath returns the Stream that writes to the source's ReturnPath:
// the reverse direction of the main channel.
func (ds *DestinationSession) ReturnPath() *Stream { return ds.s.returnPath() }

// Shutdown ends the session at once: every channel is shut down, and
// pending and later calls of Read, ReadBuffer and Next fail with
// ErrStreamShutdown, as Stream.Shutdown does. It returns the first error
// of shutting a channel down. Close must still be called.
func (ds *DestinationSession) Shutdown() error { return ds.s.shutdown() }

func (ds *DestinationSession) readLane(st *Stream, seq, step uint64, out chan destFrame) {
	defer ds.s.wg.Done()
	send := func(f destFrame) bool {
		select {
		case out <- f:
			return true
		case <-ds.s.done:
			return false
		}
	}
	fail := func(err error) {
		// A broken channel breaks the session at once: Read may be
		// waiting on another channel whose source is stuck behind this
		// one.
		ds.s.fail(&channelError{ds.s.id, seq % step, err})
	}
	for {
		n, end, err := readFrameHeader(st, seq)
		if err != nil {
			fail(err)
			return
		}
		if end {
			send(destFrame{end: true})
			return
		}
		buf := ds.s.getBuf()
		if buf == nil {
			return
		}
		buf = buf[:n]
		if _, err := st.GetBuffer(buf); err != nil {
			ds.s.putBuf(buf)
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			fail(err)
			return
		}
		if !send(destFrame{buf: buf}) {
			ds.s.putBuf(buf)
			return
		}
		seq += step
	}
}

// Read reads the next bytes of the stream, in the order the source wrote
// them. At the end of the session it returns io.EOF; a channel that ends
// without the end frame is an error wrapping io.ErrUnexpectedEOF.
func (ds *DestinationSession) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if err := ds.nextFrame(); err != nil {
		return 0, err
	}
	n := copy(p, ds.cur.buf[ds.off:])
	ds.off += n
	return n, nil
}

// ReadBuffer returns the next bytes of the stream without copying them:
// what is left of the current frame, at most 256 KiB. The slice
// is valid until the next call of Read, ReadBuffer or Next, which reuses
// its memory. At the end of the session it returns io.EOF, like Read.
func (ds *DestinationSession) ReadBuffer() ([]byte, error) {
	if err := ds.nextFrame(); err != nil {
		return nil, err
	}
	b := ds.cur.buf[ds.off:]
	ds.off = len(ds.cur.buf)
	return b, nil
}

// Next returns the next n bytes of the stream, valid until the next call
// of Read, ReadBuffer or Next. When they lie in one frame, as a page the
// source gave PutBufferNoCopy does, Next returns them in place, without a
// copy; otherwise it copies them into a buffer of its own. n may be at
// most MaxPageSize. If the stream ends before n bytes,
// Next returns the error, io.ErrUnexpectedEOF when it ended cleanly after
// some of them and io.EOF when none were left.
func (ds *DestinationSession) Next(n int) ([]byte, error) {
	if n < 0 || n > stripePayload {
		return nil, fmt.Errorf("migration: Next(%d): want 0..%d bytes", n, stripePayload)
	}
	if n == 0 {
		return nil, nil
	}
	if err := ds.nextFrame(); err != nil {
		return nil, err
	}
	if rest := ds.cur.buf[ds.off:]; len(rest) >= n {
		ds.off += n
		return rest[:n:n], nil
	}
	if cap(ds.scratch) < n {
		ds.scratch = make([]byte, 0, n)
	}
	b := ds.scratch[:n]
	if _, err := io.ReadFull(ds, b); err != nil {
		return nil, err
	}
	return b, nil
}

// nextFrame makes sure the current frame has bytes left to read, taking
// the next frame in order from its channel when it has not.
func (ds *DestinationSession) nextFrame() error {
	for ds.off == len(ds.cur.buf) {
		if err := ds.Err(); err != nil {
			return err
		}
		if ds.cur.buf != nil {
			ds.s.putBuf(ds.cur.buf)
			ds.cur, ds.off = destFrame{}, 0
		}
		if len(ds.outs) == 0 {
			return errors.New("migration: session not started: read it after AcceptSession returns it")
		}
		var f destFrame
		select {
		case f = <-ds.outs[ds.next%uint64(len(ds.outs))]:
		case <-ds.s.done:
			return ds.Err()
		}
		if f.end {
			ds.s.setErr(io.EOF)
			continue
		}
		ds.cur = f
		ds.next++
	}
	return nil
}

// Close flushes what was written to the return path, ends the session
// and closes every channel. It returns the return path's error, if any.
// Close is idempotent.
func (ds *DestinationSession) Close() error {
	ds.closeOnce.Do(func() {
		if rp := ds.s.streams[0].returnPathIfAny(); rp != nil && rp.Err() == nil {
			ds.closeErr = rp.Flush()
		}
		ds.s.setErr(fmt.Errorf("migration: session closed: %w", net.ErrClosed))
		ds.s.end()
		for _, st := range ds.s.streams {
			st.Shutdown()
		}
		ds.s.wg.Wait()
		for _, st := range ds.s.streams {
			st.Close()
		}
	})
	return ds.closeErr
}
