package migration

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/livemig/livemig/channel"
)

// AcceptChannel waits for the next connection and returns it as it
// arrived, before any TLS handshake or hello: the connect phase of
// [Listener.AcceptTask] alone. Hand the channel to [Listener.HandshakeTask]
// to finish it, or close it.
//
// The two let a caller accept without pause and run the handshakes of
// several connections at once, so that a peer that connects and then says
// nothing holds up its own connection only, while the caller still knows
// the order in which connections arrived. (Each AcceptTask accepts in its
// own goroutine, so concurrent AcceptTasks take connections in no defined
// order.)
//
// For exec, fd and file the first call returns the single channel that
// Listen opened; later calls fail at once with an error wrapping
// net.ErrClosed. With Config.DialBack it dials the source, within
// Config.ConnectTimeout. A failure is a *PhaseError of PhaseConnect.
func (l *Listener) AcceptChannel(ctx context.Context) (channel.Channel, error) {
	cctx, cancel := context.WithCancel(ctx)
	if l.cfg.DialBack {
		cctx, cancel = context.WithTimeoutCause(ctx, l.cfg.ConnectTimeout, &timeoutError{"connect", l.cfg.ConnectTimeout})
	}
	defer cancel()
	ch, err := l.open(cctx)
	if err != nil {
		return nil, &PhaseError{PhaseConnect, ctxErr(ctx, cctx, err)}
	}
	if err := ctx.Err(); err != nil {
		ch.Close()
		return nil, &PhaseError{PhaseConnect, err}
	}
	return ch, nil
}

// HandshakeTask starts a Task that takes ch, a channel from AcceptChannel,
// through the rest of what AcceptTask does: the TLS handshake when
// tls-creds is set, within Config.HandshakeTimeout, and the hello, within
// Config.HelloTimeout. With Config.Raw and no TLS the Task is ready at
// once. The context bounds the Task.
//
// The Task owns ch: it closes ch when it fails, whatever the phase, and
// once it is ready ch belongs to its Stream.
func (l *Listener) HandshakeTask(ctx context.Context, ch channel.Channel) *Task {
	if ch == nil {
		return failedTask(l.cfg, errors.New("migration: HandshakeTask: nil channel"))
	}
	p := l.destPlan(defaultPlace(l.cfg))
	// A task that fails before its connect phase (in resolve, or cancelled
	// at once) has not taken ch: close it here then.
	var taken atomic.Bool
	p.open = func(context.Context) (channel.Channel, error) {
		taken.Store(true)
		return ch, nil
	}
	t := p.start(ctx)
	go func() {
		<-t.done
		if t.err != nil && !taken.Load() {
			ch.Close()
		}
	}()
	return t
}
