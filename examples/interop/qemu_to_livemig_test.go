package interop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/qemutest"
	"github.com/livemig/livemig/internal/testwait"
	"github.com/livemig/livemig/internal/vmstream"
	"github.com/livemig/livemig/migration"
	"github.com/livemig/livemig/uri"
)

// listenLivemig starts a livemig raw TLS destination on a free loopback
// port with server credentials from serverDir and returns it.
func listenLivemig(t *testing.T, serverDir string) *migration.Listener {
	t.Helper()
	reg := crypto.NewRegistry()
	if err := reg.AddObject("tls-creds-x509,id=tls0,dir=" + serverDir + ",endpoint=server,verify-peer=on"); err != nil {
		t.Fatal(err)
	}
	addr, err := uri.Parse("tcp:127.0.0.1:0,tls-creds=tls0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := migration.Listen(testwait.Context(t), addr, &migration.Config{Registry: reg, Raw: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// startTLSSource starts a 128 MiB keystream QEMU source with client
// credentials from clientDir and points its migration at port over TLS.
func startTLSSource(t *testing.T, q qemutest.QEMU, clientDir string) *qemutest.VM {
	t.Helper()
	src := qemutest.Start(t, qemutest.Options{QEMU: q, Args: []string{"-object", "tls-creds-x509,id=tls0,dir=" + clientDir + ",endpoint=client"}})
	if err := src.QMP.SetParameters(testwait.Context(t), map[string]any{"tls-creds": "tls0", "tls-hostname": "localhost"}); err != nil {
		t.Fatal(err)
	}
	return src
}

// TestQEMUToLivemigTLS is scenario 1 (and 6): QEMU 7.2 migrates over TLS
// into a livemig destination in raw mode, which validates the whole stream.
func TestQEMUToLivemigTLS(t *testing.T) {
	forEachPKI(t, func(t *testing.T, q qemutest.QEMU, p pki) {
		ln := listenLivemig(t, p.ServerDir)
		src := startTLSSource(t, q, p.ClientDir)
		ctx := testwait.Context(t)
		port := ln.Addr().Inet.Port
		if err := src.QMP.Migrate(ctx, "tcp:127.0.0.1:"+port); err != nil {
			t.Fatal(err)
		}
		st, err := ln.Accept(ctx)
		if err != nil {
			t.Fatalf("accept: %v; QEMU says: %s", err, src.Log())
		}
		defer st.Close()
		// The reads below have no deadline of their own: a stalled QEMU
		// ends them when ctx does, not at go test's timeout.
		defer context.AfterFunc(ctx, func() { st.Shutdown() })()
		var check qemutest.PageChecker
		seen := make([]bool, src.MemSize/qemutest.PageSize)
		distinct := 0
		rep, err := vmstream.Parse(st, &vmstream.Options{Page: func(block string, off uint64, data []byte, fill byte) error {
			if block != qemutest.RAMBlock {
				return nil
			}
			if data == nil {
				return fmt.Errorf("zero page at 0x%x, the keystream has none", off)
			}
			if !check.Check(off, data) {
				return fmt.Errorf("page at 0x%x does not hold the keystream", off)
			}
			if !seen[off/qemutest.PageSize] {
				seen[off/qemutest.PageSize] = true
				distinct++
			}
			return nil
		}})
		if err != nil {
			t.Fatalf("stream: %v; QEMU says: %s", err, src.Log())
		}
		if !rep.EOF || rep.VMDesc == nil {
			t.Fatalf("EOF %v, VMDESCRIPTION %v", rep.EOF, rep.VMDesc != nil)
		}
		if want := int(src.MemSize / qemutest.PageSize); distinct != want {
			t.Fatalf("%d distinct keystream pages arrived, want %d", distinct, want)
		}
		// Parse saw the end of the stream after VMDESCRIPTION: the TLS
		// stream ended cleanly without close_notify.
		if _, err := st.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Fatalf("read after the stream: %v, want io.EOF", err)
		}
		info, err := src.QMP.WaitMigration(ctx, 20*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d sections, %d pages, %d bytes; QEMU: %s in %d ms", p.Name, len(rep.Sections), rep.RAM.Pages, rep.Size, info.Status, info.TotalTime)
	})
}

// TestTLSWrongCA is scenario 5 (and 6): QEMU's client certificate and the
// livemig server certificate come from different CAs. Both sides fail, and
// the messages name the certificate problem.
func TestTLSWrongCA(t *testing.T) {
	forEachPKI(t, func(t *testing.T, q qemutest.QEMU, p pki) {
		other := pkiMakers[0]
		if p.Name == other.name {
			other = pkiMakers[1]
		}
		qemutest.Require(t, other.tool)
		oq := other.build(t, t.TempDir())
		ln := listenLivemig(t, oq.ServerDir) // a CA the QEMU client does not trust, and vice versa
		src := startTLSSource(t, q, p.ClientDir)
		ctx := testwait.Context(t)
		if err := src.QMP.Migrate(ctx, "tcp:127.0.0.1:"+ln.Addr().Inet.Port); err != nil {
			t.Fatal(err)
		}
		_, acceptErr := ln.Accept(ctx)
		info, qemuErr := src.QMP.WaitMigration(ctx, 20*time.Millisecond)
		if acceptErr == nil {
			t.Fatal("livemig accepted a channel from a client of another CA")
		}
		if qemuErr == nil || info == nil || info.Status != "failed" {
			t.Fatalf("QEMU: %v, %+v, want status failed", qemuErr, info)
		}
		t.Logf("livemig: %v", acceptErr)
		t.Logf("QEMU: %s", info.ErrorDesc)
		if !strings.Contains(strings.ToLower(acceptErr.Error()), "certificate") {
			t.Errorf("livemig's error does not name the certificate problem: %v", acceptErr)
		}
		if d := strings.ToLower(info.ErrorDesc); !strings.Contains(d, "certificate") && !strings.Contains(d, "tls") {
			t.Errorf("QEMU's error does not name TLS or the certificate: %q", info.ErrorDesc)
		}
	})
}
