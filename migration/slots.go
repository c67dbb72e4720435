package migration

import (
	"fmt"

	"github.com/livemig/livemig/internal/hello"
)

// slots places the channels of one session, on whichever side accepts
// them: a Server (or a Listener) on the destination, or a dial-back
// source. Every channel must announce the session's channel count, take
// an index not taken yet with the role that index has, and come from the
// identity of the first channel placed. Callers serialise calls.
type slots struct {
	id    SessionID
	who   string // the identity of the first channel placed
	taken []bool // by index
}

func newSlots(id SessionID, n int) *slots {
	return &slots{id: id, taken: make([]bool, n)}
}

// take places req, from the peer whose identity is who, or says why not.
// req has passed decodeHello.
func (t *slots) take(req *hello.Hello, who string) (hello.Status, error) {
	n, i := len(t.taken), int(req.Index)
	switch {
	case int(req.Channels) != n:
		return hello.StatusMismatch, &HelloMismatchError{Field: "count", Local: fmt.Sprint(n), Remote: fmt.Sprint(req.Channels)}
	case i >= n:
		return hello.StatusMismatch, &HelloMismatchError{Field: "index", Local: fmt.Sprintf("0..%d", n-1), Remote: fmt.Sprint(i)}
	case req.Role != roleOf(i):
		return hello.StatusMismatch, &HelloMismatchError{Field: "role", Local: roleOf(i).String(), Remote: req.Role.String()}
	case t.who != "" && who != t.who:
		return hello.StatusForbidden, fmt.Errorf("migration: %s channel %d for session %s comes from %s, but the session belongs to %s", req.Role, i, t.id, who, t.who)
	case t.taken[i]:
		return hello.StatusDuplicate, fmt.Errorf("migration: session %s: %s channel %d arrived twice", t.id, req.Role, i)
	}
	t.taken[i] = true
	t.who = who
	return hello.StatusOK, nil
}
