package channel_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/testpki"
	"github.com/livemig/livemig/internal/testwait"
)

// secSecure is a Channel with a handshake.
type secSecure interface {
	channel.Channel
	Handshake(context.Context) error
}

// secReadBounded reads once from c, closing c if nothing comes within d.
func secReadBounded(c channel.Channel, d time.Duration) (int, error) {
	type res struct {
		n   int
		err error
	}
	ch := make(chan res, 1)
	go func() {
		n, err := c.Read(make([]byte, 64))
		ch <- res{n, err}
	}()
	select {
	case r := <-ch:
		return r.n, r.err
	case <-time.After(d):
		c.Close()
		r := <-ch
		return r.n, r.err
	}
}

// secAttempt runs both handshakes, then has each side that believes it
// succeeded send a secret and each side read; it returns the handshake
// errors and how many application bytes reached either side.
func secAttempt(t *testing.T, c, s secSecure, ctx context.Context) (cerr, serr error, crossed int) {
	t.Helper()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); serr = s.Handshake(ctx) }()
	cerr = c.Handshake(ctx)
	wg.Wait()
	secret := []byte("SECRET")
	var n1, n2 int
	wg.Add(2)
	go func() {
		defer wg.Done()
		if cerr == nil {
			c.Write(secret)
		}
		if serr == nil {
			n1, _ = secReadBounded(s, 2*time.Second)
		}
	}()
	go func() {
		defer wg.Done()
		if serr == nil {
			s.Write(secret)
		}
		if cerr == nil {
			n2, _ = secReadBounded(c, 2*time.Second)
		}
	}()
	wg.Wait()
	return cerr, serr, n1 + n2
}

// secMatrixCase is one row of the bad-credentials matrix. Exactly one of
// loadErr (a load-time refusal) or the handshake side is checked.
type secMatrixCase struct {
	name string
	// run returns the load error, or the two handshake errors and the
	// bytes that crossed.
	run     func(t *testing.T) (loadErr, cerr, serr error, crossed int)
	side    string // "load", "client" or "server": where the error must be
	wantErr string
	wantIs  error // optional errors.Is target
}

func secTLS(t *testing.T, cc, sc *crypto.Creds, copts, sopts *channel.TLSOptions) (cerr, serr error, crossed int) {
	ci, si := secSocketPair(t, "tcp")
	c := channel.NewTLS(ci, cc, copts)
	s := channel.NewTLS(si, sc, sopts)
	t.Cleanup(func() { c.Close(); s.Close() })
	ctx := testwait.Context(t)
	return secAttempt(t, c, s, ctx)
}

// secX509 generates a PKI with opts and returns client and server creds
// loaded with the given option edits, or the first load error.
func secX509(t *testing.T, opts *testpki.Options, cmod, smod func(*crypto.X509Options)) (cc, sc *crypto.Creds, err error) {
	p := testpki.New(t, opts)
	if sc, err = secCreds(t, p.ServerDir, crypto.Server, smod); err != nil {
		return nil, nil, err
	}
	if cc, err = secCreds(t, p.ClientDir, crypto.Client, cmod); err != nil {
		return nil, nil, err
	}
	return cc, sc, nil
}

func noSanity(o *crypto.X509Options) { o.SkipSanityCheck = true }

var localhost = &channel.TLSOptions{TLSOptions: crypto.TLSOptions{Hostname: "localhost"}}

// loadCase is a row refused when the credentials load.
func loadCase(opts *testpki.Options, cmod, smod func(*crypto.X509Options)) func(t *testing.T) (error, error, error, int) {
	return func(t *testing.T) (error, error, error, int) {
		_, _, err := secX509(t, opts, cmod, smod)
		return err, nil, nil, 0
	}
}

// peerCase is a row that loads (with the given edits) and is refused by
// the peer during the handshake.
func peerCase(opts *testpki.Options, cmod, smod func(*crypto.X509Options), copts, sopts *channel.TLSOptions) func(t *testing.T) (error, error, error, int) {
	return func(t *testing.T) (error, error, error, int) {
		cc, sc, err := secX509(t, opts, cmod, smod)
		if err != nil {
			t.Fatalf("loading: %v", err)
		}
		cerr, serr, n := secTLS(t, cc, sc, copts, sopts)
		return nil, cerr, serr, n
	}
}

func secPSKCase(user string, clientKey []byte, serverKeys map[string][]byte, sopts *channel.DTLSOptions) func(t *testing.T) (error, error, error, int) {
	return func(t *testing.T) (error, error, error, int) {
		cc, sc := secPSKCreds(t, user, clientKey, serverKeys)
		ci, si := secSocketPair(t, "tcp")
		c := channel.NewDTLS(ci, cc, nil)
		s := channel.NewDTLS(si, sc, sopts)
		t.Cleanup(func() { c.Close(); s.Close() })
		cerr, serr, n := secAttempt(t, c, s, testwait.Context(t))
		return nil, cerr, serr, n
	}
}

// TestBadCredentials is the bad-credentials matrix: each row asserts the
// error text, on the side that must refuse, and that no application byte
// crossed in either direction.
func TestBadCredentials(t *testing.T) {
	keyA, keyB := testpki.NewPSK(), testpki.NewPSK()
	cases := []secMatrixCase{
		// QEMU tlscredsx509.c validity check (own certificate at load).
		{name: "expired server leaf at load", side: "load",
			run:     loadCase(&testpki.Options{Server: testpki.LeafOptions{Expired: true}}, nil, nil),
			wantErr: `server-cert.pem: validity: the server certificate "CN=localhost,O=livemig" has expired`},
		// The same certificate loaded with sanity-check=off: the client refuses it.
		{name: "expired server leaf at handshake", side: "client",
			run:     peerCase(&testpki.Options{Server: testpki.LeafOptions{Expired: true}}, nil, noSanity, localhost, nil),
			wantErr: `verifying server: certificate "CN=localhost,O=livemig": x509: certificate has expired or is not yet valid`},
		{name: "not-yet-valid client leaf at load", side: "load",
			run:     loadCase(&testpki.Options{Client: testpki.LeafOptions{NotYetValid: true}}, nil, nil),
			wantErr: `client-cert.pem: validity: the client certificate "CN=client.example.com,O=Example,C=GB" is not yet active`},
		// QEMU check_credentials: every peer certificate in its validity window.
		{name: "not-yet-valid client leaf at handshake", side: "server",
			run:     peerCase(&testpki.Options{Client: testpki.LeafOptions{NotYetValid: true}}, noSanity, nil, localhost, nil),
			wantErr: `verifying client: certificate "CN=client.example.com,O=Example,C=GB": x509: certificate has expired or is not yet valid`},
		{name: "server leaf from another CA at load", side: "load",
			run:     loadCase(&testpki.Options{ServerFromOtherCA: true}, nil, nil),
			wantErr: `server-cert.pem: chain: certificate "CN=localhost,O=livemig" failed validation against ca-cert.pem: x509: certificate signed by unknown authority`},
		{name: "server leaf from another CA at handshake", side: "client",
			run:     peerCase(&testpki.Options{ServerFromOtherCA: true}, nil, noSanity, localhost, nil),
			wantErr: `verifying server: certificate "CN=localhost,O=livemig": x509: certificate signed by unknown authority`},
		{name: "client leaf from another CA at handshake", side: "server",
			run:     peerCase(&testpki.Options{ClientFromOtherCA: true}, noSanity, nil, localhost, nil),
			wantErr: `verifying client: certificate "CN=client.example.com,O=Example,C=GB": x509: certificate signed by unknown authority`},
		// QEMU: the CA certificate must have basicConstraints CA=true.
		{name: "CA without CA flag", side: "load",
			run:     loadCase(&testpki.Options{CA: testpki.CAOptions{NotCA: true}}, nil, nil),
			wantErr: `ca-cert.pem: basic constraints: certificate "CN=livemig test CA,O=livemig" basic constraints do not show a CA`},
		{name: "CA without keyCertSign", side: "load",
			run:     loadCase(&testpki.Options{CA: testpki.CAOptions{NoCertSign: true}}, nil, nil),
			wantErr: `ca-cert.pem: key usage: certificate "CN=livemig test CA,O=livemig" usage does not permit certificate signing`},
		// QEMU check_credentials: verify-peer=on needs a peer certificate.
		{name: "client certificate missing while verify-peer=on", side: "server",
			run: func(t *testing.T) (error, error, error, int) {
				p := testpki.New(t, nil)
				os.Remove(filepath.Join(p.ClientDir, "client-cert.pem"))
				os.Remove(filepath.Join(p.ClientDir, "client-key.pem"))
				cc := secMust(t, p.ClientDir, crypto.Client, nil)
				sc := secMust(t, p.ServerDir, crypto.Server, nil)
				cerr, serr, n := secTLS(t, cc, sc, localhost, nil)
				return nil, cerr, serr, n
			},
			wantErr: `client sent no certificate and verify-peer=on`},
		{name: "client certificate with serverAuth only at load", side: "load",
			run:     loadCase(&testpki.Options{Client: testpki.LeafOptions{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}}, nil, nil),
			wantErr: `client-cert.pem: extended key usage: certificate "CN=client.example.com,O=Example,C=GB" purpose does not allow use with a TLS client (extended key usage lacks clientAuth)`},
		{name: "client certificate with serverAuth only at handshake", side: "server",
			run:     peerCase(&testpki.Options{Client: testpki.LeafOptions{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}}, noSanity, nil, localhost, nil),
			wantErr: `verifying client: certificate "CN=client.example.com,O=Example,C=GB": x509: certificate specifies an incompatible key usage`},
		// QEMU gnutls_x509_crt_check_hostname.
		{name: "hostname mismatch", side: "client",
			run:     peerCase(nil, nil, nil, &channel.TLSOptions{TLSOptions: crypto.TLSOptions{Hostname: "wrong.example.org"}}, nil),
			wantErr: `x509: certificate is valid for localhost, not wrong.example.org`},
		// QEMU: a client with x509 creds and no hostname fails.
		{name: "client without hostname", side: "client",
			run:     peerCase(nil, nil, nil, nil, nil),
			wantErr: `needs a hostname to check the server certificate against (tls-hostname)`},
		{name: "key not matching certificate", side: "load",
			run:     loadCase(&testpki.Options{ServerWrongKey: true}, nil, nil),
			wantErr: `server-key.pem: key match: private key does not match the public key of server-cert.pem`},
		{name: "key file world-readable", side: "load",
			run:     loadCase(&testpki.Options{KeyMode: 0o644}, nil, nil),
			wantErr: `server-key.pem: permissions: mode 0644 lets group or others read the private key`},
		{name: "truncated certificate PEM", side: "load",
			run:     loadCase(&testpki.Options{TruncateFile: "server-cert.pem"}, nil, nil),
			wantErr: `server-cert.pem: parse: no complete CERTIFICATE PEM block (truncated or corrupt PEM?)`},
		{name: "truncated key PEM", side: "load",
			run:     loadCase(&testpki.Options{TruncateFile: "client-key.pem"}, nil, nil),
			wantErr: `client-key.pem: parse: no complete PEM block (truncated or corrupt PEM?)`},
		{name: "truncated CA PEM", side: "load",
			run:     loadCase(&testpki.Options{TruncateFile: "ca-cert.pem"}, nil, nil),
			wantErr: `ca-cert.pem: parse: no complete CERTIFICATE PEM block`},
		// QEMU tls-authz: the DN is checked after the chain.
		{name: "authz deny", side: "server",
			run: peerCase(nil, nil, nil, localhost, &channel.TLSOptions{
				TLSOptions: crypto.TLSOptions{Authz: crypto.NewAuthzSimple("auth0", "CN=someone.else,O=Example,C=GB")}}),
			wantErr: `authz "auth0" denies client "CN=client.example.com,O=Example,C=GB"`},
		// ca-crl.pem lists the client.
		{name: "revoked client", side: "server",
			run:     peerCase(&testpki.Options{RevokeClient: true}, nil, nil, localhost, nil),
			wantErr: `certificate "CN=client.example.com,O=Example,C=GB" (serial 3) is revoked by ca-crl.pem`},
		{name: "peer offers only TLS 1.2 when 1.3 is required", side: "server",
			run: func(t *testing.T) (error, error, error, int) {
				cc, sc, err := secX509(t, nil, nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				cfg, err := cc.TLSConfig(crypto.TLSOptions{Hostname: "localhost"})
				if err != nil {
					t.Fatal(err)
				}
				cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
				ci, si := secSocketPair(t, "tcp")
				raw := tls.Client(ci.NetConn(), cfg)
				s := channel.NewTLS(si, sc, nil)
				t.Cleanup(func() { raw.Close(); s.Close() })
				ctx := testwait.Context(t)
				errc := make(chan error, 1)
				go func() { errc <- raw.HandshakeContext(ctx) }()
				serr := s.Handshake(ctx)
				cerr := <-errc
				n := 0
				if serr == nil {
					n, _ = secReadBounded(s, time.Second)
				}
				return nil, cerr, serr, n
			},
			wantErr: `tls: client offered only unsupported versions`},
		{name: "handshake that never completes", side: "client", wantIs: context.DeadlineExceeded,
			run: func(t *testing.T) (error, error, error, int) {
				cc, _, err := secX509(t, nil, nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				ci, si := secSocketPair(t, "tcp") // si never answers
				c := channel.NewTLS(ci, cc, localhost)
				t.Cleanup(func() { c.Close() })
				ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				defer cancel()
				// One that ignored its deadline would fail at the test
				// binary's -timeout.
				cerr := testwait.Go(func() error { return c.Handshake(ctx) }).Result(t, "the handshake past its 300ms deadline")
				n, _ := si.Read(make([]byte, 4096)) // the ClientHello, nothing more
				m, _ := secReadBounded(si, 200*time.Millisecond)
				_ = n
				return nil, cerr, nil, m
			},
			wantErr: `context deadline exceeded`},
		{name: "peer closes mid-handshake", side: "client", wantIs: io.ErrUnexpectedEOF,
			run: func(t *testing.T) (error, error, error, int) {
				cc, _, err := secX509(t, nil, nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				ci, si := secSocketPair(t, "tcp")
				go func() {
					// Read the whole ClientHello record, then close cleanly.
					hdr := make([]byte, 5)
					if _, err := io.ReadFull(si, hdr); err == nil {
						io.ReadFull(si, make([]byte, int(hdr[3])<<8|int(hdr[4])))
					}
					si.Close()
				}()
				c := channel.NewTLS(ci, cc, localhost)
				t.Cleanup(func() { c.Close() })
				ctx := testwait.Context(t)
				cerr := c.Handshake(ctx)
				n, _ := c.Read(make([]byte, 10))
				return nil, cerr, nil, n
			},
			wantErr: `peer closed the connection during the handshake`},
		// DTLS-PSK rows: GnuTLS psk file semantics, wrong key and unknown user.
		{name: "PSK wrong key", side: "server",
			run:     secPSKCase("qemu", keyA, map[string][]byte{"qemu": keyB}, nil),
			wantErr: `a handshake record from the peer failed to decrypt (wrong PSK key for identity "qemu"?)`},
		{name: "PSK unknown user", side: "server",
			run:     secPSKCase("stranger", keyA, map[string][]byte{"qemu": keyA}, nil),
			wantErr: `unknown PSK identity "stranger"`},
		{name: "PSK authz deny", side: "server",
			run:     secPSKCase("qemu", keyA, map[string][]byte{"qemu": keyA}, &channel.DTLSOptions{Authz: crypto.NewAuthzSimple("onlyroot", "root")}),
			wantErr: `authz "onlyroot" denies PSK identity "qemu"`},
		{name: "DTLS handshake that never completes", side: "client", wantIs: context.DeadlineExceeded,
			run: func(t *testing.T) (error, error, error, int) {
				key := testpki.NewPSK()
				cc, _ := secPSKCreds(t, "qemu", key, map[string][]byte{"qemu": key})
				ci, _ := secSocketPair(t, "tcp")
				c := channel.NewDTLS(ci, cc, nil)
				t.Cleanup(func() { c.Close() })
				ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				defer cancel()
				cerr := c.Handshake(ctx)
				return nil, cerr, nil, 0
			},
			wantErr: `context deadline exceeded`},
	}
	if len(cases) < 16 {
		t.Fatalf("matrix has %d rows, want at least 16", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			loadErr, cerr, serr, crossed := tc.run(t)
			var got error
			switch tc.side {
			case "load":
				got = loadErr
			case "client":
				got = cerr
			case "server":
				got = serr
			}
			if loadErr != nil && tc.side != "load" {
				t.Fatalf("unexpected load error: %v", loadErr)
			}
			if got == nil {
				t.Fatalf("%s error is nil (client %v, server %v); want %q", tc.side, cerr, serr, tc.wantErr)
			}
			t.Logf("%s: %v", tc.side, got)
			if !strings.Contains(got.Error(), tc.wantErr) {
				t.Errorf("%s error:\n  %v\nwant it to contain\n  %s", tc.side, got, tc.wantErr)
			}
			if tc.wantIs != nil && !errors.Is(got, tc.wantIs) {
				t.Errorf("%s error %v does not wrap %v", tc.side, got, tc.wantIs)
			}
			if crossed != 0 {
				t.Errorf("%d application bytes crossed", crossed)
			}
			var ne net.Error
			_ = errors.As(got, &ne)
		})
	}
}
