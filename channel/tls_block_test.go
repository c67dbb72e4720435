package channel_test

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/testpki"
)

// secNoDeadline hides the inner channel's Deadliner, as a user's own
// Channel without deadlines would: crypto/tls's 5-second bound on
// close_notify does not apply then.
type secNoDeadline struct{ channel.Channel }

// secFillSendBuffer writes junk straight into the socket beneath a TLS
// channel until the kernel refuses more, so that the next write blocks
// while the peer does not read, with no Write in flight.
func secFillSendBuffer(t *testing.T, s *channel.Socket) {
	t.Helper()
	rc, err := s.NetConn().(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, 64<<10)
	var werr error
	err = rc.Write(func(fd uintptr) bool {
		for {
			_, err := syscall.Write(int(fd), junk)
			if err == syscall.EAGAIN {
				return true
			}
			if err != nil {
				werr = err
				return true
			}
		}
	})
	if err == nil {
		err = werr
	}
	if err != nil {
		t.Fatal(err)
	}
}

// secBlockedPair returns a handshaken TLS pair over tcp whose client's
// inner channel has no deadlines.
func secBlockedPair(t *testing.T) (c, s *channel.TLS, ci *channel.Socket) {
	t.Helper()
	p := testpki.New(t, nil)
	cc := secMust(t, p.ClientDir, crypto.Client, nil)
	sc := secMust(t, p.ServerDir, crypto.Server, nil)
	ci, si := secSocketPair(t, "tcp")
	c = channel.NewTLS(secNoDeadline{ci}, cc, crypto.Client, &channel.TLSOptions{Hostname: "localhost"})
	s = channel.NewTLS(si, sc, crypto.Server, nil)
	t.Cleanup(func() { c.Close(); s.Close() })
	secHandshakeBoth(t, c, s)
	return c, s, ci
}

// TestTLSCloseUnblocksBatchedWrite: a Write whose records were gathered
// into one batch blocks on the final write to the socket, after crypto/tls
// considers the Write done. Close must not queue close_notify behind it
// (which would wait for the peer to read, forever without deadlines): it
// unblocks the Write, which returns net.ErrClosed.
func TestTLSCloseUnblocksBatchedWrite(t *testing.T) {
	c, _, _ := secBlockedPair(t)
	msg := make([]byte, 8<<10) // well under one batch: gathered, then written at the end
	werr := make(chan error, 1)
	go func() {
		for {
			if _, err := c.Write(msg); err != nil {
				werr <- err
				return
			}
		}
	}()
	// Wait until the writer is stuck: the peer never reads.
	select {
	case err := <-werr:
		t.Fatalf("Write failed before Close: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	select {
	case <-closed:
	case <-time.After(20 * time.Second):
		t.Fatal("Close blocked behind a Write stuck on a peer that does not read")
	}
	select {
	case err := <-werr:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Write after Close = %v, want an error wrapping net.ErrClosed", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Close did not unblock the pending Write")
	}
}

// TestTLSShutdownFullBuffer: Shutdown(Write) with the socket's send buffer
// full and the peer not reading must return, even over a channel without
// deadlines; close_notify is then given up and the write side shut.
func TestTLSShutdownFullBuffer(t *testing.T) {
	c, _, ci := secBlockedPair(t)
	secFillSendBuffer(t, ci)
	done := make(chan error, 1)
	go func() { done <- c.Shutdown(channel.Write) }()
	select {
	case err := <-done:
		if err != nil {
			t.Logf("Shutdown: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Shutdown(Write) blocked sending close_notify to a peer that does not read")
	}
	// The write side is shut: a Write fails rather than blocking.
	errc := make(chan error, 1)
	go func() { _, err := c.Write([]byte("x")); errc <- err }()
	select {
	case err := <-errc:
		if err == nil {
			t.Error("Write after Shutdown(Write) succeeded")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Write after Shutdown(Write) blocked")
	}
}
