package migration

import "fmt"

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
// req has passed Hello.UnmarshalBinary.
func (t *slots) take(req *Hello, who string) (Status, error) {
	n, i := len(t.taken), int(req.Index)
	switch {
	case int(req.Channels) != n:
		return StatusMismatch, &HelloMismatchError{Field: "count", Local: fmt.Sprint(n), Remote: fmt.Sprint(req.Channels)}
	case i >= n:
		return StatusMismatch, &HelloMismatchError{Field: "index", Local: fmt.Sprintf("0..%d", n-1), Remote: fmt.Sprint(i)}
	case req.Role != roleOf(i):
		return StatusMismatch, &HelloMismatchError{Field: "role", Local: roleOf(i).String(), Remote: req.Role.String()}
	case t.who != "" && who != t.who:
		return StatusForbidden, fmt.Errorf("migration: %s channel %d for session %s comes from %s, but the session belongs to %s", req.Role, i, t.id, who, t.who)
	case t.taken[i]:
		return StatusDuplicate, fmt.Errorf("migration: session %s: %s channel %d arrived twice", t.id, req.Role, i)
	}
	t.taken[i] = true
	t.who = who
	return StatusOK, nil
}
