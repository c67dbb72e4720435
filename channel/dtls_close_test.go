package channel_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/testpki"
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
			c := channel.NewDTLS(ci, cc, crypto.Client, nil)
			defer c.Close()
			errc := make(chan error, 1)
			go func() {
				if how == "handshake" {
					errc <- c.Handshake(context.Background())
					return
				}
				_, err := c.Read(make([]byte, 10))
				errc <- err
			}()
			time.Sleep(100 * time.Millisecond) // let the handshake start
			c.Close()
			select {
			case err := <-errc:
				if !errors.Is(err, net.ErrClosed) {
					t.Errorf("%s after Close = %v, want an error wrapping net.ErrClosed", how, err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("Close did not end the handshake")
			}
		})
	}
}
