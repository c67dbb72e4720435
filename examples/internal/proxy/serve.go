package proxy

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/migration"
	"github.com/livemig/livemig/uri"
)

// server is one Run: its listener, where it hands connections on, and the
// connections on their way.
type server struct {
	o       *Options
	reg     *crypto.Registry
	ln      *migration.Listener
	in, out uri.Address
	logf    func(string, ...any)

	slots chan struct{}  // one token per connection accepted and not handed on
	line  *line          // accepted connections, on their way to handOn
	wg    sync.WaitGroup // handshakes, the hand-on loop, pipes
}

// readyConn is an accepted connection whose handshake and hello are done.
type readyConn struct {
	n  int
	st *migration.Stream
}

// serve accepts until ctx ends. Each accepted connection's handshake and
// hello run in its own goroutine; handOn opens the outgoing connections
// one at a time, in the order the line gives them.
func (s *server) serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	max := s.o.MaxHandshakes
	if max == 0 {
		max = DefaultMaxHandshakes
	}
	s.slots = make(chan struct{}, max)
	s.line = newLine(max)
	defer s.line.drain()
	defer s.wg.Wait()
	defer cancel()
	s.wg.Add(1)
	go s.handOn(ctx)
	// Without TLS and hello (--raw on a plain listener) a connection is
	// ready as soon as it is accepted: it is passed on from this loop,
	// in accept order, not from a goroutine of its own.
	setup := !s.o.Raw || s.in.TLS.Creds != ""
	failures, backoff := 0, acceptBackoffMin
	for n := 1; ; n++ {
		select {
		case s.slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		ch, err := s.ln.AcceptChannel(ctx)
		if err != nil {
			<-s.slots
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Such as EMFILE: the connection stays queued and the next
			// accept may fail the same way. Wait, longer each time, and
			// log once per run of failures.
			if failures == 0 {
				s.logf("accepting on %s: %v; retrying, at most every %s", s.ln.Addr(), err, acceptBackoffMax)
			}
			failures++
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil
			}
			backoff = min(2*backoff, acceptBackoffMax)
			n--
			continue
		}
		if failures > 0 {
			s.logf("accepting on %s again after %d failed attempts", s.ln.Addr(), failures)
			failures, backoff = 0, acceptBackoffMin
		}
		p := s.line.join(n, peerSent(ch))
		t := s.ln.HandshakeTask(ctx, ch)
		if !setup {
			st, err := t.Wait(context.Background())
			s.arrived(ctx, p, st, err)
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			st, err := t.Wait(context.Background())
			s.arrived(ctx, p, st, err)
		}()
	}
}

// The wait of the accept loop after a failed accept: it starts at
// acceptBackoffMin and doubles after each failure up to acceptBackoffMax,
// as net/http's Server does.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// arrived tells the line that connection p's handshake and hello are
// done, or logs why it was refused, frees its slot and takes it out of
// the line.
func (s *server) arrived(ctx context.Context, p *place, st *migration.Stream, err error) {
	if err != nil {
		if ctx.Err() == nil {
			s.logf("connection %d: refused: %v", p.n, err)
		}
		s.line.ready(p, nil)
		<-s.slots
		return
	}
	s.line.ready(p, st)
}

// handOn opens the outgoing connection of each connection the line
// passes on, one at a time and in the line's order, so that the next hop
// sees them in that order, and starts its pipe.
func (s *server) handOn(ctx context.Context) {
	defer s.wg.Done()
	for {
		var c readyConn
		select {
		case c = <-s.line.out:
		case <-ctx.Done():
			return
		}
		b, err := s.dial(ctx, c.st)
		<-s.slots
		if err != nil {
			// Not a clean end for the source either.
			c.st.Abort()
			if ctx.Err() == nil {
				s.logf("connection %d: %s: %v", c.n, s.out, err)
			}
			continue
		}
		s.logf("connection %d: %s -> %s", c.n, c.st.Channel().Name(), b.Channel().Name())
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := pipe(ctx, c.n, c.st, b, s.oneWay(), s.logf); err != nil {
				s.logf("%v", err)
			}
		}()
	}
}

// single proxies the one channel of a file:, exec: or fd: listener. It
// opens the channel (the file, the command) before it reports listening,
// so a source that cannot be opened ends the proxy at once, in one line.
func (s *server) single(ctx context.Context) error {
	ch, err := s.ln.AcceptChannel(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if s.o.Listening != nil {
		s.o.Listening(s.ln.Addr().String())
	}
	a, err := s.ln.HandshakeTask(ctx, ch).Wait(context.Background())
	if err != nil {
		return err
	}
	b, err := s.dial(ctx, a)
	if err != nil {
		a.Abort()
		return err
	}
	s.logf("connection 1: %s -> %s", a.Channel().Name(), b.Channel().Name())
	return pipe(ctx, 1, a, b, s.oneWay(), s.logf)
}

// dial opens the outgoing connection for a, repeating a's hello unless
// the proxy is raw. Without Raw, a was accepted with a hello, which Relay
// repeats.
func (s *server) dial(ctx context.Context, a *migration.Stream) (*migration.Stream, error) {
	cfg := s.o.config(s.reg)
	if !s.o.Raw {
		return migration.Relay(ctx, s.out, cfg, a)
	}
	return migration.Dial(ctx, s.out, cfg)
}

// oneWay reports whether nothing flows back: a file is written or read,
// never both.
func (s *server) oneWay() bool {
	return s.in.Transport == uri.File || s.out.Transport == uri.File
}
