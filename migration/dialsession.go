package migration

import (
	"context"
	"errors"
	"fmt"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/uri"
)

// DialSession sets up the source's end of a session of cfg.Channels
// channels: it connects the main channel and then the multifd channels in
// parallel, all announcing the same session ID (cfg.SessionID, or a
// random one), each with its own TLS handshake.
//
// With cfg.DialBack it listens on addr instead and accepts the
// destination's channels, placing each by its hello; a connection that
// fails its handshake or hello (a stray client, another session) is
// logged through cfg.Logf and replaced by a new accept.
//
// If a channel cannot be set up (a failed dial, an accept that times out,
// a refusal), DialSession closes the others and returns the first error,
// a *PhaseError.
func DialSession(ctx context.Context, addr uri.Address, cfg *Config) (*SourceSession, error) {
	c, err := sessionConfig(addr, cfg)
	if err != nil {
		return nil, err
	}
	id := c.SessionID
	if id.IsZero() {
		id = newSessionID()
	}
	var streams []*Stream
	if c.DialBack {
		streams, err = acceptSourceChannels(ctx, addr, c, id)
	} else {
		streams, err = dialSourceChannels(ctx, addr, c, id)
	}
	if err != nil {
		return nil, err
	}
	ss := newSourceSession(id, streams, c.PageSize)
	ss.SetRateLimit(c.RateLimit)
	return ss, nil
}

// sessionConfig checks what DialSession is asked to do and returns the
// populated Config.
func sessionConfig(addr uri.Address, cfg *Config) (*Config, error) {
	if addr.IsZero() {
		return nil, errZeroAddress
	}
	c := cfg.populate()
	if err := c.validate(); err != nil {
		return nil, err
	}
	switch {
	case c.Raw:
		return nil, errors.New("migration: a session needs the hello; Config.Raw is set")
	case c.Channels > 1 && !isSocket(addr.Transport):
		return nil, fmt.Errorf("migration: %s: carries one channel; a session of %d needs tcp, unix or vsock", addr.Transport, c.Channels)
	case c.DialBack && !isSocket(addr.Transport):
		return nil, fmt.Errorf("migration: DialBack needs a tcp, unix or vsock address, not %s", addr.Transport)
	}
	return c, nil
}

// channelConfig is c for channel i of session id.
func channelConfig(c *Config, id SessionID, i int) *Config {
	cc := c.Clone()
	cc.SessionID, cc.index = id, i
	return cc
}

// closeStreams closes the streams that are not nil.
func closeStreams(streams []*Stream) {
	for _, st := range streams {
		if st != nil {
			st.Close()
		}
	}
}

// dialSourceChannels connects the main channel, then the others in
// parallel.
func dialSourceChannels(ctx context.Context, addr uri.Address, c *Config, id SessionID) ([]*Stream, error) {
	streams := make([]*Stream, c.Channels)
	tasks := make([]*Task, c.Channels)
	for i := range tasks {
		p, err := sourcePlan(addr, channelConfig(c, id, i), id)
		if err != nil {
			closeStreams(streams)
			return nil, err
		}
		tasks[i] = p.start(ctx)
		if i == 0 {
			// The main channel first: the destination creates the
			// session from it.
			if streams[0], err = tasks[0].Wait(context.Background()); err != nil {
				return nil, err
			}
		}
	}
	var first error
	for i := 1; i < len(tasks); i++ {
		st, err := tasks[i].Wait(context.Background())
		if err != nil && first == nil {
			first = err
		}
		streams[i] = st
	}
	if first != nil {
		closeStreams(streams)
		return nil, first
	}
	return streams, nil
}

// acceptSourceChannels listens on addr and takes the destination's
// channels of session id, each placed by its hello.
func acceptSourceChannels(ctx context.Context, addr uri.Address, c *Config, id SessionID) ([]*Stream, error) {
	ln, err := listenSocket(ctx, addr)
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a := &dialBackAccept{
		ctx: ctx, addr: addr, c: c, id: id, ln: ln,
		place:   newDialBackPlacer(id, c.Channels).place,
		results: make(chan acceptResult, c.Channels),
		streams: make([]*Stream, c.Channels),
	}
	var first error
	for range c.Channels {
		if err := a.start(); err != nil {
			first = err
			break
		}
	}
	// A connection that fails its handshake or hello (a stray client, a
	// refused session) is logged and replaced by a new accept; an accept
	// that fails or times out ends the session.
	for a.running > 0 {
		if err := a.collect(<-a.results, first == nil); err != nil && first == nil {
			first = err
			cancel()
		}
	}
	if first != nil {
		closeStreams(a.streams)
		return nil, first
	}
	return a.streams, nil
}

// dialBackAccept is the state of acceptSourceChannels: the accept tasks
// running and the channels placed so far.
type dialBackAccept struct {
	ctx     context.Context
	addr    uri.Address
	c       *Config
	id      SessionID
	ln      *channel.Listener
	place   placeFunc
	results chan acceptResult
	running int
	streams []*Stream // by index
}

type acceptResult struct {
	st  *Stream
	err error
}

// start starts a task that accepts one connection and places it.
func (a *dialBackAccept) start() error {
	p, err := sourcePlan(a.addr, channelConfig(a.c, a.id, 0), a.id)
	if err != nil {
		return err
	}
	p.open = func(ctx context.Context) (channel.Channel, error) {
		s, err := a.ln.Accept(ctx)
		if err != nil {
			return nil, err
		}
		return asChannel(s)
	}
	p.place = a.place
	t := p.start(a.ctx)
	a.running++
	go func() {
		st, err := t.Wait(context.Background())
		a.results <- acceptResult{st, err}
	}()
	return nil
}

// collect takes the result of one accept task. It keeps a placed
// channel, replaces a connection that failed its handshake or hello by a
// new accept while more are wanted, and returns any other failure.
func (a *dialBackAccept) collect(r acceptResult, wanted bool) error {
	a.running--
	if r.err == nil {
		if i := int(r.st.peer.Index); wanted && i < len(a.streams) && a.streams[i] == nil {
			a.streams[i] = r.st
		} else {
			r.st.Close()
		}
		return nil
	}
	var pe *PhaseError
	if wanted && a.ctx.Err() == nil && errors.As(r.err, &pe) && pe.Phase >= PhaseTLSHandshake {
		a.c.logf("migration: session %s: dropped a connection: %s", a.id, unprefixed(r.err))
		return a.start()
	}
	return r.err
}
