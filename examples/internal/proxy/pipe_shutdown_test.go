package proxy

import (
	"context"
	"io"
	"testing"

	"github.com/livemig/livemig/internal/testwait"
	"github.com/livemig/livemig/migration"
	"github.com/livemig/livemig/uri"
)

// TestPipeCancelIsError cuts a connection by cancelling pipe's
// context over real tcp sockets: pipe must report the cut, not a clean
// close (the shut channels read as EOF when read directly).
func TestPipeCancelIsError(t *testing.T) {
	ctx := testwait.Context(t)
	laddr, err := uri.Parse("tcp:127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &migration.Config{Raw: true}
	// Two connections: source peer -> a (proxy side), b (proxy side) -> destination peer.
	pair := func() (peer, proxySide *migration.Stream) {
		ln, err := migration.Listen(ctx, laddr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		daddr, err := uri.Parse("tcp:127.0.0.1:" + ln.Addr().Inet.Port)
		if err != nil {
			t.Fatal(err)
		}
		dialed := make(chan *migration.Stream, 1)
		go func() {
			st, err := migration.Dial(ctx, daddr, cfg)
			if err != nil {
				t.Error(err)
			}
			dialed <- st
		}()
		acc, err := ln.Accept(ctx)
		if err != nil {
			t.Fatal(err)
		}
		d := <-dialed
		if d == nil {
			t.FailNow()
		}
		return d, acc
	}
	src, a := pair()
	b, dst := pair()
	defer src.Close()
	defer dst.Close()
	// The source sends a little and then pauses, as a migration
	// waiting for its destination: the proxy's reads block.
	if _, err := src.Channel().Write(make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, readerOnly{dst.Channel()}) }()
	pctx, pcancel := context.WithCancel(ctx)
	p := testwait.Go(func() error { return pipe(pctx, 1, a, b, false, t.Logf) })
	p.Blocked(t) // waiting for its copies, whose reads block
	pcancel()
	err = p.Result(t, "pipe after its context was cancelled")
	if err == nil {
		t.Fatal("pipe cut by its context returned nil, as for a clean close")
	}
	t.Logf("pipe: %v", err)
}
