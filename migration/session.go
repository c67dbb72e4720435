package migration

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
)

// Stripe framing constants; the package documentation describes the frame.
const (
	// stripeSize is the largest payload of one stripe frame.
	stripeSize = 256 << 10
	// stripeHeaderSize is the size of a stripe frame's header.
	stripeHeaderSize = 16

	stripeMagic = 0x4C53 // "LS"
	frameData   = 1
	frameEnd    = 2
)

// stripePayload is the payload of a full frame the source sends: header
// and payload fill stripeSize bytes, a whole number of TLS records. It is
// also the largest page size a session accepts (Config.PageSize), which
// MaxPageSize spells out.
const stripePayload = stripeSize - stripeHeaderSize

// MaxPageSize is documented as a literal; it must stay stripePayload.
var _ [stripePayload - MaxPageSize]struct{}
var _ [MaxPageSize - stripePayload]struct{}

// session is what both ends of a multi-channel migration share: the
// channels, the first error, and the pool of stripe buffers.
//
// A session is an ordered byte stream striped across its channels: frame
// k travels on channel k mod N, so TLS runs on as many cores as there are
// channels on both ends. The source's SourceSession cuts what it is given
// into frames; the destination's DestinationSession reads frame k from
// channel k mod N, where a goroutine per channel reads and decrypts ahead.
type session struct {
	id      SessionID
	streams []*Stream // by channel index: the main channel, then multifd
	who     string    // the peer's identity (see Stream.PeerIdentity)

	err      atomic.Pointer[error]
	done     chan struct{} // closed when the session fails or ends
	doneOnce sync.Once
	wg       sync.WaitGroup // the per-channel goroutines

	// free holds idle stripe buffers; nbuf counts those allocated, at
	// most cap(free): two per channel (one in its goroutine, one in its
	// queue) and the one being filled or drained. They are allocated on
	// demand, since on the destination N comes from the peer's hello.
	free chan []byte
	nbuf atomic.Int32
}

func (s *session) init(id SessionID, streams []*Stream) {
	s.id, s.streams, s.done = id, streams, make(chan struct{})
	s.free = make(chan []byte, 2*len(streams)+1)
	if len(streams) > 0 {
		s.who = streams[0].PeerIdentity()
	}
}

// firstErr returns the session's first error, or nil.
func (s *session) firstErr() error {
	if p := s.err.Load(); p != nil {
		return *p
	}
	return nil
}

// setErr records err unless an error is recorded already.
func (s *session) setErr(err error) { s.err.CompareAndSwap(nil, &err) }

// end wakes every goroutine that waits on the session.
func (s *session) end() { s.doneOnce.Do(func() { close(s.done) }) }

// fail records err and shuts every channel down, so that a channel
// blocked on a slow or stuck peer does not keep the others waiting, and
// the peer learns at once that the session is over.
func (s *session) fail(err error) {
	s.setErr(err)
	s.end()
	for _, st := range s.streams {
		st.Shutdown()
	}
}

// channelError is the failure of one channel of a session.
type channelError struct {
	id    SessionID
	index uint64
	err   error
}

func (e *channelError) Error() string {
	return fmt.Sprintf("migration: session %s, channel %d: %s", e.id, e.index, unprefixed(e.err))
}

func (e *channelError) Unwrap() error { return e.err }

// shutdown is the Shutdown method of both ends.
func (s *session) shutdown() error {
	s.setErr(ErrStreamShutdown)
	s.end()
	var first error
	for _, st := range s.streams {
		if err := st.Shutdown(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// returnPath is the ReturnPath method of both ends.
func (s *session) returnPath() *Stream { return s.streams[0].ReturnPath() }

// getBuf returns an empty stripe buffer: an idle one, a new one while
// fewer than cap(s.free) exist, or the next one freed. It returns nil when
// the session ends first.
func (s *session) getBuf() []byte {
	select {
	case b := <-s.free:
		return b
	default:
	}
	if s.nbuf.Add(1) <= int32(cap(s.free)) {
		return make([]byte, 0, stripeSize)
	}
	s.nbuf.Add(-1)
	select {
	case b := <-s.free:
		return b
	case <-s.done:
		return nil
	}
}

// putBuf gives b back to the pool.
func (s *session) putBuf(b []byte) { s.free <- b[:0] }

// stats sums the statistics of the session's channels.
func (s *session) stats() StreamStats {
	var t StreamStats
	for _, st := range s.streams {
		x := st.Stats()
		t.Written += x.Written
		t.Read += x.Read
		t.Flushes += x.Flushes
	}
	return t
}

// putFrameHeader writes a frame header of type typ, payload length n and
// sequence number seq into the first stripeHeaderSize bytes of b.
func putFrameHeader(b []byte, typ byte, n int, seq uint64) {
	binary.BigEndian.PutUint16(b[0:], stripeMagic)
	b[2], b[3] = typ, 0
	binary.BigEndian.PutUint32(b[4:], uint32(n))
	binary.BigEndian.PutUint64(b[8:], seq)
}

// readFrameHeader reads and checks one stripe frame header; want is the
// sequence number the channel must carry next. It returns the payload
// length and whether the frame ends the stream.
func readFrameHeader(st *Stream, want uint64) (int, bool, error) {
	b, err := st.Peek(stripeHeaderSize)
	if err != nil {
		if errors.Is(err, io.EOF) && len(b) == 0 {
			return 0, false, fmt.Errorf("%w: stream ended without an end frame: %w", ErrFrame, io.ErrUnexpectedEOF)
		}
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, false, err
	}
	magic := binary.BigEndian.Uint16(b[0:])
	typ, rsv := b[2], b[3]
	n := int(binary.BigEndian.Uint32(b[4:]))
	seq := binary.BigEndian.Uint64(b[8:])
	st.Skip(stripeHeaderSize)
	switch {
	case magic != stripeMagic:
		return 0, false, fmt.Errorf("%w: magic %#04x", ErrFrame, magic)
	case rsv != 0:
		return 0, false, fmt.Errorf("%w: reserved byte %#02x", ErrFrame, rsv)
	case seq != want:
		return 0, false, fmt.Errorf("%w: sequence %d, want %d", ErrFrame, seq, want)
	case typ == frameEnd && n == 0:
		return 0, true, nil
	case typ == frameData && n > 0 && n <= stripeSize:
		return n, false, nil
	}
	return 0, false, fmt.Errorf("%w: type %d with length %d", ErrFrame, typ, n)
}
