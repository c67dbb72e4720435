package demovm

import (
	"sync"
	"sync/atomic"
	"time"
)

// IdleTimeout bounds how long the destination waits for the source's next
// record: a source that is alive but silent for this long fails the
// migration instead of holding the destination forever.
const IdleTimeout = 60 * time.Second

// idleWatch calls onIdle once when progress has not moved for limit.
type idleWatch struct {
	done  chan struct{}
	wg    sync.WaitGroup
	fired atomic.Bool
}

// watchIdle checks progress every limit/10 until stop.
func watchIdle(limit time.Duration, progress func() int64, onIdle func()) *idleWatch {
	w := &idleWatch{done: make(chan struct{})}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		tick := time.NewTicker(limit / 10)
		defer tick.Stop()
		last, since := progress(), time.Now()
		for {
			select {
			case <-w.done:
				return
			case now := <-tick.C:
				if p := progress(); p != last {
					last, since = p, now
				} else if now.Sub(since) >= limit {
					w.fired.Store(true)
					onIdle()
					return
				}
			}
		}
	}()
	return w
}

// stop ends the watch and waits for its goroutine; it reports whether
// onIdle ran.
func (w *idleWatch) stop() bool {
	select {
	case <-w.done:
	default:
		close(w.done)
	}
	w.wg.Wait()
	return w.fired.Load()
}
