package migration

import (
	"fmt"
	"sync"
)

// dialBackPlacer places the channels a dial-back source accepts from its
// destination: each must name the source's session (or none), announce
// the session's channel count, take a free index with the right role,
// and come from the same peer identity as the first channel placed. Its
// place method may be called from any goroutine.
type dialBackPlacer struct {
	id    SessionID
	roles []Role // by index

	mu    sync.Mutex
	taken []bool
	who   string // the identity of the first channel placed
}

func newDialBackPlacer(id SessionID, roles []Role) *dialBackPlacer {
	return &dialBackPlacer{id: id, roles: roles, taken: make([]bool, len(roles))}
}

// place is a placeFunc.
func (d *dialBackPlacer) place(req *Hello, who string, reply *Hello) (Status, error) {
	n := len(d.roles)
	if !req.Session.IsZero() && req.Session != d.id {
		return StatusUnknownSession, &HelloMismatchError{Field: "session", Local: d.id.String(), Remote: req.Session.String()}
	}
	if int(req.Channels) != n {
		return StatusMismatch, &HelloMismatchError{Field: "count", Local: fmt.Sprint(n), Remote: fmt.Sprint(req.Channels)}
	}
	i := int(req.Index)
	if i >= n {
		return StatusMismatch, &HelloMismatchError{Field: "index", Local: fmt.Sprintf("0..%d", n-1), Remote: fmt.Sprint(i)}
	}
	if req.Role != d.roles[i] {
		return StatusMismatch, &HelloMismatchError{Field: "role", Local: d.roles[i].String(), Remote: req.Role.String()}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.who != "" && who != d.who {
		return StatusForbidden, fmt.Errorf("migration: session %s: %s channel %d comes from %s, but the session's channels come from %s", d.id, req.Role, i, who, d.who)
	}
	if d.taken[i] {
		return StatusDuplicate, fmt.Errorf("migration: session %s: %s channel %d arrived twice", d.id, req.Role, i)
	}
	d.taken[i] = true
	d.who = who
	reply.Session, reply.Role, reply.Index, reply.Channels = d.id, req.Role, req.Index, req.Channels
	return StatusOK, nil
}
