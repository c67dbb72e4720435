package migration

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/livemig/livemig/internal/hello"
)

// PhaseError is the error of a failed [Task]: the phase in which it failed
// and why. Err is never nil; errors.Is and errors.As see through it, so a
// cancelled task's error matches context.Canceled and a closed socket's
// net.ErrClosed.
type PhaseError struct {
	Phase Phase // the phase that failed; never PhaseReady or PhaseFailed
	Err   error
}

// Error returns "migration: PHASE: cause".
func (e *PhaseError) Error() string {
	return "migration: " + e.Phase.String() + ": " + strings.TrimPrefix(e.Err.Error(), "migration: ")
}

// Unwrap returns e.Err.
func (e *PhaseError) Unwrap() error { return e.Err }

// HelloMismatchError reports a hello whose field does not fit this side's
// configuration. Local and Remote are the two values as text. The peer's
// values appear only in the local error: they are never sent back to the
// peer, which learns only a refusal code (see [RefusedError]).
type HelloMismatchError struct {
	Field  string // "magic", "version", "direction", "session", "role", "index", "count", "kind"
	Local  string // what this side expected
	Remote string // what the peer sent
}

// Error names the field and both values.
func (e *HelloMismatchError) Error() string {
	return fmt.Sprintf("migration: hello mismatch: %s: local %s, remote %s", e.Field, e.Local, e.Remote)
}

// RefusedError is what a side learns when its peer refused the channel in
// its hello reply: the session it asked for (its own value), the
// channel's index in it, and the peer's reason. The peer sends a code
// only, never what it expected, so Reason is one of a few fixed texts,
// such as "unknown session" or "session of another peer".
type RefusedError struct {
	Session SessionID
	Index   int    // 0 for the main channel, 1.. for multifd channels
	Reason  string // the peer's reason, such as "unknown session"

	status hello.Status // the code Reason describes
}

func newRefusedError(id SessionID, index int, st hello.Status) *RefusedError {
	return &RefusedError{Session: id, Index: index, Reason: st.String(), status: st}
}

// Error names the channel, the session and the peer's reason, such as
// "migration: peer refused multifd channel 1 of session 0f1e…: session of
// another peer".
func (e *RefusedError) Error() string {
	return fmt.Sprintf("migration: peer refused %s channel %d of session %s: %s", roleOf(e.Index), e.Index, e.Session, e.Reason)
}

// Temporary reports whether trying later may succeed: it is true only
// when the peer was busy, holding as many pending sessions as it allows
// (from this peer or in all; see [Config].MaxPendingSessions and
// MaxPendingPerPeer). Every other refusal holds for the same request
// later too: an unknown, expired or foreign session, a duplicate channel,
// a mismatch, or a peer that is shutting down.
func (e *RefusedError) Temporary() bool { return e.status == hello.StatusBusy }

// SessionError reports a session that a [Server] gave up on: it expired
// before every announced channel arrived. Missing names the channels that
// never came, such as "multifd 2".
type SessionError struct {
	Session SessionID
	Missing []string
	Err     error // the cause, such as a timeout; may be nil
}

// Error names the session, the missing channels and the cause.
func (e *SessionError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "migration: session %s", e.Session)
	if len(e.Missing) > 0 {
		fmt.Fprintf(&b, ": missing channels: %s", strings.Join(e.Missing, ", "))
	}
	if e.Err != nil {
		b.WriteString(": " + strings.TrimPrefix(e.Err.Error(), "migration: "))
	}
	return b.String()
}

// Unwrap returns e.Err.
func (e *SessionError) Unwrap() error { return e.Err }

// timeoutError is returned when a timeout of Config ends a phase; it
// implements net.Error.
type timeoutError struct {
	what  string
	after time.Duration // the bound that passed
}

func (e *timeoutError) Error() string {
	return fmt.Sprintf("migration: %s timed out after %v", e.what, e.after)
}
func (e *timeoutError) Timeout() bool   { return true }
func (e *timeoutError) Temporary() bool { return true }

// ErrStreamShutdown is the sticky error of a Stream after Shutdown, and the
// cause of reads and writes that Shutdown interrupted. It wraps net.ErrClosed.
var ErrStreamShutdown = fmt.Errorf("migration: stream shut down: %w", net.ErrClosed)

// ErrFrame reports a malformed stripe frame of a multi-channel Session.
var ErrFrame = errors.New("migration: malformed stripe frame")

// unprefixed is err's text without its leading "migration: ", for a log
// line or message that already starts with the package prefix.
func unprefixed(err error) string {
	return strings.TrimPrefix(err.Error(), "migration: ")
}
