// Package testpki is the project's own test PKI: it writes throwaway
// certificate authorities, x509 credential directories and PSK key files
// in QEMU's layout, correct or wrong in one precise way, for livemig's
// tests. Nothing it makes is fit for production: keys are generated on
// the fly, live a day and sit next to the certificates.
//
// It is the one certificate generator of the module: the public
// crypto/cryptotest package, for users' tests, is a small layer over it
// that exposes only correct material; the defect knobs below stay here.
//
// # Directories
//
// [New] (for a test: into t.TempDir()) and [Write] (into a directory of
// the caller's choice, for demos) produce the two directories QEMU's
// tls-creds-x509 object reads, one per endpoint:
//
//	server/ca-cert.pem server/server-cert.pem server/server-key.pem [server/ca-crl.pem]
//	client/ca-cert.pem client/client-cert.pem client/client-key.pem
//
// so that "tls-creds-x509,id=tls0,dir=PKI.ServerDir,endpoint=server" loads
// in livemig's crypto package and in QEMU alike. [WritePSK] writes the
// keys.psk file ("username:hexkey" lines) of tls-creds-psk.
//
// The zero [Options] give a correct ECDSA P-256 PKI: a CA, a server
// certificate for localhost, 127.0.0.1 and ::1, and a client certificate
// with the subject CN=client.example.com,O=Example,C=GB. [LeafOptions]
// set other names (DNS names and IP addresses in the subjectAltName, the
// client's subject DN), RSA keys and PKCS#8 key files.
//
// # What QEMU accepts
//
// The certificates pass the load-time checks of QEMU's
// crypto/tlscredsx509.c in 7.2 and in 10.0: the CA has basic constraints
// CA=true and the key usages keyCertSign and cRLSign; a leaf has basic
// constraints CA=false, the key usages digitalSignature and
// keyEncipherment (QEMU 7.2.0 to 10.0 refuse a leaf whose critical key
// usage lacks keyEncipherment, even for an ECDSA key that never
// enciphers; crypto/x509 always marks the extension critical) and the
// extended key usage serverAuth or clientAuth.
//
// # Defects
//
// Every other knob of [Options], [CAOptions] and [LeafOptions] makes the
// material wrong in one precise way (expired or not yet valid leaf, leaf
// signed by a second, unrelated CA, CA without the CA flag or keyCertSign,
// leaf key usage or extended key usage that QEMU refuses, key that does
// not match its certificate, world-readable key file, truncated PEM, ...)
// so that a test can check the error each defect causes.
package testpki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// KeyType is the public-key algorithm of a generated key.
type KeyType int

// Key types. The zero value is ECDSA P-256, the fastest to generate.
const (
	ECDSA KeyType = iota // ECDSA on P-256
	RSA                  // RSA 2048
)

// String returns "ecdsa" or "rsa".
func (k KeyType) String() string {
	if k == RSA {
		return "rsa"
	}
	return "ecdsa"
}

// KeyEncoding is the PEM encoding of a private key file.
type KeyEncoding int

// Key encodings. The zero value picks the traditional encoding of the key
// type: PKCS#1 ("RSA PRIVATE KEY") for RSA, SEC 1 ("EC PRIVATE KEY") for
// ECDSA.
const (
	Traditional KeyEncoding = iota // PKCS#1 for RSA, SEC 1 for ECDSA
	PKCS8                          // "PRIVATE KEY"
)

// Role says which extended key usage a leaf gets by default.
type Role int

// Roles.
const (
	ServerRole Role = iota // serverAuth, DNS and IP names
	ClientRole             // clientAuth
)

// CAOptions tunes NewCA. The zero value is a valid ECDSA root CA, valid
// from an hour ago for a day, with the key usages keyCertSign and cRLSign.
type CAOptions struct {
	// Subject defaults to CN=livemig test CA,O=livemig.
	Subject pkix.Name
	KeyType KeyType
	// NotCA leaves out the CA flag from basic constraints (defect).
	NotCA bool
	// NoCertSign leaves keyCertSign out of the key usage, keeping only
	// cRLSign (defect).
	NoCertSign bool
}

// CA is a generated certificate authority.
type CA struct {
	Cert    *x509.Certificate // the self-signed certificate
	Key     crypto.Signer     // its private key
	CertPEM []byte            // Cert as written to ca-cert.pem
	serial  int64
	revoked []x509.RevocationListEntry
}

// Leaf is a generated end-entity certificate with its key.
type Leaf struct {
	Cert    *x509.Certificate // the certificate
	Key     crypto.Signer     // its private key (another one with a WrongKey defect)
	CertPEM []byte            // Cert as written to *-cert.pem
	// KeyPEM is the private key in the requested encoding.
	KeyPEM []byte
}

// LeafOptions tunes CA.Issue. The zero value is a server certificate for
// "localhost", 127.0.0.1 and ::1, valid from an hour ago for a day, with
// the key usages digitalSignature and keyEncipherment.
type LeafOptions struct {
	Role Role
	// Subject defaults to CN=localhost,O=livemig (server) or
	// CN=client.example.com,O=Example,C=GB (client).
	Subject pkix.Name
	// DNSNames and IPs default, for servers, to localhost, 127.0.0.1, ::1.
	DNSNames []string
	IPs      []net.IP
	KeyType  KeyType
	// KeyEncoding selects the PEM encoding of KeyPEM.
	KeyEncoding KeyEncoding
	// KeyUsage overrides the default digitalSignature|keyEncipherment;
	// one without keyEncipherment is the defect QEMU 10.0 refuses.
	KeyUsage x509.KeyUsage
	// ExtKeyUsage overrides the role's default (serverAuth or clientAuth).
	ExtKeyUsage []x509.ExtKeyUsage
	// Expired makes the certificate end an hour ago (defect).
	Expired bool
	// NotYetValid makes the certificate start in an hour (defect).
	NotYetValid bool
}

var oneHour = time.Hour

// NewCA generates a self-signed CA.
func NewCA(opts CAOptions) (*CA, error) {
	key, err := newKey(opts.KeyType)
	if err != nil {
		return nil, err
	}
	subj := opts.Subject
	if subj.CommonName == "" && len(subj.Organization) == 0 {
		subj = pkix.Name{CommonName: "livemig test CA", Organization: []string{"livemig"}}
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               subj,
		NotBefore:             now.Add(-oneHour),
		NotAfter:              now.Add(24 * oneHour),
		BasicConstraintsValid: true,
		IsCA:                  !opts.NotCA,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	if opts.NoCertSign {
		tmpl.KeyUsage = x509.KeyUsageCRLSign
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("testpki: creating CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, CertPEM: pemBlock("CERTIFICATE", der), serial: 1}, nil
}

// Issue generates a leaf certificate signed by ca.
func (ca *CA) Issue(opts LeafOptions) (*Leaf, error) {
	key, err := newKey(opts.KeyType)
	if err != nil {
		return nil, err
	}
	keyPEM, err := encodeKey(key, opts.KeyEncoding)
	if err != nil {
		return nil, err
	}
	ca.serial++
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(ca.serial),
		Subject:               opts.Subject,
		NotBefore:             now.Add(-oneHour),
		NotAfter:              now.Add(24 * oneHour),
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		DNSNames:              opts.DNSNames,
		IPAddresses:           opts.IPs,
		ExtKeyUsage:           opts.ExtKeyUsage,
	}
	if opts.KeyUsage != 0 {
		tmpl.KeyUsage = opts.KeyUsage
	}
	switch opts.Role {
	case ServerRole:
		if tmpl.Subject.CommonName == "" {
			tmpl.Subject = pkix.Name{CommonName: "localhost", Organization: []string{"livemig"}}
		}
		if tmpl.DNSNames == nil && tmpl.IPAddresses == nil {
			tmpl.DNSNames = []string{"localhost"}
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
		}
		if tmpl.ExtKeyUsage == nil {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		}
	case ClientRole:
		if tmpl.Subject.CommonName == "" {
			tmpl.Subject = pkix.Name{CommonName: "client.example.com", Organization: []string{"Example"}, Country: []string{"GB"}}
		}
		if tmpl.ExtKeyUsage == nil {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		}
	}
	if opts.Expired {
		tmpl.NotBefore, tmpl.NotAfter = now.Add(-48*oneHour), now.Add(-oneHour)
	}
	if opts.NotYetValid {
		tmpl.NotBefore, tmpl.NotAfter = now.Add(oneHour), now.Add(48*oneHour)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, fmt.Errorf("testpki: issuing %q: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Leaf{Cert: cert, Key: key, CertPEM: pemBlock("CERTIFICATE", der), KeyPEM: keyPEM}, nil
}

// Revoke adds leaf to the CA's revocation list (see CRLPEM).
func (ca *CA) Revoke(leaf *Leaf) {
	ca.revoked = append(ca.revoked, x509.RevocationListEntry{
		SerialNumber:   leaf.Cert.SerialNumber,
		RevocationTime: time.Now().Add(-time.Minute),
	})
}

// CRLPEM returns a CRL signed by the CA listing every revoked leaf, issued
// a minute ago with its next update a day ahead.
func (ca *CA) CRLPEM() ([]byte, error) {
	return ca.CRLPEMWith(CRLOptions{})
}

// CRLOptions tunes CRLPEMWith. A zero time keeps CRLPEM's default.
type CRLOptions struct {
	// ThisUpdate is the CRL's issue date; default a minute ago. A future
	// date is the not-yet-valid defect.
	ThisUpdate time.Time
	// NextUpdate is when the next CRL is due; default a day ahead. A past
	// date is the expired defect.
	NextUpdate time.Time
}

// CRLPEMWith returns a CRL signed by the CA listing every revoked leaf,
// with the dates of o.
func (ca *CA) CRLPEMWith(o CRLOptions) ([]byte, error) {
	now := time.Now()
	this, next := o.ThisUpdate, o.NextUpdate
	if this.IsZero() {
		this = now.Add(-time.Minute)
	}
	if next.IsZero() {
		next = now.Add(24 * oneHour)
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    big.NewInt(1),
		ThisUpdate:                this,
		NextUpdate:                next,
		RevokedCertificateEntries: ca.revoked,
	}, ca.Cert, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("testpki: creating CRL: %w", err)
	}
	return pemBlock("X509 CRL", der), nil
}

// encodeKey returns key as PEM in the given encoding.
func encodeKey(key crypto.Signer, enc KeyEncoding) ([]byte, error) {
	if enc == PKCS8 {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, err
		}
		return pemBlock("PRIVATE KEY", der), nil
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(k)), nil
	case *ecdsa.PrivateKey:
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return nil, err
		}
		return pemBlock("EC PRIVATE KEY", der), nil
	}
	return nil, fmt.Errorf("testpki: unsupported key type %T", key)
}

func newKey(t KeyType) (crypto.Signer, error) {
	if t == RSA {
		return rsa.GenerateKey(rand.Reader, 2048)
	}
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// Options describes the material Write generates. The zero value is a
// correct ECDSA PKI: one CA, a server certificate for localhost, 127.0.0.1
// and ::1, and a client certificate CN=client.example.com,O=Example,C=GB.
type Options struct {
	// CA tunes the certificate authority (NotCA, NoCertSign are defects).
	CA CAOptions
	// Server and Client tune the two leaves.
	Server LeafOptions
	Client LeafOptions
	// ServerFromOtherCA and ClientFromOtherCA sign that leaf with a second,
	// unrelated CA while ca-cert.pem holds the first one (defect).
	ServerFromOtherCA bool
	ClientFromOtherCA bool
	// ServerWrongKey and ClientWrongKey write a freshly generated key that
	// does not match the certificate (defect).
	ServerWrongKey bool
	ClientWrongKey bool
	// KeyMode is the permission of the key files; 0 means 0600. 0644 is the
	// world-readable defect.
	KeyMode os.FileMode
	// TruncateFile names a file ("server-cert.pem", "client-key.pem", ...)
	// to cut in the middle of its PEM body (defect).
	TruncateFile string
	// RevokeClient writes server/ca-crl.pem revoking the client certificate.
	RevokeClient bool
	// CRL writes server/ca-crl.pem even when nothing is revoked.
	CRL bool
}

// PKI is generated material and where Write put it.
type PKI struct {
	CA, OtherCA    *CA
	Server, Client *Leaf
	// ServerDir and ClientDir are the QEMU-layout directories.
	ServerDir, ClientDir string
}

// generate creates the material described by opts without writing it.
func generate(opts *Options) (*PKI, error) {
	if opts == nil {
		opts = &Options{}
	}
	ca, err := NewCA(opts.CA)
	if err != nil {
		return nil, err
	}
	p := &PKI{CA: ca}
	if opts.ServerFromOtherCA || opts.ClientFromOtherCA {
		if p.OtherCA, err = NewCA(CAOptions{Subject: pkix.Name{CommonName: "other CA", Organization: []string{"elsewhere"}}}); err != nil {
			return nil, err
		}
	}
	so, co := opts.Server, opts.Client
	so.Role, co.Role = ServerRole, ClientRole
	sca, cca := ca, ca
	if opts.ServerFromOtherCA {
		sca = p.OtherCA
	}
	if opts.ClientFromOtherCA {
		cca = p.OtherCA
	}
	if p.Server, err = sca.Issue(so); err != nil {
		return nil, err
	}
	if p.Client, err = cca.Issue(co); err != nil {
		return nil, err
	}
	if opts.ServerWrongKey {
		if err := replaceKey(p.Server, so); err != nil {
			return nil, err
		}
	}
	if opts.ClientWrongKey {
		if err := replaceKey(p.Client, co); err != nil {
			return nil, err
		}
	}
	if opts.RevokeClient {
		ca.Revoke(p.Client)
	}
	return p, nil
}

func replaceKey(l *Leaf, o LeafOptions) error {
	k, err := newKey(o.KeyType)
	if err != nil {
		return err
	}
	pemKey, err := encodeKey(k, o.KeyEncoding)
	if err != nil {
		return err
	}
	l.Key, l.KeyPEM = k, pemKey
	return nil
}

// Write generates material per opts (nil means the zero Options) and
// writes the QEMU-layout directories dir/server and dir/client, creating
// them (mode 0700) if needed. Use it where no testing.TB is at hand, as
// the demo's --write-pki does; tests call [New].
func Write(dir string, opts *Options) (*PKI, error) {
	if opts == nil {
		opts = &Options{}
	}
	p, err := generate(opts)
	if err != nil {
		return nil, err
	}
	if err := p.write(dir, opts); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *PKI) write(dir string, opts *Options) error {
	p.ServerDir = filepath.Join(dir, "server")
	p.ClientDir = filepath.Join(dir, "client")
	keyMode := opts.KeyMode
	if keyMode == 0 {
		keyMode = 0o600
	}
	files := []struct {
		dir, name string
		data      []byte
		mode      os.FileMode
	}{
		{p.ServerDir, "ca-cert.pem", p.CA.CertPEM, 0o644},
		{p.ServerDir, "server-cert.pem", p.Server.CertPEM, 0o644},
		{p.ServerDir, "server-key.pem", p.Server.KeyPEM, keyMode},
		{p.ClientDir, "ca-cert.pem", p.CA.CertPEM, 0o644},
		{p.ClientDir, "client-cert.pem", p.Client.CertPEM, 0o644},
		{p.ClientDir, "client-key.pem", p.Client.KeyPEM, keyMode},
	}
	for _, d := range []string{p.ServerDir, p.ClientDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("testpki: %w", err)
		}
	}
	if opts.RevokeClient || opts.CRL {
		crl, err := p.CA.CRLPEM()
		if err != nil {
			return err
		}
		files = append(files, struct {
			dir, name string
			data      []byte
			mode      os.FileMode
		}{p.ServerDir, "ca-crl.pem", crl, 0o644})
	}
	truncated := false
	for _, f := range files {
		data := f.data
		if f.name == opts.TruncateFile {
			data = truncate(data)
			truncated = true
		}
		if err := WriteFileMode(filepath.Join(f.dir, f.name), data, f.mode); err != nil {
			return err
		}
	}
	if opts.TruncateFile != "" && !truncated {
		return fmt.Errorf("testpki: TruncateFile %q names no generated file", opts.TruncateFile)
	}
	return nil
}

// truncate cuts a PEM file in the middle of its base64 body, the way an
// interrupted copy leaves it.
func truncate(pemData []byte) []byte {
	return bytes.Clone(pemData[:len(pemData)/2])
}

// WriteFileMode writes data to name with exactly mode (not masked by the
// umask), replacing the file atomically so watchers never see half a file.
func WriteFileMode(name string, data []byte, mode os.FileMode) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("testpki: %w", err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return fmt.Errorf("testpki: %w", err)
	}
	if err := os.Rename(tmp, name); err != nil {
		return fmt.Errorf("testpki: %w", err)
	}
	return nil
}

// NewPSK returns a random 32-byte pre-shared key.
func NewPSK() []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return k
}

// WritePSK writes dir/keys.psk (mode 0600) with one "username:hexkey" line
// per entry of keys, sorted by username, as GnuTLS's psktool does.
func WritePSK(dir string, keys map[string][]byte) error {
	if len(keys) == 0 {
		return errors.New("testpki: WritePSK needs at least one key")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("testpki: %w", err)
	}
	users := make([]string, 0, len(keys))
	for u := range keys {
		users = append(users, u)
	}
	sort.Strings(users)
	var b bytes.Buffer
	for _, u := range users {
		fmt.Fprintf(&b, "%s:%s\n", u, hex.EncodeToString(keys[u]))
	}
	return WriteFileMode(filepath.Join(dir, "keys.psk"), b.Bytes(), 0o600)
}

// RotateServer issues a new server certificate from the same CA and
// replaces server-key.pem and then server-cert.pem (each atomically), as an
// operator rotating certificates would.
func (p *PKI) RotateServer(o LeafOptions) (*Leaf, error) {
	o.Role = ServerRole
	l, err := p.CA.Issue(o)
	if err != nil {
		return nil, err
	}
	if err := WriteFileMode(filepath.Join(p.ServerDir, "server-key.pem"), l.KeyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := WriteFileMode(filepath.Join(p.ServerDir, "server-cert.pem"), l.CertPEM, 0o644); err != nil {
		return nil, err
	}
	p.Server = l
	return l, nil
}
