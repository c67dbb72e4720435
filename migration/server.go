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
	"github.com/livemig/livemig/uri"
)

// Server groups the channels a Listener accepts into Sessions by the
// session ID of their hello, the way a load balancer's persistence engine
// groups connections by call ID.
//
// The first main channel of a session creates it and starts its timer
// (Config.SessionTimeout). Multifd, return-path and postcopy channels of
// that session join it; a channel for a session the Server does not know,
// or one that expired or is already complete, is refused with a hello
// reply saying so (the source's Task fails with a *RefusedError naming the
// session), and logged through Config.Logf. When every channel the main
// channel announced has arrived, AcceptSession returns the Session; if the
// timer fires first, AcceptSession returns a *SessionError naming the
// missing channels, and the channels that did arrive are closed.
//
// At most MaxPendingSessions sessions are assembled or complete and not
// yet taken by AcceptSession at once; main channels beyond that are refused
// until one expires or AcceptSession takes one.
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

	mu      sync.Mutex
	pending map[SessionID]*pendingSession
	expired map[SessionID]time.Time
	ready   []serverResult
	notify  chan struct{}
	closed  bool
}

// MaxPendingSessions is the number of sessions a Server holds at once:
// being assembled, or complete and waiting for AcceptSession.
const MaxPendingSessions = 64

type pendingSession struct {
	id       SessionID
	roles    []Role
	reserved []bool
	streams  []*Stream
	arrived  int
	timer    *time.Timer
}

type serverResult struct {
	s   *Session
	err error
}

// NewServer starts grouping the channels ln accepts (unless ln dials back).
// The Server owns ln: Close closes it. Sessions need the hello, so ln's
// Config must not set Raw.
func NewServer(ln *Listener) (*Server, error) {
	if ln.cfg.Raw {
		return nil, errors.New("migration: a Server needs the hello; Config.Raw is set")
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		ln: ln, cfg: ln.cfg, ctx: ctx, cancel: cancel,
		pending: make(map[SessionID]*pendingSession),
		expired: make(map[SessionID]time.Time),
		notify:  make(chan struct{}, 1),
	}
	if !ln.cfg.DialBack {
		s.wg.Add(1)
		go s.acceptLoop()
	}
	return s, nil
}

// Addr returns the Listener's address, as Listener.Addr.
func (s *Server) Addr() *uri.Address { return s.ln.Addr() }

// acceptLoop accepts connections and runs a task for each.
func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		ch, err := s.ln.open(s.ctx)
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			s.cfg.logf("migration: accepting on %s: %s", s.ln.Addr(), unprefixed(err))
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
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
			if err != nil && !taken.Load() {
				ch.Close()
			}
			if err != nil && s.ctx.Err() == nil {
				s.cfg.logf("migration: channel from %s: %s", ch.Name(), unprefixed(err))
			}
		}()
	}
}

// place decides a request's fate: it creates a session for a main
// channel and reserves the slot of any other.
func (s *Server) place(req, reply *Hello) (Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for id, t := range s.expired {
		if now.Sub(t) > s.cfg.SessionTimeout {
			delete(s.expired, id)
		}
	}
	id := req.Session
	if s.closed {
		return StatusRefused, fmt.Errorf("migration: session %s: server closed", id)
	}
	if !s.cfg.SessionID.IsZero() && id != s.cfg.SessionID {
		return StatusMismatch, &HelloMismatchError{Field: "session", Local: s.cfg.SessionID.String(), Remote: id.String()}
	}
	p := s.pending[id]
	if req.Role == RoleMain {
		if p != nil {
			return StatusDuplicate, fmt.Errorf("migration: session %s: second main channel", id)
		}
		if _, ok := s.expired[id]; ok {
			return StatusExpiredSession, fmt.Errorf("migration: session %s expired or complete", id)
		}
		if n := len(s.pending) + s.unacceptedLocked(); n >= MaxPendingSessions {
			return StatusRefused, fmt.Errorf("migration: session %s refused: %d sessions already being assembled or waiting for AcceptSession", id, n)
		}
		n := int(req.Channels)
		p = &pendingSession{id: id, roles: make([]Role, n), reserved: make([]bool, n), streams: make([]*Stream, n)}
		p.roles[0], p.reserved[0] = RoleMain, true
		p.timer = time.AfterFunc(s.cfg.SessionTimeout, func() { s.expire(p) })
		s.pending[id] = p
	} else {
		if p == nil {
			if _, ok := s.expired[id]; ok {
				return StatusExpiredSession, fmt.Errorf("migration: %s channel %d for session %s, which expired or is complete", req.Role, req.Index, id)
			}
			return StatusUnknownSession, fmt.Errorf("migration: %s channel %d for unknown session %s", req.Role, req.Index, id)
		}
		if int(req.Channels) != len(p.roles) {
			return StatusMismatch, &HelloMismatchError{Field: "count", Local: fmt.Sprint(len(p.roles)), Remote: fmt.Sprint(req.Channels)}
		}
		if p.reserved[req.Index] {
			return StatusDuplicate, fmt.Errorf("migration: session %s: %s channel %d arrived twice", id, req.Role, req.Index)
		}
		p.roles[req.Index], p.reserved[req.Index] = req.Role, true
	}
	reply.Session, reply.Role, reply.Index, reply.Channels = id, req.Role, req.Index, req.Channels
	return StatusOK, nil
}

// arrived adds a ready channel to its session and hands the session out
// when it is complete.
func (s *Server) arrived(st *Stream) error {
	h := st.Peer()
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pending[h.Session]
	if p == nil || s.closed {
		return fmt.Errorf("migration: session %s expired before its %s channel %d was ready", h.Session, h.Role, h.Index)
	}
	p.streams[h.Index] = st
	p.arrived++
	if p.arrived < len(p.streams) {
		return nil
	}
	p.timer.Stop()
	delete(s.pending, p.id)
	s.expired[p.id] = time.Now()
	s.pushLocked(serverResult{s: newSession(p.id, false, p.streams, p.roles)})
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
	err := &SessionError{Session: p.id, Missing: missing, Err: &timeoutError{"waiting for the session's channels"}}
	s.cfg.logf("%v", err)
	if !s.closed {
		s.pushLocked(serverResult{err: err})
	}
}

func missingName(p *pendingSession, i int) string {
	switch {
	case i == 0:
		return "main 0"
	case p.reserved[i]:
		return fmt.Sprintf("%s %d (not ready)", p.roles[i], i)
	}
	return fmt.Sprintf("channel %d", i)
}

// unacceptedLocked counts the complete sessions that AcceptSession has not
// taken yet.
func (s *Server) unacceptedLocked() int {
	n := 0
	for _, r := range s.ready {
		if r.s != nil {
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
// end or Close.
func (s *Server) AcceptSession(ctx context.Context) (*Session, error) {
	if s.cfg.DialBack {
		return s.dialSession(ctx)
	}
	for {
		s.mu.Lock()
		if len(s.ready) > 0 {
			r := s.ready[0]
			s.ready = s.ready[1:]
			s.mu.Unlock()
			return r.s, r.err
		}
		closed := s.closed
		s.mu.Unlock()
		if closed {
			return nil, fmt.Errorf("migration: server closed: %w", net.ErrClosed)
		}
		select {
		case <-s.notify:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.ctx.Done():
		}
	}
}

// dialSession is AcceptSession with DialBack.
func (s *Server) dialSession(ctx context.Context) (*Session, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	n := s.cfg.Channels
	streams := make([]*Stream, n)
	roles := make([]Role, n)
	for i := range roles {
		roles[i] = RoleMultifd
	}
	roles[0] = RoleMain
	start := func(i int, id SessionID) *Task {
		p := s.ln.destPlan(defaultPlace(s.cfg))
		p.hello.Role, p.hello.Index, p.hello.Channels, p.hello.Session = roles[i], uint16(i), uint16(n), id
		return p.start(ctx)
	}
	main, err := start(0, s.cfg.SessionID).Wait(context.Background())
	if err != nil {
		return nil, err
	}
	streams[0] = main
	id := main.Peer().Session
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
		for _, st := range streams {
			if st != nil {
				st.Close()
			}
		}
		return nil, &SessionError{Session: id, Err: first}
	}
	return newSession(id, false, streams, roles), nil
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
