package migration

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/hello"
	"github.com/livemig/livemig/uri"
)

// Task is one channel being set up: connected or accepted, TLS-handshaken,
// and introduced by the hello. Connect and Listener.AcceptTask start a Task
// and return at once; the Task runs in its own goroutine through the
// phases of [Phase] and ends with a *Stream or a *PhaseError.
//
// The context given to Connect or AcceptTask bounds the Task: cancelling it
// in any phase closes the socket, ends the command or file, and fails the
// Task with an error that matches context.Canceled. Once the Task is ready,
// the context no longer affects the Stream.
//
// The methods of Task may be called from any goroutine. A Stream that a
// Task produced belongs to the caller, who must Close it; call Wait (or
// Cancel and Wait) so none is left behind.
type Task struct {
	phase  atomic.Int32
	done   chan struct{}
	cancel context.CancelFunc
	stream *Stream
	err    error
	prog   func(Phase)
}

func newTask(ctx context.Context, cfg *Config) (*Task, context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	t := &Task{done: make(chan struct{}), cancel: cancel}
	if cfg != nil {
		t.prog = cfg.Progress
	}
	return t, ctx
}

// failedTask returns a Task that has already failed in PhaseResolve.
func failedTask(cfg *Config, err error) *Task {
	t, _ := newTask(context.Background(), cfg)
	t.setPhase(PhaseResolve)
	t.finish(nil, &PhaseError{Phase: PhaseResolve, Err: err})
	return t
}

// Phase returns the phase the Task is in.
func (t *Task) Phase() Phase { return Phase(t.phase.Load()) }

// Done returns a channel that is closed when the Task is ready or failed.
func (t *Task) Done() <-chan struct{} { return t.done }

// Err returns nil while the Task runs or when it is ready, and its
// *PhaseError when it failed.
func (t *Task) Err() error {
	select {
	case <-t.done:
		return t.err
	default:
		return nil
	}
}

// Wait waits for the Task to end and returns its Stream or its error. If
// ctx ends first, Wait returns ctx's error and the Task goes on; ctx
// bounds only the wait.
func (t *Task) Wait(ctx context.Context) (*Stream, error) {
	select {
	case <-t.done:
		return t.stream, t.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Cancel stops the Task if it has not ended, as cancelling its context
// does. It does not affect a Stream the Task already produced.
func (t *Task) Cancel() { t.cancel() }

func (t *Task) setPhase(p Phase) {
	t.phase.Store(int32(p))
	if t.prog != nil {
		t.prog(p)
	}
}

func (t *Task) finish(s *Stream, err error) {
	if err != nil {
		t.err = err
		t.setPhase(PhaseFailed)
	} else {
		t.stream = s
		t.setPhase(PhaseReady)
	}
	t.cancel()
	close(t.done)
}

// plan describes the channel a task sets up.
type plan struct {
	addr   uri.Address
	cfg    *Config // populated
	dial   bool    // this side opens the connection: TLS client, hello initiator
	source bool    // this side is the migration source
	open   func(ctx context.Context) (channel.Channel, error)
	hello  hello.Hello // this side's hello (Reply and Status are set by the exchange)
	place  placeFunc
	// onReady, if set, runs before the Task reports ready; an error fails
	// the hello phase.
	onReady func(s *Stream) error
}

// start runs p in a new Task.
func (p *plan) start(ctx context.Context) *Task {
	t, ctx := newTask(ctx, p.cfg)
	go t.run(ctx, p)
	return t
}

func (t *Task) run(ctx context.Context, p *plan) {
	t.finish(t.runPhases(ctx, p))
}

func (t *Task) runPhases(ctx context.Context, p *plan) (*Stream, error) {
	cfg := p.cfg
	t.setPhase(PhaseResolve)
	sec, err := resolveTLS(p.addr, cfg, p.dial)
	if err != nil {
		return nil, &PhaseError{PhaseResolve, err}
	}
	if err := ctx.Err(); err != nil {
		return nil, &PhaseError{PhaseResolve, err}
	}

	t.setPhase(PhaseConnect)
	// Connect (dialing, or a dial-back source waiting for its destination)
	// is bounded by ConnectTimeout; a destination waiting for its source is
	// bounded only by ctx, as QEMU's -incoming waits.
	cctx, ccancel := context.WithCancel(ctx)
	if p.dial || p.source {
		cctx, ccancel = context.WithTimeoutCause(ctx, cfg.ConnectTimeout, &timeoutError{"connect", cfg.ConnectTimeout})
	}
	ch, err := p.open(cctx)
	ccancel()
	if err != nil {
		return nil, &PhaseError{PhaseConnect, ctxErr(ctx, cctx, err)}
	}
	if err := ctx.Err(); err != nil {
		ch.Close()
		return nil, &PhaseError{PhaseConnect, err}
	}

	raw := ch
	if sec != nil {
		t.setPhase(PhaseTLSHandshake)
		tch, err := sec.handshake(ctx, ch, p.dial, cfg)
		if err != nil {
			ch.Close()
			return nil, &PhaseError{PhaseTLSHandshake, err}
		}
		ch = tch
	}

	who := peerIdentity(ch, raw, sec)
	var peer *hello.Hello
	if !cfg.Raw {
		t.setPhase(PhaseHello)
		peer, err = exchangeHello(ctx, ch, p.hello, p.dial, p.source && helloOneWay(string(p.addr.Transport)), cfg.HelloTimeout, who, p.place)
		if err != nil {
			ch.Close()
			if ae := lateRefusal(err); ae != nil {
				return nil, &PhaseError{PhaseTLSHandshake, ae}
			}
			return nil, &PhaseError{PhaseHello, ctxErr(ctx, ctx, err)}
		}
	}
	s := NewStream(ch)
	s.raw = raw
	s.peer = peer
	s.who = who
	s.SetRateLimit(cfg.RateLimit)
	s.SetStallTimeout(cfg.StallTimeout)
	// A failure from here on belongs to the last phase entered: hello, or
	// with Raw the handshake or connect phase.
	if err := ctx.Err(); err != nil {
		s.Close()
		return nil, &PhaseError{t.Phase(), err}
	}
	if p.onReady != nil {
		// Once onReady has taken s (a Server hands it to a Session that
		// AcceptSession may return at once), s is no longer the task's to
		// close: not even if ctx ends now, as when the Server is closed
		// right after AcceptSession.
		if err := p.onReady(s); err != nil {
			s.Close()
			return nil, &PhaseError{t.Phase(), err}
		}
	}
	return s, nil
}

// ctxErr prefers the end of a context over the I/O error it provoked (a
// closed socket says nothing more): outer's cause when outer ended, or a
// timeout of this package that ended inner.
func ctxErr(outer, inner context.Context, err error) error {
	if outer.Err() != nil {
		return context.Cause(outer)
	}
	if c := context.Cause(inner); c != nil && inner.Err() != nil {
		var te *timeoutError
		if errors.As(c, &te) {
			return c
		}
	}
	return err
}

// lateRefusal returns the TLS alert in err when the peer refused the
// handshake after this side had finished it: with TLS 1.3 a client
// learns that its certificate was refused only from the first record it
// reads, here the hello. That failure belongs to the TLS handshake, not
// to the hello.
func lateRefusal(err error) *channel.AlertError {
	var ae *channel.AlertError
	if errors.As(err, &ae) && (ae.BeforeData || ae.InHandshake) {
		return ae
	}
	return nil
}

// tlsSetup is the TLS configuration a task resolved.
type tlsSetup struct {
	creds    *crypto.Creds
	hostname string
	authz    crypto.Authz
}

// resolveTLS merges the tls-* options and looks the objects up, before any
// connection is made.
func resolveTLS(addr uri.Address, cfg *Config, dial bool) (*tlsSetup, error) {
	params, err := cfg.tlsParams(addr)
	if err != nil || params.Creds == "" {
		return nil, err
	}
	if cfg.Registry == nil {
		return nil, fmt.Errorf("migration: tls-creds %q: Config.Registry is nil", params.Creds)
	}
	creds, err := cfg.Registry.Creds(params.Creds)
	if err != nil {
		return nil, fmt.Errorf("migration: tls-creds %q: %w", params.Creds, err)
	}
	want, wantName := crypto.Server, "server"
	if dial {
		want, wantName = crypto.Client, "client"
	}
	if creds.Endpoint() != want {
		side := "the destination (which accepts)"
		if dial {
			side = "the source (which dials)"
		}
		if cfg.DialBack {
			side = "the side that accepts (the source with DialBack)"
			if dial {
				side = "the side that dials (the destination with DialBack)"
			}
		}
		return nil, fmt.Errorf("migration: tls-creds %q: %s needs endpoint=%s credentials", params.Creds, side, wantName)
	}
	sec := &tlsSetup{creds: creds}
	if dial {
		merged := addr
		merged.TLS = params
		sec.hostname = tlsHostname(merged)
		if creds.Kind() == crypto.X509 && needsTLSHostname(merged) {
			return nil, fmt.Errorf("migration: tls-creds %q: x509 credentials need tls-hostname on %s: addresses (only tcp: gives a host name)", params.Creds, addr.Transport)
		}
	} else if params.Authz != "" {
		sec.authz, err = cfg.Registry.Authz(params.Authz)
		if err != nil {
			return nil, fmt.Errorf("migration: tls-authz %q: %w", params.Authz, err)
		}
	}
	return sec, nil
}

// handshake wraps ch and runs the TLS or DTLS handshake within
// HandshakeTimeout.
func (sec *tlsSetup) handshake(ctx context.Context, ch channel.Channel, dial bool, cfg *Config) (channel.Channel, error) {
	hctx, cancel := context.WithTimeoutCause(ctx, cfg.HandshakeTimeout, &timeoutError{"tls handshake", cfg.HandshakeTimeout})
	defer cancel()
	stop := context.AfterFunc(hctx, func() { ch.Close() })
	defer stop()
	var (
		wrapped any
		err     error
	)
	if sec.creds.Kind() == crypto.PSK {
		d := channel.NewDTLS(ch, sec.creds, &channel.DTLSOptions{Authz: sec.authz, Logf: cfg.Logf})
		wrapped, err = d, d.Handshake(hctx)
	} else {
		t := channel.NewTLS(ch, sec.creds, &channel.TLSOptions{TLSOptions: crypto.TLSOptions{Hostname: sec.hostname, Authz: sec.authz}, Raw: cfg.Raw})
		wrapped, err = t, t.Handshake(hctx)
	}
	if err != nil {
		return nil, ctxErr(ctx, hctx, err)
	}
	if !stop() {
		return nil, ctxErr(ctx, hctx, errors.New("migration: handshake interrupted"))
	}
	return asChannel(wrapped)
}

// asChannel returns v as a Channel. The wrappers of package channel all
// implement it; the check keeps this package building while one of them
// is a stub.
func asChannel(v any) (channel.Channel, error) {
	c, ok := v.(channel.Channel)
	if !ok {
		return nil, fmt.Errorf("migration: %T does not implement channel.Channel", v)
	}
	return c, nil
}
