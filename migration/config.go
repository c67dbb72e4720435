package migration

import (
	"crypto/rand"
	"fmt"
	"maps"
	"os"
	"time"

	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/hello"
	"github.com/livemig/livemig/uri"
)

// Limits and defaults of a Config.
const (
	// MaxChannels is the largest number of channels of one session, 256:
	// what the hello can announce.
	MaxChannels = hello.MaxChannels

	// DefaultPageSize is the page size of a session, as QEMU's target
	// page size on x86.
	DefaultPageSize = 4096
	// MaxPageSize is the largest page a session keeps whole, 256 KiB
	// less 16 bytes: what one stripe frame carries after its header.
	MaxPageSize = 256<<10 - 16

	DefaultConnectTimeout   = 30 * time.Second
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultHelloTimeout     = 10 * time.Second
	DefaultSessionTimeout   = 10 * time.Second

	// DefaultMaxPendingSessions is how many sessions a Server holds at
	// once, in all, being assembled or waiting for AcceptSession.
	DefaultMaxPendingSessions = 64
	// DefaultMaxPendingPerPeer is how many of those one peer identity
	// may hold.
	DefaultMaxPendingPerPeer = 4
	// DefaultMaxHandshakes is how many connections a Server takes
	// through the TLS handshake and the hello at once; a quarter of them
	// may come from one host.
	DefaultMaxHandshakes = 1024
)

// Config configures tasks, listeners, servers and sessions. A nil *Config
// is the same as a zero Config, and every zero field has a useful default,
// documented on the field. A Config must not be modified after it has been
// passed to a function of this package; use [Config.Clone] to derive one.
type Config struct {
	// Registry holds the credentials and authz objects that tls-creds and
	// tls-authz name. It is needed only with TLS.
	Registry *crypto.Registry

	// TLSCreds, TLSHostname and TLSAuthz are QEMU's migrate-set-parameters
	// tls-creds, tls-hostname and tls-authz. They apply to every channel and
	// are merged with the address's tls-* options; an option set in both
	// places with different values is an error.
	//
	// TLSCreds names a credentials object: x509 and anon credentials run
	// TLS, psk credentials run DTLS. The side that dials (the source, unless
	// DialBack) needs client credentials, the other side server credentials.
	// TLSHostname is the name the server certificate must match; the default
	// is the host of a tcp address. As in QEMU, a client with x509
	// credentials on unix, vsock, exec or fd needs it. TLSAuthz names an
	// authz object that the server side checks the client's identity
	// against: its certificate's distinguished name (x509) or its username
	// (psk); the client side ignores it.
	TLSCreds    string
	TLSHostname string
	TLSAuthz    string

	// ConnectTimeout bounds the connect phase of Connect and Dial (also
	// when, with DialBack, the source waits for the destination to dial)
	// and of a destination that dials back; 0 means DefaultConnectTimeout.
	// A destination waiting in AcceptTask for its source waits until its
	// context ends, as QEMU's -incoming does.
	ConnectTimeout time.Duration
	// HandshakeTimeout bounds the tls-handshake phase; 0 means
	// DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// HelloTimeout bounds the hello phase; 0 means DefaultHelloTimeout.
	HelloTimeout time.Duration
	// SessionTimeout is how long a Server waits, after the main channel of
	// a session, for the session's other channels, and how long it
	// remembers an expired or complete session to refuse its late
	// channels; 0 means DefaultSessionTimeout. A source opens its
	// channels right after the main one, so the default is short: a
	// session whose channels never come gives its slot back soon.
	SessionTimeout time.Duration
	// StallTimeout is the progress watchdog of every Stream a task makes,
	// and so of every channel of a Session: a write that moves no byte
	// for this long (the peer stopped reading) fails the Stream with a
	// *StallError. 0 means DefaultStallTimeout (2 minutes);
	// StallTimeoutOff, or any negative value, turns the watchdog off.
	// Reads are not watched. See Stream.SetStallTimeout.
	StallTimeout time.Duration

	// MaxPendingSessions bounds the sessions a Server holds at once:
	// being assembled, or complete and not yet taken by AcceptSession.
	// A main channel beyond it is refused: its source fails with a
	// *RefusedError whose Temporary method reports true. 0 means
	// DefaultMaxPendingSessions.
	MaxPendingSessions int
	// MaxPendingPerPeer bounds those sessions per peer identity (the
	// certificate's DN or the PSK username; without them the peer's host:
	// see Stream.PeerIdentity), so that a client which holds its quota
	// does not delay another's migration. 0 means
	// DefaultMaxPendingPerPeer.
	MaxPendingPerPeer int
	// MaxHandshakes bounds the connections a Server takes through the TLS
	// handshake and the hello at once, each for at most HandshakeTimeout
	// and HelloTimeout; at most a quarter of them (but at least one) from
	// one host. A connection beyond either bound is closed at once. 0
	// means DefaultMaxHandshakes.
	MaxHandshakes int

	// SessionID identifies the migration in every hello. On the source the
	// zero value means a random ID, drawn once per Connect or DialSession.
	// On the destination the zero value accepts any session; a non-zero
	// value refuses channels of other sessions.
	SessionID SessionID
	// Channels is the number of channels of a session (0 means 1): the
	// main channel and Channels-1 multifd channels. DialSession opens
	// that many; Connect announces it in its hello as the main channel's.
	// A Server learns the count from each session's main channel, or with
	// DialBack dials Channels channels.
	Channels int
	// PageSize is the page size of a session's source: SourceSession
	// cuts a slice given to PutBufferNoCopy only at multiples of it, so a
	// page reaches the destination whole. 0 means DefaultPageSize; it may
	// be at most MaxPageSize.
	PageSize int
	// index is the channel's index in its session, set per channel by
	// DialSession and Relay.
	index int
	// caps are the capability bits of this side's hello: 0, except that
	// Relay repeats the bits of the incoming channel's hello.
	caps uint64

	// RateLimit is the initial rate limit of every Stream in bytes per
	// second; 0 means unlimited. See Stream.SetRateLimit. For DialSession
	// it is the session's total, which each of its N channels gets a
	// share of (RateLimit/N), as Session.SetRateLimit does.
	RateLimit int64

	// Raw skips the hello, to talk to QEMU itself, and tells TLS that the
	// peer may send no close_notify (QEMU never does on its main channel,
	// and before 10.0 not on its multifd channels either): a clean end of
	// the connection at a record boundary ends the stream, a cut inside a
	// record is an error. Raw streams still send close_notify whenever
	// they end a TLS channel cleanly, which a QEMU 10.0 destination
	// requires on its multifd channels.
	Raw bool

	// FDs holds named descriptors for fd:NAME addresses, the equivalent of
	// QEMU's getfd monitor command. A task (or, on the destination,
	// Listen) that uses a descriptor takes ownership of it: closing the
	// Stream (or the Listener, before it hands the channel out) closes
	// the file. An fd:NUMBER
	// address not found in FDs uses the inherited descriptor NUMBER.
	FDs map[string]*os.File

	// DialBack reverses the connections: the source listens on the address
	// and the destination dials it, for a destination behind NAT or a proxy.
	// Connect and DialSession then listen, and a Listener's AcceptTask and a
	// Server then dial. Both sides must agree; the hello checks it.
	DialBack bool

	// Logf, if not nil, receives diagnostic messages such as refused
	// channels. nil means silent.
	Logf func(format string, args ...any)

	// Progress, if not nil, is called with each phase a task enters, in
	// order, from the task's goroutine. Tasks of a session call it
	// concurrently.
	Progress func(Phase)
}

// Clone returns a shallow copy of c with its own FDs map. Clone of nil
// returns a zero Config.
func (c *Config) Clone() *Config {
	if c == nil {
		return &Config{}
	}
	c2 := *c
	if c.FDs != nil {
		c2.FDs = maps.Clone(c.FDs)
	}
	return &c2
}

// populate returns a copy of c with the defaults filled in.
func (c *Config) populate() *Config {
	c2 := c.Clone()
	if c2.ConnectTimeout == 0 {
		c2.ConnectTimeout = DefaultConnectTimeout
	}
	if c2.HandshakeTimeout == 0 {
		c2.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c2.HelloTimeout == 0 {
		c2.HelloTimeout = DefaultHelloTimeout
	}
	if c2.SessionTimeout == 0 {
		c2.SessionTimeout = DefaultSessionTimeout
	}
	if c2.StallTimeout == 0 {
		c2.StallTimeout = DefaultStallTimeout
	}
	if c2.Channels == 0 {
		c2.Channels = 1
	}
	if c2.PageSize == 0 {
		c2.PageSize = DefaultPageSize
	}
	if c2.MaxPendingSessions == 0 {
		c2.MaxPendingSessions = DefaultMaxPendingSessions
	}
	if c2.MaxPendingPerPeer == 0 {
		c2.MaxPendingPerPeer = DefaultMaxPendingPerPeer
	}
	if c2.MaxHandshakes == 0 {
		c2.MaxHandshakes = DefaultMaxHandshakes
	}
	return c2
}

// validate checks a populated Config.
func (c *Config) validate() error {
	switch {
	case c.ConnectTimeout < 0, c.HandshakeTimeout < 0, c.HelloTimeout < 0, c.SessionTimeout < 0:
		return fmt.Errorf("migration: config: negative timeout")
	case c.Channels < 1 || c.Channels > MaxChannels:
		return fmt.Errorf("migration: config: Channels %d out of range 1..%d", c.Channels, MaxChannels)
	case c.PageSize < 1 || c.PageSize > MaxPageSize:
		return fmt.Errorf("migration: config: PageSize %d out of range 1..%d", c.PageSize, MaxPageSize)
	case c.index < 0 || c.index >= c.Channels:
		return fmt.Errorf("migration: config: channel index %d out of range 0..%d", c.index, c.Channels-1)
	case c.RateLimit < 0:
		return fmt.Errorf("migration: config: negative RateLimit")
	case c.MaxPendingSessions < 0, c.MaxPendingPerPeer < 0, c.MaxHandshakes < 0:
		return fmt.Errorf("migration: config: negative MaxPendingSessions, MaxPendingPerPeer or MaxHandshakes")
	}
	return nil
}

func (c *Config) logf(format string, args ...any) {
	if c.Logf != nil {
		c.Logf(format, args...)
	}
}

// tlsParams merges the address's tls-* options with the Config's.
func (c *Config) tlsParams(addr uri.Address) (uri.TLS, error) {
	t := addr.TLS
	merge := func(name string, dst *string, v string) error {
		if v == "" {
			return nil
		}
		if *dst != "" && *dst != v {
			return fmt.Errorf("migration: %s %q in the address conflicts with %q in the Config", name, *dst, v)
		}
		*dst = v
		return nil
	}
	if err := merge("tls-creds", &t.Creds, c.TLSCreds); err != nil {
		return t, err
	}
	if err := merge("tls-hostname", &t.Hostname, c.TLSHostname); err != nil {
		return t, err
	}
	if err := merge("tls-authz", &t.Authz, c.TLSAuthz); err != nil {
		return t, err
	}
	if t.Creds == "" && (t.Hostname != "" || t.Authz != "") {
		return t, fmt.Errorf("migration: tls-hostname and tls-authz need tls-creds")
	}
	if t.Creds != "" && !reachesPeer(addr) {
		// As the URI's own tls-* options on file: are refused.
		return t, fmt.Errorf("migration: tls-creds %q: %s: has no peer to run TLS with", t.Creds, addr.Transport)
	}
	return t, nil
}

// newSessionID returns a random session ID.
func newSessionID() SessionID {
	var id SessionID
	rand.Read(id[:])
	return id
}
