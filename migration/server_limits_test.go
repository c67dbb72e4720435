package migration

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/hello"
	"github.com/livemig/livemig/internal/testpki"
)

// x509Peers is a server's credentials and client credentials for several
// identities, all from one CA.
type x509Peers struct {
	pki *testpki.PKI
	dst *Config // Registry with server object "tls0", verify-peer=on
}

func newX509Peers(t testing.TB, dst *Config) *x509Peers {
	t.Helper()
	p := &x509Peers{pki: testpki.New(t, nil), dst: dst}
	reg := crypto.NewRegistry()
	if err := reg.AddObject("tls-creds-x509,id=tls0,endpoint=server,verify-peer=on,dir=" + p.pki.ServerDir); err != nil {
		t.Fatal(err)
	}
	dst.Registry, dst.TLSCreds = reg, "tls0"
	return p
}

// clientDir writes a QEMU-layout client directory for a certificate with
// common name cn ("" is the PKI's own client) and returns it.
func (p *x509Peers) clientDir(t testing.TB, cn string) string {
	t.Helper()
	if cn == "" {
		return p.pki.ClientDir
	}
	leaf, err := p.pki.CA.Issue(testpki.LeafOptions{Role: testpki.ClientRole, Subject: pkix.Name{CommonName: cn, Organization: []string{"livemig"}}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, data := range map[string][]byte{"ca-cert.pem": p.pki.CA.CertPEM, "client-cert.pem": leaf.CertPEM, "client-key.pem": leaf.KeyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// source returns a source Config with the client credentials of cn.
func (p *x509Peers) source(t testing.TB, cn string) *Config {
	t.Helper()
	reg := crypto.NewRegistry()
	if err := reg.AddObject("tls-creds-x509,id=tls0,endpoint=client,dir=" + p.clientDir(t, cn)); err != nil {
		t.Fatal(err)
	}
	return &Config{Registry: reg, TLSCreds: "tls0", TLSHostname: "localhost"}
}

// dialRaw opens a connection to addr (a tcp Address) that sends what the
// test writes: over TLS with cn's client certificate when p is not nil.
func (p *x509Peers) dialRaw(t testing.TB, addr string, cn string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if p == nil {
		return c
	}
	dir := p.clientDir(t, cn)
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "client-cert.pem"), filepath.Join(dir, "client-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(p.pki.CA.CertPEM)
	tc := tls.Client(c, &tls.Config{ServerName: "localhost", RootCAs: roots, Certificates: []tls.Certificate{cert}})
	if err := tc.HandshakeContext(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	return tc
}

// exchangeRaw writes hello b on c and returns the decoded answer, or the
// error of reading it.
func exchangeRaw(t testing.TB, c net.Conn, b []byte) (*hello.Hello, error) {
	t.Helper()
	if _, err := c.Write(b); err != nil {
		return nil, err
	}
	c.SetReadDeadline(time.Now().Add(time.Minute))
	back := make([]byte, hello.Size)
	if _, err := io.ReadFull(c, back); err != nil {
		return nil, err
	}
	h, err := decodeHello(back)
	if err != nil {
		t.Fatalf("the answer does not decode: %v", err)
	}
	return h, nil
}

// craftedHello encodes h as it is, field by field, without the checks of
// a well-behaved sender.
func craftedHello(h hello.Hello) []byte {
	b, _ := h.MarshalBinary()
	return b
}

// TestCraftedHellos: issue 11's 64-byte hellos, which crashed a
// destination before any authentication (a request with a status and a
// channel count of 0 panicked Server.place), are refused with a status,
// over plain TCP and over TLS, and the Server then accepts a real
// session.
func TestCraftedHellos(t *testing.T) {
	for _, kind := range []string{"tcp", "tls"} {
		t.Run(kind, func(t *testing.T) {
			dst := &Config{}
			var peers *x509Peers
			src := &Config{}
			if kind == "tls" {
				peers = newX509Peers(t, dst)
				src = peers.source(t, "")
			}
			srv := startServer(t, "tcp:127.0.0.1:0", dst)
			hp := net.JoinHostPort(srv.Addr().Inet.Host, srv.Addr().Inet.Port)
			for _, tc := range []struct {
				name string
				h    hello.Hello
			}{
				{"status and no channels", hello.Hello{Version: 1, Source: true, Session: SessionID{1}, Status: hello.StatusUnknownSession}},
				{"no channels", hello.Hello{Version: 1, Source: true, Session: SessionID{1}}},
				{"index past count", hello.Hello{Version: 1, Role: hello.RoleMultifd, Source: true, Session: SessionID{1}, Index: 7, Channels: 2}},
				{"count past MaxChannels", hello.Hello{Version: 1, Source: true, Session: SessionID{1}, Channels: 1000}},
				{"multifd of index 0", hello.Hello{Version: 1, Role: hello.RoleMultifd, Source: true, Session: SessionID{1}, Channels: 2}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					c := peers.dialRaw(t, hp, "")
					back, err := exchangeRaw(t, c, craftedHello(tc.h))
					if err != nil {
						t.Fatalf("no answer: %v", err)
					}
					if !back.Reply || back.Status == hello.StatusOK {
						t.Fatalf("answer %+v, want a refusal", back)
					}
				})
			}
			// A reserved byte set: refused too.
			c := peers.dialRaw(t, hp, "")
			b := craftedHello(hello.Hello{Version: 1, Source: true, Session: SessionID{2}, Channels: 1})
			b[50] = 1
			if back, err := exchangeRaw(t, c, b); err != nil || back.Status != hello.StatusMismatch {
				t.Fatalf("reserved byte set: %+v, %v; want a mismatch", back, err)
			}
			src.Channels = 2
			s, d := sessionPair(t, srv, src)
			sessionTransfer(t, s, d, randomData(1<<20, 1))
		})
	}
}

// TestDialBackCraftedHello: a dial-back source listens, so anything that
// reaches its port can send a hello. Issue 11: an index not below the
// channel count panicked DialSession. It is refused with a status, and
// the real destination's channels then form the session.
func TestDialBackCraftedHello(t *testing.T) {
	ctx := testCtx(t)
	port := freePort(t)
	addr := mustParse(t, "tcp:127.0.0.1:"+port)
	type result struct {
		s   *SourceSession
		err error
	}
	res := make(chan result, 1)
	go func() {
		s, err := DialSession(ctx, addr, &Config{DialBack: true, Channels: 2})
		res <- result{s, err}
	}()
	dial := func() net.Conn {
		for {
			c, err := net.Dial("tcp", "127.0.0.1:"+port)
			if err == nil {
				t.Cleanup(func() { c.Close() })
				return c
			}
			select {
			case <-ctx.Done():
				t.Fatal("the dial-back source did not listen")
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	for _, h := range []hello.Hello{
		{Version: 1, Role: hello.RoleMultifd, Index: 5, Channels: 2, Status: hello.StatusRefused},
		{Version: 1, Role: hello.RoleMultifd, Index: 5, Channels: 2},
	} {
		back, err := exchangeRaw(t, dial(), craftedHello(h))
		if err != nil || back.Status == hello.StatusOK {
			t.Fatalf("%+v: %+v, %v; want a refusal", h, back, err)
		}
	}
	ln, err := Listen(ctx, addr, &Config{DialBack: true, Channels: 2})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(ln)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	d, err := srv.AcceptSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	r := <-res
	if r.err != nil {
		t.Fatal(r.err)
	}
	sessionTransfer(t, r.s, d, randomData(1<<20, 2))
}

// TestServerPerPeerQuota: one client identity that holds its quota of
// incomplete sessions neither fills the Server nor delays another
// identity's migration (issue 11: 64 main hellos from one identity
// refused every real source for 30 s).
func TestServerPerPeerQuota(t *testing.T) {
	dst := &Config{MaxPendingPerPeer: 2, SessionTimeout: time.Hour}
	peers := newX509Peers(t, dst)
	srv := startServer(t, "tcp:127.0.0.1:0", dst)
	ctx := testCtx(t)
	evil := peers.source(t, "evil")
	for i := range dst.MaxPendingPerPeer {
		cfg := evil.Clone()
		cfg.Channels = 2 // and the multifd channel never comes
		st, err := Dial(ctx, srv.Addr(), cfg)
		if err != nil {
			t.Fatalf("incomplete session %d: %v", i, err)
		}
		defer st.Close()
	}
	cfg := evil.Clone()
	cfg.Channels = 2
	_, err := Dial(ctx, srv.Addr(), cfg)
	var re *RefusedError
	if !errors.As(err, &re) || re.status != hello.StatusBusy {
		t.Fatalf("session beyond the quota: %v, want a refusal (busy)", err)
	}
	good := peers.source(t, "")
	good.Channels = 2
	s, d := sessionPair(t, srv, good)
	sessionTransfer(t, s, d, randomData(1<<20, 3))
}

// TestSessionBoundToIdentity: issue 11: any authenticated client that
// learned a session ID could take a slot of it, and the real channel was
// then refused as a duplicate. A channel from another identity is refused
// (hello.StatusForbidden), the log names both identities, and the real channel
// joins.
func TestSessionBoundToIdentity(t *testing.T) {
	var mu sync.Mutex
	var logs []string
	dst := &Config{SessionTimeout: time.Hour, Logf: func(f string, a ...any) {
		mu.Lock()
		logs = append(logs, fmt.Sprintf(f, a...))
		mu.Unlock()
	}}
	peers := newX509Peers(t, dst)
	srv := startServer(t, "tcp:127.0.0.1:0", dst)
	ctx := testCtx(t)
	id := SessionID{7, 7, 7}
	owner, thief := peers.source(t, ""), peers.source(t, "thief")
	for _, c := range []*Config{owner, thief} {
		c.SessionID, c.Channels = id, 2
	}
	main, err := Dial(ctx, srv.Addr(), owner)
	if err != nil {
		t.Fatal(err)
	}
	defer main.Close()
	steal := thief.Clone()
	steal.index = 1
	_, err = Dial(ctx, srv.Addr(), steal)
	var re *RefusedError
	if !errors.As(err, &re) || re.status != hello.StatusForbidden {
		t.Fatalf("another identity's channel: %v, want a refusal (forbidden)", err)
	}
	mine := owner.Clone()
	mine.index = 1
	mf, err := Dial(ctx, srv.Addr(), mine)
	if err != nil {
		t.Fatalf("the owner's channel after the refused one: %v", err)
	}
	defer mf.Close()
	d, err := srv.AcceptSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	mu.Lock()
	defer mu.Unlock()
	for _, l := range logs {
		if strings.Contains(l, "CN=thief") && strings.Contains(l, "CN=client.example.com") {
			return
		}
	}
	t.Fatalf("no log line names both identities: %q", logs)
}

// TestExpectedSessionTakesNoSlot: a destination that expects one session
// refuses others at once, and they take no slot from it.
func TestExpectedSessionTakesNoSlot(t *testing.T) {
	want := SessionID{9, 9}
	srv := startServer(t, "tcp:127.0.0.1:0", &Config{SessionID: want, MaxPendingSessions: 1, MaxPendingPerPeer: 1, SessionTimeout: time.Hour})
	ctx := testCtx(t)
	for i := range 3 {
		_, err := Dial(ctx, srv.Addr(), &Config{SessionID: SessionID{byte(i + 1)}, Channels: 2})
		var re *RefusedError
		if !errors.As(err, &re) || re.status != hello.StatusMismatch {
			t.Fatalf("other session %d: %v, want a refusal (mismatch)", i, err)
		}
	}
	s, d := sessionPair(t, srv, &Config{SessionID: want, Channels: 2})
	sessionTransfer(t, s, d, randomData(1<<20, 4))
}

// TestServerBoundsHandshakes: connections that sit in their handshake
// count against MaxHandshakes, at most a quarter of it from one host;
// beyond, a host's next connection is closed at once, and other hosts
// are served. The idle ones come from 127.0.0.2 (all of 127/8 is
// loopback).
func TestServerBoundsHandshakes(t *testing.T) {
	dst := &Config{MaxHandshakes: 8, HandshakeTimeout: time.Hour, HelloTimeout: time.Hour}
	peers := newX509Peers(t, dst)
	srv := startServer(t, "tcp:127.0.0.1:0", dst)
	hp := net.JoinHostPort(srv.Addr().Inet.Host, srv.Addr().Inet.Port)
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	// The Server takes connections in the order the kernel queued them,
	// so the first two are counted before the third is looked at.
	for range 3 {
		c, err := d.Dial("tcp", hp)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	idle[2].SetReadDeadline(time.Now().Add(time.Minute))
	if n, err := idle[2].Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("third idle connection from one host: read %d, %v; want it closed", n, err)
	}
	good := peers.source(t, "")
	good.Channels = 2
	s, dd := sessionPair(t, srv, good)
	sessionTransfer(t, s, dd, randomData(1<<20, 5))
}

// TestPendingConnectionsCost: issue 11: 1024 connections of 80 bytes
// each (a hello and a stripe frame header) grew the heap by 292 MiB with
// no session accepted, because a complete session read ahead into 256
// KiB stripe buffers. Sessions nobody accepted yet read nothing, so a
// connection placed in a session (complete or not) costs a few KiB: its
// socket, its Stream and the Server's bookkeeping, client end included.
func TestPendingConnectionsCost(t *testing.T) {
	const n = 1024
	srv := startServer(t, "tcp:127.0.0.1:0", &Config{SessionTimeout: time.Hour, MaxPendingSessions: 2 * n, MaxPendingPerPeer: 2 * n})
	hp := net.JoinHostPort(srv.Addr().Inet.Host, srv.Addr().Inet.Port)
	conns := make([]net.Conn, 0, n+1)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	send := func(i int) {
		c, err := net.Dial("tcp", hp)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		// Half the sessions are complete (one channel), half wait for a
		// second channel.
		b := craftedHello(hello.Hello{Version: 1, Source: true, Session: SessionID{byte(i), byte(i >> 8), 0xcc}, Channels: uint16(1 + i%2)})
		var hdr [stripeHeaderSize]byte
		putFrameHeader(hdr[:], frameData, stripeSize, 0)
		if back, err := exchangeRaw(t, c, append(b, hdr[:]...)); err != nil || back.Status != hello.StatusOK {
			t.Fatalf("connection %d: %+v, %v", i, back, err)
		}
	}
	placed := func(want int) {
		ctx := testCtx(t)
		for {
			srv.mu.Lock()
			got := len(srv.pending) + len(srv.ready)
			srv.mu.Unlock()
			if got == want {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%d sessions placed, want %d", got, want)
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	send(n) // one-time allocations of the Server and the runtime
	placed(1)
	usage := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc + ms.StackInuse
	}
	before := usage()
	for i := range n {
		send(i)
	}
	placed(n + 1)
	after := usage()
	per := (int64(after) - int64(before)) / n
	t.Logf("%d pending connections: %d bytes each", n, per)
	if per > 8<<10 {
		t.Fatalf("a pending connection costs %d bytes; want at most 8 KiB", per)
	}
}
