package uri

import "github.com/livemig/livemig/internal/todo"

// Transport names the kind of endpoint an Address reaches.
type Transport string

// The transports a migration URI may name.
const (
	TCP   Transport = "tcp"
	Unix  Transport = "unix"
	Vsock Transport = "vsock"
	Exec  Transport = "exec"
	FD    Transport = "fd"
	File  Transport = "file"
)

// Switch is an on/off option that may also be absent.
type Switch int8

// Values of a Switch. The zero value means the option was not given.
const (
	Unset Switch = iota
	On
	Off
)

// Inet holds a tcp: address and its options, as QEMU's inet_parse reads them.
type Inet struct {
	Host string // without brackets; "" means any address (listen side)
	Port string // decimal number or service name

	To uint16 // last port of a listen range; 0 when absent

	Numeric   Switch
	IPv4      Switch
	IPv6      Switch
	KeepAlive Switch
	MPTCP     Switch

	KeepAliveCount    uint32 // 0 when absent
	KeepAliveIdle     uint32 // seconds; 0 when absent
	KeepAliveInterval uint32 // seconds; 0 when absent
}

// TLS holds the TLS options of an Address. They name objects in a
// crypto.Registry; an Address never holds secrets.
type TLS struct {
	Creds    string // tls-creds=ID; "" means no TLS
	Hostname string // tls-hostname=NAME
	Authz    string // tls-authz=ID
}

// Address is a parsed migration URI.
type Address struct {
	Transport Transport

	Inet    Inet   // tcp
	Path    string // unix (a leading '@' means abstract) and file
	CID     uint32 // vsock
	Port    uint32 // vsock
	Command string // exec, run later by /bin/sh -c
	FD      string // fd: a decimal number or a name
	Offset  int64  // file: byte offset

	TLS TLS
}

// Parse parses a migration URI.
func Parse(s string) (*Address, error) { return nil, todo.Err("uri.Parse") }

// String returns the canonical form of a.
func (a *Address) String() string { return "" }
