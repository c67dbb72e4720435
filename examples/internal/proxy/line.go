package proxy

import (
	"sync"

	"github.com/livemig/livemig/migration"
)

// line keeps the accepted connections in the order of accept and passes
// them to handOn in that order once each has finished its handshake and
// hello, with one exception: a connection whose peer had sent nothing at
// all when a later one became ready loses its place, and goes on
// whenever it is ready. So an idle connection (a port scanner, a stray
// client) holds up no one, while a connection whose handshake is under
// way (as the main channel's still is, on the server side, when a TLS
// 1.3 client has finished and opens its multifd channels) keeps the
// connections accepted after it waiting until it is ready or refused.
type line struct {
	mu    sync.Mutex
	queue []*place       // accepted, not yet passed to out, in accept order
	out   chan readyConn // to handOn; buffered for every slot, so never full
}

// place is an accepted connection in the line.
type place struct {
	n      int
	sent   func() bool       // whether the peer has sent any bytes yet
	done   bool              // ready or refused
	st     *migration.Stream // the ready connection; nil if refused
	passed bool              // lost its place: waited for by no one
}

func newLine(slots int) *line {
	return &line{out: make(chan readyConn, slots)}
}

// join puts connection n at the end of the line. sent reports whether its
// peer has sent anything yet; it must be safe to call after the
// connection is closed, and report true when it cannot tell.
func (l *line) join(n int, sent func() bool) *place {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := &place{n: n, sent: sent}
	l.queue = append(l.queue, p)
	return p
}

// ready marks p as done: set up if st is non-nil, else refused. It passes
// on every connection that no longer waits for one ahead of it.
func (l *line) ready(p *place, st *migration.Stream) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p.done, p.st = true, st
	if st != nil {
		for _, q := range l.queue {
			if q == p {
				break
			}
			if !q.done && !q.passed && !q.sent() {
				q.passed = true
			}
		}
	}
	keep := l.queue[:0]
	blocked := false
	for _, q := range l.queue {
		switch {
		case q.done && !blocked:
			if q.st != nil {
				l.out <- readyConn{q.n, q.st}
			}
		case !q.done && !q.passed:
			blocked = true
			keep = append(keep, q)
		default:
			keep = append(keep, q)
		}
	}
	clear(l.queue[len(keep):])
	l.queue = keep
}

// drain aborts the ready connections that handOn did not take. Call it
// once every connection in the line is done and handOn has returned.
func (l *line) drain() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, q := range l.queue {
		if q.st != nil {
			q.st.Abort()
		}
	}
	l.queue = nil
	for {
		select {
		case c := <-l.out:
			c.st.Abort()
		default:
			return
		}
	}
}
