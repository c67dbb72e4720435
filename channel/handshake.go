package channel

import (
	"context"
	"sync"
)

// hsPhase is where the handshake of a TLS or DTLS channel stands.
//
//	hsIdle ──Handshake──▶ hsRunning ──result──▶ hsDone
//	   │                                          ▲
//	   └───────────Close (net.ErrClosed)──────────┘
type hsPhase uint8

const (
	hsIdle    hsPhase = iota // no handshake has started
	hsRunning                // one goroutine runs it, others wait for done
	hsDone                   // err is the result, for good
)

// handshakeOnce runs a handshake once and lets Close find out, without
// waiting, whether one is running. Its mutex guards only its fields and is
// never held across I/O, so no caller waits for a blocked handshake to
// learn its phase (the TLS and DTLS Close used to spin on a mutex held
// for the whole handshake).
type handshakeOnce struct {
	mu    sync.Mutex
	phase hsPhase
	err   error         // the result, once phase is hsDone
	done  chan struct{} // closed when phase becomes hsDone; made lazily
}

// doneChanLocked returns done, making it on first use.
func (h *handshakeOnce) doneChanLocked() chan struct{} {
	if h.done == nil {
		h.done = make(chan struct{})
	}
	return h.done
}

// finishLocked moves to hsDone with err unless already there.
func (h *handshakeOnce) finishLocked(err error) {
	if h.phase == hsDone {
		return
	}
	h.phase, h.err = hsDone, err
	close(h.doneChanLocked())
}

// do runs hs if no handshake has started and records its result. If one
// is running in another goroutine it waits for that one's result, or for
// ctx, returning fail(ctx.Err()) without disturbing the running
// handshake. Later calls return the recorded result.
func (h *handshakeOnce) do(ctx context.Context, hs func() error, fail func(error) error) error {
	h.mu.Lock()
	switch h.phase {
	case hsDone:
		defer h.mu.Unlock()
		return h.err
	case hsRunning:
		done := h.doneChanLocked()
		h.mu.Unlock()
		select {
		case <-done:
			return h.result()
		case <-ctx.Done():
			return fail(ctx.Err())
		}
	}
	h.phase = hsRunning
	h.mu.Unlock()
	err := hs()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.finishLocked(err)
	return h.err
}

// result returns the recorded result, or nil while no handshake has
// completed.
func (h *handshakeOnce) result() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

// completed reports whether a handshake has ended and its result.
func (h *handshakeOnce) completed() (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.phase == hsDone, h.err
}

// stop is for Close. If no handshake has started, it records err as the
// result so that none will; it returns the phase it found and the result
// recorded by then (nil while running). It never waits.
func (h *handshakeOnce) stop(err error) (hsPhase, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.phase
	if p == hsIdle {
		h.finishLocked(err)
	}
	return p, h.err
}
