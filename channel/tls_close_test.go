package channel_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/testpki"
	"github.com/livemig/livemig/internal/testwait"
)

// TestTLSCloseBeforeHandshake: Close before any handshake keeps one from
// starting; Handshake, Read and Write then fail with net.ErrClosed.
func TestTLSCloseBeforeHandshake(t *testing.T) {
	p := testpki.New(t, nil)
	cc := secMust(t, p.ClientDir, crypto.Client, nil)
	ci, _ := secSocketPair(t, "tcp")
	c := channel.NewTLS(ci, cc, &channel.TLSOptions{TLSOptions: crypto.TLSOptions{Hostname: "localhost"}})
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.Handshake(context.Background()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Handshake after Close = %v, want net.ErrClosed", err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after Close = %v, want net.ErrClosed", err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close = %v, want net.ErrClosed", err)
	}
	if err := c.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close = %v, want net.ErrClosed", err)
	}
}

// TestTLSCloseDuringImplicitHandshake: a Read runs the handshake
// implicitly and blocks on a peer that never answers; a Write and a
// Handshake called meanwhile wait for that handshake. Close must not wait
// for any of them, and all three end with net.ErrClosed.
func TestTLSCloseDuringImplicitHandshake(t *testing.T) {
	p := testpki.New(t, nil)
	cc := secMust(t, p.ClientDir, crypto.Client, nil)
	ci, _ := secSocketPair(t, "tcp") // the peer never answers
	c := channel.NewTLS(ci, cc, &channel.TLSOptions{TLSOptions: crypto.TLSOptions{Hostname: "localhost"}})
	defer c.Close()
	read := testwait.Go(func() error { _, err := c.Read(make([]byte, 10)); return err })
	read.Blocked(t)
	write := testwait.Go(func() error { _, err := c.Write([]byte("x")); return err })
	write.Blocked(t)
	hs := testwait.Go(func() error { return c.Handshake(context.Background()) })
	hs.Blocked(t)
	testwait.Go(c.Close).Result(t, "Close during a blocked handshake")
	for what, call := range map[string]*testwait.Call[error]{"Read": read, "Write": write, "Handshake": hs} {
		if err := call.Result(t, what+" after Close"); !errors.Is(err, net.ErrClosed) {
			t.Errorf("%s after Close = %v, want net.ErrClosed", what, err)
		}
	}
}

// TestTLSHandshakeWaiterCancel: a Handshake that waits for another one
// running returns when its own context ends, without ending the running
// handshake, which then completes.
func TestTLSHandshakeWaiterCancel(t *testing.T) {
	p := testpki.New(t, nil)
	cc := secMust(t, p.ClientDir, crypto.Client, nil)
	sc := secMust(t, p.ServerDir, crypto.Server, nil)
	ci, si := secSocketPair(t, "tcp")
	c := channel.NewTLS(ci, cc, &channel.TLSOptions{TLSOptions: crypto.TLSOptions{Hostname: "localhost"}})
	s := channel.NewTLS(si, sc, nil)
	t.Cleanup(func() { c.Close(); s.Close() })
	first := testwait.Go(func() error { return c.Handshake(testwait.Context(t)) })
	first.Blocked(t) // the server has not started: the client waits
	ctx, cancel := context.WithCancel(context.Background())
	waiter := testwait.Go(func() error { return c.Handshake(ctx) })
	waiter.Blocked(t)
	cancel()
	if err := waiter.Result(t, "the waiting Handshake after cancel"); !errors.Is(err, context.Canceled) {
		t.Errorf("waiting Handshake = %v, want context.Canceled", err)
	}
	if err := s.Handshake(testwait.Context(t)); err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	if err := first.Result(t, "the running handshake"); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := c.Handshake(ctx); err != nil {
		t.Errorf("Handshake after success = %v, want its recorded result nil", err)
	}
}

// TestTLSCloseUnblocksReadSendsCloseNotify: Close while a Read waits for
// data unblocks it with net.ErrClosed and, no Write being in flight,
// sends close_notify: the peer (not Raw) reads io.EOF, which it would not
// for a connection cut without close_notify.
func TestTLSCloseUnblocksReadSendsCloseNotify(t *testing.T) {
	p := testpki.New(t, nil)
	cc := secMust(t, p.ClientDir, crypto.Client, nil)
	sc := secMust(t, p.ServerDir, crypto.Server, nil)
	c, s, cerr, serr := secTLSPair(t, "tcp", cc, sc, &channel.TLSOptions{TLSOptions: crypto.TLSOptions{Hostname: "localhost"}}, nil, testwait.Context(t))
	if cerr != nil || serr != nil {
		t.Fatalf("handshake: client %v, server %v", cerr, serr)
	}
	read := testwait.Go(func() error { _, err := c.Read(make([]byte, 10)); return err })
	read.Blocked(t)
	if err := testwait.Go(c.Close).Result(t, "Close during a blocked Read"); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := read.Result(t, "Read after Close"); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after Close = %v, want net.ErrClosed", err)
	}
	si := s.NetConn()
	_ = si.SetReadDeadline(testwait.Deadline(t))
	if b, err := io.ReadAll(s); err != nil || len(b) != 0 {
		t.Errorf("peer read %q, %v; want nothing and close_notify's io.EOF", b, err)
	}
}
