package migration

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/internal/hello"
	"github.com/livemig/livemig/uri"
)

// Listener is the destination's end of a migration address: it accepts the
// source's channels and turns each into a Stream through a Task.
//
// For tcp, unix and vsock it listens on every address the host resolves
// to. For exec it starts the command once and reads the command's stdout,
// as QEMU's incoming exec does; for fd it uses the descriptor and for file
// it reads the file from its offset. Those carry one channel, which Listen
// opens (so a missing file or a bad descriptor fails Listen): the first
// AcceptTask gets it, and later ones fail at once with an error wrapping
// net.ErrClosed, since nothing more can arrive. With Config.DialBack the
// Listener does not listen: each AcceptTask dials the source at the
// address instead.
//
// The methods of Listener may be called from any goroutine.
type Listener struct {
	addr  uri.Address // as given
	bound uri.Address // with the real port
	cfg   *Config     // populated
	ln    *channel.Listener

	mu        sync.Mutex
	single    channel.Channel // exec, fd, file: the channel, until taken
	closed    chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// Listen prepares the destination's end of addr. It binds sockets at once
// (so a source may connect as soon as Listen returns), opens the single
// channel of exec (starting the command), fd (taking ownership of the
// descriptor) and file, and checks the configuration, the tls-* options
// and the credentials and authz objects they name, so that any of these
// problems fails Listen rather than the first channel. Credentials are
// looked up again for each channel, so replaced objects apply to new
// channels. The context bounds only the setup, as for
// net.ListenConfig.Listen.
func Listen(ctx context.Context, addr uri.Address, cfg *Config) (*Listener, error) {
	if addr.IsZero() {
		return nil, errZeroAddress
	}
	c := cfg.populate()
	if err := c.validate(); err != nil {
		return nil, err
	}
	if _, err := resolveTLS(addr, c, c.DialBack); err != nil {
		return nil, err
	}
	l := &Listener{addr: addr, bound: addr, cfg: c, closed: make(chan struct{})}
	if c.DialBack {
		if !isSocket(addr.Transport) {
			return nil, fmt.Errorf("migration: DialBack needs a tcp, unix or vsock address, not %s", addr.Transport)
		}
		return l, nil
	}
	if isSocket(addr.Transport) {
		ln, err := listenSocket(ctx, addr)
		if err != nil {
			return nil, err
		}
		l.ln = ln
		l.bound = boundAddress(addr, ln.Addrs())
		return l, nil
	}
	ch, err := dialChannel(ctx, addr, c, false, false)
	if err != nil {
		return nil, err
	}
	l.single = ch
	return l, nil
}

// boundAddress returns addr with the port the listener really bound.
func boundAddress(addr uri.Address, addrs []net.Addr) uri.Address {
	b := addr
	if addr.Transport != uri.TCP || len(addrs) == 0 {
		return b
	}
	if ta, ok := addrs[0].(*net.TCPAddr); ok {
		b.Inet.Port = strconv.Itoa(ta.Port)
		b.Inet.To = 0
		if b.Inet.Host == "" {
			b.Inet.Host = ta.IP.String()
			if ta.IP.IsUnspecified() {
				b.Inet.Host = "localhost"
			}
		}
	}
	return b
}

// Addr returns the address the Listener serves, with the port it really
// bound for tcp (so "tcp:127.0.0.1:0" becomes "tcp:127.0.0.1:41234") and
// "localhost" for an empty host: an address a source on this host can
// dial. With DialBack it is the address given to Listen.
func (l *Listener) Addr() uri.Address {
	return l.bound
}

// Close stops listening and unblocks AcceptTask; tasks already started go
// on. The single channel of exec, fd and file is closed if no AcceptTask
// took it. Close is idempotent.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		close(l.closed)
		if l.ln != nil {
			l.closeErr = l.ln.Close()
		}
		l.mu.Lock()
		ch := l.single
		l.single = nil
		l.mu.Unlock()
		if ch != nil {
			l.closeErr = ch.Close()
		}
	})
	return l.closeErr
}

// singleChannel reports whether the Listener carries one channel only
// (exec, fd, file): once that is taken, nothing more can arrive.
func (l *Listener) singleChannel() bool {
	return l.ln == nil && !l.cfg.DialBack
}

// AcceptTask starts a Task that accepts the next channel (or, with
// DialBack, dials the source), runs the TLS handshake when tls-creds is
// set and exchanges the hello. A request for a session other than a
// non-zero Config.SessionID is refused. The context bounds the Task.
func (l *Listener) AcceptTask(ctx context.Context) *Task {
	return l.destPlan(defaultPlace(l.cfg)).start(ctx)
}

// Accept is the blocking form of AcceptTask.
func (l *Listener) Accept(ctx context.Context) (*Stream, error) {
	return l.AcceptTask(ctx).Wait(context.Background())
}

// destPlan prepares a destination task that places channels with place.
func (l *Listener) destPlan(place placeFunc) *plan {
	c := l.cfg
	p := &plan{
		addr:  l.addr,
		cfg:   c,
		dial:  c.DialBack,
		place: place,
		hello: hello.Hello{
			Role:     roleOf(c.index),
			Session:  c.SessionID,
			Index:    uint16(c.index),
			Channels: uint16(c.Channels),
			Caps:     c.caps,
		},
	}
	p.open = l.open
	return p
}

// open is the connect phase of a destination task.
func (l *Listener) open(ctx context.Context) (channel.Channel, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-l.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	select {
	case <-l.closed:
		return nil, fmt.Errorf("migration: listener closed: %w", net.ErrClosed)
	default:
	}
	if l.cfg.DialBack {
		return dialChannel(ctx, l.addr, l.cfg, true, false)
	}
	if l.ln != nil {
		s, err := l.ln.Accept(ctx)
		if err != nil {
			select {
			case <-l.closed:
				return nil, fmt.Errorf("migration: listener closed: %w", net.ErrClosed)
			default:
			}
			return nil, err
		}
		return asChannel(s)
	}
	l.mu.Lock()
	ch := l.single
	l.single = nil
	l.mu.Unlock()
	if ch == nil {
		return nil, fmt.Errorf("migration: %s carries a single channel, already accepted: %w", l.addr.Transport, net.ErrClosed)
	}
	return ch, nil
}

// channelFailure is the failure of a single-channel Listener's channel, as
// a Server's AcceptSession returns it: the channel's name, then the error.
type channelFailure struct {
	channel string
	err     error
}

func (e *channelFailure) Error() string { return "migration: " + e.channel + ": " + unprefixed(e.err) }
func (e *channelFailure) Unwrap() error { return e.err }
