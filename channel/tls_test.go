package channel_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/testpki"
)

// secSocketPair returns two connected Sockets over a real tcp or unix
// socket.
func secSocketPair(t testing.TB, network string) (client, server *channel.Socket) {
	t.Helper()
	var ln net.Listener
	var err error
	switch network {
	case "tcp":
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	case "unix":
		ln, err = net.Listen("unix", filepath.Join(t.TempDir(), "s"))
	default:
		t.Fatalf("network %q", network)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	cc, err := net.Dial(ln.Addr().Network(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	client, err = channel.NewSocket(cc)
	if err != nil {
		t.Fatal(err)
	}
	server, err = channel.NewSocket(r.c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// secCreds loads x509 credentials from a testpki directory.
func secCreds(t testing.TB, dir string, ep crypto.Endpoint, mod func(*crypto.X509Options)) (*crypto.Creds, error) {
	t.Helper()
	o := crypto.X509Options{ID: "tls-" + ep.String(), Dir: dir, Endpoint: ep}
	if mod != nil {
		mod(&o)
	}
	return crypto.NewX509Creds(o)
}

func secMust(t testing.TB, dir string, ep crypto.Endpoint, mod func(*crypto.X509Options)) *crypto.Creds {
	t.Helper()
	c, err := secCreds(t, dir, ep, mod)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// secTLSPair runs both handshakes concurrently and returns both results.
func secTLSPair(t testing.TB, network string, cc, sc *crypto.Creds, copts, sopts *channel.TLSOptions, ctx context.Context) (c, s *channel.TLS, cerr, serr error) {
	t.Helper()
	ci, si := secSocketPair(t, network)
	c = channel.NewTLS(ci, cc, crypto.Client, copts)
	s = channel.NewTLS(si, sc, crypto.Server, sopts)
	t.Cleanup(func() { c.Close(); s.Close() })
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); serr = s.Handshake(ctx) }()
	cerr = c.Handshake(ctx)
	wg.Wait()
	return
}

// TestTLSSmoke: a handshake, data both ways, identities, close_notify EOF.
func TestTLSSmoke(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			p := testpki.New(t, nil)
			cc := secMust(t, p.ClientDir, crypto.Client, nil)
			sc := secMust(t, p.ServerDir, crypto.Server, nil)
			c, s, cerr, serr := secTLSPair(t, network, cc, sc, &channel.TLSOptions{Hostname: "localhost"}, nil, context.Background())
			if cerr != nil || serr != nil {
				t.Fatalf("handshake: client %v, server %v", cerr, serr)
			}
			if got := s.PeerIdentity(); got != "CN=client.example.com,O=Example,C=GB" {
				t.Errorf("server sees %q", got)
			}
			if v := c.ConnectionState().Version; v != tls.VersionTLS13 {
				t.Errorf("version %#x", v)
			}
			msg := []byte("hello over tls")
			go func() { c.Write(msg); c.Shutdown(channel.Write) }()
			got, err := io.ReadAll(s)
			if err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("got %q, %v", got, err)
			}
		})
	}
}

var _ = fmt.Sprint
var _ = errors.New
var _ = os.Stat
var _ = strings.Contains
var _ = rand.Read
var _ = time.Second
