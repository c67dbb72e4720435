package interop

import (
	"crypto/tls"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/qemutest"
	"github.com/livemig/livemig/internal/testwait"
	"github.com/livemig/livemig/uri"
)

// TestQEMUThroughTLSProxies is scenarios 2, 3 and 6: QEMU -> migrate-proxy
// (unix in, TLS out) -> migrate-proxy (TLS in, unix out) -> QEMU, with one
// channel and with multifd over 2 channels. The destination completes, its
// RAM (pmemsave) equals the source's, and it runs after cont.
//
// In the multifd-2-idle case three idle tcp connections and one that sends
// garbage reach the TLS proxy before the migration, whose handshake
// timeout is an hour: a proxy that ran one handshake at a time would never
// get to QEMU's channels. The migration completes with QEMU 7.2 telling
// its main channel from the multifd ones by arrival order, the garbage is
// refused, and the idle connections are still open afterwards.
func TestQEMUThroughTLSProxies(t *testing.T) {
	forEachPKI(t, func(t *testing.T, q qemutest.QEMU, p pki) {
		for _, tc := range []struct {
			name          string
			multifd, idle int
		}{
			{"single", 0, 0},
			{"multifd-2", 2, 0},
			{"multifd-2-idle", 2, 3},
		} {
			t.Run(tc.name, func(t *testing.T) { proxied(t, q, p, tc.multifd, tc.idle) })
		}
	})
}

func proxied(t *testing.T, q qemutest.QEMU, p pki, multifd, idle int) {
	ctx := testwait.Context(t)
	src := qemutest.Start(t, qemutest.Options{QEMU: q})
	dst := qemutest.Start(t, qemutest.Options{QEMU: q, Incoming: true})
	if multifd > 0 {
		setMultifd(t, src, multifd)
		setMultifd(t, dst, multifd)
	}
	inSock := filepath.Join(dst.Dir, "in.sock")
	if err := dst.QMP.MigrateIncoming(ctx, "unix:"+inSock); err != nil {
		t.Fatal(err)
	}
	// Destination host: TLS in, unix out to QEMU's incoming socket.
	p2args := []string{"--raw", "--listen", "tcp:127.0.0.1:0,tls-creds=tls0", "--to", "unix:" + inSock,
		"--object", "tls-creds-x509,id=tls0,dir=" + p.ServerDir + ",endpoint=server,verify-peer=on"}
	if idle > 0 {
		p2args = append(p2args, "--handshake-timeout", "1h")
	}
	p2 := start(t, "migrate-proxy", p2args...)
	tlsAddr := p2.listening(t)
	a, err := uri.Parse(tlsAddr)
	if err != nil {
		t.Fatal(err)
	}
	port := a.Inet.Port
	var idles []net.Conn
	if idle > 0 {
		idles = strayConns(t, "127.0.0.1:"+port, idle)
	}
	// Source host: unix in from QEMU, TLS out.
	outSock := filepath.Join(src.Dir, "out.sock")
	p1 := start(t, "migrate-proxy", "--raw", "--listen", "unix:"+outSock, "--to", "tcp:127.0.0.1:"+port+",tls-creds=tls0,tls-hostname=localhost",
		"--object", "tls-creds-x509,id=tls0,dir="+p.ClientDir+",endpoint=client")
	p1.listening(t)

	if err := src.QMP.Migrate(ctx, "unix:"+outSock); err != nil {
		t.Fatal(err)
	}
	sinfo, err := src.QMP.WaitMigration(ctx, 20*time.Millisecond)
	if err != nil {
		t.Fatalf("source: %v\nQEMU: %s\nproxy 1: %s\nproxy 2: %s", err, src.Log(), p1.Stderr(), p2.Stderr())
	}
	dinfo, err := dst.QMP.WaitMigration(ctx, 20*time.Millisecond)
	if err != nil {
		t.Fatalf("destination: %v\nQEMU: %s\nproxy 1: %s\nproxy 2: %s", err, dst.Log(), p1.Stderr(), p2.Stderr())
	}
	if dinfo.Status != "completed" {
		t.Fatalf("destination status %q", dinfo.Status)
	}
	if sinfo.RAM != nil && multifd > 0 && sinfo.RAM.MultifdByte == 0 {
		t.Errorf("multifd on, but no multifd bytes: %+v", sinfo.RAM)
	}
	checkSameRAM(t, dst, src)
	if _, err := dst.QMP.Execute(ctx, "cont", nil); err != nil {
		t.Fatal(err)
	}
	st, err := dst.QMP.QueryStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != "running" {
		t.Fatalf("destination after cont: %q, want running", st.Status)
	}
	// Every connection QEMU opened crossed both proxies, in order, and the
	// main channel (the first passed on) closed cleanly. (QEMU 7.2's
	// destination may close a multifd socket with bytes unread, which
	// resets it: those channels are not required to close cleanly.)
	conns := 1 + multifd
	for _, pr := range []*proc{p1, p2} {
		// Logged once the proxy has seen the close; a main channel that
		// did not close cleanly fails at the test binary's -timeout.
		closed := mainConn(t, pr) + ": closed:"
		testwait.Until(t, "the main channel closing cleanly through a proxy", func() bool {
			return strings.Contains(pr.Stderr(), closed)
		})
		if n := strings.Count(pr.Stderr(), " -> "); n != conns {
			t.Errorf("%d connections through a proxy, want %d:\n%s", n, conns, pr.Stderr())
		}
	}
	if idle > 0 {
		if !strings.Contains(p2.Stderr(), "refused: migration: tls-handshake") {
			t.Errorf("the garbage connection was not refused:\n%s", p2.Stderr())
		}
		// The idle connections are still open: each runs its handshake
		// now. (QEMU's listener has closed, so the proxy then fails to
		// pass them on; that is not this test's concern.)
		reg := crypto.NewRegistry()
		if err := reg.AddObject("tls-creds-x509,id=c,endpoint=client,dir=" + p.ClientDir); err != nil {
			t.Fatal(err)
		}
		creds, err := reg.Creds("c")
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := creds.TLSConfig(crypto.TLSOptions{Hostname: "localhost"})
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range idles {
			if err := tls.Client(c, cfg).HandshakeContext(ctx); err != nil {
				t.Errorf("idle connection %d after the migration: %v", i, err)
			}
		}
	}
	t.Logf("%s multifd=%d idle=%d: source %s in %d ms (downtime %d ms)", p.Name, multifd, idle, sinfo.Status, sinfo.TotalTime, sinfo.Downtime)
}

// mainConn returns "connection N" of the first connection a proxy passed
// on: QEMU's main channel.
func mainConn(t testing.TB, pr *proc) string {
	t.Helper()
	for _, l := range strings.Split(pr.Stderr(), "\n") {
		if _, rest, ok := strings.Cut(l, "migrate-proxy: "); ok && strings.Contains(rest, " -> ") {
			n, _, _ := strings.Cut(rest, ":")
			return n
		}
	}
	t.Fatalf("%s passed no connection on:\n%s", pr.name, pr.Stderr())
	return ""
}

// strayConns opens idle tcp connections to hostport that never start a
// TLS handshake, and one that sends bytes that are not TLS, as a port
// scanner or a stray client would; all are closed at cleanup. It returns
// the idle ones.
func strayConns(t testing.TB, hostport string, idle int) []net.Conn {
	t.Helper()
	var conns []net.Conn
	for i := range idle + 1 {
		c, err := net.Dial("tcp", hostport)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if i == idle {
			if _, err := c.Write([]byte("GET / HTTP/1.0\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
			break
		}
		conns = append(conns, c)
	}
	return conns
}

// setMultifd turns vm's multifd capability on with n channels.
func setMultifd(t testing.TB, vm *qemutest.VM, n int) {
	t.Helper()
	ctx := testwait.Context(t)
	if err := vm.QMP.SetCapabilities(ctx, map[string]bool{"multifd": true}); err != nil {
		t.Fatal(err)
	}
	if err := vm.QMP.SetParameters(ctx, map[string]any{"multifd-channels": n}); err != nil {
		t.Fatal(err)
	}
}
