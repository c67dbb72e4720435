package crypto

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// File names of QEMU's tls-creds-x509 directory.
const (
	CACertFile     = "ca-cert.pem"
	CACRLFile      = "ca-crl.pem"
	ServerCertFile = "server-cert.pem"
	ServerKeyFile  = "server-key.pem"
	ClientCertFile = "client-cert.pem"
	ClientKeyFile  = "client-key.pem"
)

// maxFileSize bounds every credentials file read.
const maxFileSize = 1 << 20

// X509Options configures NewX509Creds. The zero value of each field is
// QEMU's default.
type X509Options struct {
	ID       string
	Dir      string
	Endpoint Endpoint
	// InsecureSkipVerifyPeer is verify-peer=off: a server accepts clients
	// without a verified certificate, a client does not verify the server.
	InsecureSkipVerifyPeer bool
	// SkipSanityCheck is sanity-check=off: only parsing and the key match
	// are checked at load time (peers are still verified).
	SkipSanityCheck bool
	// InsecureKeyPermissions allows a private key file readable by group
	// or others.
	InsecureKeyPermissions bool
}

// CheckError is a failed load-time check: the file and what is wrong.
type CheckError struct {
	ID    string // object id
	File  string // full path
	Check string // the check that failed, e.g. "validity", "key match"
	Err   error
}

// Error returns "crypto: ID: FILE: CHECK: reason".
func (e *CheckError) Error() string {
	return fmt.Sprintf("crypto: %s: %s: %s: %v", e.ID, e.File, e.Check, e.Err)
}

// Unwrap returns the underlying error.
func (e *CheckError) Unwrap() error { return e.Err }

// x509Material is one immutable load of a directory.
type x509Material struct {
	roots  *x509.CertPool
	cas    []*x509.Certificate
	cert   *tls.Certificate // nil for a client without a certificate
	leaf   *x509.Certificate
	crls   []*x509.RevocationList // every CRL of ca-crl.pem
	stamps stamps
}

// NewX509Creds loads and checks an x509 directory.
func NewX509Creds(o X509Options) (*Creds, error) {
	if o.ID == "" {
		return nil, errors.New("crypto: tls-creds-x509: missing id")
	}
	if o.Dir == "" {
		return nil, fmt.Errorf("crypto: %s: missing dir", o.ID)
	}
	c := &Creds{id: o.ID, kind: X509, endpoint: o.Endpoint, x509: o}
	m, err := loadX509(&c.x509)
	if err != nil {
		return nil, err
	}
	c.mat.Store(m)
	return c, nil
}

// VerifyPeer reports whether peers are verified (verify-peer=on).
func (c *Creds) VerifyPeer() bool { return c.kind == X509 && !c.x509.InsecureSkipVerifyPeer }

// Dir returns the directory an x509 or psk object reads.
func (c *Creds) Dir() string {
	if c.kind == PSK {
		return c.psk.Dir
	}
	return c.x509.Dir
}

// readBounded reads a file of at most maxFileSize bytes, recording its
// stamp.
func readBounded(path string, st *stamps) ([]byte, error) {
	f, err := os.Open(path)
	st.add(path, f)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("larger than %d bytes", maxFileSize)
	}
	return data, nil
}

func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		if bytes.Contains(data, []byte("-----BEGIN")) {
			return nil, errors.New("no complete CERTIFICATE PEM block (truncated or corrupt PEM?)")
		}
		return nil, errors.New("no CERTIFICATE PEM block")
	}
	return certs, nil
}

func parseKey(data []byte) (crypto.Signer, error) {
	blk, _ := pem.Decode(data)
	if blk == nil {
		if bytes.Contains(data, []byte("-----BEGIN")) {
			return nil, errors.New("no complete PEM block (truncated or corrupt PEM?)")
		}
		return nil, errors.New("no PEM block")
	}
	var k any
	var err error
	switch blk.Type {
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "ENCRYPTED PRIVATE KEY":
		return nil, errors.New("encrypted private keys are not supported")
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key (want RSA PRIVATE KEY, EC PRIVATE KEY or PRIVATE KEY)", blk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", blk.Type, err)
	}
	switch s := k.(type) {
	case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
		return s.(crypto.Signer), nil
	}
	return nil, fmt.Errorf("unsupported private key type %T", k)
}

// The load-time checks follow QEMU's sanity checks (crypto/tlscredsx509.c,
// identical in v7.2.0 and v10.0.x); each error says the cause in QEMU's
// words ("has expired", "usage does not permit key encipherment", ...)
// and then what livemig saw.

// oidKeyUsage is the key usage extension, whose critical flag decides
// whether QEMU enforces it.
var oidKeyUsage = asn1.ObjectIdentifier{2, 5, 29, 15}

// keyUsageCritical reports whether c has a critical key usage extension.
func keyUsageCritical(c *x509.Certificate) bool {
	for _, e := range c.Extensions {
		if e.Id.Equal(oidKeyUsage) {
			return e.Critical
		}
	}
	return false
}

// checkValidity checks c's validity window; what is "CA", "server" or
// "client".
func checkValidity(c *x509.Certificate, what string, now time.Time) error {
	if now.Before(c.NotBefore) {
		return fmt.Errorf("the %s certificate %q is not yet active (valid from %s)", what, CertDN(c), c.NotBefore.UTC().Format(time.RFC3339))
	}
	if now.After(c.NotAfter) {
		return fmt.Errorf("the %s certificate %q has expired (valid until %s)", what, CertDN(c), c.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// checkCA applies QEMU's checks of a CA certificate: basic constraints
// present with CA=true, and keyCertSign when the key usage is critical.
// livemig also wants keyCertSign in a non-critical key usage: crypto/x509
// refuses to chain through a CA without it. It returns the check that
// failed and why.
func checkCA(ca *x509.Certificate) (string, error) {
	if !ca.BasicConstraintsValid {
		return "basic constraints", fmt.Errorf("certificate %q is missing basic constraints for a CA", CertDN(ca))
	}
	if !ca.IsCA {
		return "basic constraints", fmt.Errorf("certificate %q basic constraints do not show a CA", CertDN(ca))
	}
	if ca.KeyUsage != 0 && ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		return "key usage", fmt.Errorf("certificate %q usage does not permit certificate signing (key usage lacks keyCertSign)", CertDN(ca))
	}
	return "", nil
}

// checkLeafUsage applies QEMU's checks of an own certificate's basic
// constraints, key usage and purpose for endpoint ep (want is serverAuth
// or clientAuth). QEMU enforces a key usage or purpose only when the
// extension is critical; livemig enforces digitalSignature and the purpose
// whenever the extension is present (a TLS peer refuses the certificate
// otherwise), and keyEncipherment, as QEMU does, only when the key usage is
// critical (crypto/x509 always makes it critical).
func checkLeafUsage(leaf *x509.Certificate, ep Endpoint, want x509.ExtKeyUsage) (string, error) {
	dn := CertDN(leaf)
	if leaf.BasicConstraintsValid && leaf.IsCA {
		return "basic constraints", fmt.Errorf("certificate %q basic constraints show a CA, but we need one for a %s", dn, ep)
	}
	if leaf.KeyUsage != 0 {
		if leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
			return "key usage", fmt.Errorf("certificate %q usage does not permit digital signature (key usage lacks digitalSignature)", dn)
		}
		if leaf.KeyUsage&x509.KeyUsageKeyEncipherment == 0 && keyUsageCritical(leaf) {
			return "key usage", fmt.Errorf("certificate %q usage does not permit key encipherment (critical key usage lacks keyEncipherment, which QEMU 10.0 requires even for ECDSA keys)", dn)
		}
	}
	if !hasEKU(leaf, want) {
		return "extended key usage", fmt.Errorf("certificate %q purpose does not allow use with a TLS %s (extended key usage lacks %s)", dn, ep, ekuName(want))
	}
	return "", nil
}

// loadX509 reads and checks a directory; it never returns partial material.
func loadX509(o *X509Options) (*x509Material, error) {
	m := &x509Material{}
	now := time.Now()
	path := func(name string) string { return filepath.Join(o.Dir, name) }
	fail := func(name, check string, err error) error {
		return &CheckError{ID: o.ID, File: path(name), Check: check, Err: err}
	}
	sanity := !o.SkipSanityCheck

	// CA certificates.
	data, err := readBounded(path(CACertFile), &m.stamps)
	if err != nil {
		return nil, fail(CACertFile, "read", err)
	}
	m.cas, err = parseCerts(data)
	if err != nil {
		return nil, fail(CACertFile, "parse", err)
	}
	m.roots = x509.NewCertPool()
	for _, ca := range m.cas {
		if sanity {
			if err := checkValidity(ca, "CA", now); err != nil {
				return nil, fail(CACertFile, "validity", err)
			}
			if check, err := checkCA(ca); err != nil {
				return nil, fail(CACertFile, check, err)
			}
		}
		m.roots.AddCert(ca)
	}

	// Own certificate and key.
	certName, keyName := ServerCertFile, ServerKeyFile
	want := x509.ExtKeyUsageServerAuth
	if o.Endpoint == Client {
		certName, keyName = ClientCertFile, ClientKeyFile
		want = x509.ExtKeyUsageClientAuth
	}
	_, certErr := os.Stat(path(certName))
	_, keyErr := os.Stat(path(keyName))
	switch {
	case o.Endpoint == Client && os.IsNotExist(certErr) && os.IsNotExist(keyErr):
		// A client may have no certificate; record absence for Watch.
		m.stamps.add(path(certName), nil)
		m.stamps.add(path(keyName), nil)
	case certErr == nil && os.IsNotExist(keyErr):
		return nil, fail(keyName, "read", fmt.Errorf("missing while %s exists: %w", certName, keyErr))
	case keyErr == nil && os.IsNotExist(certErr):
		return nil, fail(certName, "read", fmt.Errorf("missing while %s exists: %w", keyName, certErr))
	default:
		if err := loadLeaf(o, m, certName, keyName, want, now, fail); err != nil {
			return nil, err
		}
	}

	// Optional CRL (server side, as QEMU).
	if o.Endpoint == Server {
		data, err := readBounded(path(CACRLFile), &m.stamps)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return nil, fail(CACRLFile, "read", err)
		default:
			if check, err := loadCRL(m, data, now, sanity); err != nil {
				return nil, fail(CACRLFile, check, err)
			}
		}
	}
	return m, nil
}

func loadLeaf(o *X509Options, m *x509Material, certName, keyName string, want x509.ExtKeyUsage, now time.Time, fail func(string, string, error) error) error {
	data, err := readBounded(filepath.Join(o.Dir, certName), &m.stamps)
	if err != nil {
		return fail(certName, "read", err)
	}
	chain, err := parseCerts(data)
	if err != nil {
		return fail(certName, "parse", err)
	}
	leaf := chain[0]
	keyPath := filepath.Join(o.Dir, keyName)
	if !o.InsecureKeyPermissions {
		fi, err := os.Stat(keyPath)
		if err != nil {
			return fail(keyName, "read", err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			return fail(keyName, "permissions", fmt.Errorf("mode %#o lets group or others read the private key (chmod 600 it, or opt in with InsecureKeyPermissions)", perm))
		}
	}
	kdata, err := readBounded(keyPath, &m.stamps)
	if err != nil {
		return fail(keyName, "read", err)
	}
	key, err := parseKey(kdata)
	if err != nil {
		return fail(keyName, "parse", err)
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if pub, ok := key.Public().(equaler); !ok || !pub.Equal(leaf.PublicKey) {
		return fail(keyName, "key match", fmt.Errorf("private key does not match the public key of %s", certName))
	}
	if !o.SkipSanityCheck {
		if err := checkValidity(leaf, o.Endpoint.String(), now); err != nil {
			return fail(certName, "validity", err)
		}
		if check, err := checkLeafUsage(leaf, o.Endpoint, want); err != nil {
			return fail(certName, check, err)
		}
		// As QEMU, the certificate alone must verify against the
		// certificates of ca-cert.pem: an intermediate CA belongs there,
		// not after the leaf in the certificate file.
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: m.roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			return fail(certName, "chain", fmt.Errorf("certificate %q failed validation against %s: %w", CertDN(leaf), CACertFile, err))
		}
	}
	cert := &tls.Certificate{PrivateKey: key, Leaf: leaf}
	for _, c := range chain {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	m.cert, m.leaf = cert, leaf
	return nil
}

// loadCRL parses every CRL of data into m. On failure it returns the check
// that failed ("parse" or "validity") and why.
func loadCRL(m *x509Material, data []byte, now time.Time, sanity bool) (string, error) {
	// ca-crl.pem may hold one CRL per CA of ca-cert.pem, as GnuTLS's
	// gnutls_certificate_set_x509_crl_file reads it: load every one.
	rest := data
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "X509 CRL" {
			continue
		}
		n := len(m.crls) + 1
		crl, err := x509.ParseRevocationList(blk.Bytes)
		if err != nil {
			return "parse", fmt.Errorf("CRL %d: %w", n, err)
		}
		signed := false
		for _, ca := range m.cas {
			if crl.CheckSignatureFrom(ca) == nil {
				signed = true
				break
			}
		}
		if !signed {
			return "parse", fmt.Errorf("CRL %d is not signed by a certificate in %s", n, CACertFile)
		}
		if sanity {
			if err := checkCRLValidity(crl, n, now); err != nil {
				return "validity", err
			}
		}
		m.crls = append(m.crls, crl)
	}
	if len(m.crls) == 0 {
		return "parse", errors.New("no X509 CRL PEM block")
	}
	return "", nil
}

// checkCRLValidity refuses a CRL issued in the future or whose next update,
// when set, has passed: GnuTLS's verification flags such a CRL too.
func checkCRLValidity(crl *x509.RevocationList, n int, now time.Time) error {
	issuer := crlIssuerDN(crl)
	if now.Before(crl.ThisUpdate) {
		return fmt.Errorf("CRL %d (issuer %q) is not yet valid: this update %s", n, issuer, crl.ThisUpdate.UTC().Format(time.RFC3339))
	}
	if !crl.NextUpdate.IsZero() && now.After(crl.NextUpdate) {
		return fmt.Errorf("CRL %d (issuer %q) has expired: next update was due %s", n, issuer, crl.NextUpdate.UTC().Format(time.RFC3339))
	}
	return nil
}

func hasEKU(c *x509.Certificate, want x509.ExtKeyUsage) bool {
	if len(c.ExtKeyUsage) == 0 && len(c.UnknownExtKeyUsage) == 0 {
		return true // absent extension: any use, as QEMU
	}
	for _, u := range c.ExtKeyUsage {
		if u == want || u == x509.ExtKeyUsageAny {
			return true
		}
	}
	return false
}

func ekuName(u x509.ExtKeyUsage) string {
	if u == x509.ExtKeyUsageServerAuth {
		return "serverAuth"
	}
	return "clientAuth"
}

// verifyPeer checks a peer chain against m: chain to the CA, validity,
// extended key usage, CRL and (clients) host name.
func (m *x509Material) verifyPeer(id string, certs []*x509.Certificate, usage x509.ExtKeyUsage, hostname string) error {
	if len(certs) == 0 {
		return errors.New("no certificate")
	}
	leaf := certs[0]
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	opts := x509.VerifyOptions{Roots: m.roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}, DNSName: hostname}
	chains, err := leaf.Verify(opts)
	if err != nil {
		return fmt.Errorf("certificate %q: %w", CertDN(leaf), err)
	}
	// Every certificate below the root of every chain, the leaf and any
	// intermediate, is checked against every CRL.
	for _, chain := range chains {
		for i := 0; i+1 < len(chain); i++ {
			if crl := m.revokedBy(chain[i], chain[i+1]); crl != nil {
				return fmt.Errorf("certificate %q (serial %s) is revoked by %s", CertDN(chain[i]), chain[i].SerialNumber, CACRLFile)
			}
		}
	}
	return nil
}

// revokedBy returns the CRL that lists c, issued by issuer, or nil. A CRL
// applies to c when it names c's issuer or is signed by it.
func (m *x509Material) revokedBy(c, issuer *x509.Certificate) *x509.RevocationList {
	for _, crl := range m.crls {
		applies := bytes.Equal(crl.RawIssuer, c.RawIssuer)
		for _, r := range crl.RevokedCertificateEntries {
			if r.SerialNumber == nil || r.SerialNumber.Cmp(c.SerialNumber) != 0 {
				continue
			}
			if applies || crl.CheckSignatureFrom(issuer) == nil {
				return crl
			}
		}
	}
	return nil
}

func (c *Creds) x509ServerConfig(minV uint16, authz Authz) *tls.Config {
	base := baseConfig(minV)
	// Each handshake snapshots the current material so that the
	// certificate it presents and the CA it trusts come from one load.
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		m := c.mat.Load()
		cfg := baseConfig(minV)
		cfg.Certificates = []tls.Certificate{*m.cert}
		if c.x509.InsecureSkipVerifyPeer {
			cfg.ClientAuth = tls.NoClientCert
			return cfg, nil
		}
		// Trap 1: no ClientCAs, so the CertificateRequest carries no CA
		// names; the chain is verified below.
		cfg.ClientAuth = tls.RequestClientCert
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("crypto: %s: client sent no certificate and verify-peer=on", c.id)
			}
			if err := m.verifyPeer(c.id, cs.PeerCertificates, x509.ExtKeyUsageClientAuth, ""); err != nil {
				return fmt.Errorf("crypto: %s: verifying client: %w", c.id, err)
			}
			if authz != nil {
				dn := CertDN(cs.PeerCertificates[0])
				if !authz.IsAllowed(dn) {
					return fmt.Errorf("crypto: %s: authz %q denies client %q", c.id, authz.ID(), dn)
				}
			}
			return nil
		}
		return cfg, nil
	}
	return base
}

func (c *Creds) x509ClientConfig(minV uint16, hostname string) *tls.Config {
	cfg := baseConfig(minV)
	cfg.ServerName = hostname
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		if m := c.mat.Load(); m.cert != nil {
			return m.cert, nil
		}
		return &tls.Certificate{}, nil
	}
	// Verification is ours (VerifyConnection) so that it uses the current
	// material; crypto/tls's own would use a fixed RootCAs.
	cfg.InsecureSkipVerify = true
	if c.x509.InsecureSkipVerifyPeer {
		return cfg
	}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		m := c.mat.Load()
		if err := m.verifyPeer(c.id, cs.PeerCertificates, x509.ExtKeyUsageServerAuth, hostname); err != nil {
			return fmt.Errorf("crypto: %s: verifying server: %w", c.id, err)
		}
		return nil
	}
	return cfg
}
