package testwait

import (
	"os"
	"sync"
	"testing"

	"github.com/livemig/livemig/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// TestBlocked: a call blocked on a channel, on a pipe (the runtime
// poller) and in sync.Cond.Wait is seen as blocked; its result still
// arrives once it is released.
func TestBlocked(t *testing.T) {
	ch := make(chan int)
	c := Go(func() int { return <-ch })
	c.Blocked(t)
	if state, _ := goroutineState(c.id); state != "chan receive" {
		t.Errorf("state %q, want chan receive", state)
	}
	ch <- 7
	if got := c.Result(t, "receive"); got != 7 {
		t.Errorf("Result = %d, want 7", got)
	}

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	read := Go(func() error { _, err := r.Read(make([]byte, 1)); return err })
	read.Blocked(t)
	if state, _ := goroutineState(read.id); state != "IO wait" {
		t.Errorf("state %q, want IO wait", state)
	}
	w.Close()
	if err := read.Result(t, "pipe read"); err == nil {
		t.Error("read of a closed pipe succeeded")
	}

	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	ready := false
	wait := Go(func() bool {
		mu.Lock()
		defer mu.Unlock()
		for !ready {
			cond.Wait()
		}
		return ready
	})
	wait.Blocked(t)
	mu.Lock()
	ready = true
	cond.Broadcast()
	mu.Unlock()
	wait.Result(t, "cond wait")
}

// TestBlockedReturned: Blocked returns for a call that has already
// returned.
func TestBlockedReturned(t *testing.T) {
	c := Go(func() int { return 1 })
	<-c.Done()
	c.Blocked(t)
}

// TestNotParked: running, runnable, lock and system-call states are not a
// blocked call.
func TestNotParked(t *testing.T) {
	for _, s := range []string{"running", "runnable", "syscall", "sync.Mutex.Lock", "sync.RWMutex.RLock", "preempted", "GC assist wait", ""} {
		if parked(s) {
			t.Errorf("parked(%q) = true", s)
		}
	}
	for _, s := range []string{"IO wait", "select", "chan receive", "chan send", "sync.Cond.Wait", "sleep"} {
		if !parked(s) {
			t.Errorf("parked(%q) = false", s)
		}
	}
}

// TestDeadline: the give-up time comes a tenth of -timeout before the
// binary's deadline.
func TestDeadline(t *testing.T) {
	end, ok := t.Deadline()
	d := Deadline(t)
	if !ok {
		if !d.IsZero() {
			t.Fatalf("Deadline = %v without a test deadline", d)
		}
		return
	}
	if !d.Before(end) {
		t.Fatalf("Deadline = %v, not before the binary's %v", d, end)
	}
	ctx := Context(t)
	if cd, ok := ctx.Deadline(); !ok || !cd.Equal(d) {
		t.Fatalf("Context deadline %v, %v; want %v", cd, ok, d)
	}
}

func TestUntil(t *testing.T) {
	n := 0
	Until(t, "three calls", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Fatalf("cond called %d times, want 3", n)
	}
	ch := make(chan string, 1)
	ch <- "x"
	if got := Recv(t, "x", ch); got != "x" {
		t.Fatalf("Recv = %q", got)
	}
}
