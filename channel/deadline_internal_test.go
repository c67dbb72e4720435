package channel

import (
	"testing"
	"time"
)

// TestDeadlineSetAfterStop: setting a deadline again after stop (which
// dtlsStreamConn.Close calls, and pion may still set deadlines after it)
// must not wait forever for a timer that stop cancelled.
func TestDeadlineSetAfterStop(t *testing.T) {
	d := makeDeadline()
	d.set(time.Now().Add(time.Hour))
	d.stop()
	done := make(chan struct{})
	go func() {
		d.set(time.Time{})
		d.set(time.Unix(1, 0))
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("set after stop blocked")
	}
	select {
	case <-d.wait():
	default:
		t.Error("a deadline in the past is not reported as passed")
	}
}
