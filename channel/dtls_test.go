package channel_test

import (
	"bytes"
	"context"
	"io"
	"sync"
	"testing"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/channel/channeltest"
	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/testpki"
)

// secPSKDirs writes a server keys.psk with users and a client keys.psk
// with the given client user and key.
func secPSKCreds(t testing.TB, user string, clientKey []byte, serverKeys map[string][]byte) (cc, sc *crypto.Creds) {
	t.Helper()
	sdir, cdir := t.TempDir(), t.TempDir()
	if err := testpki.WritePSK(sdir, serverKeys); err != nil {
		t.Fatal(err)
	}
	if err := testpki.WritePSK(cdir, map[string][]byte{user: clientKey}); err != nil {
		t.Fatal(err)
	}
	var err error
	cc, err = crypto.NewPSKCreds(crypto.PSKOptions{ID: "psk-c", Dir: cdir, Endpoint: crypto.Client, Username: user})
	if err != nil {
		t.Fatal(err)
	}
	sc, err = crypto.NewPSKCreds(crypto.PSKOptions{ID: "psk-s", Dir: sdir, Endpoint: crypto.Server})
	if err != nil {
		t.Fatal(err)
	}
	return cc, sc
}

func secDTLSPair(t testing.TB, network string, cc, sc *crypto.Creds, sopts *channel.DTLSOptions, ctx context.Context) (c, s *channel.DTLS, cerr, serr error) {
	t.Helper()
	ci, si := secSocketPair(t, network)
	c = channel.NewDTLS(ci, cc, crypto.Client, nil)
	s = channel.NewDTLS(si, sc, crypto.Server, sopts)
	t.Cleanup(func() { c.Close(); s.Close() })
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); serr = s.Handshake(ctx) }()
	cerr = c.Handshake(ctx)
	wg.Wait()
	return
}

func TestDTLSSmoke(t *testing.T) {
	key := testpki.NewPSK()
	cc, sc := secPSKCreds(t, "qemu", key, map[string][]byte{"qemu": key, "other": testpki.NewPSK()})
	c, s, cerr, serr := secDTLSPair(t, "tcp", cc, sc, nil, context.Background())
	if cerr != nil || serr != nil {
		t.Fatalf("handshake: client %v, server %v", cerr, serr)
	}
	if got := s.PeerIdentity(); got != "qemu" {
		t.Errorf("identity %q", got)
	}
	msg := bytes.Repeat([]byte("0123456789abcdef"), 10000)
	go func() { c.Write(msg); c.Shutdown(channel.Write) }()
	got, err := io.ReadAll(s)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("got %d bytes, %v", len(got), err)
	}
}

// TestDTLSConformance runs the channel conformance suite over DTLS-PSK on
// tcp, unix and command channels.
func TestDTLSConformance(t *testing.T) {
	key := testpki.NewPSK()
	cc, sc := secPSKCreds(t, "qemu", key, map[string][]byte{"qemu": key})
	for _, in := range secInner {
		t.Run(in.name, func(t *testing.T) {
			channeltest.TestChannel(t, func(t testing.TB) (channel.Channel, channel.Channel) {
				ci, si := in.pair(t)
				c := channel.NewDTLS(ci, cc, crypto.Client, nil)
				s := channel.NewDTLS(si, sc, crypto.Server, nil)
				t.Cleanup(func() { c.Close(); s.Close() })
				secHandshakeBoth(t, c, s)
				return c, s
			})
		})
	}
}
