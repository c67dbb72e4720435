package crypto

// API STUB (the crypto helper replaces it; keep these names and signatures).

import (
	"context"
	"crypto/tls"
	"time"
)

// Endpoint is the side of a TLS session a credentials object serves.
type Endpoint int

// Endpoints.
const (
	Client Endpoint = iota
	Server
)

// Kind is a credentials object's type, spelled as QEMU's -object.
type Kind string

// Kinds of credentials.
const (
	X509 Kind = "tls-creds-x509"
	PSK  Kind = "tls-creds-psk"
	Anon Kind = "tls-creds-anon"
)

// Creds is a loaded credentials object; safe for concurrent use.
type Creds struct{}

// ID returns the object's id.
func (c *Creds) ID() string { panic("todo") }

// Kind returns X509, PSK or Anon.
func (c *Creds) Kind() Kind { panic("todo") }

// Endpoint returns Client or Server.
func (c *Creds) Endpoint() Endpoint { panic("todo") }

// TLSConfig returns a crypto/tls configuration for x509 or anon creds that
// always uses the newest loaded material (hot reload), verifies the peer
// (chain, hostname for clients, authz DN for servers) and fails closed.
func (c *Creds) TLSConfig(opts TLSOptions) (*tls.Config, error) { panic("todo") }

// TLSOptions tunes TLSConfig.
type TLSOptions struct {
	Hostname   string // client: the name the server certificate must match
	Authz      Authz  // server: checks the client's DN; nil = any verified client
	MinVersion uint16 // 0 means TLS 1.3
}

// PSKIdentity returns the client's username (default "qemu").
func (c *Creds) PSKIdentity() string { panic("todo") }

// PSKKey returns the key for identity from keys.psk.
func (c *Creds) PSKKey(identity string) ([]byte, error) { panic("todo") }

// Authz decides whether a client identity (an RFC 4514 DN) may connect.
type Authz interface {
	ID() string
	IsAllowed(identity string) bool
}

// Registry holds credentials and authz objects by ID; safe for concurrent use.
type Registry struct{}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry { panic("todo") }

// AddObject parses a QEMU -object spec, loads it and adds it.
func (r *Registry) AddObject(spec string) error { panic("todo") }

// Creds returns the credentials object id.
func (r *Registry) Creds(id string) (*Creds, error) { panic("todo") }

// Authz returns the authz object id.
func (r *Registry) Authz(id string) (Authz, error) { panic("todo") }

// Remove deletes object id.
func (r *Registry) Remove(id string) error { panic("todo") }

// Reload re-reads the files of object id; on failure the old material stays.
func (r *Registry) Reload(id string) error { panic("todo") }

// Watch reloads objects whose files change, polling every interval, until ctx ends.
func (r *Registry) Watch(ctx context.Context, interval time.Duration) error { panic("todo") }
