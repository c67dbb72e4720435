package interop

import (
	"bytes"
	endian "encoding/binary"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/internal/qemutest"
	"github.com/livemig/livemig/internal/testwait"
	"github.com/livemig/livemig/internal/vmstream"
	"github.com/livemig/livemig/migration"
)

// QEMU 10.0 ends each TLS multifd channel with close_notify
// (migration/multifd.c: multifd_send_shutdown calls
// migration_tls_channel_end, that is gnutls_bye, on every multifd channel
// whose TLS handshake succeeded), and its destination, with a 10.0
// machine type, takes a multifd channel that ends without one for an
// error ("The TLS connection was non-properly terminated"): only
// multifd_clean_tls_termination=false, which hw_compat_9_2 sets for
// machine types up to 9.2, reads such an end as EOF
// (QIO_CHANNEL_READ_FLAG_RELAXED_EOF in multifd_recv_thread). The main
// channel ends without close_notify in every QEMU, and QEMU 7.2 sends none
// on any channel. The tests below run on each installed QEMU with one PKI
// (certtool, RSA) and 32 MiB guests.

const multifdGuest = 32 << 20

// multifdMagic is the first word of a multifd channel (MultiFDInit_t).
const multifdMagic = 0x11223344

// qemuMagic is the first word of QEMU's main migration stream ("QEVM").
const qemuMagic = 0x5145564D

// multifdPKI makes the certtool PKI the multifd tests run with.
func multifdPKI(t *testing.T) pki {
	t.Helper()
	m := pkiMakers[0]
	qemutest.Require(t, m.tool)
	return m.build(t, t.TempDir())
}

// multifdChannel is what one accepted channel of a QEMU multifd source
// carried.
type multifdChannel struct {
	magic       uint32
	bytes       int64
	closeNotify bool
	err         error
}

// TestQEMUMultifdTLSToLivemig: a QEMU source with 2 TLS multifd channels
// migrates into a livemig raw TLS destination, which reads every channel
// to its end: the main channel's stream parses to its EOF section, and
// each channel's end is clean. QEMU 10.0 must end each multifd channel
// with close_notify and the main channel without; QEMU 7.2 sends
// close_notify on none.
func TestQEMUMultifdTLSToLivemig(t *testing.T) {
	qemutest.Each(t, func(t *testing.T, q qemutest.QEMU) {
		p := multifdPKI(t)
		ln := listenLivemig(t, p.ServerDir)
		src := qemutest.Start(t, qemutest.Options{QEMU: q, MemSize: multifdGuest,
			Args: []string{"-object", "tls-creds-x509,id=tls0,dir=" + p.ClientDir + ",endpoint=client"}})
		ctx := testwait.Context(t)
		if err := src.QMP.SetParameters(ctx, map[string]any{"tls-creds": "tls0", "tls-hostname": "localhost"}); err != nil {
			t.Fatal(err)
		}
		setMultifd(t, src, 2)
		if err := src.QMP.Migrate(ctx, "tcp:127.0.0.1:"+ln.Addr().Inet.Port); err != nil {
			t.Fatal(err)
		}
		main, multifd := acceptQEMUChannels(t, ln, src)
		info, err := src.QMP.WaitMigration(ctx, 20*time.Millisecond)
		if err != nil {
			t.Fatalf("source: %v", err)
		}
		if info.RAM != nil && info.RAM.MultifdByte == 0 {
			t.Errorf("multifd on, but no multifd bytes: %+v", info.RAM)
		}
		if main.closeNotify {
			t.Errorf("%s ended its main channel with close_notify; no QEMU does", q)
		}
		want := q.AtLeast(10, 0)
		for i, c := range multifd {
			if c.closeNotify != want {
				t.Errorf("%s multifd channel %d (%d bytes): close_notify %v, want %v", q, i, c.bytes, c.closeNotify, want)
			}
		}
		t.Logf("%s: main %d bytes, multifd %d and %d bytes; close_notify on multifd: %v, %v",
			q, main.bytes, multifd[0].bytes, multifd[1].bytes, multifd[0].closeNotify, multifd[1].closeNotify)
	})
}

// acceptQEMUChannels accepts the 3 channels of a QEMU source with 2
// multifd channels on ln and reads each to its end as it arrives (QEMU
// writes them at once). It returns the main one and the multifd ones.
func acceptQEMUChannels(t *testing.T, ln *migration.Listener, src *qemutest.VM) (main multifdChannel, multifd []multifdChannel) {
	t.Helper()
	ctx := testwait.Context(t)
	results := make(chan multifdChannel, 3)
	for i := range 3 {
		st, err := ln.Accept(ctx)
		if err != nil {
			t.Fatalf("accepting channel %d: %v; QEMU says: %s", i, err, src.Log())
		}
		t.Cleanup(func() { st.Close() })
		go func() { results <- drainQEMUChannel(st) }()
	}
	var mains []multifdChannel
	for range 3 {
		r := testwait.Recv(t, "a channel read to its end", results)
		if r.err != nil {
			t.Fatalf("channel %#x: %v; QEMU says: %s", r.magic, r.err, src.Log())
		}
		switch r.magic {
		case qemuMagic:
			mains = append(mains, r)
		case multifdMagic:
			multifd = append(multifd, r)
		}
	}
	if len(mains) != 1 || len(multifd) != 2 {
		t.Fatalf("%d main and %d multifd channels, want 1 and 2", len(mains), len(multifd))
	}
	return mains[0], multifd
}

// drainQEMUChannel reads one channel of a QEMU source to its end: the
// main stream through vmstream (which must reach EOF and the device
// description), a multifd channel as bytes. The end must be clean.
func drainQEMUChannel(st *migration.Stream) multifdChannel {
	var r multifdChannel
	head := make([]byte, 4)
	if _, err := io.ReadFull(st, head); err != nil {
		r.err = fmt.Errorf("reading the first word: %w", err)
		return r
	}
	r.magic = endian.BigEndian.Uint32(head)
	body := io.MultiReader(bytes.NewReader(head), st)
	switch r.magic {
	case qemuMagic:
		rep, err := vmstream.Parse(body, nil)
		if err == nil && (!rep.EOF || rep.VMDesc == nil) {
			err = fmt.Errorf("main stream without EOF (%v) or VMDESCRIPTION (%v)", rep.EOF, rep.VMDesc != nil)
		}
		if rep != nil {
			r.bytes = rep.Size
		}
		r.err = err
	case multifdMagic:
		r.bytes, r.err = io.Copy(io.Discard, body)
	default:
		r.err = fmt.Errorf("unknown first word %#x", r.magic)
		return r
	}
	if r.err == nil {
		// The end of the channel itself, after what the parser took.
		if n, err := io.Copy(io.Discard, st); err != nil || n != 0 {
			r.err = fmt.Errorf("after the stream: %d more bytes, %v", n, err)
		}
	}
	r.closeNotify = st.Channel().(*channel.TLS).CloseNotifyReceived()
	return r
}

// TestLivemigProxyToQEMUMultifdTLS: QEMU -> migrate-proxy (unix in,
// livemig TLS client out, raw) -> QEMU destination with TLS and 2 multifd
// channels, 10.0 machine type on QEMU 10.0. The destination completes,
// reports no TLS channel that ended without close_notify, and its RAM
// equals the source's. (Whether a 10.0 destination sees a multifd
// channel's end at all is a race: it shuts its multifd reads down once
// the main stream is loaded, and from then on takes any end for EOF. In
// our runs it always won, so this test alone does not catch a proxy that
// omits close_notify; TestLivemigProxySendsCloseNotify does.)
func TestLivemigProxyToQEMUMultifdTLS(t *testing.T) {
	qemutest.Each(t, func(t *testing.T, q qemutest.QEMU) {
		p := multifdPKI(t)
		ctx := testwait.Context(t)
		src := qemutest.Start(t, qemutest.Options{QEMU: q, MemSize: multifdGuest})
		setMultifd(t, src, 2)
		dst, port := startTLSDestMultifd(t, q, p.ServerDir, multifdGuest, 2)
		sock := filepath.Join(src.Dir, "out.sock")
		px := start(t, "migrate-proxy", "--raw", "--listen", "unix:"+sock,
			"--to", "tcp:127.0.0.1:"+port+",tls-creds=tls0,tls-hostname=localhost",
			"--object", "tls-creds-x509,id=tls0,dir="+p.ClientDir+",endpoint=client")
		px.listening(t)
		if err := src.QMP.Migrate(ctx, "unix:"+sock); err != nil {
			t.Fatal(err)
		}
		sinfo, err := src.QMP.WaitMigration(ctx, 20*time.Millisecond)
		if err != nil {
			t.Fatalf("source: %v\nQEMU: %s\nproxy: %s", err, src.Log(), px.Stderr())
		}
		dinfo, err := dst.QMP.WaitMigration(ctx, 20*time.Millisecond)
		if err != nil || dinfo.Status != "completed" {
			t.Fatalf("destination: %v, %+v\nQEMU: %s\nproxy: %s", err, dinfo, dst.Log(), px.Stderr())
		}
		if sinfo.RAM != nil && sinfo.RAM.MultifdByte == 0 {
			t.Errorf("multifd on, but no multifd bytes: %+v", sinfo.RAM)
		}
		if dinfo.ErrorDesc != "" || strings.Contains(dst.Log(), "non-properly terminated") {
			t.Errorf("the destination saw a TLS channel end without close_notify: %q\n%s", dinfo.ErrorDesc, dst.Log())
		}
		checkSameRAM(t, dst, src)
		if n := strings.Count(px.Stderr(), " -> "); n != 3 {
			t.Errorf("%d connections through the proxy, want 3:\n%s", n, px.Stderr())
		}
		// QEMU's normal end is no failure in the proxy's log, also where
		// the destination resets a connection after its end (QEMU 7.2,
		// which closes its main channel with the proxy's close_notify
		// unread). The log lines come once the proxy has seen each end.
		testwait.Until(t, "the proxy logging the end of every connection", func() bool {
			return strings.Count(px.Stderr(), ": closed:")+strings.Count(px.Stderr(), ": cut after") == 3
		})
		if strings.Contains(px.Stderr(), ": cut after") {
			t.Errorf("the proxy logged a cut of a migration that succeeded:\n%s", px.Stderr())
		}
		t.Logf("proxy:\n%s", px.Stderr())
	})
}

// TestProxyQEMUDestinationKilled: QEMU -> migrate-proxy (unix in, TLS
// out) -> QEMU TLS destination, which is killed mid-migration (the source
// is slowed to 4 MiB/s, and the kill comes once 1 MiB has gone through).
// The kernel resets the destination's connection, which holds unread
// bytes: a real failure, which the proxy logs as a cut, never as the
// normal end that a reset after the end of the stream is.
func TestProxyQEMUDestinationKilled(t *testing.T) {
	qemutest.Each(t, func(t *testing.T, q qemutest.QEMU) {
		p := multifdPKI(t)
		ctx := testwait.Context(t)
		src := qemutest.Start(t, qemutest.Options{QEMU: q, MemSize: multifdGuest})
		if err := src.QMP.SetParameters(ctx, map[string]any{"max-bandwidth": 4 << 20}); err != nil {
			t.Fatal(err)
		}
		dst, port := startTLSDest(t, q, p.ServerDir, multifdGuest)
		sock := filepath.Join(src.Dir, "out.sock")
		px := start(t, "migrate-proxy", "--raw", "--listen", "unix:"+sock,
			"--to", "tcp:127.0.0.1:"+port+",tls-creds=tls0,tls-hostname=localhost",
			"--object", "tls-creds-x509,id=tls0,dir="+p.ClientDir+",endpoint=client")
		px.listening(t)
		if err := src.QMP.Migrate(ctx, "unix:"+sock); err != nil {
			t.Fatal(err)
		}
		testwait.Until(t, "1 MiB of the migration through the proxy", func() bool {
			info, err := src.QMP.QueryMigrate(ctx)
			return err == nil && info.Status == "active" && info.RAM != nil && info.RAM.Transferred > 1<<20
		})
		dst.Kill()
		cut := px.waitLine(t, "connection 1: c")
		if !strings.Contains(cut, "connection 1: cut after") {
			t.Errorf("the proxy logged %q for a destination killed mid-migration, want a cut", cut)
		}
		info, err := src.QMP.WaitMigration(ctx, 20*time.Millisecond)
		if err == nil || info == nil || info.Status != "failed" {
			t.Errorf("source after the destination's death: %v, %+v; want failed", err, info)
		}
		t.Logf("proxy: %s", cut)
	})
}

// TestLivemigProxySendsCloseNotify: QEMU -> migrate-proxy (unix in,
// livemig TLS client out, raw) -> livemig raw TLS destination, with 2
// multifd channels. The proxy must end each TLS channel with close_notify
// when QEMU ends the unix one, as a QEMU 10.0 destination requires on
// multifd channels: the destination checks that it received one on all
// three channels.
func TestLivemigProxySendsCloseNotify(t *testing.T) {
	qemutest.Each(t, func(t *testing.T, q qemutest.QEMU) {
		p := multifdPKI(t)
		ln := listenLivemig(t, p.ServerDir)
		src := qemutest.Start(t, qemutest.Options{QEMU: q, MemSize: multifdGuest})
		setMultifd(t, src, 2)
		sock := filepath.Join(src.Dir, "out.sock")
		px := start(t, "migrate-proxy", "--raw", "--listen", "unix:"+sock,
			"--to", "tcp:127.0.0.1:"+ln.Addr().Inet.Port+",tls-creds=tls0,tls-hostname=localhost",
			"--object", "tls-creds-x509,id=tls0,dir="+p.ClientDir+",endpoint=client")
		px.listening(t)
		ctx := testwait.Context(t)
		if err := src.QMP.Migrate(ctx, "unix:"+sock); err != nil {
			t.Fatal(err)
		}
		main, multifd := acceptQEMUChannels(t, ln, src)
		if _, err := src.QMP.WaitMigration(ctx, 20*time.Millisecond); err != nil {
			t.Fatalf("source: %v\nproxy: %s", err, px.Stderr())
		}
		for i, c := range append([]multifdChannel{main}, multifd...) {
			if !c.closeNotify {
				t.Errorf("channel %d (%#x, %d bytes) ended without close_notify\nproxy: %s", i, c.magic, c.bytes, px.Stderr())
			}
		}
	})
}
