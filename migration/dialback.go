package migration

import (
	"sync"

	"github.com/livemig/livemig/internal/hello"
)

// dialBackPlacer places the channels a dial-back source accepts from its
// destination: each must name the source's session (or none) and fit its
// slots. Its place method may be called from any goroutine.
type dialBackPlacer struct {
	mu    sync.Mutex
	slots *slots
}

func newDialBackPlacer(id SessionID, n int) *dialBackPlacer {
	return &dialBackPlacer{slots: newSlots(id, n)}
}

// place is a placeFunc.
func (d *dialBackPlacer) place(req *hello.Hello, who string, reply *hello.Hello) (hello.Status, error) {
	id := d.slots.id
	if rid := SessionID(req.Session); !rid.IsZero() && rid != id {
		return hello.StatusUnknownSession, &HelloMismatchError{Field: "session", Local: id.String(), Remote: rid.String()}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if st, err := d.slots.take(req, who); st != hello.StatusOK {
		return st, err
	}
	reply.Session, reply.Role, reply.Index, reply.Channels = id, req.Role, req.Index, req.Channels
	return hello.StatusOK, nil
}
