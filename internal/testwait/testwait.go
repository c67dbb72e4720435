// Package testwait lets tests wait for a condition instead of for a
// duration, so that a slow or busy machine can only make a test take
// longer, never fail it.
//
// A test that waits "long enough" (a sleep before acting, a select on
// time.After that fails the test) races against the machine: under -race
// on two cores shared with other work, any fixed duration can pass before
// the awaited thing happens. The helpers here wait for the thing itself:
//
//   - [Until] polls a condition; [Recv] receives from a channel.
//   - [Go] starts a call in a goroutine whose state the test can observe:
//     [Call.Blocked] returns once the goroutine is parked (in IO wait, on a
//     channel, in sync.Cond.Wait...), which proves the call is blocked,
//     rather than sleeping and hoping it is.
//   - [Context] and [Deadline] bound what may hang forever (a bug) by the
//     test binary's own -timeout, minus a tenth of it, so that the test
//     fails naming the step that hung instead of the binary panicking.
//
// None of them is for use inside a testing/synctest bubble, where
// T.Deadline must not be called; in a bubble, time is fake and
// synctest.Wait tells when every goroutine is blocked.
package testwait

import (
	"bytes"
	"context"
	"flag"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Deadline returns when a wait that may never end should give up: a
// tenth of the test binary's -timeout before it expires, which leaves the
// failing test time to report and clean up. The zero Time means never
// (go test -timeout 0, or a testing.TB without a deadline).
func Deadline(t testing.TB) time.Time {
	d, ok := t.(interface{ Deadline() (time.Time, bool) })
	if !ok {
		return time.Time{}
	}
	end, ok := d.Deadline()
	if !ok {
		return time.Time{}
	}
	margin := time.Until(end) / 10
	if f := flag.Lookup("test.timeout"); f != nil {
		if g, ok := f.Value.(flag.Getter); ok {
			if timeout, ok := g.Get().(time.Duration); ok && timeout > 0 {
				margin = timeout / 10
			}
		}
	}
	return end.Add(-margin)
}

// Context returns a context that ends when the test does (t.Context) or
// at [Deadline], whichever comes first. Pass it to calls that take a
// context and must not hang the test.
func Context(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	if d := Deadline(t); !d.IsZero() {
		ctx, cancel = context.WithDeadline(t.Context(), d)
	}
	t.Cleanup(cancel)
	return ctx
}

// timeout returns a channel that fires at Deadline (nil: never) and a
// function that releases its timer.
func timeout(t testing.TB) (<-chan time.Time, func()) {
	d := Deadline(t)
	if d.IsZero() {
		return nil, func() {}
	}
	tm := time.NewTimer(time.Until(d))
	return tm.C, func() { tm.Stop() }
}

// Until calls cond, with short pauses, until it returns true. If Deadline
// passes first, it fails the test with what (a description of the
// condition awaited).
func Until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	expired, stop := timeout(t)
	defer stop()
	pause := time.Millisecond
	for !cond() {
		select {
		case <-expired:
			t.Fatalf("%s: still not the case as the test binary's -timeout nears", what)
		case <-time.After(pause):
		}
		pause = min(2*pause, 20*time.Millisecond)
	}
}

// Recv receives a value from ch. If Deadline passes first, it fails the
// test with what (a description of the awaited event).
func Recv[T any](t testing.TB, what string, ch <-chan T) T {
	t.Helper()
	expired, stop := timeout(t)
	defer stop()
	select {
	case v := <-ch:
		return v
	case <-expired:
		t.Fatalf("%s: still blocked as the test binary's -timeout nears", what)
		panic("unreachable")
	}
}

// A Call is a function running in its own goroutine, started by [Go].
type Call[T any] struct {
	id   string // the goroutine's id, as runtime.Stack prints it
	done chan T
}

// Go calls f in a new goroutine and returns at once.
func Go[T any](f func() T) *Call[T] {
	c := &Call[T]{done: make(chan T, 1)}
	ids := make(chan string, 1)
	go func() {
		ids <- goroutineID()
		c.done <- f()
	}()
	c.id = <-ids
	return c
}

// goroutineID returns the calling goroutine's id.
func goroutineID() string {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b, _ = bytes.CutPrefix(b, []byte("goroutine "))
	id, _, _ := bytes.Cut(b, []byte(" "))
	return string(id)
}

// Done returns a channel that receives f's result when it returns.
func (c *Call[T]) Done() <-chan T { return c.done }

// Result waits for f to return and returns its result; if Deadline passes
// first, it fails the test with what (a description of the call).
func (c *Call[T]) Result(t testing.TB, what string) T {
	t.Helper()
	return Recv(t, what, c.done)
}

// Blocked waits until the call's goroutine is parked: waiting for I/O
// (the runtime poller), on a channel or select, in sync.Cond.Wait,
// sync.WaitGroup.Wait or time.Sleep. It also returns once f has returned
// (Result then has its value). A goroutine waiting for a sync.Mutex does
// not count, since that wait is usually momentary; nor does one in a
// system call, running, or runnable. If Deadline passes first, it fails
// the test.
//
// Blocked observes the goroutine's state through runtime.Stack, the state
// a goroutine dump shows.
func (c *Call[T]) Blocked(t testing.TB) {
	t.Helper()
	Until(t, "goroutine "+c.id+" blocking", func() bool {
		state, alive := goroutineState(c.id)
		return !alive || parked(state)
	})
}

// goroutineState returns the wait reason or status of goroutine id as a
// goroutine dump prints it ("IO wait", "select", "runnable"...), and
// whether the goroutine exists.
func goroutineState(id string) (string, bool) {
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	prefix := "goroutine " + id + " "
	for _, g := range strings.Split(string(buf), "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		if !strings.HasPrefix(header, prefix) {
			continue
		}
		// "goroutine 7 [IO wait, 2 minutes]:", "goroutine 7 gp=... [select (durable)]:".
		_, state, _ := strings.Cut(header, "[")
		state, _, _ = strings.Cut(state, "]")
		state, _, _ = strings.Cut(state, ",")
		for _, suffix := range []string{" (scan)", " (durable)", " (leaked)"} {
			state = strings.TrimSuffix(state, suffix)
		}
		return state, true
	}
	return "", false
}

// parked reports whether a goroutine in state waits for something else to
// happen, as opposed to running, waiting to run, or waiting for a lock.
func parked(state string) bool {
	switch state {
	case "IO wait", "select", "select (no cases)", "chan receive", "chan send",
		"chan receive (nil chan)", "chan send (nil chan)",
		"sync.Cond.Wait", "sync.WaitGroup.Wait", "semacquire", "sleep":
		return true
	}
	return false
}
