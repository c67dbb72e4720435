package interop

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livemig/livemig/internal/qemutest"
	"github.com/livemig/livemig/internal/testwait"
	"github.com/livemig/livemig/uri"
)

// TestQEMUThroughTLSProxies is scenarios 2, 3 and 6: QEMU -> migrate-proxy
// (unix in, TLS out) -> migrate-proxy (TLS in, unix out) -> QEMU, with one
// channel and with multifd over 2 channels. The destination completes, its
// RAM (pmemsave) equals the source's, and it runs after cont.
func TestQEMUThroughTLSProxies(t *testing.T) {
	forEachPKI(t, func(t *testing.T, p pki) {
		for _, multifd := range []int{0, 2} {
			name := "single"
			if multifd > 0 {
				name = "multifd-2"
			}
			t.Run(name, func(t *testing.T) { proxied(t, p, multifd) })
		}
	})
}

func proxied(t *testing.T, p pki, multifd int) {
	ctx := testwait.Context(t)
	src := qemutest.Start(t, qemutest.Options{})
	dst := qemutest.Start(t, qemutest.Options{Incoming: true})
	if multifd > 0 {
		for _, vm := range []*qemutest.VM{src, dst} {
			if err := vm.QMP.SetCapabilities(ctx, map[string]bool{"multifd": true}); err != nil {
				t.Fatal(err)
			}
			if err := vm.QMP.SetParameters(ctx, map[string]any{"multifd-channels": multifd}); err != nil {
				t.Fatal(err)
			}
		}
	}
	inSock := filepath.Join(dst.Dir, "in.sock")
	if err := dst.QMP.MigrateIncoming(ctx, "unix:"+inSock); err != nil {
		t.Fatal(err)
	}
	// Destination host: TLS in, unix out to QEMU's incoming socket.
	p2 := start(t, "migrate-proxy", "--raw", "--listen", "tcp:127.0.0.1:0,tls-creds=tls0", "--to", "unix:"+inSock,
		"--object", "tls-creds-x509,id=tls0,dir="+p.ServerDir+",endpoint=server,verify-peer=on")
	tlsAddr := p2.listening(t)
	a, err := uri.Parse(tlsAddr)
	if err != nil {
		t.Fatal(err)
	}
	port := a.Inet.Port
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
	// The destination's RAM equals the source's keystream file.
	dump := filepath.Join(dst.Dir, "dump")
	if _, err := dst.QMP.Execute(ctx, "pmemsave", map[string]any{"val": 0, "size": dst.MemSize, "filename": dump}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(src.MemPath)
	if err != nil {
		t.Fatal(err)
	}
	// pmemsave reads guest-physical addresses: below 1 MiB the PC's ROMs and
	// VGA hole shadow RAM, so compare from 1 MiB up.
	if !bytes.Equal(got[1<<20:], want[1<<20:]) {
		t.Fatal("destination RAM differs from the source's")
	}
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
	// main channel (the first) closed cleanly. (QEMU 7.2's destination may
	// close a multifd socket with bytes unread, which resets it: those
	// channels are not required to close cleanly.)
	conns := 1 + multifd
	for _, pr := range []*proc{p1, p2} {
		// Logged once the proxy has seen the close; a main channel that
		// did not close cleanly fails at the test binary's -timeout.
		testwait.Until(t, "the main channel closing cleanly through a proxy", func() bool {
			return strings.Contains(pr.Stderr(), "connection 1: closed:")
		})
		if n := strings.Count(pr.Stderr(), " -> "); n != conns {
			t.Errorf("%d connections through a proxy, want %d:\n%s", n, conns, pr.Stderr())
		}
	}
	t.Logf("%s multifd=%d: source %s in %d ms (downtime %d ms)", p.Name, multifd, sinfo.Status, sinfo.TotalTime, sinfo.Downtime)
}
