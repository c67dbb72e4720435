package testpki

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"
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
