package channel

import (
	"testing"
	"time"

	"github.com/livemig/livemig/internal/testwait"
)

// TestDeadlineSetAfterStop: setting a deadline again after stop (which
// dtlsStreamConn.Close calls, and pion may still set deadlines after it)
// must not wait forever for a timer that stop cancelled.
func TestDeadlineSetAfterStop(t *testing.T) {
	d := makeDeadline()
	d.set(time.Now().Add(time.Hour))
	d.stop()
	set := testwait.Go(func() bool {
		d.set(time.Time{})
		d.set(time.Unix(1, 0))
		return true
	})
	set.Result(t, "set after stop")
	select {
	case <-d.wait():
	default:
		t.Error("a deadline in the past is not reported as passed")
	}
}
