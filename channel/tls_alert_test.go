package channel_test

import (
	"errors"
	"net"
	"testing"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/testpki"
	"github.com/livemig/livemig/internal/testwait"
)

// TestTLSAlertRefusedClientCertificate: with TLS 1.3 the client finishes
// its handshake before the server checks the client's certificate. A
// server that refuses it (signed by a CA it does not trust) is heard by
// the client on its first Read, as an *AlertError with the alert's code,
// flagged as arriving before any data: the peer's late refusal of the
// handshake. The crypto/tls error stays in the chain.
func TestTLSAlertRefusedClientCertificate(t *testing.T) {
	cc, sc, err := secX509(t, &testpki.Options{ClientFromOtherCA: true}, noSanity, nil)
	if err != nil {
		t.Fatal(err)
	}
	ci, si := secSocketPair(t, "tcp")
	c := channel.NewTLS(ci, cc, localhost)
	s := channel.NewTLS(si, sc, nil)
	t.Cleanup(func() { c.Close(); s.Close() })
	cerr, serr := secHandshakes(testwait.Context(t), c, s)
	if cerr != nil {
		t.Fatalf("client handshake = %v; with TLS 1.3 it completes before the server's check", cerr)
	}
	if serr == nil {
		t.Fatal("server accepted a client certificate from an unknown CA")
	}
	var sa *channel.AlertError
	if errors.As(serr, &sa) {
		t.Errorf("the server's own refusal is reported as a received alert: %v", serr)
	}

	_, err = c.Read(make([]byte, 10))
	var a *channel.AlertError
	if !errors.As(err, &a) {
		t.Fatalf("client's first Read = %v, want an *AlertError", err)
	}
	if a.Code != 42 || a.Description() != "bad certificate" {
		t.Errorf("alert %d (%s), want 42 (bad certificate)", a.Code, a.Description())
	}
	if !a.BeforeData || a.InHandshake {
		t.Errorf("BeforeData %v, InHandshake %v; want true, false", a.BeforeData, a.InHandshake)
	}
	var oe *channel.OpError
	if !errors.As(err, &oe) || oe.Op != "read" {
		t.Errorf("Read's error %v is not a read *OpError", err)
	}
	var ne *net.OpError
	if !errors.As(err, &ne) || ne.Op != "remote error" {
		t.Errorf("crypto/tls's remote error is no longer in the chain of %v", err)
	}
	t.Logf("client Read: %v", err)
}

// TestTLSAlertAfterData: an alert that arrives after application data was
// read is an *AlertError too, but not flagged as a refusal of the
// handshake. The server is made to send one (bad_record_mac, 20) by a
// record that fails authentication, written beneath the client's TLS.
func TestTLSAlertAfterData(t *testing.T) {
	p := testpki.New(t, nil)
	cc := secMust(t, p.ClientDir, crypto.Client, nil)
	sc := secMust(t, p.ServerDir, crypto.Server, nil)
	ci, si := secSocketPair(t, "tcp")
	c := channel.NewTLS(ci, cc, localhost)
	s := channel.NewTLS(si, sc, nil)
	t.Cleanup(func() { c.Close(); s.Close() })
	secHandshakeBoth(t, c, s)

	sent := testwait.Go(func() error { _, err := s.Write([]byte("data")); return err })
	if _, err := c.Read(make([]byte, 4)); err != nil {
		t.Fatalf("client Read: %v", err)
	}
	if err := sent.Result(t, "server Write"); err != nil {
		t.Fatal(err)
	}
	bogus := append([]byte{23, 3, 3, 0, 32}, make([]byte, 32)...) // application_data that fails the AEAD
	if _, err := ci.Write(bogus); err != nil {
		t.Fatal(err)
	}
	srv := testwait.Go(func() error { _, err := s.Read(make([]byte, 10)); return err })
	if err := srv.Result(t, "server Read of the bogus record"); err == nil {
		t.Fatal("server accepted a bogus record")
	}

	_, err := c.Read(make([]byte, 10))
	var a *channel.AlertError
	if !errors.As(err, &a) {
		t.Fatalf("client Read = %v, want an *AlertError", err)
	}
	if a.Code != 20 || a.BeforeData || a.InHandshake {
		t.Errorf("alert %d (%s), BeforeData %v, InHandshake %v; want 20, false, false", a.Code, a.Description(), a.BeforeData, a.InHandshake)
	}
}

// TestTLSAlertInHandshake: the client refuses the server's certificate
// (signed by a CA it does not trust) during the handshake; the server's
// Handshake fails with an *AlertError flagged InHandshake.
func TestTLSAlertInHandshake(t *testing.T) {
	cc, sc, err := secX509(t, &testpki.Options{ServerFromOtherCA: true}, nil, noSanity)
	if err != nil {
		t.Fatal(err)
	}
	_, _, cerr, serr := secTLSPair(t, "tcp", cc, sc, localhost, nil, testwait.Context(t))
	if cerr == nil {
		t.Fatal("client accepted a server certificate from an unknown CA")
	}
	var a *channel.AlertError
	if !errors.As(serr, &a) {
		t.Fatalf("server Handshake = %v, want an *AlertError", serr)
	}
	if !a.InHandshake || a.BeforeData || a.Code != 42 {
		t.Errorf("alert %d (%s), InHandshake %v, BeforeData %v; want 42, true, false", a.Code, a.Description(), a.InHandshake, a.BeforeData)
	}
}

// TestDTLSAlertInHandshake: a DTLS server that does not know the client's
// PSK identity refuses it with an alert, which the client's Handshake
// reports as an *AlertError flagged InHandshake.
func TestDTLSAlertInHandshake(t *testing.T) {
	key := testpki.NewPSK()
	cc, sc := secPSKCreds(t, "stranger", key, map[string][]byte{"qemu": key})
	_, _, cerr, serr := secDTLSPair(t, "tcp", cc, sc, nil, testwait.Context(t))
	if serr == nil {
		t.Fatal("server accepted an unknown PSK identity")
	}
	var a *channel.AlertError
	if !errors.As(cerr, &a) {
		t.Fatalf("client Handshake = %v, want an *AlertError", cerr)
	}
	if !a.InHandshake || a.Code == 0 {
		t.Errorf("alert %d (%s), InHandshake %v; want a code and true", a.Code, a.Description(), a.InHandshake)
	}
	t.Logf("client Handshake: %v", cerr)
}
