package crypto

import (
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// Endpoint is the side of a TLS session a credentials object serves.
type Endpoint int

// Endpoints. The zero value is Client, QEMU's default.
const (
	Client Endpoint = iota
	Server
)

// String returns "client" or "server".
func (e Endpoint) String() string {
	if e == Server {
		return "server"
	}
	return "client"
}

// Kind is a credentials object's type, spelled as QEMU's -object.
type Kind string

// Kinds of credentials.
const (
	X509 Kind = "tls-creds-x509"
	PSK  Kind = "tls-creds-psk"
	Anon Kind = "tls-creds-anon"
)

// Creds is a loaded credentials object. It is safe for concurrent use;
// [Creds.Reload] swaps its material atomically.
type Creds struct {
	id       string
	kind     Kind
	endpoint Endpoint
	// priority is the priority= string of ParseObject, accepted so
	// QEMU command lines parse, not applied; the Registry warns about it.
	priority string

	reloadMu sync.Mutex // serializes Reload

	// x509
	x509 X509Options
	mat  atomic.Pointer[x509Material]

	// psk
	psk  PSKOptions
	keys atomic.Pointer[pskMaterial]

	// anon
	anonCert *tls.Certificate
}

// ID returns the object's id.
func (c *Creds) ID() string { return c.id }

// Kind returns X509, PSK or Anon.
func (c *Creds) Kind() Kind { return c.kind }

// Endpoint returns Client or Server.
func (c *Creds) Endpoint() Endpoint { return c.endpoint }

// Reload re-reads the object's files (x509: the directory; psk:
// keys.psk). The new material replaces the old only when it loads and
// passes every check; on failure the old material stays and the error is
// returned. Anon credentials have no files: Reload does nothing.
func (c *Creds) Reload() error {
	c.reloadMu.Lock()
	defer c.reloadMu.Unlock()
	switch c.kind {
	case X509:
		m, err := loadX509(&c.x509)
		if err != nil {
			return err
		}
		c.mat.Store(m)
	case PSK:
		m, err := loadPSK(&c.psk)
		if err != nil {
			return err
		}
		c.keys.Store(m)
	}
	return nil
}

// changed reports whether the files the current material came from
// differ on disk (size, modification time, presence, inode).
func (c *Creds) changed() bool {
	switch c.kind {
	case X509:
		if m := c.mat.Load(); m != nil {
			return m.stamps.changed()
		}
	case PSK:
		if m := c.keys.Load(); m != nil {
			return m.stamps.changed()
		}
	}
	return false
}

// TLSOptions tunes [Creds.TLSConfig]. The zero value is usable for
// servers and for clients with verify-peer=off or anon credentials.
type TLSOptions struct {
	// Hostname is, for a client, the name the server certificate must
	// match (QEMU's tls-hostname or the dialled host). A client with x509
	// credentials and verify-peer=on needs one.
	Hostname string
	// Authz, for a server, checks the verified client's DN; nil allows
	// every client whose certificate verifies.
	Authz Authz
	// MinVersion is the lowest TLS version accepted: 0 means TLS 1.3;
	// tls.VersionTLS12 allows 1.2. Lower versions are refused.
	MinVersion uint16
}

// ErrNotTLS is returned by TLSConfig for PSK credentials, which crypto/tls
// cannot use (see the DTLS channel).
var ErrNotTLS = errors.New("crypto: PSK credentials need DTLS: crypto/tls has no PSK")

// TLSConfig returns a crypto/tls configuration for x509 or anon
// credentials. It always uses the newest loaded material (hot reload),
// verifies the peer (chain, validity, CRL, hostname for clients, authz for
// servers) and fails closed. Servers request a client certificate without
// CA names and send no session tickets (see the package doc). The
// returned config must not be modified after use.
func (c *Creds) TLSConfig(opts TLSOptions) (*tls.Config, error) {
	minV := opts.MinVersion
	switch minV {
	case 0:
		minV = tls.VersionTLS13
	case tls.VersionTLS12, tls.VersionTLS13:
	default:
		return nil, fmt.Errorf("crypto: %s: MinVersion %#04x: only TLS 1.2 (0x0303) and 1.3 (0x0304) are allowed", c.id, opts.MinVersion)
	}
	switch c.kind {
	case X509:
		if c.endpoint == Server {
			if opts.Authz != nil && c.x509.InsecureSkipVerifyPeer {
				// Fail closed: without a verified certificate there is no
				// identity for authz to check.
				return nil, fmt.Errorf("crypto: %s: authz %q needs verify-peer=on", c.id, opts.Authz.ID())
			}
			return c.x509ServerConfig(minV, opts.Authz), nil
		}
		if opts.Authz != nil {
			return nil, fmt.Errorf("crypto: %s: authz applies to servers only", c.id)
		}
		if opts.Hostname == "" && !c.x509.InsecureSkipVerifyPeer {
			return nil, fmt.Errorf("crypto: %s: a client with x509 credentials and verify-peer=on needs a hostname to check the server certificate against (tls-hostname)", c.id)
		}
		return c.x509ClientConfig(minV, opts.Hostname), nil
	case Anon:
		if opts.Authz != nil {
			return nil, fmt.Errorf("crypto: %s: anonymous credentials have no identity for authz to check", c.id)
		}
		return c.anonConfig(minV), nil
	case PSK:
		return nil, ErrNotTLS
	}
	return nil, fmt.Errorf("crypto: %s: unknown kind %q", c.id, c.kind)
}

// baseConfig holds what every livemig TLS config shares.
func baseConfig(minV uint16) *tls.Config {
	return &tls.Config{
		MinVersion: minV,
		MaxVersion: tls.VersionTLS13,
		// Migration has no use for resumption, and TLS 1.3 tickets from a
		// Go server broke QEMU sources mid-stream (trap 2).
		SessionTicketsDisabled: true,
		// Full 16 KiB records from the first byte.
		DynamicRecordSizingDisabled: true,
	}
}
