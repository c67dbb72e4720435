package cryptotest

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/qemutest"
)

func readCert(t *testing.T, name string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM block", name)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestDefaults checks the default material: chains that verify, the
// fields of PKI matching the files, key usages QEMU 10.0 accepts, and
// private keys of mode 0600.
func TestDefaults(t *testing.T) {
	p := New(t, nil)
	ca := readCert(t, filepath.Join(p.ClientDir, "ca-cert.pem"))
	if !ca.Equal(p.CACert) || !readCert(t, filepath.Join(p.ServerDir, "ca-cert.pem")).Equal(p.CACert) {
		t.Error("ca-cert.pem is not CACert")
	}
	roots := x509.NewCertPool()
	roots.AddCert(p.CACert)
	srv := readCert(t, filepath.Join(p.ServerDir, "server-cert.pem"))
	if !srv.Equal(p.ServerCert) {
		t.Error("server-cert.pem is not ServerCert")
	}
	for _, host := range []string{"localhost", "127.0.0.1", "::1"} {
		if _, err := srv.Verify(x509.VerifyOptions{Roots: roots, DNSName: host}); err != nil {
			t.Errorf("server cert for %s: %v", host, err)
		}
	}
	cli := readCert(t, filepath.Join(p.ClientDir, "client-cert.pem"))
	if _, err := cli.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("client cert: %v", err)
	}
	if want := "CN=client.example.com,O=Example,C=GB"; p.ClientDN != want || crypto.CertDN(cli) != want {
		t.Errorf("ClientDN %q, certificate %q, want %q", p.ClientDN, crypto.CertDN(cli), want)
	}
	if want := x509.KeyUsageCertSign | x509.KeyUsageCRLSign; ca.KeyUsage != want || !ca.IsCA {
		t.Errorf("CA key usage %#x, CA %v; want %#x and a CA", ca.KeyUsage, ca.IsCA, want)
	}
	want := x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	for _, c := range []*x509.Certificate{srv, cli} {
		if c.KeyUsage != want || c.IsCA || !c.BasicConstraintsValid {
			t.Errorf("%s: key usage %#x, CA %v; want %#x and a non-CA", c.Subject, c.KeyUsage, c.IsCA, want)
		}
		if _, ok := c.PublicKey.(*ecdsa.PublicKey); !ok {
			t.Errorf("%s: key %T, want ECDSA", c.Subject, c.PublicKey)
		}
	}
	for _, f := range []string{filepath.Join(p.ServerDir, "server-key.pem"), filepath.Join(p.ClientDir, "client-key.pem")} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v", f, fi.Mode())
		}
	}
}

// TestOptions checks Hosts, ClientSubject and RSA.
func TestOptions(t *testing.T) {
	p := New(t, &Options{
		Hosts:         []string{"dst.example.org", "192.0.2.7", "2001:db8::7"},
		ClientSubject: pkix.Name{CommonName: "src", Organization: []string{"Acme"}},
		RSA:           true,
	})
	srv := p.ServerCert
	if len(srv.DNSNames) != 1 || srv.DNSNames[0] != "dst.example.org" {
		t.Errorf("DNS names %v", srv.DNSNames)
	}
	if len(srv.IPAddresses) != 2 || !srv.IPAddresses[0].Equal(net.ParseIP("192.0.2.7")) || !srv.IPAddresses[1].Equal(net.ParseIP("2001:db8::7")) {
		t.Errorf("IP addresses %v", srv.IPAddresses)
	}
	if p.ClientDN != "CN=src,O=Acme" {
		t.Errorf("ClientDN %q", p.ClientDN)
	}
	for _, c := range []*x509.Certificate{p.CACert, srv, readCert(t, filepath.Join(p.ClientDir, "client-cert.pem"))} {
		if _, ok := c.PublicKey.(*rsa.PublicKey); !ok {
			t.Errorf("%s: key %T, want RSA", c.Subject, c.PublicKey)
		}
	}
}

// TestRotateServer checks that the rotated files form a matching pair
// from the same CA for the same hosts, and that ServerCert follows.
func TestRotateServer(t *testing.T) {
	p := New(t, &Options{Hosts: []string{"dst.example.org"}})
	old := p.ServerCert
	if err := p.RotateServer(); err != nil {
		t.Fatal(err)
	}
	if p.ServerCert.Equal(old) {
		t.Fatal("ServerCert unchanged")
	}
	if !readCert(t, filepath.Join(p.ServerDir, "server-cert.pem")).Equal(p.ServerCert) {
		t.Error("server-cert.pem is not the new ServerCert")
	}
	if _, err := tls.LoadX509KeyPair(filepath.Join(p.ServerDir, "server-cert.pem"), filepath.Join(p.ServerDir, "server-key.pem")); err != nil {
		t.Errorf("rotated pair: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(p.CACert)
	if _, err := p.ServerCert.Verify(x509.VerifyOptions{Roots: roots, DNSName: "dst.example.org"}); err != nil {
		t.Errorf("rotated cert: %v", err)
	}
	if _, err := crypto.NewX509Creds(crypto.X509Options{ID: "t0", Dir: p.ServerDir, Endpoint: crypto.Server}); err != nil {
		t.Errorf("livemig refuses the rotated directory: %v", err)
	}
}

// TestQEMULoads loads the material, with ECDSA and RSA keys, into the
// installed QEMUs (tls-creds-x509, both endpoints; 7.2 and 10.0 in CI)
// and into livemig.
func TestQEMULoads(t *testing.T) {
	qemutest.Each(t, func(t *testing.T, q qemutest.QEMU) {
		for _, rsaKeys := range []bool{false, true} {
			name := "ecdsa"
			if rsaKeys {
				name = "rsa"
			}
			t.Run(name, func(t *testing.T) {
				p := New(t, &Options{RSA: rsaKeys})
				for _, d := range []struct{ dir, ep string }{{p.ServerDir, "server"}, {p.ClientDir, "client"}} {
					if err := qemutest.LoadObject(t, q, "tls-creds-x509,id=t0,endpoint="+d.ep+",dir="+d.dir); err != nil {
						t.Errorf("QEMU refuses the %s directory: %v", d.ep, err)
					}
					ep := crypto.Client
					if d.ep == "server" {
						ep = crypto.Server
					}
					if _, err := crypto.NewX509Creds(crypto.X509Options{ID: "t0", Dir: d.dir, Endpoint: ep}); err != nil {
						t.Errorf("livemig refuses the %s directory: %v", d.ep, err)
					}
				}
			})
		}
	})
}
