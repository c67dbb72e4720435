package channel_test

import (
	"context"
	"errors"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/internal/testpki"
	"github.com/livemig/livemig/internal/testwait"
)

// TestDTLSCloseDuringHandshake: Close ends a handshake the peer never
// answers, whether Handshake was called or a Read runs it implicitly, and
// the pending call returns an error wrapping net.ErrClosed (the Channel
// contract), as TLS does.
func TestDTLSCloseDuringHandshake(t *testing.T) {
	key := testpki.NewPSK()
	cc, _ := secPSKCreds(t, "qemu", key, map[string][]byte{"qemu": key})
	for _, how := range []string{"handshake", "read"} {
		t.Run(how, func(t *testing.T) {
			ci, _ := secSocketPair(t, "tcp") // the peer never answers
			c := channel.NewDTLS(ci, cc, nil)
			defer c.Close()
			call := testwait.Go(func() error {
				if how == "handshake" {
					return c.Handshake(context.Background())
				}
				_, err := c.Read(make([]byte, 10))
				return err
			})
			call.Blocked(t) // the handshake has started and waits for the peer
			c.Close()
			if err := call.Result(t, "the handshake after Close"); !errors.Is(err, net.ErrClosed) {
				t.Errorf("%s after Close = %v, want an error wrapping net.ErrClosed", how, err)
			}
		})
	}
}

// TestDTLSCloseStopsDeadlines: a read or write deadline still ahead when
// the channel closes does not keep pion's deadline goroutine (one per
// deadline set, waiting for it to pass) after Close.
func TestDTLSCloseStopsDeadlines(t *testing.T) {
	key := testpki.NewPSK()
	cc, sc := secPSKCreds(t, "qemu", key, map[string][]byte{"qemu": key})
	c, s, cerr, serr := secDTLSPair(t, "tcp", cc, sc, nil, testwait.Context(t))
	if cerr != nil || serr != nil {
		t.Fatalf("handshake: client %v, server %v", cerr, serr)
	}
	// pion's goroutines say which goroutine created them: this one.
	var buf [64]byte
	id, _, _ := strings.Cut(strings.TrimPrefix(string(buf[:runtime.Stack(buf[:], false)]), "goroutine "), " ")
	mine := "deadline.(*Deadline).Set in goroutine " + id + "\n"
	for _, d := range []*channel.DTLS{c, s} {
		if err := d.SetDeadline(time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	all := make([]byte, 1<<20)
	if !strings.Contains(string(all[:runtime.Stack(all, true)]), mine) {
		t.Fatal("no deadline goroutine of pion's to watch: the test no longer tests anything")
	}
	c.Close()
	s.Close()
	testwait.Until(t, "pion's deadline goroutines ending after Close", func() bool {
		return !strings.Contains(string(all[:runtime.Stack(all, true)]), mine)
	})
}
