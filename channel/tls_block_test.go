package channel_test

import (
	"errors"
	"net"
	"syscall"
	"testing"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/testpki"
	"github.com/livemig/livemig/internal/testwait"
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
	c = channel.NewTLS(secNoDeadline{ci}, cc, &channel.TLSOptions{TLSOptions: crypto.TLSOptions{Hostname: "localhost"}})
	s = channel.NewTLS(si, sc, nil)
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
	write := testwait.Go(func() error {
		for {
			if _, err := c.Write(msg); err != nil {
				return err
			}
		}
	})
	// Wait until the writer is stuck: the peer never reads, and the
	// socket's buffers fill.
	write.Blocked(t)
	select {
	case err := <-write.Done():
		t.Fatalf("Write failed before Close: %v", err)
	default:
	}
	testwait.Go(c.Close).Result(t, "Close behind a Write stuck on a peer that does not read")
	if err := write.Result(t, "the pending Write after Close"); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close = %v, want an error wrapping net.ErrClosed", err)
	}
}

// TestTLSShutdownFullBuffer: Shutdown(Write) with the socket's send buffer
// full and the peer not reading must return, even over a channel without
// deadlines; close_notify is then given up and the write side shut.
func TestTLSShutdownFullBuffer(t *testing.T) {
	c, _, ci := secBlockedPair(t)
	secFillSendBuffer(t, ci)
	shut := testwait.Go(func() error { return c.Shutdown(channel.Write) })
	if err := shut.Result(t, "Shutdown(Write) sending close_notify to a peer that does not read"); err != nil {
		t.Logf("Shutdown: %v", err)
	}
	// The write side is shut: a Write fails rather than blocking.
	write := testwait.Go(func() error { _, err := c.Write([]byte("x")); return err })
	if err := write.Result(t, "Write after Shutdown(Write)"); err == nil {
		t.Error("Write after Shutdown(Write) succeeded")
	}
}
