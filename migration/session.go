package migration

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/uri"
)

// Stripe framing constants; the package documentation describes the frame.
const (
	// StripeSize is the largest payload of one stripe frame.
	StripeSize = 256 << 10
	// StripeHeaderSize is the size of a stripe frame's header.
	StripeHeaderSize = 16

	stripeMagic = 0x4C53 // "LS"
	frameData   = 1
	frameEnd    = 2
)

// Session is the set of channels of one migration: a main channel and
// Channels-1 multifd channels, each with its own TLS state. A Session is an
// ordered byte stream striped across its channels: the source's Write cuts
// what it is given into frames of up to StripeSize bytes and hands frame k
// to channel k mod N, where a goroutine per channel encrypts and writes it,
// so TLS runs on as many cores as there are channels; the destination's
// Read takes frame k from channel k mod N, where a goroutine per channel
// reads and decrypts ahead, so the bytes come out in the order they went
// in.
//
// DialSession makes the source's Session, Server.AcceptSession the
// destination's. Write, Flush and Close (on the source) must be called from
// one goroutine, Read (on the destination) from one goroutine; Err,
// Shutdown, ID and the accessors may be called from any goroutine.
type Session struct {
	id      SessionID
	source  bool
	streams []*Stream // by channel index
	roles   []Role
	lanes   []*Stream // main and multifd channels, by index

	err       atomic.Pointer[error]
	done      chan struct{}
	doneOnce  sync.Once
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
	startOnce sync.Once

	// stripe buffers, shared by both sides' code: free holds the idle
	// ones; nbuf counts those allocated, at most cap(free)
	free chan []byte
	nbuf atomic.Int32

	// source: the frame being filled is cur (header room, then the
	// bytes Write copied) and parts (its payload in order: slices of cur
	// and the caller's slices given to PutBufferNoCopy); curN is the
	// payload's length, tailCopied whether the last part ends cur.
	cur        []byte
	parts      net.Buffers
	curN       int
	tailCopied bool
	freeParts  chan net.Buffers
	seq        uint64
	ins        []chan stripeFrame
	writes     sync.WaitGroup

	// destination
	outs  []chan stripeFrame
	rcur  stripeFrame
	roff  int
	rnext uint64
}

type stripeFrame struct {
	seq   uint64
	buf   []byte      // source: header room and copied bytes; destination: the payload
	parts net.Buffers // source: the payload, in order
	n     int         // source: the payload's length
	end   bool
}

// stripePayload is the payload of a full frame the source sends: header
// and payload fill StripeSize bytes, a whole number of TLS records.
const stripePayload = StripeSize - StripeHeaderSize

// newSession makes a Session over streams (indexed by channel). The
// source's lanes start at once; the destination's start with start, when
// the Session is handed to the user, so that a session nobody accepted
// yet holds no stripe buffer and no read-ahead goroutine.
func newSession(id SessionID, source bool, streams []*Stream, roles []Role) *Session {
	s := &Session{id: id, source: source, streams: streams, roles: roles, done: make(chan struct{})}
	for i, st := range streams {
		if roles[i] == RoleMain || roles[i] == RoleMultifd {
			s.lanes = append(s.lanes, st)
		}
	}
	// Two buffers per channel (one in its goroutine, one in its queue) and
	// the one Write fills or Read drains; allocated on demand, since n
	// comes from the peer's hello on the destination.
	s.free = make(chan []byte, 2*len(s.lanes)+1)
	if source {
		s.freeParts = make(chan net.Buffers, cap(s.free))
		for _, st := range s.lanes {
			in := make(chan stripeFrame, 1)
			s.ins = append(s.ins, in)
			s.wg.Add(1)
			go s.writeLane(st, in)
		}
	}
	return s
}

// start starts the destination's lanes: a goroutine per channel that
// reads frames ahead. It does nothing on the source, after Close, or the
// second time.
func (s *Session) start() {
	s.startOnce.Do(func() {
		if s.source || s.Err() != nil {
			return
		}
		n := uint64(len(s.lanes))
		for i, st := range s.lanes {
			out := make(chan stripeFrame, 1)
			s.outs = append(s.outs, out)
			s.wg.Add(1)
			go s.readLane(st, uint64(i), n, out)
		}
	})
}

// ID returns the session's ID.
func (s *Session) ID() SessionID { return s.id }

// Channels returns the number of channels of the session.
func (s *Session) Channels() int { return len(s.streams) }

// Stream returns the Stream of channel i. The Session's goroutines use the
// Streams of the main and multifd channels; use them directly only for
// their statistics or before the first Write or Read.
func (s *Session) Stream(i int) *Stream { return s.streams[i] }

// ReturnPath returns the Stream for the destination-to-source direction:
// the session's return-path channel if it has one, else the reverse
// direction of the main channel.
func (s *Session) ReturnPath() *Stream {
	for i, r := range s.roles {
		if r == RoleReturnPath {
			return s.streams[i]
		}
	}
	return s.streams[0].ReturnPath()
}

// SetRateLimit limits the session's total rate on the wire, in bytes per
// second, by giving each of its N striped channels a limit of
// bytesPerSecond/N; 0 removes the limit. DialSession applies
// Config.RateLimit this way. It may be called from any goroutine.
func (s *Session) SetRateLimit(bytesPerSecond int64) {
	per := bytesPerSecond / int64(len(s.lanes))
	if bytesPerSecond > 0 && per == 0 {
		per = 1
	}
	for _, st := range s.lanes {
		st.SetRateLimit(per)
	}
}

// Err returns the session's first error, or nil.
func (s *Session) Err() error {
	if p := s.err.Load(); p != nil {
		return *p
	}
	return nil
}

func (s *Session) setErr(err error) {
	s.err.CompareAndSwap(nil, &err)
}

// Shutdown ends the session at once from any goroutine: every channel is
// shut down and pending Write, Flush and Read calls fail. Close must still
// be called.
func (s *Session) Shutdown() {
	s.setErr(ErrStreamShutdown)
	s.doneOnce.Do(func() { close(s.done) })
	for _, st := range s.streams {
		st.Shutdown()
	}
}

// Write copies p into stripe frames and hands full frames to the channels.
// It returns len(p) and nil, or the session's first error.
//
// A frame is built in one buffer of StripeSize bytes, header first, so a
// full frame carries StripeSize-StripeHeaderSize bytes and leaves as one
// slice: over TLS, 16 whole records encrypted straight from the buffer,
// with no copy and no short record. Readers accept any payload up to
// StripeSize.
func (s *Session) Write(p []byte) (int, error) {
	if !s.source {
		return 0, errors.New("migration: Write on the destination's session")
	}
	n := len(p)
	for len(p) > 0 {
		if !s.startFrame() {
			return 0, s.Err()
		}
		start := len(s.cur)
		c := min(len(p), stripePayload-s.curN)
		s.cur = s.cur[:start+c]
		copy(s.cur[start:], p[:c])
		if s.tailCopied {
			last := s.parts[len(s.parts)-1]
			s.parts[len(s.parts)-1] = last[:len(last)+c]
		} else {
			s.parts = append(s.parts, s.cur[start:start+c])
			s.tailCopied = true
		}
		s.add(c)
		p = p[c:]
	}
	return n, s.Err()
}

// PutBufferNoCopy queues p in the stream without copying it, as
// Stream.PutBufferNoCopy does for one channel: a channel's goroutine
// writes p straight from the caller's memory (over TLS, encrypts it from
// there), so a guest page costs no copy on the source. The caller must not
// modify p until the next Flush (or Close) returns, or must accept, as
// QEMU does for the guest pages its dirty log sends again, that p's
// channel sends whatever p holds when it writes it. Slices shorter than
// 512 bytes are copied, as by Write. It returns the session's first
// error.
func (s *Session) PutBufferNoCopy(p []byte) error {
	if !s.source {
		return errors.New("migration: PutBufferNoCopy on the destination's session")
	}
	if len(p) < 512 {
		_, err := s.Write(p)
		return err
	}
	for len(p) > 0 {
		if !s.startFrame() {
			return s.Err()
		}
		c := min(len(p), stripePayload-s.curN)
		s.parts = append(s.parts, p[:c])
		s.tailCopied = false
		s.add(c)
		p = p[c:]
	}
	return s.Err()
}

// startFrame makes sure a frame is being filled; it reports false when
// the session has failed or ended.
func (s *Session) startFrame() bool {
	if s.Err() != nil {
		return false
	}
	if s.cur != nil {
		return true
	}
	b := s.getBuf()
	if b == nil {
		return false
	}
	s.cur = b[:StripeHeaderSize] // room for the frame header
	select {
	case s.parts = <-s.freeParts:
	default:
		s.parts = make(net.Buffers, 0, 2*StripeSize/4096)
	}
	return true
}

// add counts c payload bytes into the frame and hands it to its channel
// when it is full.
func (s *Session) add(c int) {
	if s.curN += c; s.curN == stripePayload {
		s.dispatchCur()
	}
}

// dispatchCur hands the frame being filled to its channel.
func (s *Session) dispatchCur() {
	s.dispatch(stripeFrame{buf: s.cur, parts: s.parts, n: s.curN})
	s.cur, s.parts, s.curN, s.tailCopied = nil, nil, 0, false
}

// getBuf returns an empty stripe buffer: an idle one, a new one while
// fewer than cap(s.free) exist, or the next one freed. It returns nil when
// the session ends first.
func (s *Session) getBuf() []byte {
	select {
	case b := <-s.free:
		return b
	default:
	}
	if s.nbuf.Add(1) <= int32(cap(s.free)) {
		return make([]byte, 0, StripeSize)
	}
	s.nbuf.Add(-1)
	select {
	case b := <-s.free:
		return b
	case <-s.done:
		return nil
	}
}

func (s *Session) dispatch(f stripeFrame) {
	f.seq = s.seq
	s.seq++
	s.writes.Add(1)
	select {
	case s.ins[f.seq%uint64(len(s.ins))] <- f:
	case <-s.done:
		s.writes.Done()
	}
}

// Flush sends the partial frame and waits until every channel has written
// its frames.
func (s *Session) Flush() error {
	if !s.source {
		return nil
	}
	if s.curN > 0 {
		s.dispatchCur()
	}
	s.writes.Wait()
	return s.Err()
}

func (s *Session) writeLane(st *Stream, in chan stripeFrame) {
	defer s.wg.Done()
	for f := range in {
		if s.Err() == nil {
			if f.end {
				var hdr [StripeHeaderSize]byte
				putFrameHeader(hdr[:], frameEnd, 0, f.seq)
				st.PutBuffer(hdr[:])
			} else {
				putFrameHeader(f.buf, frameData, f.n, f.seq)
				parts := f.parts
				if len(f.buf) > StripeHeaderSize && &parts[0][0] == &f.buf[StripeHeaderSize] {
					// The header and the copied bytes after it
					// leave as one slice.
					st.PutBufferNoCopy(f.buf[:StripeHeaderSize+len(parts[0])])
					parts = parts[1:]
				} else {
					st.PutBuffer(f.buf[:StripeHeaderSize])
				}
				for _, p := range parts {
					st.PutBufferNoCopy(p)
				}
			}
			if err := st.Flush(); err != nil {
				s.setErr(err)
				s.doneOnce.Do(func() { close(s.done) })
			}
		}
		if f.buf != nil {
			s.free <- f.buf[:0]
		}
		if f.parts != nil {
			clear(f.parts) // drop the references to the caller's memory
			s.freeParts <- f.parts[:0]
		}
		s.writes.Done()
	}
}

// putFrameHeader writes a frame header of type typ, payload length n and
// sequence number seq into the first StripeHeaderSize bytes of b.
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
	b, err := st.Peek(StripeHeaderSize)
	if err != nil {
		if errors.Is(err, io.EOF) && len(b) == 0 {
			return 0, false, fmt.Errorf("%w: stream ended without an end frame: %w", ErrFrame, io.ErrUnexpectedEOF)
		}
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, false, err
	}
	magic := uint16(b[0])<<8 | uint16(b[1])
	typ, rsv := b[2], b[3]
	n := int(uint32(b[4])<<24 | uint32(b[5])<<16 | uint32(b[6])<<8 | uint32(b[7]))
	var seq uint64
	for _, c := range b[8:16] {
		seq = seq<<8 | uint64(c)
	}
	st.Skip(StripeHeaderSize)
	switch {
	case magic != stripeMagic:
		return 0, false, fmt.Errorf("%w: magic %#04x", ErrFrame, magic)
	case rsv != 0:
		return 0, false, fmt.Errorf("%w: reserved byte %#02x", ErrFrame, rsv)
	case seq != want:
		return 0, false, fmt.Errorf("%w: sequence %d, want %d", ErrFrame, seq, want)
	case typ == frameEnd && n == 0:
		return 0, true, nil
	case typ == frameData && n > 0 && n <= StripeSize:
		return n, false, nil
	}
	return 0, false, fmt.Errorf("%w: type %d with length %d", ErrFrame, typ, n)
}

func (s *Session) readLane(st *Stream, seq, step uint64, out chan stripeFrame) {
	defer s.wg.Done()
	send := func(f stripeFrame) bool {
		select {
		case out <- f:
			return true
		case <-s.done:
			return false
		}
	}
	fail := func(err error) {
		// A broken channel breaks the session at once: Read may be
		// waiting on another channel whose source is stuck behind this one.
		s.setErr(fmt.Errorf("migration: session %s, channel %d: %w", s.id, seq%step, err))
		s.doneOnce.Do(func() { close(s.done) })
	}
	for {
		n, end, err := readFrameHeader(st, seq)
		if err != nil {
			fail(err)
			return
		}
		if end {
			send(stripeFrame{seq: seq, end: true})
			return
		}
		buf := s.getBuf()
		if buf == nil {
			return
		}
		buf = buf[:n]
		if _, err := st.GetBuffer(buf); err != nil {
			s.free <- buf[:0]
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			fail(err)
			return
		}
		if !send(stripeFrame{seq: seq, buf: buf}) {
			s.free <- buf[:0]
			return
		}
		seq += step
	}
}

// Read reads the next bytes of the striped stream, in the order the source
// wrote them. At the end of the session it returns io.EOF; a channel that
// ends without the end frame is an error wrapping io.ErrUnexpectedEOF.
func (s *Session) Read(p []byte) (int, error) {
	if s.source {
		return 0, errors.New("migration: Read on the source's session")
	}
	if len(p) == 0 {
		return 0, nil
	}
	if err := s.nextFrame(); err != nil {
		return 0, err
	}
	n := copy(p, s.rcur.buf[s.roff:])
	s.roff += n
	return n, nil
}

// ReadBuffer returns the next bytes of the striped stream without copying
// them: what is left of the current frame, at most StripeSize bytes. The
// slice is valid until the next call of Read or ReadBuffer, which reuses
// its memory. At the end of the session it returns io.EOF, like Read.
func (s *Session) ReadBuffer() ([]byte, error) {
	if s.source {
		return nil, errors.New("migration: ReadBuffer on the source's session")
	}
	if err := s.nextFrame(); err != nil {
		return nil, err
	}
	b := s.rcur.buf[s.roff:]
	s.roff = len(s.rcur.buf)
	return b, nil
}

// nextFrame makes sure the current frame has bytes left to read, taking
// the next frame in order from its channel when it has not.
func (s *Session) nextFrame() error {
	for s.roff == len(s.rcur.buf) {
		if err := s.Err(); err != nil {
			return err
		}
		if s.rcur.buf != nil {
			s.free <- s.rcur.buf[:0]
			s.rcur = stripeFrame{}
			s.roff = 0
		}
		if len(s.outs) == 0 {
			return errors.New("migration: session not started: read it after AcceptSession returns it")
		}
		lane := s.rnext % uint64(len(s.outs))
		var f stripeFrame
		select {
		case f = <-s.outs[lane]:
		case <-s.done:
			return s.Err()
		}
		switch {
		case f.end:
			s.setErr(io.EOF)
		default:
			s.rcur = f
			s.rnext++
		}
	}
	return nil
}

// Close ends the session. On the source it flushes, sends the end frame on
// every channel and closes them, returning the first error; like Flush it
// waits while the destination does not read, and Shutdown from another
// goroutine ends that wait. On the destination it closes every channel.
// Close is idempotent.
func (s *Session) Close() error {
	s.closeOnce.Do(func() {
		if s.source {
			err := s.Flush()
			if err == nil {
				n := uint64(len(s.ins))
				for range n {
					s.dispatch(stripeFrame{end: true})
				}
				err = s.Flush()
			}
			for _, in := range s.ins {
				close(in)
			}
			s.wg.Wait()
			for _, st := range s.streams {
				if cerr := st.Close(); err == nil {
					err = cerr
				}
			}
			s.closeErr = err
			s.setErr(fmt.Errorf("migration: session closed: %w", net.ErrClosed))
			s.doneOnce.Do(func() { close(s.done) })
			return
		}
		s.setErr(fmt.Errorf("migration: session closed: %w", net.ErrClosed))
		s.doneOnce.Do(func() { close(s.done) })
		for _, st := range s.streams {
			st.Shutdown()
		}
		s.wg.Wait()
		for _, st := range s.streams {
			st.Close()
		}
	})
	return s.closeErr
}

// DialSession sets up the source's Session: it connects the main channel
// and then cfg.Channels-1 multifd channels in parallel, all announcing the
// same session ID (cfg.SessionID, or a random one), each with its own TLS
// handshake. With cfg.DialBack it listens on addr instead and accepts the
// destination's channels, placing each by its hello; a connection that
// fails its handshake or hello (a stray client, another session) is logged
// through cfg.Logf and replaced by a new accept. If a channel cannot be
// set up (a failed dial, an accept that times out, a refusal), DialSession
// closes the others and returns the first error.
func DialSession(ctx context.Context, addr uri.Address, cfg *Config) (*Session, error) {
	if addr.IsZero() {
		return nil, errZeroAddress
	}
	c := cfg.populate()
	if err := c.validate(); err != nil {
		return nil, err
	}
	if c.Raw {
		return nil, errors.New("migration: a Session needs the hello; Config.Raw is set")
	}
	if c.Channels > 1 && !isSocket(addr.Transport) {
		return nil, fmt.Errorf("migration: %s: carries one channel; a session of %d needs tcp, unix or vsock", addr.Transport, c.Channels)
	}
	id := c.SessionID
	if id.IsZero() {
		id = newSessionID()
	}
	n := c.Channels
	streams := make([]*Stream, n)
	roles := make([]Role, n)
	for i := range roles {
		roles[i] = RoleMultifd
	}
	roles[0] = RoleMain
	closeAll := func() {
		for _, st := range streams {
			if st != nil {
				st.Close()
			}
		}
	}
	chCfg := func(i int) *Config {
		cc := c.Clone()
		cc.Role, cc.Index, cc.SessionID = roles[i], i, id
		return cc
	}
	if c.DialBack {
		if !isSocket(addr.Transport) {
			return nil, fmt.Errorf("migration: DialBack needs a tcp, unix or vsock address, not %s", addr.Transport)
		}
		ln, err := listenSocket(ctx, addr)
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		place := newDialBackPlacer(id, roles).place
		type result struct {
			st  *Stream
			err error
		}
		results := make(chan result, n)
		running := 0
		start := func() error {
			p, err := sourcePlan(addr, chCfg(0), id)
			if err != nil {
				return err
			}
			p.open = func(ctx context.Context) (channel.Channel, error) {
				s, err := ln.Accept(ctx)
				if err != nil {
					return nil, err
				}
				return asChannel(s)
			}
			p.place = place
			t := p.start(ctx)
			running++
			go func() {
				st, err := t.Wait(context.Background())
				results <- result{st, err}
			}()
			return nil
		}
		var first error
		for range n {
			if err := start(); err != nil {
				first = err
				break
			}
		}
		// A connection that fails its handshake or hello (a stray client,
		// a refused session) is logged and replaced by a new accept; an
		// accept that fails or times out ends the session.
		for running > 0 {
			r := <-results
			running--
			var pe *PhaseError
			switch {
			case r.err == nil && first == nil && int(r.st.Peer().Index) < n && streams[r.st.Peer().Index] == nil:
				streams[r.st.Peer().Index] = r.st
			case r.err == nil:
				r.st.Close()
			case first == nil && ctx.Err() == nil && errors.As(r.err, &pe) && pe.Phase >= PhaseTLSHandshake:
				c.logf("migration: session %s: dropped a connection: %s", id, unprefixed(r.err))
				if err := start(); err != nil {
					first = err
					cancel()
				}
			case first == nil:
				first = r.err
				cancel()
			}
		}
		if first != nil {
			closeAll()
			return nil, first
		}
		ss := newSession(id, true, streams, roles)
		ss.SetRateLimit(c.RateLimit)
		return ss, nil
	}
	main, err := sourceTask(ctx, addr, chCfg(0), id)
	if err != nil {
		return nil, err
	}
	streams[0] = main
	tasks := make([]*Task, n)
	for i := 1; i < n; i++ {
		p, err := sourcePlan(addr, chCfg(i), id)
		if err != nil {
			closeAll()
			return nil, err
		}
		tasks[i] = p.start(ctx)
	}
	var first error
	for i := 1; i < n; i++ {
		st, err := tasks[i].Wait(context.Background())
		if err != nil && first == nil {
			first = err
		}
		streams[i] = st
	}
	if first != nil {
		closeAll()
		return nil, first
	}
	ss := newSession(id, true, streams, roles)
	ss.SetRateLimit(c.RateLimit)
	return ss, nil
}

func sourceTask(ctx context.Context, addr uri.Address, cfg *Config, id SessionID) (*Stream, error) {
	p, err := sourcePlan(addr, cfg, id)
	if err != nil {
		return nil, err
	}
	return p.start(ctx).Wait(context.Background())
}
