package leakcheck

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/livemig/livemig/internal/testwait"
)

func TestWaitSeesLeakAndItsEnd(t *testing.T) {
	stop := make(chan struct{})
	go func() { <-stop }()
	leaked := Wait(100 * time.Millisecond)
	if len(leaked) != 1 || !strings.Contains(leaked[0], "TestWaitSeesLeakAndItsEnd") {
		t.Fatalf("Wait = %q, want the one goroutine this test started", leaked)
	}
	close(stop)
	// Until the test binary's -timeout nears: a busy machine may take a
	// while to end the goroutine.
	d := time.Duration(math.MaxInt64)
	if end := testwait.Deadline(t); !end.IsZero() {
		d = time.Until(end)
	}
	if leaked := Wait(d); len(leaked) != 0 {
		t.Fatalf("after the goroutine ended, Wait = %q, want none", leaked)
	}
}

// TestPatience: Main waits at least five seconds, and ends its wait a
// tenth of -timeout before the test binary's deadline.
func TestPatience(t *testing.T) {
	start := time.Now()
	p := patience(start)
	if p < 5*time.Second {
		t.Fatalf("patience %v, want at least 5s", p)
	}
	if end, ok := t.Deadline(); ok && !start.Add(p).Before(end) {
		t.Fatalf("patience %v runs past the binary's deadline %v", p, end)
	}
}
