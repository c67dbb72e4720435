package testpki

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

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

// TestDefaultChains checks that the default material verifies and the
// files exist with the right modes.
func TestDefaultChains(t *testing.T) {
	p := New(t, nil)
	roots := x509.NewCertPool()
	roots.AddCert(readCert(t, filepath.Join(p.ServerDir, "ca-cert.pem")))
	srv := readCert(t, filepath.Join(p.ServerDir, "server-cert.pem"))
	if _, err := srv.Verify(x509.VerifyOptions{Roots: roots, DNSName: "localhost"}); err != nil {
		t.Fatalf("server cert: %v", err)
	}
	cli := readCert(t, filepath.Join(p.ClientDir, "client-cert.pem"))
	if _, err := cli.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("client cert: %v", err)
	}
	if got := cli.Subject.String(); got != "CN=client.example.com,O=Example,C=GB" {
		t.Errorf("client subject %q", got)
	}
	fi, err := os.Stat(filepath.Join(p.ClientDir, "client-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v", fi.Mode())
	}
}

// TestDefects checks a few knobs really produce the defect.
func TestDefects(t *testing.T) {
	p := New(t, &Options{Server: LeafOptions{Expired: true}, ClientFromOtherCA: true, KeyMode: 0o644,
		TruncateFile: "client-cert.pem", Client: LeafOptions{KeyType: RSA, KeyEncoding: PKCS8}})
	srv := readCert(t, filepath.Join(p.ServerDir, "server-cert.pem"))
	if !srv.NotAfter.Before(time.Now()) {
		t.Error("server cert not expired")
	}
	b, _ := os.ReadFile(filepath.Join(p.ClientDir, "client-cert.pem"))
	if blk, _ := pem.Decode(b); blk != nil {
		t.Error("truncated file still decodes")
	}
	k, _ := os.ReadFile(filepath.Join(p.ClientDir, "client-key.pem"))
	if blk, _ := pem.Decode(k); blk == nil || blk.Type != "PRIVATE KEY" {
		t.Errorf("client key not PKCS#8")
	}
	fi, _ := os.Stat(filepath.Join(p.ServerDir, "server-key.pem"))
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("key mode %v", fi.Mode())
	}
	if p.Client.Cert.CheckSignatureFrom(p.CA.Cert) == nil {
		t.Error("client cert verifies against the main CA")
	}
	if _, err := Write(t.TempDir(), &Options{TruncateFile: "nope.pem"}); err == nil {
		t.Error("unknown TruncateFile accepted")
	}
}

// TestQEMULoads loads the default material, with ECDSA and RSA keys, into
// the installed QEMUs (tls-creds-x509, both endpoints; 7.2 and 10.0 in
// CI) and into livemig.
func TestQEMULoads(t *testing.T) {
	qemutest.Each(t, func(t *testing.T, q qemutest.QEMU) {
		for _, kt := range []KeyType{ECDSA, RSA} {
			t.Run(kt.String(), func(t *testing.T) {
				lo := LeafOptions{KeyType: kt}
				p := New(t, &Options{CA: CAOptions{KeyType: kt}, Server: lo, Client: lo, CRL: true})
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

// TestKeyUsages pins the key usages QEMU 10.0 needs (see the package doc).
func TestKeyUsages(t *testing.T) {
	p := New(t, nil)
	if want := x509.KeyUsageCertSign | x509.KeyUsageCRLSign; p.CA.Cert.KeyUsage != want {
		t.Errorf("CA key usage %#x, want %#x", p.CA.Cert.KeyUsage, want)
	}
	want := x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	for _, l := range []*Leaf{p.Server, p.Client} {
		if l.Cert.KeyUsage != want || l.Cert.IsCA || !l.Cert.BasicConstraintsValid {
			t.Errorf("%s: key usage %#x, CA %v; want %#x and a non-CA", l.Cert.Subject, l.Cert.KeyUsage, l.Cert.IsCA, want)
		}
	}
}
