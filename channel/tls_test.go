package channel_test

// Tests of the TLS and DTLS wrappers (files tls_*_test.go, dtls_*_test.go;
// helpers are prefixed "sec" to stay clear of the rest of the package's
// tests). Everything runs over real sockets with real handshakes and
// certificates generated per test (internal/testpki), never mocks:
//
//   - the channel conformance suite over TLS and DTLS, each on tcp, unix
//     and Command channels; for Command, two real child processes relay
//     through fifos with cat (see secCommandPair), which is a real exec:
//     transport in both directions without socat;
//   - the bad-credentials matrix (tls_matrix_test.go), the QEMU interop
//     traps (tls_traps_test.go), hot reload (tls_reload_test.go);
//   - interop with GnuTLS's gnutls-cli and gnutls-serv (tls_interop_test.go),
//     skipped with a printed reason when a tool is missing, except under
//     CI=true where that is a failure;
//   - benchmarks against raw crypto/tls (tls_bench_test.go) and fuzzing of
//     the record framing (tls_fuzz_test.go, dtls_fuzz_test.go).

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/channel/channeltest"
	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/testpki"
	"github.com/livemig/livemig/internal/testwait"
)

// secSocketPair returns two connected Sockets over a real tcp or unix
// socket, made by the package's own Listen and Dial (see channel_test.go).
func secSocketPair(t testing.TB, network string) (client, server *channel.Socket) {
	t.Helper()
	switch network {
	case "tcp":
		return tcpPair("tcp", "127.0.0.1")(t)
	case "unix":
		return unixPair(t)
	}
	t.Fatalf("network %q", network)
	return nil, nil
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
	c = channel.NewTLS(ci, cc, copts)
	s = channel.NewTLS(si, sc, sopts)
	t.Cleanup(func() { c.Close(); s.Close() })
	cerr, serr = secHandshakes(ctx, c, s)
	return
}

// secHandshakes runs s's handshake in a goroutine and c's here, and
// returns both results once both have ended.
func secHandshakes(ctx context.Context, c, s interface{ Handshake(context.Context) error }) (cerr, serr error) {
	done := make(chan struct{})
	go func() { defer close(done); serr = s.Handshake(ctx) }()
	cerr = c.Handshake(ctx)
	<-done
	return cerr, serr
}

// TestTLSSmoke: a handshake, data both ways, identities, close_notify EOF.
func TestTLSSmoke(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			p := testpki.New(t, nil)
			cc := secMust(t, p.ClientDir, crypto.Client, nil)
			sc := secMust(t, p.ServerDir, crypto.Server, nil)
			c, s, cerr, serr := secTLSPair(t, network, cc, sc, &channel.TLSOptions{TLSOptions: crypto.TLSOptions{Hostname: "localhost"}}, nil, context.Background())
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

// secCommandPair joins two child processes (channel.Command) through two
// fifos, each relaying with cat, so that TLS and DTLS run over a real
// child's stdin and stdout in both directions. The shell hands its stdin
// to a background cat explicitly (an asynchronous list may get
// /dev/null) and execs the other cat, so that the child's stdout closes
// as soon as the peer's input ends and half-close propagates.
func secCommandPair(t testing.TB) (channel.Channel, channel.Channel) {
	t.Helper()
	dir := t.TempDir()
	ab, ba := filepath.Join(dir, "ab"), filepath.Join(dir, "ba")
	for _, p := range []string{ab, ba} {
		if err := mkfifo(p); err != nil {
			t.Fatalf("mkfifo: %v", err)
		}
	}
	start := func(out, in string) *channel.Command {
		c, err := channel.StartCommand("exec 3<&0 0</dev/null; cat <&3 >'" + out + "' 3<&- & exec cat <'" + in + "' 3<&-")
		if err != nil {
			t.Fatalf("StartCommand: %v", err)
		}
		c.SetGracePeriod(500 * time.Millisecond)
		t.Cleanup(func() { c.Close() })
		return c
	}
	return start(ab, ba), start(ba, ab)
}

func mkfifo(p string) error {
	out, err := exec.Command("mkfifo", "-m", "600", p).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

// secInner names the transports the wrappers are tested over.
var secInner = []struct {
	name string
	pair func(testing.TB) (channel.Channel, channel.Channel)
}{
	{"tcp", func(t testing.TB) (channel.Channel, channel.Channel) { return secSocketPair(t, "tcp") }},
	{"unix", func(t testing.TB) (channel.Channel, channel.Channel) { return secSocketPair(t, "unix") }},
	{"command", secCommandPair},
}

// secHandshakeBoth runs both handshakes at once, bounded by the test
// binary's -timeout.
func secHandshakeBoth(t testing.TB, a, b interface{ Handshake(context.Context) error }) {
	t.Helper()
	aerr, berr := secHandshakes(testwait.Context(t), a, b)
	if aerr != nil {
		t.Fatalf("handshake: %v", aerr)
	}
	if berr != nil {
		t.Fatalf("peer handshake: %v", berr)
	}
}

// TestTLSConformance runs the channel conformance suite over TLS on tcp,
// unix and command channels.
func TestTLSConformance(t *testing.T) {
	p := testpki.New(t, nil)
	cc := secMust(t, p.ClientDir, crypto.Client, nil)
	sc := secMust(t, p.ServerDir, crypto.Server, nil)
	for _, in := range secInner {
		t.Run(in.name, func(t *testing.T) {
			channeltest.TestChannel(t, func(t testing.TB) (channel.Channel, channel.Channel) {
				ci, si := in.pair(t)
				c := channel.NewTLS(ci, cc, &channel.TLSOptions{TLSOptions: crypto.TLSOptions{Hostname: "localhost"}})
				s := channel.NewTLS(si, sc, nil)
				t.Cleanup(func() { c.Close(); s.Close() })
				secHandshakeBoth(t, c, s)
				return c, s
			})
		})
	}
}

// TestTLSHandshakeCancel: cancelling the context and closing the channel
// both end a handshake the peer never answers, promptly.
func TestTLSHandshakeCancel(t *testing.T) {
	p := testpki.New(t, nil)
	cc := secMust(t, p.ClientDir, crypto.Client, nil)
	for _, how := range []string{"cancel", "close"} {
		t.Run(how, func(t *testing.T) {
			ci, _ := secSocketPair(t, "tcp") // the peer never answers
			c := channel.NewTLS(ci, cc, &channel.TLSOptions{TLSOptions: crypto.TLSOptions{Hostname: "localhost"}})
			defer c.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			hs := testwait.Go(func() error { return c.Handshake(ctx) })
			hs.Blocked(t) // waiting for the peer's answer
			if how == "cancel" {
				cancel()
			} else {
				c.Close()
			}
			err := hs.Result(t, "the handshake after "+how)
			want := error(context.Canceled)
			if how == "close" {
				want = net.ErrClosed
			}
			if !errors.Is(err, want) {
				t.Fatalf("Handshake = %v, want an error wrapping %v", err, want)
			}
			if _, err := c.Write([]byte("x")); err == nil {
				t.Error("Write after a failed handshake succeeded")
			}
		})
	}
}

// TestTLSAnon: anonymous credentials encrypt without authenticating; the
// server sees no identity, and they never verify anything.
func TestTLSAnon(t *testing.T) {
	sc, err := crypto.NewAnonCreds("a-s", crypto.Server)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := crypto.NewAnonCreds("a-c", crypto.Client)
	if err != nil {
		t.Fatal(err)
	}
	c, s, cerr, serr := secTLSPair(t, "tcp", cc, sc, nil, nil, context.Background())
	if cerr != nil || serr != nil {
		t.Fatalf("client %v, server %v", cerr, serr)
	}
	if got := s.PeerIdentity(); got != "" {
		t.Errorf("anon server sees identity %q", got)
	}
	go c.Write([]byte("anon"))
	got := make([]byte, 4)
	if _, err := io.ReadFull(s, got); err != nil || string(got) != "anon" {
		t.Fatalf("read %q, %v", got, err)
	}
	// Authz cannot apply to anonymous peers.
	_, s2, _, serr2 := secTLSPair(t, "tcp", cc, sc, nil, &channel.TLSOptions{TLSOptions: crypto.TLSOptions{Authz: crypto.NewAuthzSimple("z", "x")}}, context.Background())
	_ = s2
	if serr2 == nil || !strings.Contains(serr2.Error(), "anonymous credentials have no identity") {
		t.Errorf("anon server with authz: %v", serr2)
	}
}

// TestTLSWriteBuffersAdjacent sends, over real TLS, pages that continue
// one another in memory (sent as whole records without the copy buffer)
// mixed with pages that do not and with small slices, and checks that the
// bytes arrive in order and that *bufs is consumed.
func TestTLSWriteBuffersAdjacent(t *testing.T) {
	p := testpki.New(t, nil)
	c, s, cerr, serr := secTLSPair(t, "unix", secMust(t, p.ClientDir, crypto.Client, nil), secMust(t, p.ServerDir, crypto.Server, nil),
		&channel.TLSOptions{TLSOptions: crypto.TLSOptions{Hostname: "localhost"}}, nil, context.Background())
	if cerr != nil || serr != nil {
		t.Fatalf("handshake: client %v, server %v", cerr, serr)
	}
	ram := make([]byte, 64*4096)
	for i := range ram {
		ram[i] = byte(i*31 + i>>12)
	}
	other := bytes.Repeat([]byte{0xA5}, 4096)
	var bufs, want net.Buffers
	add := func(b []byte) { bufs = append(bufs, b); want = append(want, b) }
	add([]byte("hdr1"))
	for i := range 10 {
		add(ram[i*4096 : (i+1)*4096])
	}
	add(other)
	add([]byte("hdr2"))
	for i := 10; i < 64; i++ {
		add(ram[i*4096 : (i+1)*4096])
	}
	var total int
	for _, b := range want {
		total += len(b)
	}
	got := make(chan []byte, 1)
	go func() {
		b := make([]byte, total)
		n, _ := io.ReadFull(s, b)
		got <- b[:n]
	}()
	n, err := c.WriteBuffers(&bufs)
	if err != nil || n != int64(total) || len(bufs) != 0 {
		t.Fatalf("WriteBuffers = %d, %v, %d slices left; want %d, nil, 0", n, err, len(bufs), total)
	}
	if b := <-got; !bytes.Equal(b, bytes.Join(want, nil)) {
		t.Fatalf("received %d bytes, want %d, differing", len(b), total)
	}
}

// TestTLSRoleFromCreds: NewTLS takes its role from the credentials, not
// from the direction of the inner connection: here the side that dialled
// holds server credentials and acts as the TLS server, and the side that
// accepted acts as the client (as with migration's DialBack).
func TestTLSRoleFromCreds(t *testing.T) {
	p := testpki.New(t, nil)
	cc := secMust(t, p.ClientDir, crypto.Client, nil)
	sc := secMust(t, p.ServerDir, crypto.Server, nil)
	dialled, accepted := secSocketPair(t, "tcp")
	s := channel.NewTLS(dialled, sc, nil)
	c := channel.NewTLS(accepted, cc, &channel.TLSOptions{TLSOptions: crypto.TLSOptions{Hostname: "localhost"}})
	t.Cleanup(func() { c.Close(); s.Close() })
	secHandshakeBoth(t, c, s)
	if got := s.PeerIdentity(); got != "CN=client.example.com,O=Example,C=GB" {
		t.Errorf("the server (dialling side) sees client %q", got)
	}
	if got := c.PeerIdentity(); !strings.Contains(got, "CN=") {
		t.Errorf("the client (accepting side) sees server %q", got)
	}
}
