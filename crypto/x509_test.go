package crypto_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/pskkeys"
	"github.com/livemig/livemig/internal/testpki"
	"github.com/livemig/livemig/internal/testwait"
)

// handshake runs a crypto/tls handshake over tcp with the two configs and
// returns both errors and the server's view of the client.
func handshake(t *testing.T, ccfg, scfg *tls.Config) (cerr, serr error, cs tls.ConnectionState) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		err error
		cs  tls.ConnectionState
	}
	done := make(chan res, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			done <- res{err: err}
			return
		}
		s := tls.Server(nc, scfg)
		defer s.Close()
		ctx := testwait.Context(t)
		err = s.HandshakeContext(ctx)
		if err == nil {
			// TLS 1.3: wait for the client's verdict on us.
			s.SetReadDeadline(testwait.Deadline(t))
			s.Read(make([]byte, 1))
		}
		done <- res{err, s.ConnectionState()}
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := tls.Client(nc, ccfg)
	ctx := testwait.Context(t)
	cerr = c.HandshakeContext(ctx)
	if cerr == nil {
		c.Write([]byte("x"))
	}
	r := <-done
	c.Close()
	return cerr, r.err, r.cs
}

func configs(t *testing.T, p *testpki.PKI) (*tls.Config, *tls.Config) {
	t.Helper()
	cc, err := crypto.NewX509Creds(crypto.X509Options{ID: "c", Dir: p.ClientDir})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := crypto.NewX509Creds(crypto.X509Options{ID: "s", Dir: p.ServerDir, Endpoint: crypto.Server})
	if err != nil {
		t.Fatal(err)
	}
	ccfg, err := cc.TLSConfig(crypto.TLSOptions{Hostname: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	scfg, err := sc.TLSConfig(crypto.TLSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ccfg, scfg
}

// TestKeyEncodings loads PKCS#1, PKCS#8 and SEC 1 keys and completes a
// handshake with each.
func TestKeyEncodings(t *testing.T) {
	for _, kt := range []testpki.KeyType{testpki.RSA, testpki.ECDSA} {
		for _, enc := range []testpki.KeyEncoding{testpki.Traditional, testpki.PKCS8} {
			name := kt.String() + "/pkcs8"
			if enc == testpki.Traditional {
				name = kt.String() + "/traditional"
			}
			t.Run(name, func(t *testing.T) {
				lo := testpki.LeafOptions{KeyType: kt, KeyEncoding: enc}
				p := testpki.New(t, &testpki.Options{Server: lo, Client: lo})
				ccfg, scfg := configs(t, p)
				cerr, serr, cs := handshake(t, ccfg, scfg)
				if cerr != nil || serr != nil {
					t.Fatalf("client %v, server %v", cerr, serr)
				}
				if len(cs.PeerCertificates) == 0 || crypto.CertDN(cs.PeerCertificates[0]) != "CN=client.example.com,O=Example,C=GB" {
					t.Errorf("server did not see the client certificate")
				}
			})
		}
	}
}

// TestTLSConfigOptions pins the option checks.
func TestTLSConfigOptions(t *testing.T) {
	p := testpki.New(t, nil)
	cc, _ := crypto.NewX509Creds(crypto.X509Options{ID: "c", Dir: p.ClientDir})
	sc, _ := crypto.NewX509Creds(crypto.X509Options{ID: "s", Dir: p.ServerDir, Endpoint: crypto.Server})
	noVerify, err := crypto.NewX509Creds(crypto.X509Options{ID: "nv", Dir: p.ServerDir, Endpoint: crypto.Server, InsecureSkipVerifyPeer: true})
	if err != nil {
		t.Fatal(err)
	}
	pskDir := t.TempDir()
	testpki.WritePSK(pskDir, map[string][]byte{"qemu": testpki.NewPSK()})
	pc, err := crypto.NewPSKCreds(crypto.PSKOptions{ID: "p", Dir: pskDir})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		c       *crypto.Creds
		o       crypto.TLSOptions
		wantErr string
	}{
		{"TLS 1.1", sc, crypto.TLSOptions{MinVersion: tls.VersionTLS11}, "only TLS 1.2 (0x0303) and 1.3 (0x0304)"},
		{"client without hostname", cc, crypto.TLSOptions{}, "needs a hostname"},
		{"authz on a client", cc, crypto.TLSOptions{Hostname: "h", Authz: crypto.NewAuthzSimple("a", "x")}, "authz applies to servers only"},
		{"psk", pc, crypto.TLSOptions{}, "need DTLS"},
		// Fail closed: authz without verified certificates has nothing to check.
		{"authz with verify-peer=off", noVerify, crypto.TLSOptions{Authz: crypto.NewAuthzSimple("a", "x")}, `authz "a" needs verify-peer=on`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.c.TLSConfig(tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("TLSConfig = %v, want %q", err, tc.wantErr)
			}
		})
	}
	cfg, err := sc.TLSConfig(crypto.TLSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.SessionTicketsDisabled || cfg.MinVersion != tls.VersionTLS13 || cfg.ClientCAs != nil {
		t.Errorf("server config: tickets disabled %v, min %#x, ClientCAs %v", cfg.SessionTicketsDisabled, cfg.MinVersion, cfg.ClientCAs)
	}
	inner, err := cfg.GetConfigForClient(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if inner.ClientCAs != nil || inner.ClientAuth != tls.RequestClientCert || !inner.SessionTicketsDisabled {
		t.Errorf("per-handshake config: ClientCAs %v, ClientAuth %v, tickets disabled %v", inner.ClientCAs, inner.ClientAuth, inner.SessionTicketsDisabled)
	}
}

// TestVerifyPeerOff: verify-peer=off accepts a client without a
// certificate and a client skips checking the server.
func TestVerifyPeerOff(t *testing.T) {
	p := testpki.New(t, &testpki.Options{ServerFromOtherCA: true})
	os.Remove(filepath.Join(p.ClientDir, "client-cert.pem"))
	os.Remove(filepath.Join(p.ClientDir, "client-key.pem"))
	r := crypto.NewRegistry()
	if err := r.AddObject("tls-creds-x509,id=s,endpoint=server,verify-peer=off,sanity-check=off,dir=" + p.ServerDir); err != nil {
		t.Fatal(err)
	}
	if err := r.AddObject("tls-creds-x509,id=c,endpoint=client,verify-peer=no,dir=" + p.ClientDir); err != nil {
		t.Fatal(err)
	}
	sc, _ := r.Creds("s")
	cc, _ := r.Creds("c")
	ccfg, err := cc.TLSConfig(crypto.TLSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	scfg, _ := sc.TLSConfig(crypto.TLSOptions{})
	if cerr, serr, _ := handshake(t, ccfg, scfg); cerr != nil || serr != nil {
		t.Fatalf("client %v, server %v", cerr, serr)
	}
}

// TestReloadFailureKeepsOld: a reload that fails returns the error and
// the old certificate stays in use.
func TestReloadFailureKeepsOld(t *testing.T) {
	p := testpki.New(t, nil)
	sc, err := crypto.NewX509Creds(crypto.X509Options{ID: "s", Dir: p.ServerDir, Endpoint: crypto.Server})
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := sc.TLSConfig(crypto.TLSOptions{})
	serial := func() string {
		c, err := cfg.GetConfigForClient(&tls.ClientHelloInfo{})
		if err != nil {
			t.Fatal(err)
		}
		return c.Certificates[0].Leaf.SerialNumber.String()
	}
	before := serial()
	// A key from elsewhere: the pair no longer matches.
	other := testpki.New(t, nil)
	key, _ := os.ReadFile(filepath.Join(other.ServerDir, "server-key.pem"))
	testpki.WriteFileMode(filepath.Join(p.ServerDir, "server-key.pem"), key, 0o600)
	err = sc.Reload()
	var ce *crypto.CheckError
	if !errors.As(err, &ce) || ce.Check != "key match" || !strings.HasSuffix(ce.File, "server-key.pem") {
		t.Fatalf("Reload = %v, want a key match CheckError on server-key.pem", err)
	}
	if got := serial(); got != before {
		t.Errorf("serving serial %s after a failed reload, want %s", got, before)
	}
	// Fix it: the new pair is served.
	if _, err := p.RotateServer(testpki.LeafOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := sc.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := serial(); got == before {
		t.Error("reload did not switch certificates")
	}
}

// TestPSKFile pins keys.psk parsing.
func TestPSKFile(t *testing.T) {
	for _, tc := range []struct {
		name, content string
		mode          os.FileMode
		ep            crypto.Endpoint
		user          string
		wantErr       string
	}{
		{"good", "qemu:0011\nother:ff\n", 0o600, crypto.Client, "", ""},
		{"crlf and blank lines", "qemu:0011\r\n\r\n", 0o600, crypto.Client, "", ""},
		{"missing colon", "qemu0011\n", 0o600, crypto.Server, "", "line 1: want username:hexkey"},
		{"bad hex", "qemu:zz\n", 0o600, crypto.Server, "", `line 1: key of user "qemu" is not non-empty hex`},
		{"duplicate", "a:01\na:02\n", 0o600, crypto.Server, "", `line 2: user "a" listed twice`},
		{"empty", "\n", 0o600, crypto.Server, "", "no keys"},
		{"no key for username", "qemu:01\n", 0o600, crypto.Client, "bob", `no key for username "bob"`},
		{"world-readable", "qemu:01\n", 0o644, crypto.Server, "", "permissions: mode 0644"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := testpki.WriteFileMode(filepath.Join(dir, "keys.psk"), []byte(tc.content), tc.mode); err != nil {
				t.Fatal(err)
			}
			c, err := crypto.NewPSKCreds(crypto.PSKOptions{ID: "p", Dir: dir, Endpoint: tc.ep, Username: tc.user})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				k, err := pskkeys.Key(c, "qemu")
				if err != nil || len(k) != 2 || k[0] != 0 || k[1] != 0x11 {
					t.Errorf("pskkeys.Key = %x, %v", k, err)
				}
				if _, err := pskkeys.Key(c, "other"); err == nil {
					t.Error("a client returned another user's key")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "keys.psk") {
				t.Fatalf("NewPSKCreds = %v, want %q naming keys.psk", err, tc.wantErr)
			}
		})
	}
}

// TestDNMatchesCerttool: CertDN prints a subject exactly as the
// "Subject:" line of `certtool -i`, which operators copy into
// authz-simple's identity. The certificate, made by openssl, has a
// multi-valued RDN, escapes and attribute types beyond CN/O/C.
func TestDNMatchesCerttool(t *testing.T) {
	for _, tool := range []string{"openssl", "certtool"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is required under CI=true: %v", tool, err)
			}
			t.Skipf("%s not installed", tool)
		}
	}
	dir := t.TempDir()
	for _, subj := range []string{
		"/C=GB/O=Example/CN=client.example.com",
		"/DC=com/DC=example/C=GB/ST=Some State/L=Town/O=Example, Inc./OU=Ops+OU=Dev/CN=client.example.com/emailAddress=a@b.c/serialNumber=42/UID=u1/title=T/GN=G/SN=S/postalCode=123/street=Main St",
		"/CN=#leading hash/O=semi;colon<>\"quote\\back",
		"/CN= padded /O=x",
	} {
		t.Run(subj, func(t *testing.T) {
			cmd := exec.Command("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
				"-keyout", filepath.Join(dir, "k.pem"), "-out", filepath.Join(dir, "c.pem"), "-days", "1", "-multivalue-rdn", "-subj", subj)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("openssl: %v\n%s", err, out)
			}
			out, err := exec.Command("certtool", "-i", "--infile", filepath.Join(dir, "c.pem")).Output()
			if err != nil {
				t.Fatalf("certtool: %v", err)
			}
			var want string
			for _, line := range strings.Split(string(out), "\n") {
				if s, ok := strings.CutPrefix(strings.TrimLeft(line, " \t"), "Subject: "); ok {
					want = s
					break
				}
			}
			data, _ := os.ReadFile(filepath.Join(dir, "c.pem"))
			blk, _ := pem.Decode(data)
			cert, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if got := crypto.CertDN(cert); got != want {
				t.Errorf("CertDN:\n  %s\ncerttool -i:\n  %s", got, want)
			}
		})
	}
}

// TestCRLValidity refuses, with sanity checks on, a ca-crl.pem whose next
// update has passed or whose this update is still ahead, naming the file and
// the check; sanity-check=off loads it as before.
func TestCRLValidity(t *testing.T) {
	now := time.Now()
	cases := []struct {
		name string
		o    testpki.CRLOptions
		want string // in the error; "" means it loads
	}{
		{"current", testpki.CRLOptions{}, ""},
		{"expired", testpki.CRLOptions{ThisUpdate: now.Add(-48 * time.Hour), NextUpdate: now.Add(-time.Hour)}, "has expired"},
		{"not yet valid", testpki.CRLOptions{ThisUpdate: now.Add(time.Hour), NextUpdate: now.Add(48 * time.Hour)}, "is not yet valid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := testpki.Write(t.TempDir(), &testpki.Options{CRL: true})
			if err != nil {
				t.Fatal(err)
			}
			crl, err := p.CA.CRLPEMWith(tc.o)
			if err != nil {
				t.Fatal(err)
			}
			crlPath := filepath.Join(p.ServerDir, crypto.CACRLFile)
			if err := testpki.WriteFileMode(crlPath, crl, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err = crypto.NewX509Creds(crypto.X509Options{ID: "s", Dir: p.ServerDir, Endpoint: crypto.Server})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("NewX509Creds = %v, want success", err)
				}
				return
			}
			var ce *crypto.CheckError
			if !errors.As(err, &ce) || ce.File != crlPath || ce.Check != "validity" || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewX509Creds = %v, want a validity CheckError on %s saying %q", err, crlPath, tc.want)
			}
			if _, err := crypto.NewX509Creds(crypto.X509Options{ID: "s", Dir: p.ServerDir, Endpoint: crypto.Server, SkipSanityCheck: true}); err != nil {
				t.Fatalf("NewX509Creds with sanity-check=off = %v, want success", err)
			}
			if testing.Verbose() {
				t.Log(ce)
			}
		})
	}
}
