package crypto_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/qemutest"
)

// checkDir is one x509 directory built in a test from certificate
// templates, so that each row can break exactly one thing that the
// testpki knobs do not reach (criticality, missing extensions).
type checkDir struct {
	client   bool                    // a client directory; default server
	ca       func(*x509.Certificate) // edits the CA template
	leaf     func(*x509.Certificate) // edits the leaf template
	otherCA  bool                    // sign the leaf with an unrelated CA
	extraCAs int                     // more valid CA certificates in ca-cert.pem
}

// nonCriticalKeyUsage returns a key usage extension of usage that is
// not critical; crypto/x509 only writes critical ones.
func nonCriticalKeyUsage(t *testing.T, usage x509.KeyUsage) pkix.Extension {
	t.Helper()
	var b [2]byte
	n := 0
	for i := 0; i < 9; i++ {
		if usage&(1<<i) != 0 {
			b[i/8] |= 0x80 >> (i % 8)
			n = i + 1
		}
	}
	der, err := asn1.Marshal(asn1.BitString{Bytes: b[:(n+7)/8], BitLength: n})
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 15}, Critical: false, Value: der}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func newCA(t *testing.T, cn string, edit func(*x509.Certificate)) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		BasicConstraintsValid: true, IsCA: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	if edit != nil {
		edit(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key, der
}

func (d checkDir) endpoint() crypto.Endpoint {
	if d.client {
		return crypto.Client
	}
	return crypto.Server
}

// build writes the directory and returns it.
func (d checkDir) build(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ca, caKey, caDER := newCA(t, "check CA", d.ca)
	var caPEM []byte
	caPEM = append(caPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})...)
	for i := range d.extraCAs {
		_, _, der := newCA(t, "extra CA "+string(rune('a'+i)), nil)
		caPEM = append(caPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	if err := os.WriteFile(filepath.Join(dir, crypto.CACertFile), caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	signer, signerKey := ca, caKey
	if d.otherCA {
		signer, signerKey, _ = newCA(t, "unrelated CA", nil)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		DNSNames:              []string{"localhost"},
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if d.leaf != nil {
		d.leaf(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, key.Public(), signerKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := crypto.ServerCertFile, crypto.ServerKeyFile
	if d.client {
		certFile, keyFile = crypto.ClientCertFile, crypto.ClientKeyFile
	}
	writePEM(t, filepath.Join(dir, certFile), "CERTIFICATE", der)
	writePEM(t, filepath.Join(dir, keyFile), "EC PRIVATE KEY", keyDER)
	return dir
}

// What QEMU does with a directory livemig refuses, when it differs.
const (
	qemuAccepts = iota + 1
	qemuSince10 // QEMU 10 refuses it; Debian's 7.2.22 accepts it
)

// TestX509LoadChecks builds, for each of QEMU's load-time refusals
// (crypto/tlscredsx509.c, the same in v7.2.0 and v10.0.x), a directory
// that breaks exactly that rule, and checks that livemig refuses it on
// the right file, with the right check and QEMU's words for the cause;
// and that what QEMU accepts (extensions absent, a non-critical key usage
// without keyEncipherment) loads. Each directory is also loaded into each
// installed QEMU (qemutest.Each: 7.2 and 10.0 in CI), which must agree.
func TestX509LoadChecks(t *testing.T) {
	past := func(c *x509.Certificate) {
		c.NotBefore, c.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour)
	}
	future := func(c *x509.Certificate) {
		c.NotBefore, c.NotAfter = time.Now().Add(time.Hour), time.Now().Add(48*time.Hour)
	}
	cases := []struct {
		name string
		dir  checkDir
		// file and check of the CheckError, and the cause in QEMU's
		// words; file "" means the directory loads.
		file, check, cause string
		// qemu is what QEMU does with the directory when it differs from
		// livemig: qemuAccepts, or qemuSince10 (QEMU 10 refuses it with
		// the same cause, Debian's 7.2 loads it).
		qemu int
	}{
		// qcrypto_tls_creds_check_cert_times, CA and own certificate.
		{name: "CA expired", dir: checkDir{ca: past},
			file: crypto.CACertFile, check: "validity", cause: "has expired"},
		{name: "CA not yet active", dir: checkDir{ca: future},
			file: crypto.CACertFile, check: "validity", cause: "is not yet active"},
		{name: "server expired", dir: checkDir{leaf: past},
			file: crypto.ServerCertFile, check: "validity", cause: "has expired"},
		{name: "client not yet active", dir: checkDir{client: true, leaf: future},
			file: crypto.ClientCertFile, check: "validity", cause: "is not yet active"},
		// qcrypto_tls_creds_check_cert_basic_constraints.
		{name: "CA without basic constraints", dir: checkDir{ca: func(c *x509.Certificate) { c.BasicConstraintsValid, c.IsCA = false, false }},
			file: crypto.CACertFile, check: "basic constraints", cause: "is missing basic constraints for a CA"},
		{name: "CA with CA=false", dir: checkDir{ca: func(c *x509.Certificate) { c.IsCA = false }},
			file: crypto.CACertFile, check: "basic constraints", cause: "basic constraints do not show a CA"},
		{name: "server leaf is a CA", dir: checkDir{leaf: func(c *x509.Certificate) { c.IsCA = true; c.KeyUsage |= x509.KeyUsageCertSign }},
			file: crypto.ServerCertFile, check: "basic constraints", cause: "basic constraints show a CA, but we need one for a server"},
		// qcrypto_tls_creds_check_cert_key_usage.
		{name: "CA critical key usage without keyCertSign", dir: checkDir{ca: func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageCRLSign }},
			file: crypto.CACertFile, check: "key usage", cause: "usage does not permit certificate signing"},
		{name: "server critical key usage without digitalSignature", dir: checkDir{leaf: func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageKeyEncipherment }},
			file: crypto.ServerCertFile, check: "key usage", cause: "usage does not permit digital signature"},
		// QEMU 7.2.0 to 10.0.x refuse this (the certificates livemig
		// made before); Debian's 7.2.22 dropped the rule (upstream
		// "crypto: stop requiring key encipherment usage"), so only
		// QEMU 10 must refuse it.
		{name: "server critical key usage without keyEncipherment", dir: checkDir{leaf: func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageDigitalSignature }},
			file: crypto.ServerCertFile, check: "key usage", cause: "usage does not permit key encipherment", qemu: qemuSince10},
		{name: "client critical key usage without keyEncipherment", dir: checkDir{client: true, leaf: func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageDigitalSignature }},
			file: crypto.ClientCertFile, check: "key usage", cause: "usage does not permit key encipherment", qemu: qemuSince10},
		// qcrypto_tls_creds_check_cert_key_purpose: QEMU enforces a
		// purpose only when critical, and crypto/x509 writes it
		// non-critical; livemig enforces it anyway (a TLS peer would
		// refuse the certificate).
		{name: "server purpose clientAuth only", dir: checkDir{leaf: func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth} }},
			file: crypto.ServerCertFile, check: "extended key usage", cause: "purpose does not allow use with a TLS server", qemu: qemuAccepts},
		// qcrypto_tls_creds_check_cert_pair.
		{name: "server from an unrelated CA", dir: checkDir{otherCA: true},
			file: crypto.ServerCertFile, check: "chain", cause: "failed validation against ca-cert.pem"},

		// Accepted by QEMU and livemig. (QEMU sanity-checks only the
		// first 16 certificates of ca-cert.pem and trusts them all.)
		{name: "17 CA certificates", dir: checkDir{extraCAs: 16}},
		{name: "leaf without key usage or purpose", dir: checkDir{leaf: func(c *x509.Certificate) { c.KeyUsage, c.ExtKeyUsage = 0, nil }}},
		{name: "leaf non-critical key usage without keyEncipherment", dir: checkDir{leaf: func(c *x509.Certificate) {
			c.KeyUsage = 0
			c.ExtraExtensions = []pkix.Extension{nonCriticalKeyUsage(t, x509.KeyUsageDigitalSignature)}
		}}},
		{name: "CA without key usage", dir: checkDir{ca: func(c *x509.Certificate) { c.KeyUsage = 0 }}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.dir.build(t)
			_, err := crypto.NewX509Creds(crypto.X509Options{ID: "t0", Dir: dir, Endpoint: tc.dir.endpoint()})
			if tc.file == "" {
				if err != nil {
					t.Fatalf("NewX509Creds = %v, want success", err)
				}
			} else {
				var ce *crypto.CheckError
				if !errors.As(err, &ce) || ce.File != filepath.Join(dir, tc.file) || ce.Check != tc.check || !strings.Contains(err.Error(), tc.cause) {
					t.Fatalf("NewX509Creds = %v\nwant a %q CheckError on %s saying %q", err, tc.check, tc.file, tc.cause)
				}
				// sanity-check=off skips every one of these (the chain
				// and key match aside, it only parses).
				if _, err := crypto.NewX509Creds(crypto.X509Options{ID: "t0", Dir: dir, Endpoint: tc.dir.endpoint(), SkipSanityCheck: true}); err != nil && tc.check != "chain" {
					t.Errorf("with sanity-check=off: %v, want success", err)
				}
			}
			qemutest.Each(t, func(t *testing.T, q qemutest.QEMU) {
				qerr := qemutest.LoadObject(t, q, "tls-creds-x509,id=t0,endpoint="+tc.dir.endpoint().String()+",dir="+dir)
				refuses := tc.file != "" && (tc.qemu == 0 || tc.qemu == qemuSince10 && q.Major >= 10)
				switch {
				case !refuses && qerr != nil:
					t.Errorf("QEMU refused what livemig loads: %v", qerr)
				case refuses && (qerr == nil || !strings.Contains(qerr.Error(), filepath.Join(dir, tc.file)) ||
					!strings.Contains(strings.ReplaceAll(qerr.Error(), dir+"/", ""), tc.cause)):
					t.Errorf("QEMU = %v; want a refusal naming %s and saying %q", qerr, tc.file, tc.cause)
				}
			})
		})
	}
}
