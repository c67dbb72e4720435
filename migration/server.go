package migration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/internal/hello"
	"github.com/livemig/livemig/uri"
)

// Server groups the channels a Listener accepts into Sessions by the
// session ID of their hello, the way a load balancer's persistence engine
// groups connections by call ID.
//
// The first main channel of a session creates it and starts its timer
// (Config.SessionTimeout). The multifd channels of that session join it;
// a channel for a session the Server does not know, or one that expired
// or is already complete, is refused with a hello reply saying so (the
// source's Task fails with a *RefusedError naming the session), and
// logged through Config.Logf. When every channel the main
// channel announced has arrived, AcceptSession returns the Session; if the
// timer fires first, AcceptSession returns a *SessionError naming the
// missing channels, and the channels that did arrive are closed.
//
// # Limits
//
// Everything a peer can make a Server hold is bounded:
//
//   - A session belongs to the peer identity that opened it (see
//     Stream.PeerIdentity): a channel of it from another identity is
//     refused ("session of another peer"), so a client that learns a
//     session ID cannot take a slot of someone else's session.
//   - At most Config.MaxPendingSessions sessions are being assembled or
//     waiting for AcceptSession, and at most Config.MaxPendingPerPeer of
//     them per identity; a main channel beyond either is refused with
//     "too many pending sessions" (RefusedError.Temporary is true). An
//     incomplete session gives its slot back after Config.SessionTimeout.
//   - With a non-zero Config.SessionID, a channel of another session is
//     refused at once and takes no slot.
//   - At most Config.MaxHandshakes connections are in their TLS handshake
//     or hello at once, a quarter of them from one host; more are closed
//     as they are accepted.
//   - A session's stripe buffers and read-ahead goroutines exist only
//     once AcceptSession has returned it: until then each of its channels
//     costs its socket, its TLS state and a Stream without buffers.
//
// With Config.DialBack the Server does not wait for channels:
// AcceptSession dials the source's main channel, learns the session ID
// from its reply, and dials the Config.Channels-1 multifd channels.
//
// The methods of Server may be called from any goroutine.
type Server struct {
	ln     *Listener
	cfg    *Config
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	pending   map[SessionID]*pendingSession
	expired   map[SessionID]time.Time
	ready     []serverResult
	notify    chan struct{}
	closed    bool
	hsTotal   int            // connections in their handshake or hello
	hsPerHost map[string]int // the same, by peerHost
}

// maxExpired bounds the sessions a Server remembers as expired or
// complete; the oldest are forgotten first.
const maxExpired = 4096

type pendingSession struct {
	id      SessionID
	who     string // the identity of the main channel's peer
	slots   *slots // the channels placed (reserved), by index
	streams []*Stream
	arrived int
	timer   *time.Timer
}

type serverResult struct {
	s   *DestinationSession
	who string
	err error
}

// NewServer starts grouping the channels ln accepts (unless ln dials back).
// The Server owns ln: Close closes it. Sessions need the hello, so ln's
// Config must not set Raw.
func NewServer(ln *Listener) (*Server, error) {
	if ln.cfg.Raw {
		return nil, errors.New("migration: a Server needs the hello; Config.Raw is set")
	}
	s := newServer(ln.cfg)
	s.ln = ln
	if !ln.cfg.DialBack {
		s.wg.Add(1)
		go s.acceptLoop()
	}
	return s, nil
}

// newServer returns a Server without a Listener for cfg (populated).
func newServer(cfg *Config) *Server {
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg: cfg, ctx: ctx, cancel: cancel,
		pending:   make(map[SessionID]*pendingSession),
		expired:   make(map[SessionID]time.Time),
		notify:    make(chan struct{}, 1),
		hsPerHost: make(map[string]int),
	}
}

// Addr returns the Listener's address, as Listener.Addr.
func (s *Server) Addr() uri.Address { return s.ln.Addr() }

// acceptLoop accepts connections and runs a task for each.
func (s *Server) acceptLoop() {
	defer s.wg.Done()
	backoff := time.Duration(0)
	for {
		ch, err := s.ln.open(s.ctx)
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Back off on repeated errors (EMFILE, say), from 5 ms up to
			// a second, so a failing accept neither spins nor floods Logf.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.cfg.logf("migration: accepting on %s: %s (retrying in %v)", s.ln.Addr(), unprefixed(err), backoff)
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		host := peerHost(ch)
		if err := s.startHandshake(host); err != nil {
			s.cfg.logf("migration: channel from %s: %s", ch.Name(), unprefixed(err))
			ch.Close()
			continue
		}
		p := s.ln.destPlan(s.place)
		// Once the task has taken ch in its connect phase, it closes it on
		// failure; a task that fails before (in resolve) leaves it to us.
		var taken atomic.Bool
		p.open = func(context.Context) (channel.Channel, error) { taken.Store(true); return ch, nil }
		p.onReady = s.arrived
		t := p.start(s.ctx)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			_, err := t.Wait(context.Background())
			s.endHandshake(host)
			if err != nil && !taken.Load() {
				ch.Close()
			}
			switch {
			case err == nil || s.ctx.Err() != nil:
			case s.ln.singleChannel():
				// Nothing else can arrive (exec, fd, file): AcceptSession
				// returns the failure instead of waiting for ever.
				s.mu.Lock()
				s.pushLocked(serverResult{err: &channelFailure{ch.Name(), err}})
				s.mu.Unlock()
			default:
				s.cfg.logf("migration: channel from %s: %s", ch.Name(), unprefixed(err))
			}
		}()
	}
}

// startHandshake counts a connection from host into the handshakes in
// progress, or refuses it when it would pass MaxHandshakes in all or a
// quarter of it from host.
func (s *Server) startHandshake(host string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	perHost := max(1, s.cfg.MaxHandshakes/4)
	switch {
	case s.hsTotal >= s.cfg.MaxHandshakes:
		return fmt.Errorf("migration: refused: %d connections already in their handshake or hello (Config.MaxHandshakes)", s.hsTotal)
	case s.hsPerHost[host] >= perHost:
		return fmt.Errorf("migration: refused: %d connections from %s already in their handshake or hello (a quarter of Config.MaxHandshakes)", s.hsPerHost[host], host)
	}
	s.hsTotal++
	s.hsPerHost[host]++
	return nil
}

// endHandshake counts a connection from host out of the handshakes in
// progress.
func (s *Server) endHandshake(host string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hsTotal--
	if s.hsPerHost[host]--; s.hsPerHost[host] <= 0 {
		delete(s.hsPerHost, host)
	}
}

// place decides a request's fate: it creates a session for a main
// channel and reserves the slot of any other. req has passed
// decodeHello, so 1 <= Channels <= MaxChannels and Index < Channels;
// place checks the bounds again where it indexes.
func (s *Server) place(req *hello.Hello, who string, reply *hello.Hello) (hello.Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := SessionID(req.Session)
	if s.closed {
		return hello.StatusRefused, fmt.Errorf("migration: session %s: server closed", id)
	}
	if !s.cfg.SessionID.IsZero() && id != s.cfg.SessionID {
		return hello.StatusMismatch, &HelloMismatchError{Field: "session", Local: s.cfg.SessionID.String(), Remote: id.String()}
	}
	s.forgetExpiredLocked(time.Now())
	p := s.pending[id]
	if req.Role == hello.RoleMain {
		if p != nil {
			return hello.StatusDuplicate, fmt.Errorf("migration: session %s: second main channel, from %s", id, who)
		}
		if _, ok := s.expired[id]; ok {
			return hello.StatusExpiredSession, fmt.Errorf("migration: session %s expired or complete", id)
		}
		if n := len(s.pending) + s.unacceptedLocked(""); n >= s.cfg.MaxPendingSessions {
			return hello.StatusBusy, fmt.Errorf("migration: session %s refused: %d sessions already being assembled or waiting for AcceptSession (Config.MaxPendingSessions)", id, n)
		}
		if n := s.pendingOfLocked(who); n >= s.cfg.MaxPendingPerPeer {
			return hello.StatusBusy, fmt.Errorf("migration: session %s refused: %s already holds %d sessions being assembled or waiting for AcceptSession (Config.MaxPendingPerPeer)", id, who, n)
		}
		n := int(req.Channels)
		if n < 1 || n > MaxChannels {
			return hello.StatusMismatch, fmt.Errorf("migration: session %s: channel count %d out of range 1..%d", id, n, MaxChannels)
		}
		p = &pendingSession{id: id, who: who, slots: newSlots(id, n), streams: make([]*Stream, n)}
		if st, err := p.slots.take(req, who); st != hello.StatusOK {
			return st, err // not reached: req is a valid main channel
		}
		p.timer = time.AfterFunc(s.cfg.SessionTimeout, func() { s.expire(p) })
		s.pending[id] = p
	} else {
		if p == nil {
			if _, ok := s.expired[id]; ok {
				return hello.StatusExpiredSession, fmt.Errorf("migration: %s channel %d for session %s, which expired or is complete", req.Role, req.Index, id)
			}
			return hello.StatusUnknownSession, fmt.Errorf("migration: %s channel %d for unknown session %s", req.Role, req.Index, id)
		}
		if st, err := p.slots.take(req, who); st != hello.StatusOK {
			return st, err
		}
	}
	reply.Session, reply.Role, reply.Index, reply.Channels = id, req.Role, req.Index, req.Channels
	return hello.StatusOK, nil
}

// forgetExpiredLocked drops the expired sessions older than
// SessionTimeout, and the oldest beyond maxExpired.
func (s *Server) forgetExpiredLocked(now time.Time) {
	for id, t := range s.expired {
		if now.Sub(t) > s.cfg.SessionTimeout {
			delete(s.expired, id)
		}
	}
	for len(s.expired) > maxExpired {
		var oldest SessionID
		var ot time.Time
		for id, t := range s.expired {
			if ot.IsZero() || t.Before(ot) {
				oldest, ot = id, t
			}
		}
		delete(s.expired, oldest)
	}
}

// pendingOfLocked counts the sessions of identity who that are being
// assembled or wait for AcceptSession.
func (s *Server) pendingOfLocked(who string) int {
	n := s.unacceptedLocked(who)
	for _, p := range s.pending {
		if p.who == who {
			n++
		}
	}
	return n
}

// arrived adds a ready channel to its session and hands the session out
// when it is complete.
func (s *Server) arrived(st *Stream) error {
	h, id := st.peer, st.SessionID()
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pending[id]
	if p == nil || s.closed {
		return fmt.Errorf("migration: session %s expired before its %s channel %d was ready", id, h.Role, h.Index)
	}
	i := int(h.Index)
	if i >= len(p.streams) || !p.slots.taken[i] || p.streams[i] != nil {
		// place reserved this slot for this channel; anything else is a
		// bug, not a reason to panic.
		return fmt.Errorf("migration: session %s: %s channel %d was not placed", id, h.Role, h.Index)
	}
	p.streams[i] = st
	p.arrived++
	if p.arrived < len(p.streams) {
		return nil
	}
	p.timer.Stop()
	delete(s.pending, p.id)
	s.expired[p.id] = time.Now()
	s.pushLocked(serverResult{s: newDestinationSession(p.id, p.streams), who: p.who})
	return nil
}

// expire gives up on a session whose channels did not all arrive.
func (s *Server) expire(p *pendingSession) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending[p.id] != p {
		return
	}
	delete(s.pending, p.id)
	s.expired[p.id] = time.Now()
	var missing []string
	for i, st := range p.streams {
		if st == nil {
			missing = append(missing, missingName(p, i))
			continue
		}
		st.Close()
	}
	// AcceptSession returns the error; logging it too made callers that
	// print it report it twice.
	err := &SessionError{Session: p.id, Missing: missing, Err: &timeoutError{"waiting for the session's channels", s.cfg.SessionTimeout}}
	if !s.closed {
		s.pushLocked(serverResult{err: err})
	}
}

func missingName(p *pendingSession, i int) string {
	switch {
	case i == 0:
		return "main 0"
	case p.slots.taken[i]:
		return fmt.Sprintf("%s %d (not ready)", roleOf(i), i)
	}
	return fmt.Sprintf("channel %d", i)
}

// unacceptedLocked counts the complete sessions that AcceptSession has not
// taken yet: those of identity who, or every one when who is "" (which
// peerIdentity never returns).
func (s *Server) unacceptedLocked(who string) int {
	n := 0
	for _, r := range s.ready {
		if r.s != nil && (who == "" || r.who == who) {
			n++
		}
	}
	return n
}

func (s *Server) pushLocked(r serverResult) {
	s.ready = append(s.ready, r)
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// AcceptSession waits for the next complete session, or for the next
// session that failed (a *SessionError; the Server goes on), or for ctx's
// end or Close. The session's channels start reading ahead only now. On
// a Listener of one channel (exec, fd, file) whose channel failed, it
// returns that failure. When ctx ends first it returns a *PhaseError of
// PhaseConnect wrapping ctx's error; after Close, one wrapping
// net.ErrClosed.
func (s *Server) AcceptSession(ctx context.Context) (*DestinationSession, error) {
	if s.cfg.DialBack {
		return s.dialSession(ctx)
	}
	for {
		s.mu.Lock()
		if len(s.ready) > 0 {
			r := s.ready[0]
			s.ready[0] = serverResult{}
			s.ready = s.ready[1:]
			s.mu.Unlock()
			if r.s != nil {
				r.s.start()
			}
			return r.s, r.err
		}
		closed := s.closed
		s.mu.Unlock()
		if closed {
			return nil, &PhaseError{PhaseConnect, errServerClosed}
		}
		select {
		case <-s.notify:
		case <-ctx.Done():
			return nil, &PhaseError{PhaseConnect, context.Cause(ctx)}
		case <-s.ctx.Done():
		}
	}
}

// errServerClosed is the cause of AcceptSession's failure after Close.
var errServerClosed = fmt.Errorf("server closed: %w", net.ErrClosed)

// dialSession is AcceptSession with DialBack: it dials the main channel,
// learns the session ID from the source's reply, and dials the others.
func (s *Server) dialSession(ctx context.Context) (*DestinationSession, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	n := s.cfg.Channels
	streams := make([]*Stream, n)
	start := func(i int, id SessionID) *Task {
		p := s.ln.destPlan(defaultPlace(s.cfg))
		p.hello.Role, p.hello.Index, p.hello.Channels, p.hello.Session = roleOf(i), uint16(i), uint16(n), id
		return p.start(ctx)
	}
	main, err := start(0, s.cfg.SessionID).Wait(context.Background())
	if err != nil {
		return nil, err
	}
	streams[0] = main
	id := main.SessionID()
	tasks := make([]*Task, n)
	for i := 1; i < n; i++ {
		tasks[i] = start(i, id)
	}
	var first error
	for i := 1; i < n; i++ {
		streams[i], err = tasks[i].Wait(context.Background())
		if err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		closeStreams(streams)
		return nil, &SessionError{Session: id, Err: first}
	}
	ds := newDestinationSession(id, streams)
	ds.start()
	return ds, nil
}

// Close stops accepting, closes the Listener, ends the channels of
// sessions not yet complete and of sessions not yet returned by
// AcceptSession, and waits for the Server's goroutines. Sessions already
// returned are the caller's. Close is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	err := s.ln.Close()
	s.wg.Wait()
	s.mu.Lock()
	for id, p := range s.pending {
		p.timer.Stop()
		for _, st := range p.streams {
			if st != nil {
				st.Close()
			}
		}
		delete(s.pending, id)
	}
	ready := s.ready
	s.ready = nil
	s.mu.Unlock()
	for _, r := range ready {
		if r.s != nil {
			r.s.Close()
		}
	}
	select {
	case s.notify <- struct{}{}:
	default:
	}
	return err
}
