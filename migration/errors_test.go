package migration

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/testpki"
	"github.com/livemig/livemig/internal/testwait"
)

// TestLateRefusalIsHandshakeError: with TLS 1.3 the destination refuses
// the source's certificate after the source finished its handshake, so
// the source hears it only when it reads the hello reply. The source's
// Task still fails in the tls-handshake phase, with a *channel.AlertError
// naming the alert, once.
func TestLateRefusalIsHandshakeError(t *testing.T) {
	pki := testpki.New(t, &testpki.Options{ClientFromOtherCA: true})
	rs, rd := crypto.NewRegistry(), crypto.NewRegistry()
	// The client's own directory fails its load-time check (its
	// certificate is not from its ca-cert.pem); QEMU's sanity-check=off
	// lets it load, as an operator's mistake would.
	if err := rs.AddObject("tls-creds-x509,id=tls0,endpoint=client,sanity-check=off,dir=" + pki.ClientDir); err != nil {
		t.Fatal(err)
	}
	if err := rd.AddObject("tls-creds-x509,id=tls0,endpoint=server,verify-peer=on,dir=" + pki.ServerDir); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	ln, err := Listen(ctx, mustParse(t, "tcp:127.0.0.1:0"), &Config{Registry: rd, TLSCreds: "tls0"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	at := ln.AcceptTask(ctx)
	_, err = Dial(ctx, ln.Addr(), &Config{Registry: rs, TLSCreds: "tls0", TLSHostname: "localhost"})
	if _, derr := at.Wait(ctx); derr == nil {
		t.Fatal("the destination accepted a certificate from another CA")
	}
	var pe *PhaseError
	if !errors.As(err, &pe) || pe.Phase != PhaseTLSHandshake {
		t.Fatalf("source: %v, want a *PhaseError of phase tls-handshake", err)
	}
	var ae *channel.AlertError
	if !errors.As(err, &ae) || ae.Code != 42 || !ae.BeforeData {
		t.Fatalf("source: %v, want a *channel.AlertError 42 (bad certificate) before data", err)
	}
	const want = "migration: tls-handshake: peer sent TLS alert 42 (bad certificate) before any data: it refused the handshake"
	if err.Error() != want {
		t.Fatalf("source error:\n got %q\nwant %q", err, want)
	}
}

// TestErrorTexts: the errors a user meets when cancelling or closing say
// each fact once and match their cause with errors.Is.
func TestErrorTexts(t *testing.T) {
	cancelled := func() context.Context {
		ctx, cancel := context.WithCancel(testCtx(t))
		cancel()
		return ctx
	}
	sock := "unix:" + filepath.Join(t.TempDir(), "s")
	ln, err := Listen(testCtx(t), mustParse(t, sock), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(ln)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		run  func() error
		want string
		is   error
	}{
		{"dial cancelled", func() error {
			_, err := Dial(cancelled(), mustParse(t, "tcp:127.0.0.1:1"), nil)
			return err
		}, "migration: resolve: context canceled", context.Canceled},
		{"accept cancelled", func() error {
			ctx, cancel := context.WithCancel(testCtx(t))
			defer cancel()
			l, err := Listen(ctx, mustParse(t, "tcp:127.0.0.1:0"), nil)
			if err != nil {
				return err
			}
			defer l.Close()
			at := l.AcceptTask(ctx)
			testwait.Until(t, "the accept task waiting for a connection", func() bool { return at.Phase() == PhaseConnect })
			cancel()
			_, err = at.Wait(testCtx(t))
			return err
		}, "migration: connect: context canceled", context.Canceled},
		{"session cancelled", func() error {
			_, err := srv.AcceptSession(cancelled())
			return err
		}, "migration: connect: context canceled", context.Canceled},
		{"session after Close", func() error {
			srv.Close()
			_, err := srv.AcceptSession(testCtx(t))
			return err
		}, "migration: connect: server closed: use of closed network connection", net.ErrClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error %q, want %q", err, tc.want)
			}
			if !errors.Is(err, tc.is) {
				t.Fatalf("error %q does not match %v", err, tc.is)
			}
			var pe *PhaseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %q is not a *PhaseError", err)
			}
			if strings.Count(err.Error(), "context canceled") > 1 {
				t.Fatalf("error %q repeats itself", err)
			}
		})
	}
}
