package channel

// API STUB for the TLS and DTLS wrappers (the crypto helper owns tls.go and dtls.go).

import (
	"context"

	"github.com/livemig/livemig/crypto"
)

// TLSOptions tunes NewTLS. The zero value is usable.
type TLSOptions struct {
	Hostname   string       // client: expected server name
	Authz      crypto.Authz // server: client DN check
	MinVersion uint16       // 0 = TLS 1.3
	// Raw: the peer is QEMU, which sends no close_notify: a clean EOF at a
	// record boundary ends the stream; a cut inside a record is an error.
	Raw bool
}

// TLS is a Channel encrypted with crypto/tls (x509 or anon creds).
type TLS struct{}

// NewTLS wraps inner; it does no I/O until Handshake.
func NewTLS(inner Channel, creds *crypto.Creds, role crypto.Endpoint, opts *TLSOptions) *TLS {
	panic("todo")
}

// Handshake runs the handshake, honouring ctx.
func (t *TLS) Handshake(ctx context.Context) error { panic("todo") }

// PeerIdentity is the verified peer certificate's RFC 4514 DN ("" if none).
func (t *TLS) PeerIdentity() string { panic("todo") }

// DTLSOptions tunes NewDTLS.
type DTLSOptions struct{}

// DTLS is a Channel encrypted with pion/dtls (psk creds).
type DTLS struct{}

// NewDTLS wraps a stream Channel; records are delimited by their own header.
func NewDTLS(inner Channel, creds *crypto.Creds, role crypto.Endpoint, opts *DTLSOptions) *DTLS {
	panic("todo")
}

// Handshake runs the DTLS handshake, honouring ctx.
func (d *DTLS) Handshake(ctx context.Context) error { panic("todo") }
