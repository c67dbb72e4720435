package crypto

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// NewAnonCreds returns anonymous credentials: encryption WITHOUT
// authentication. A server presents a throw-away self-signed certificate
// generated now; a client accepts any server. Use only where the network
// itself is trusted; see the package doc.
func NewAnonCreds(id string, ep Endpoint) (*Creds, error) {
	if id == "" {
		return nil, errors.New("crypto: tls-creds-anon: missing id")
	}
	c := &Creds{id: id, kind: Anon, endpoint: ep}
	if ep == Server {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("crypto: %s: %w", id, err)
		}
		now := time.Now()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1),
			Subject:      pkix.Name{CommonName: "livemig anonymous"},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(100 * 365 * 24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
		if err != nil {
			return nil, fmt.Errorf("crypto: %s: %w", id, err)
		}
		c.anonCert = &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	}
	return c, nil
}

func (c *Creds) anonConfig(minV uint16) *tls.Config {
	cfg := baseConfig(minV)
	if c.endpoint == Server {
		cfg.Certificates = []tls.Certificate{*c.anonCert}
		cfg.ClientAuth = tls.NoClientCert
		return cfg
	}
	// Anonymous: nothing to verify the server against, by definition.
	cfg.InsecureSkipVerify = true
	return cfg
}
