// Package cryptotest provides utilities for tests of code that uses
// livemig (or QEMU) with TLS, in the style of net/http/httptest: it
// writes a throwaway certificate authority with a server and a client
// certificate in the directory layout of QEMU's tls-creds-x509 object,
// and PSK key files for tls-creds-psk. Nothing it makes is fit for
// production: keys are generated on the fly, live a day and sit next to
// the certificates.
//
// [New] (in a test, into t.TempDir()) and [Write] (into a directory of
// the caller's choice) produce one directory per endpoint:
//
//	server/ca-cert.pem server/server-cert.pem server/server-key.pem
//	client/ca-cert.pem client/client-cert.pem client/client-key.pem
//
// so that "tls-creds-x509,id=tls0,endpoint=server,dir="+[PKI].ServerDir
// loads in livemig's crypto package and in QEMU alike, and a client
// loading [PKI].ClientDir authenticates to it. [WritePSK] writes the
// keys.psk file ("username:hexkey" lines) of tls-creds-psk.
//
// By default the keys are ECDSA P-256, the server certificate names
// localhost, 127.0.0.1 and ::1, and the client certificate's subject is
// CN=client.example.com,O=Example,C=GB; [Options] change these. The
// certificates pass the load-time checks of QEMU 7.2 and 10.0: the CA has
// the key usages keyCertSign and cRLSign, the leaves digitalSignature and
// keyEncipherment and the extended key usage serverAuth or clientAuth.
//
// To test a peer from the wrong CA, call New twice: the two PKIs have
// unrelated CAs, so a client loading the second one's ClientDir is
// refused by a server loading the first one's ServerDir (with
// verify-peer=on), and the other way round. To test a certificate
// rotation, call [PKI.RotateServer] and reload the credentials, as
// crypto's ExampleRegistry_Reload does.
package cryptotest

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"testing"

	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/testpki"
)

// Options changes the material New and Write generate. The zero value (or
// a nil *Options) gives ECDSA P-256 keys, a server certificate for
// localhost, 127.0.0.1 and ::1, and the client subject
// CN=client.example.com,O=Example,C=GB.
type Options struct {
	// Hosts are the server certificate's subjectAltNames: each entry that
	// parses as an IP address is an IP address, any other a DNS name.
	// Empty means localhost, 127.0.0.1 and ::1.
	Hosts []string
	// ClientSubject is the client certificate's subject, the identity an
	// authz object matches (see PKI.ClientDN). A zero value (no common
	// name) means CN=client.example.com,O=Example,C=GB.
	ClientSubject pkix.Name
	// RSA makes every key RSA 2048 instead of ECDSA P-256 (slower).
	RSA bool
}

// PKI is the material New or Write made and where it lies.
type PKI struct {
	// ServerDir and ClientDir are the tls-creds-x509 directories of the
	// server and the client endpoint.
	ServerDir, ClientDir string
	// CACert is the certificate authority both directories' ca-cert.pem
	// hold.
	CACert *x509.Certificate
	// ServerCert is the certificate in ServerDir/server-cert.pem, the one
	// a server loading ServerDir presents; RotateServer replaces it.
	ServerCert *x509.Certificate
	// ClientDN is the client certificate's subject as livemig's and QEMU's
	// authz objects see it (crypto.CertDN), for example
	// "CN=client.example.com,O=Example,C=GB".
	ClientDN string

	p      *testpki.PKI
	server testpki.LeafOptions
}

// New writes material per opts (nil means the defaults) into a fresh
// t.TempDir(), as Write does, and fails the test on error. The files are
// removed when the test ends.
func New(t testing.TB, opts *Options) *PKI {
	t.Helper()
	p, err := Write(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Write generates a CA, a server and a client certificate per opts (nil
// means the defaults) and writes them into dir/server and dir/client,
// creating the directories (mode 0700) if needed; private keys get mode
// 0600. Tests call New; Write is for where no testing.TB is at hand, such
// as a command that writes material to try by hand.
func Write(dir string, opts *Options) (*PKI, error) {
	if opts == nil {
		opts = &Options{}
	}
	kt := testpki.ECDSA
	if opts.RSA {
		kt = testpki.RSA
	}
	server := testpki.LeafOptions{KeyType: kt}
	for _, h := range opts.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			server.IPs = append(server.IPs, ip)
		} else {
			server.DNSNames = append(server.DNSNames, h)
		}
	}
	tp, err := testpki.Write(dir, &testpki.Options{
		CA:     testpki.CAOptions{KeyType: kt},
		Server: server,
		Client: testpki.LeafOptions{KeyType: kt, Subject: opts.ClientSubject},
	})
	if err != nil {
		return nil, err
	}
	return &PKI{
		ServerDir:  tp.ServerDir,
		ClientDir:  tp.ClientDir,
		CACert:     tp.CA.Cert,
		ServerCert: tp.Server.Cert,
		ClientDN:   crypto.CertDN(tp.Client.Cert),
		p:          tp,
		server:     server,
	}, nil
}

// RotateServer issues a new server certificate and key from the same CA,
// for the same hosts, and replaces ServerDir's server-key.pem and then
// server-cert.pem, each atomically, as an operator rotating certificates
// would. It updates ServerCert. Credentials already loaded keep the old
// certificate until they are reloaded (crypto.Registry.Reload or Watch).
func (p *PKI) RotateServer() error {
	l, err := p.p.RotateServer(p.server)
	if err != nil {
		return err
	}
	p.ServerCert = l.Cert
	return nil
}

// NewPSK returns a random 32-byte pre-shared key.
func NewPSK() []byte { return testpki.NewPSK() }

// WritePSK writes dir/keys.psk (mode 0600), creating dir if needed, with
// one "username:hexkey" line per entry of keys, sorted by username, as
// GnuTLS's psktool does; it is the file a tls-creds-psk object with
// dir=dir reads. keys must not be empty.
func WritePSK(dir string, keys map[string][]byte) error { return testpki.WritePSK(dir, keys) }
