package proxy

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/migration"
	"github.com/livemig/livemig/uri"
)

// Magic numbers of the first bytes of QEMU's channels: the main stream
// (QEMU_VM_FILE_MAGIC) and a multifd channel (MULTIFD_MAGIC).
const (
	mainMagic    = 0x5145564D
	multifdMagic = 0x11223344
)

// strayConns opens, to the proxy at host:port, idle tcp connections that
// never start their TLS handshake and one that sends bytes that are not
// TLS, as a port scanner or a stray client would. They are closed at
// cleanup.
func strayConns(t testing.TB, hostport string, idle int) (idles []net.Conn, garbage net.Conn) {
	t.Helper()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", hostport)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	for range idle {
		idles = append(idles, dial())
	}
	garbage = dial()
	if _, err := garbage.Write([]byte("GET / HTTP/1.0\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	return idles, garbage
}

// TestIdleConnectionsDoNotStall: three idle connections and one that
// sends garbage reach the proxy's TLS listener before a migration of
// three channels (a main channel, then two multifd channels once the
// main one is up, as QEMU and migration.DialSession open them). The
// handshake timeout is an hour, so a proxy that ran one handshake at a
// time would never get past the first idle connection. The migration
// goes through, the next hop sees the main channel first, the garbage
// connection is refused and closed, and each idle connection is still
// open: it can run its TLS handshake afterwards.
func TestIdleConnectionsDoNotStall(t *testing.T) {
	for _, raw := range []bool{true, false} {
		name := "hello"
		if raw {
			name = "raw"
		}
		t.Run(name, func(t *testing.T) {
			ctx := testCtx(t)
			p := newPKI(t)
			reg := p.registry(t)
			next := listenPeer(t, "tcp:127.0.0.1:0", &migration.Config{Raw: raw})
			addr, logs := runProxy(t, &Options{Raw: raw, Listen: "tcp:127.0.0.1:0,tls-creds=srv", To: next.Addr().String(),
				Objects: []string{p.Server}, HandshakeTimeout: time.Hour})
			hostport := addr.Inet.Host + ":" + addr.Inet.Port
			idles, garbage := strayConns(t, hostport, 3)
			proxyTLS := mustParse(t, withTLS(addr, "cli", "localhost"))
			if raw {
				qemuLikeMigration(ctx, t, proxyTLS, reg, next)
			} else {
				sessionMigration(ctx, t, proxyTLS, reg, next)
			}

			// The garbage connection was refused and closed.
			if _, err := io.ReadAll(garbage); err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("garbage connection: %v", err)
			}
			logs.waitFor(ctx, t, "refused: migration: tls-handshake")
			// The idle ones are still served: each runs its handshake now.
			creds, err := reg.Creds("cli")
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := creds.TLSConfig(crypto.TLSOptions{Hostname: "localhost"})
			if err != nil {
				t.Fatal(err)
			}
			for i, c := range idles {
				if err := tls.Client(c, cfg).HandshakeContext(ctx); err != nil {
					t.Fatalf("idle connection %d after the migration: %v", i, err)
				}
			}
		})
	}
}

// qemuLikeMigration opens channels as QEMU does in raw mode: the main
// channel, and once its TLS handshake is done two multifd channels at
// once, each starting with its magic. The next hop must accept the main
// channel first.
func qemuLikeMigration(ctx context.Context, t testing.TB, a uri.Address, reg *crypto.Registry, next *migration.Listener) {
	t.Helper()
	cfg := &migration.Config{Registry: reg, Raw: true}
	first := func(st *migration.Stream, magic uint32, id byte) {
		b := binary.BigEndian.AppendUint32(nil, magic)
		b = append(b, 0, 0, 0, id)
		if _, err := st.Channel().Write(b); err != nil {
			t.Error(err)
		}
	}
	main, err := migration.Dial(ctx, a, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer main.Close()
	first(main, mainMagic, 0)
	var wg sync.WaitGroup
	multifd := make([]*migration.Stream, 2)
	for i := range multifd {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := migration.Dial(ctx, a, cfg)
			if err != nil {
				t.Error(err)
				return
			}
			multifd[i] = st
			first(st, multifdMagic, byte(i))
		}()
	}
	wg.Wait()
	for _, st := range multifd {
		if st != nil {
			defer st.Close()
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	var got []string
	for range 3 {
		ch, err := next.AcceptChannel(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer ch.Close()
		b := make([]byte, 8)
		if _, err := io.ReadFull(readerOnly{ch}, b); err != nil {
			t.Fatal(err)
		}
		switch binary.BigEndian.Uint32(b) {
		case mainMagic:
			got = append(got, "main")
		case multifdMagic:
			got = append(got, "multifd")
		default:
			got = append(got, "?")
		}
	}
	if want := []string{"main", "multifd", "multifd"}; !slices.Equal(got, want) {
		t.Fatalf("the next hop accepted %v, want %v", got, want)
	}
}

// sessionMigration runs migration.DialSession with three channels
// through the proxy (hello mode) to a migration.Server behind it, which
// refuses a multifd channel that arrives before its session's main
// channel, and checks the bytes.
func sessionMigration(ctx context.Context, t testing.TB, a uri.Address, reg *crypto.Registry, next *migration.Listener) {
	t.Helper()
	srv, err := migration.NewServer(next)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	type result struct {
		s   *migration.DestinationSession
		err error
	}
	accepted := make(chan result, 1)
	go func() {
		s, err := srv.AcceptSession(ctx)
		accepted <- result{s, err}
	}()
	src, err := migration.DialSession(ctx, a, &migration.Config{Registry: reg, Channels: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	r := <-accepted
	if r.err != nil {
		t.Fatal(r.err)
	}
	dst := r.s
	defer dst.Close()
	if dst.Channels() != 3 {
		t.Fatalf("session of %d channels, want 3", dst.Channels())
	}
	done := make(chan error, 1)
	go func() {
		_, err := src.Write(payload)
		done <- errors.Join(err, src.Close())
	}()
	got, err := io.ReadAll(dst)
	if err != nil || string(got) != string(payload) {
		t.Fatalf("destination read %d of %d bytes, then %v", len(got), len(payload), err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestMaxHandshakes: with room for one pending connection, an idle
// connection keeps the next one waiting in the listen queue until it
// goes: the proxy logs the idle one's refusal before it passes the next
// one on.
func TestMaxHandshakes(t *testing.T) {
	ctx := testCtx(t)
	p := newPKI(t)
	next := listenPeer(t, "tcp:127.0.0.1:0", &migration.Config{Raw: true})
	addr, logs := runProxy(t, &Options{Raw: true, Listen: "tcp:127.0.0.1:0,tls-creds=srv", To: next.Addr().String(),
		Objects: []string{p.Server}, MaxHandshakes: 1, HandshakeTimeout: time.Hour})
	idle, err := net.Dial("tcp", addr.Inet.Host+":"+addr.Inet.Port)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	type result struct {
		st  *migration.Stream
		err error
	}
	dialed := make(chan result, 1)
	go func() {
		st, err := migration.Dial(ctx, mustParse(t, withTLS(addr, "cli", "localhost")), &migration.Config{Registry: p.registry(t), Raw: true})
		dialed <- result{st, err}
	}()
	idle.Close()
	r := <-dialed
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.st.Close()
	passed := logs.waitFor(ctx, t, " -> ")
	lines := logs.all()
	refused := slices.IndexFunc(lines, func(s string) bool { return strings.HasPrefix(s, "connection 1: refused") })
	on := slices.Index(lines, passed)
	if !strings.HasPrefix(passed, "connection 2:") || refused < 0 || refused > on {
		t.Fatalf("want connection 1 refused before connection 2 is passed on; the proxy logged:\n%s", strings.Join(lines, "\n"))
	}
}

// TestHandOnInAcceptOrder: a connection whose handshake is under way
// keeps its place in line. Connection A sends its ClientHello through a
// relay that then holds A's further bytes; connection B is dialled after
// it and finishes its TLS handshake and hello (Dial returns only once the
// proxy has replied). Only then is A let through. The next hop must get
// A first: handed on in the order the handshakes finished, B would go
// first, as a multifd channel went before QEMU's main one when a TLS 1.3
// client (which finishes its handshake before the server does) opened it
// at once. An idle connection accepted before both, which sends nothing,
// holds up neither.
func TestHandOnInAcceptOrder(t *testing.T) {
	ctx := testCtx(t)
	p := newPKI(t)
	reg := p.registry(t)
	next := listenPeer(t, "tcp:127.0.0.1:0", &migration.Config{})
	addr, _ := runProxy(t, &Options{Listen: "tcp:127.0.0.1:0,tls-creds=srv", To: next.Addr().String(),
		Objects: []string{p.Server}, HandshakeTimeout: time.Hour})
	hostport := addr.Inet.Host + ":" + addr.Inet.Port
	strayConns(t, hostport, 1)

	relay := newGateRelay(t, hostport)
	ids := [2]migration.SessionID{{'A'}, {'B'}}
	type result struct {
		st  *migration.Stream
		err error
	}
	dialA := make(chan result, 1)
	go func() {
		st, err := migration.Dial(ctx, mustParse(t, "tcp:"+relay.addr+",tls-creds=cli,tls-hostname=localhost"),
			&migration.Config{Registry: reg, SessionID: ids[0]})
		dialA <- result{st, err}
	}()
	select {
	case <-relay.first:
	case r := <-dialA:
		t.Fatalf("A's Dial returned before its first bytes went through: %v", r.err)
	case <-ctx.Done():
		t.Fatal("A's first bytes never reached the relay")
	}
	b, err := migration.Dial(ctx, mustParse(t, withTLS(addr, "cli", "localhost")), &migration.Config{Registry: reg, SessionID: ids[1]})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	relay.open()
	r := <-dialA
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.st.Close()
	for i, want := range ids {
		st, err := next.Accept(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if got := st.SessionID(); got != want {
			t.Fatalf("the next hop's connection %d is session %q's, want %q's", i+1, got[:1], want[:1])
		}
	}
}

// gateRelay forwards one tcp connection to the proxy. From the client it
// passes the first read's bytes at once, then nothing more until open is
// called; from the proxy it passes everything.
type gateRelay struct {
	addr  string
	first chan struct{} // closed once the first bytes are passed on
	gate  chan struct{}
	once  sync.Once
}

func newGateRelay(t testing.TB, to string) *gateRelay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &gateRelay{addr: ln.Addr().String(), first: make(chan struct{}), gate: make(chan struct{})}
	var wg sync.WaitGroup
	var conns []net.Conn
	var mu sync.Mutex
	t.Cleanup(func() {
		ln.Close()
		r.open()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		ln.Close()
		d, err := net.Dial("tcp", to)
		if err != nil {
			c.Close()
			t.Error(err)
			return
		}
		mu.Lock()
		conns = append(conns, c, d)
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			io.Copy(c, d)
			c.Close()
		}()
		buf := make([]byte, 64<<10)
		n, err := c.Read(buf)
		if n > 0 {
			d.Write(buf[:n])
		}
		close(r.first)
		if err == nil {
			<-r.gate
			io.Copy(d, c)
		}
		d.Close()
	}()
	return r
}

func (r *gateRelay) open() { r.once.Do(func() { close(r.gate) }) }
