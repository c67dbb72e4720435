package channel_test

import (
	"crypto/x509/pkix"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/testpki"
)

// TestTLSRevokedByLaterCRL: ca-crl.pem may hold several CRLs, one per CA
// of ca-cert.pem (GnuTLS loads them all). A client revoked by the second
// CRL must be refused, not only one revoked by the first.
func TestTLSRevokedByLaterCRL(t *testing.T) {
	p := testpki.New(t, &testpki.Options{RevokeClient: true})
	other, err := testpki.NewCA(testpki.CAOptions{Subject: pkix.Name{CommonName: "second CA", Organization: []string{"livemig"}}})
	if err != nil {
		t.Fatal(err)
	}
	caPath := filepath.Join(p.ServerDir, "ca-cert.pem")
	caPEM, err := os.ReadFile(caPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(caPath, append(caPEM, other.CertPEM...), 0o644); err != nil {
		t.Fatal(err)
	}
	otherCRL, err := other.CRLPEM()
	if err != nil {
		t.Fatal(err)
	}
	crl, err := p.CA.CRLPEM()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.ServerDir, "ca-crl.pem"), append(otherCRL, crl...), 0o644); err != nil {
		t.Fatal(err)
	}
	sc := secMust(t, p.ServerDir, crypto.Server, nil)
	cc := secMust(t, p.ClientDir, crypto.Client, nil)
	_, serr, crossed := secTLS(t, cc, sc, localhost, nil)
	if serr == nil || !strings.Contains(serr.Error(), "is revoked by ca-crl.pem") {
		t.Errorf("server handshake = %v, want the client refused as revoked", serr)
	}
	if crossed != 0 {
		t.Errorf("%d application bytes crossed", crossed)
	}
}
