package migration

import (
	"context"

	"testing"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/internal/hello"
)

// TestReadyStreamSurvivesCancel: once onReady has taken a task's stream
// (a Server hands it to a Session, which AcceptSession returns), ending
// the task's context must not close it. A destination that called
// Server.Close right after AcceptSession lost its last channel this way
// ("stream closed: use of closed network connection"): the task checked
// its context after onReady and closed the stream it no longer owned.
func TestReadyStreamSurvivesCancel(t *testing.T) {
	ln, err := Listen(testCtx(t), mustParse(t, "tcp:127.0.0.1:0"), &Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srcc := make(chan *Stream, 1)
	go func() {
		s, err := Dial(testCtx(t), ln.Addr(), &Config{})
		if err != nil {
			t.Error(err)
		}
		srcc <- s
	}()
	ch, err := ln.open(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := ln.destPlan(func(req *hello.Hello, _ string, reply *hello.Hello) (hello.Status, error) {
		reply.Session = req.Session
		return hello.StatusOK, nil
	})
	p.open = func(context.Context) (channel.Channel, error) { return ch, nil }
	var taken *Stream
	p.onReady = func(s *Stream) error {
		taken = s
		cancel() // the owner of the task's context goes away, as Server.Close
		return nil
	}
	got, err := p.start(ctx).Wait(context.Background())
	src := <-srcc
	if src == nil {
		t.FailNow()
	}
	defer src.Close()
	if err != nil || got != taken {
		t.Fatalf("task after onReady took its stream: %v, %v; want the stream and no error", got, err)
	}
	defer got.Close()
	src.PutBuffer([]byte("still open"))
	if err := src.Flush(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if _, err := got.GetBuffer(buf); err != nil || string(buf) != "still open" {
		t.Fatalf("reading the handed-over stream: %q, %v", buf, err)
	}
}
