package migration

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestAcceptChannelIdlePeer: a tcp connection that never starts its TLS
// handshake is accepted first; a real source connects after it. With
// AcceptChannel and HandshakeTask the source's channel is ready while the
// idle one is still in its handshake (the handshake timeout is far beyond
// the test's life), AcceptChannel returned the two in arrival order, and
// cancelling the idle one's Task closes its connection.
func TestAcceptChannelIdlePeer(t *testing.T) {
	for _, kind := range []string{"x509", "psk"} {
		t.Run(kind, func(t *testing.T) {
			ctx := testCtx(t)
			srcCfg, dstCfg := registries(t, kind)
			dstCfg.HandshakeTimeout = time.Hour
			ln, err := Listen(ctx, mustParse(t, "tcp:127.0.0.1:0"), dstCfg)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			addr := ln.Addr().Inet.Host + ":" + ln.Addr().Inet.Port
			idle, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer idle.Close()
			first, err := ln.AcceptChannel(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if first.Name() == "" || idle.LocalAddr().String() != remoteOf(t, first) {
				t.Fatalf("first accepted %s, want the idle connection from %s", first.Name(), idle.LocalAddr())
			}
			idleTask := ln.HandshakeTask(ctx, first)

			srcTask := Connect(ctx, ln.Addr(), srcCfg)
			second, err := ln.AcceptChannel(ctx)
			if err != nil {
				t.Fatal(err)
			}
			dst, err := ln.HandshakeTask(ctx, second).Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer dst.Close()
			src, err := srcTask.Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			if dst.peer == nil || dst.peer.Session != src.peer.Session {
				t.Fatalf("hello: destination saw %+v, source %+v", dst.peer, src.peer)
			}
			if ph := idleTask.Phase(); ph != PhaseTLSHandshake || idleTask.Err() != nil {
				t.Fatalf("idle connection's task: phase %s, err %v; want still in %s", ph, idleTask.Err(), PhaseTLSHandshake)
			}

			idleTask.Cancel()
			if _, err := idleTask.Wait(ctx); !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled task: %v", err)
			}
			// The task closed the idle connection: its peer reads the end.
			if _, err := io.Copy(io.Discard, idle); err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("idle peer after cancel: %v", err)
			}
		})
	}
}

// remoteOf returns the remote address of an accepted socket channel.
func remoteOf(t testing.TB, ch interface{ Name() string }) string {
	t.Helper()
	type remoter interface{ RemoteAddr() net.Addr }
	r, ok := ch.(remoter)
	if !ok {
		t.Fatalf("%T has no RemoteAddr", ch)
	}
	return r.RemoteAddr().String()
}

// TestHandshakeTaskClosesOnResolveFailure: the credentials object is
// removed after Listen, so the Task fails in resolve, before its connect
// phase; it still closes the channel it was given.
func TestHandshakeTaskClosesOnResolveFailure(t *testing.T) {
	ctx := testCtx(t)
	_, dstCfg := registries(t, "x509")
	ln, err := Listen(ctx, mustParse(t, "tcp:127.0.0.1:0"), dstCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().Inet.Host+":"+ln.Addr().Inet.Port)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ch, err := ln.AcceptChannel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := dstCfg.Registry.Remove("tls0"); err != nil {
		t.Fatal(err)
	}
	_, err = ln.HandshakeTask(ctx, ch).Wait(ctx)
	var pe *PhaseError
	if !errors.As(err, &pe) || pe.Phase != PhaseResolve {
		t.Fatalf("task: %v, want a resolve error", err)
	}
	if n, err := c.Read(make([]byte, 1)); n != 0 || (err != io.EOF && !errors.Is(err, syscall.ECONNRESET)) {
		t.Fatalf("peer read %d, %v; want the connection closed", n, err)
	}
}

// TestAcceptChannelSingle: Listen opens a file: channel itself, so a
// missing file fails Listen; for a file that exists the first
// AcceptChannel returns the channel Listen opened and a second fails at
// once with net.ErrClosed, whatever its context.
func TestAcceptChannelSingle(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	if _, err := Listen(ctx, mustParse(t, "file:"+dir+"/missing"), &Config{Raw: true}); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("Listen of a missing file: %v, want ENOENT", err)
	}
	path := dir + "/stream"
	if err := os.WriteFile(path, []byte("QEVM"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := Listen(ctx, mustParse(t, "file:"+path), &Config{Raw: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ch, err := ln.AcceptChannel(ctx)
	if err != nil {
		t.Fatalf("first AcceptChannel: %v", err)
	}
	defer ch.Close()
	buf := make([]byte, 4)
	if _, err := io.ReadFull(ch, buf); err != nil || string(buf) != "QEVM" {
		t.Fatalf("read %q, %v from the file channel; want QEVM", buf, err)
	}
	_, err = ln.AcceptChannel(ctx)
	var pe *PhaseError
	if !errors.As(err, &pe) || pe.Phase != PhaseConnect || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second AcceptChannel: %v, want a connect error wrapping net.ErrClosed", err)
	}
}
