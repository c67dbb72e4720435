package proxy

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/migration"
)

// payload is what the tests send through the proxy before they end or
// cut the stream.
var payload = bytes.Repeat([]byte("migration stream "), 4096)

// readToEnd reads ch until it ends and returns what it read and how it
// ended: nil for a clean end.
func readToEnd(ch io.Reader) ([]byte, error) {
	return io.ReadAll(readerOnly{ch})
}

// wantCut fails t unless the reader got a prefix of payload and then
// ECONNRESET: a cut passed on as a reset, not as the end of the stream.
func wantCut(t testing.TB, who string, got []byte, err error) {
	t.Helper()
	if !bytes.HasPrefix(payload, got) {
		t.Fatalf("%s read %d bytes that are not the start of what was sent", who, len(got))
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("%s read %d bytes and then %v; want ECONNRESET (a cut must not look like the end of the stream)", who, len(got), err)
	}
}

// wantEnd fails t unless the reader got all of payload and a clean end.
func wantEnd(t testing.TB, who string, got []byte, err error) {
	t.Helper()
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("%s read %d of %d bytes and then %v; want all of them and a clean end", who, len(got), len(payload), err)
	}
}

// TestCutUpstreamTLS: in hello mode, a TLS source that sends part of a
// stream and then closes its tcp connection without close_notify (a
// truncation) makes the proxy reset the plain connection to the next hop,
// which reads ECONNRESET, not a clean end; with close_notify the end is
// passed on as an end.
func TestCutUpstreamTLS(t *testing.T) {
	for _, clean := range []bool{false, true} {
		name := "truncated"
		if clean {
			name = "close_notify"
		}
		t.Run(name, func(t *testing.T) {
			ctx := testCtx(t)
			p := newPKI(t)
			next := listenPeer(t, "tcp:127.0.0.1:0", nil)
			addr, logs := runProxy(t, &Options{Listen: "tcp:127.0.0.1:0,tls-creds=srv", To: next.Addr().String(), Objects: []string{p.Server}})
			up, err := migration.Dial(ctx, mustParse(t, withTLS(addr, "cli", "localhost")), &migration.Config{Registry: p.registry(t)})
			if err != nil {
				t.Fatal(err)
			}
			defer up.Close()
			down, err := next.Accept(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer down.Close()
			if _, err := up.Channel().Write(payload); err != nil {
				t.Fatal(err)
			}
			if clean {
				up.Close() // close_notify, then FIN
			} else {
				up.Shutdown() // the socket's FIN first: close_notify cannot follow
			}
			got, err := readToEnd(down.Channel())
			if clean {
				wantEnd(t, "the next hop", got, err)
				down.Close()
				logs.waitFor(ctx, t, "connection 1: closed:")
				return
			}
			wantCut(t, "the next hop", got, err)
			logs.waitFor(ctx, t, "close_notify")
		})
	}
}

// TestCutUpstreamRaw: in raw mode (the peers are QEMU, which sends no
// close_notify) a TLS source that ends at a record boundary ends the
// stream cleanly for the next hop, and one that is cut inside a record
// makes the proxy reset the next hop's connection.
func TestCutUpstreamRaw(t *testing.T) {
	for _, inside := range []bool{false, true} {
		name := "record boundary"
		if inside {
			name = "inside a record"
		}
		t.Run(name, func(t *testing.T) {
			ctx := testCtx(t)
			p := newPKI(t)
			next := listenPeer(t, "tcp:127.0.0.1:0", &migration.Config{Raw: true})
			addr, _ := runProxy(t, &Options{Raw: true, Listen: "tcp:127.0.0.1:0,tls-creds=srv", To: next.Addr().String(), Objects: []string{p.Server}})
			// A hand-made TLS client, to end the stream where the test
			// wants: crypto/tls over a tcp socket the test also writes.
			creds, err := p.registry(t).Creds("cli")
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := creds.TLSConfig(crypto.TLSOptions{Hostname: "localhost"})
			if err != nil {
				t.Fatal(err)
			}
			conn, err := net.Dial("tcp", addr.Inet.Host+":"+addr.Inet.Port)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			tc := tls.Client(conn, cfg)
			if err := tc.HandshakeContext(ctx); err != nil {
				t.Fatal(err)
			}
			down, err := next.Accept(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer down.Close()
			if _, err := tc.Write(payload); err != nil {
				t.Fatal(err)
			}
			if inside {
				// An application-data record header announcing 16 KiB,
				// and 3 bytes of it.
				if _, err := conn.Write([]byte{23, 3, 3, 0x40, 0, 1, 2, 3}); err != nil {
					t.Fatal(err)
				}
			}
			if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			got, err := readToEnd(down.Channel())
			if inside {
				wantCut(t, "the next hop", got, err)
			} else {
				wantEnd(t, "the next hop", got, err)
			}
		})
	}
}

// TestCutToTLS: a plain source that resets its connection mid-stream
// makes the proxy reset its TLS connection to the next hop, without
// close_notify: the next hop, a raw-mode TLS reader that takes an end at
// a record boundary for a clean end, reads ECONNRESET.
func TestCutToTLS(t *testing.T) {
	ctx := testCtx(t)
	p := newPKI(t)
	next := listenPeer(t, "tcp:127.0.0.1:0,tls-creds=srv", &migration.Config{Raw: true, Registry: p.registry(t)})
	addr, _ := runProxy(t, &Options{Raw: true, Listen: "tcp:127.0.0.1:0", To: withTLS(next.Addr(), "cli", "localhost"), Objects: []string{p.Client}})
	up, err := net.Dial("tcp", addr.Inet.Host+":"+addr.Inet.Port)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	down, err := next.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	if _, ok := down.Channel().(*channel.TLS); !ok {
		t.Fatalf("next hop's channel is %T, want TLS", down.Channel())
	}
	if _, err := up.Write(payload); err != nil {
		t.Fatal(err)
	}
	up.(*net.TCPConn).SetLinger(0)
	up.Close() // a reset
	got, err := readToEnd(down.Channel())
	wantCut(t, "the next hop", got, err)
}

// TestCutBack: the return direction is a pipe too: a next hop that
// resets its connection makes the proxy reset the source's.
func TestCutBack(t *testing.T) {
	ctx := testCtx(t)
	next := listenPeer(t, "tcp:127.0.0.1:0", &migration.Config{Raw: true})
	addr, _ := runProxy(t, &Options{Raw: true, Listen: "tcp:127.0.0.1:0", To: next.Addr().String()})
	up, err := net.Dial("tcp", addr.Inet.Host+":"+addr.Inet.Port)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	down, err := next.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := down.Channel().Write(payload); err != nil {
		t.Fatal(err)
	}
	down.Abort()
	got, err := readToEnd(up)
	wantCut(t, "the source", got, err)
}
