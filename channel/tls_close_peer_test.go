package channel_test

import (
	"context"
	"io"
	"testing"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/testpki"
	"github.com/livemig/livemig/internal/testwait"
)

// TestTLSClosePeerGone: a sender that has written everything closes after
// its peer has already closed and reset the connection. close_notify
// cannot be delivered (EPIPE or ECONNRESET), but nothing is lost by that:
// Close must succeed, as closing a plain socket would. (A migration
// source's Session.Close met this when its destination had read the end
// frames and closed first.)
func TestTLSClosePeerGone(t *testing.T) {
	p := testpki.New(t, nil)
	cc := secMust(t, p.ClientDir, crypto.Client, nil)
	sc := secMust(t, p.ServerDir, crypto.Server, nil)
	c, s, cerr, serr := secTLSPair(t, "tcp", cc, sc, &channel.TLSOptions{TLSOptions: crypto.TLSOptions{Hostname: "localhost"}}, nil, context.Background())
	if cerr != nil || serr != nil {
		t.Fatalf("handshake: client %v, server %v", cerr, serr)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("server close: %v", err)
	}
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("client read to the server's close_notify: %v", err)
	}
	// Bytes to a closed socket make its kernel answer with a reset; wait
	// until the client's kernel has it, seen as a write error.
	testwait.Until(t, "a reset from the closed peer", func() bool {
		_, err := c.Write([]byte("x"))
		return err != nil
	})
	if err := c.Close(); err != nil {
		t.Fatalf("Close after the peer has gone: %v", err)
	}
}
