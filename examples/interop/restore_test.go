package interop

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livemig/livemig/internal/qemutest"
	"github.com/livemig/livemig/internal/testwait"
)

// startTLSDest starts a destination QEMU with server credentials from
// serverDir listening for a TLS migration on a free loopback port.
func startTLSDest(t *testing.T, q qemutest.QEMU, serverDir string, memSize int64) (*qemutest.VM, string) {
	t.Helper()
	return startTLSDestMultifd(t, q, serverDir, memSize, 0)
}

// startTLSDestMultifd is startTLSDest with the multifd capability and
// that many channels when multifd > 0.
func startTLSDestMultifd(t *testing.T, q qemutest.QEMU, serverDir string, memSize int64, multifd int) (*qemutest.VM, string) {
	t.Helper()
	dst := qemutest.Start(t, qemutest.Options{QEMU: q, Incoming: true, MemSize: memSize,
		Args: []string{"-object", "tls-creds-x509,id=tls0,dir=" + serverDir + ",endpoint=server,verify-peer=on"}})
	ctx := testwait.Context(t)
	if multifd > 0 {
		setMultifd(t, dst, multifd)
	}
	if err := dst.QMP.SetParameters(ctx, map[string]any{"tls-creds": "tls0"}); err != nil {
		t.Fatal(err)
	}
	// Port 0, then the port QEMU bound: a port found free beforehand may
	// be taken by another process (a parallel test run) before QEMU binds.
	if err := dst.QMP.MigrateIncoming(ctx, "tcp:127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	ret, err := dst.QMP.Execute(ctx, "query-migrate", nil)
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		SocketAddress []struct {
			Port string `json:"port"`
		} `json:"socket-address"`
	}
	if err := json.Unmarshal(ret, &info); err != nil || len(info.SocketAddress) == 0 || info.SocketAddress[0].Port == "" {
		t.Fatalf("query-migrate on the destination: %s (%v), want its socket-address", ret, err)
	}
	return dst, info.SocketAddress[0].Port
}

// TestSavedStreamIntoQEMUOverTLS: a QEMU stream saved to a file is sent by
// migrate-proxy (file in, livemig TLS client out, raw) into a QEMU
// destination whose GnuTLS server checks livemig's client certificate;
// QEMU loads it, and its RAM equals the source's. Runs with both PKIs.
func TestSavedStreamIntoQEMUOverTLS(t *testing.T) {
	forEachPKI(t, func(t *testing.T, q qemutest.QEMU, p pki) {
		const size = 64 << 20
		src := qemutest.Start(t, qemutest.Options{QEMU: q, MemSize: size})
		state := filepath.Join(t.TempDir(), "vm.state")
		src.SaveStream(t, state)
		dst, port := startTLSDest(t, q, p.ServerDir, size)
		px := start(t, "migrate-proxy", "--raw", "--listen", "file:"+state,
			"--to", "tcp:127.0.0.1:"+port+",tls-creds=tls0,tls-hostname=localhost",
			"--object", "tls-creds-x509,id=tls0,dir="+p.ClientDir+",endpoint=client")
		ctx := testwait.Context(t)
		info, err := dst.QMP.WaitMigration(ctx, 20*time.Millisecond)
		if err != nil {
			t.Fatalf("destination: %v\nQEMU: %s\nproxy: %s", err, dst.Log(), px.Stderr())
		}
		checkSameRAM(t, dst, src)
		t.Logf("%s: QEMU loaded the stream over TLS from livemig: %s", p.Name, info.Status)
	})
}

// TestLivemigClientWrongCA: livemig's TLS client (migrate-proxy) trusts a
// CA that did not sign QEMU's server certificate: the proxy reports the
// certificate problem and the QEMU destination's migration fails.
func TestLivemigClientWrongCA(t *testing.T) {
	forEachPKI(t, func(t *testing.T, q qemutest.QEMU, p pki) {
		other := pkiMakers[0]
		if p.Name == other.name {
			other = pkiMakers[1]
		}
		qemutest.Require(t, other.tool)
		oq := other.build(t, t.TempDir())
		src := qemutest.Start(t, qemutest.Options{QEMU: q, MemSize: 16 << 20, ZeroRAM: true})
		state := filepath.Join(t.TempDir(), "vm.state")
		src.SaveStream(t, state)
		dst, port := startTLSDest(t, q, p.ServerDir, 16<<20)
		px := start(t, "migrate-proxy", "--raw", "--listen", "file:"+state,
			"--to", "tcp:127.0.0.1:"+port+",tls-creds=tls0,tls-hostname=localhost",
			"--object", "tls-creds-x509,id=tls0,dir="+oq.ClientDir+",endpoint=client")
		if code := px.wait(t); code != 1 || !strings.Contains(px.Stderr(), "certificate") {
			t.Fatalf("the proxy exited %d; want 1 and a message naming the certificate:\n%s", code, px.Stderr())
		}
		// QEMU 7.2's destination logs the failed handshake and keeps
		// waiting for a good source (migration status stays none).
		testwait.Until(t, "QEMU logging the TLS failure", func() bool { return strings.Contains(dst.Log(), "TLS") })
		if !strings.Contains(dst.Log(), "TLS") {
			t.Fatalf("QEMU did not log the TLS failure: %q", dst.Log())
		}
		info, err := dst.QMP.QueryMigrate(testwait.Context(t))
		if err != nil || info.Status == "completed" {
			t.Fatalf("QEMU destination: %v, %+v", err, info)
		}
		t.Logf("proxy: %s", strings.TrimSpace(px.Stderr()))
		t.Logf("QEMU: %s", dst.Log())
	})
}
