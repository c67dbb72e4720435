package uri

import (
	"strconv"
	"strings"
)

// MaxLength is the longest input Parse accepts, in bytes. Longer input is
// an error. It leaves room for any unix socket path (108 bytes), any file
// path a Linux system call takes (PATH_MAX, 4096, counts the NUL) and long
// exec: pipelines, while bounding the work done on untrusted input.
const MaxLength = 4096

// Transport names the kind of endpoint an Address reaches. Its value is the
// URI prefix without the colon.
type Transport string

// The transports a migration URI may name.
const (
	TCP   Transport = "tcp"   // tcp:HOST:PORT
	Unix  Transport = "unix"  // unix:PATH, unix:@ABSTRACT
	Vsock Transport = "vsock" // vsock:CID:PORT
	Exec  Transport = "exec"  // exec:COMMAND
	FD    Transport = "fd"    // fd:NUMBER, fd:NAME
	File  Transport = "file"  // file:PATH
)

// Switch is an on/off option that may also be absent.
type Switch int8

// Values of a Switch. The zero value means the option was not given, and
// the user of the Address applies its default.
const (
	Unset Switch = iota
	On
	Off
)

// String returns "on", "off" or "unset".
func (s Switch) String() string {
	if w := s.word(); w != "" {
		return w
	}
	return "unset"
}

// word returns the spelling of s in a URI: "on", "off", or "" when absent.
func (s Switch) word() string {
	switch s {
	case On:
		return "on"
	case Off:
		return "off"
	}
	return ""
}

// Value returns true for On, false for Off, and def for Unset.
func (s Switch) Value(def bool) bool {
	switch s {
	case On:
		return true
	case Off:
		return false
	}
	return def
}

// Inet holds a tcp: address and its options, as QEMU's inet_parse reads
// them. A zero number means the option was absent: Parse rejects 0 for the
// keep-alive numbers, and accepts to=0 only with port 0, where a range 0..0
// means the same as no range.
type Inet struct {
	// Host is the host name or IP address, without brackets and as
	// written; "" means any address (listen side). An IPv6 address may
	// carry a zone ("fe80::1%eth0").
	Host string
	// Port is a decimal number 0..65535 without leading zeros, or a
	// service name such as "http". Port 0 asks the listener for any free
	// port.
	Port string

	// To is the last port of a listen range Port..To; 0 when absent. Parse
	// sets it only with a numeric Port, and never below it.
	To uint16

	Numeric   Switch // numeric: no name resolution; Host must be an IP address or ""
	IPv4      Switch // ipv4: use IPv4; see Families for how it combines with IPv6
	IPv6      Switch // ipv6: use IPv6; Off with IPv4 Off is an error
	KeepAlive Switch // keep-alive: SO_KEEPALIVE
	MPTCP     Switch // mptcp: multipath TCP

	KeepAliveCount    uint32 // keep-alive-count: TCP_KEEPCNT probes; 0 when absent
	KeepAliveIdle     uint32 // keep-alive-idle: TCP_KEEPIDLE seconds; 0 when absent
	KeepAliveInterval uint32 // keep-alive-interval: TCP_KEEPINTVL seconds; 0 when absent
}

// HostPort returns Host and Port joined as net.JoinHostPort does: an IPv6
// host is put in brackets ("[::1]:4444"), an empty host gives ":4444". The
// result is what net.Dial and net.Listen take.
func (i Inet) HostPort() string {
	return joinHostPort(i.Host, i.Port)
}

// Families reports which address families the ipv4 and ipv6 options
// allow, the way QEMU's inet_ai_family_from_address (util/qemu-sockets.c)
// reads them: naming one family on, or the other off, restricts the address
// to that family; neither option, or both on, allows both. Parse rejects
// both off, for which Families returns false, false.
func (i Inet) Families() (ipv4, ipv6 bool) {
	switch {
	case i.IPv4 == Off && i.IPv6 == Off:
		return false, false
	case i.IPv4 == On && i.IPv6 == On:
		return true, true
	case i.IPv6 == On || i.IPv4 == Off:
		return false, true
	case i.IPv4 == On || i.IPv6 == Off:
		return true, false
	}
	return true, true
}

// PortRange returns the numeric port range to listen on: first is Port and
// last is To, or Port again when To is absent. ok is false when Port is a
// service name, which only a resolver can turn into a number.
func (i Inet) PortRange() (first, last uint16, ok bool) {
	n, err := strconv.ParseUint(i.Port, 10, 16)
	if err != nil {
		return 0, 0, false
	}
	first, last = uint16(n), uint16(n)
	if i.To != 0 {
		last = i.To
	}
	return first, last, true
}

// UnixAddr holds a unix: address, with the fields of QEMU's
// UnixSocketAddress (qapi/sockets.json).
type UnixAddr struct {
	// Path is the socket's path as written, at most 107 bytes, or with
	// Abstract the name in Linux's abstract namespace, without the '@' of
	// unix:@NAME (at most 107 bytes). Only JSON can give a path that
	// starts with '@' and is not abstract.
	Path string

	// Abstract means Path names an abstract socket (Linux): unix:@NAME,
	// or "abstract": true in JSON.
	Abstract bool

	// Tight is QEMU's tight option, which only JSON can give: for an
	// abstract socket, On or Unset (QEMU's default) make the socket
	// address as long as the name, Off pads it with NUL bytes to the full
	// size of sun_path. The two are different sockets, so both ends must
	// agree. QEMU ignores it on a path socket, and so does livemig.
	Tight Switch
}

// VsockAddr holds a vsock: address, as QEMU's vsock_parse reads it.
type VsockAddr struct {
	CID  uint32 // context ID of the VM or host; 4294967295 is VMADDR_CID_ANY
	Port uint32 // port; 4294967295 is VMADDR_PORT_ANY
}

// FileAddr holds a file: address.
type FileAddr struct {
	Path   string // the file's path as written
	Offset int64  // byte offset where the stream starts; 0 when absent
}

// TLS holds the TLS options of an Address. They name objects in a
// crypto.Registry; an Address never holds secrets. Parse fills them only on
// the transports that reach a peer (tcp, unix, vsock, exec and fd) and
// rejects them on file:.
type TLS struct {
	Creds    string // tls-creds=ID; "" means no TLS
	Hostname string // tls-hostname=NAME: name the server certificate must match
	Authz    string // tls-authz=ID: authorization object checking the client's name
}

// Address is a parsed migration URI. Each transport has its own fields,
// named after it, and only the fields of a's Transport are set; the
// others are zero:
//
//	| Transport | Fields                       |
//	|-----------|------------------------------|
//	| tcp       | Inet, TLS                    |
//	| unix      | Unix, TLS                    |
//	| vsock     | Vsock, TLS                   |
//	| exec      | Command or Args, TLS         |
//	| fd        | FD, TLS                      |
//	| file      | File                         |
//
// An Address is a comparable value that holds no pointers: assignment
// copies it and == compares it field by field. Parse spells switches,
// numbers and option order one way, so "tcp:h:080,ipv4" and
// "tcp:h:80,ipv4=yes" give equal Addresses, but it keeps host names, IPv6
// addresses and paths as written. The zero Address names no endpoint; see
// [Address.IsZero]. Parse also reads QEMU's JSON channels; see the
// package documentation and [Address.JSON].
type Address struct {
	Transport Transport

	Inet    Inet      // tcp
	Unix    UnixAddr  // unix
	Vsock   VsockAddr // vsock
	Command string    // exec: run later by /bin/sh -c
	Args    Argv      // exec from JSON: run without a shell; Command is then ""
	FD      string    // fd: a decimal number without leading zeros, or a name
	File    FileAddr  // file

	TLS TLS // tcp, unix, vsock, exec, fd
}

// IsZero reports whether a is the zero Address, which names no endpoint.
// Parse never returns it without an error.
func (a Address) IsZero() bool {
	return a == Address{}
}

// String returns the canonical form of a: the URI when one says all of
// a, else the JSON of [Address.JSON]. For every a that Parse returns,
// Parse(a.String()) returns an Address equal to a. The canonical URI
// spells options key=value with on/off for switches, in the fixed order
// of the grammar table in the package documentation, and numbers in
// decimal. Only JSON can say an exec argv run without a shell, QEMU's
// tight option, a unix path that starts with '@' but is not abstract, or
// a path or name that the URI grammar would cut (such as a file path
// holding ",offset=").
//
// String of an Address that Parse would not return (an unknown Transport,
// a field Parse rejects) is not guaranteed to parse; an unknown Transport,
// or the zero Address, gives "".
func (a Address) String() string {
	u := a.uri()
	if b, err := Parse(u); err == nil && b == a {
		return u
	}
	if j := a.JSON(); j != "" {
		if b, err := Parse(j); err == nil && b == a {
			return j
		}
	}
	return u
}

// uri returns a as a URI, whether or not it parses back to a.
func (a Address) uri() string {
	var b strings.Builder
	switch a.Transport {
	case TCP:
		b.WriteString("tcp:")
		b.WriteString(a.Inet.HostPort())
		a.Inet.writeOptions(&b)
	case Unix:
		b.WriteString("unix:")
		if a.Unix.Abstract {
			b.WriteByte('@')
		}
		b.WriteString(a.Unix.Path)
	case Vsock:
		b.WriteString("vsock:")
		b.WriteString(strconv.FormatUint(uint64(a.Vsock.CID), 10))
		b.WriteByte(':')
		b.WriteString(strconv.FormatUint(uint64(a.Vsock.Port), 10))
	case Exec:
		b.WriteString("exec:")
		b.WriteString(a.Command)
	case FD:
		b.WriteString("fd:")
		b.WriteString(a.FD)
	case File:
		b.WriteString("file:")
		b.WriteString(a.File.Path)
		if a.File.Offset != 0 {
			b.WriteString(",offset=")
			b.WriteString(strconv.FormatInt(a.File.Offset, 10))
		}
		return b.String()
	default:
		return ""
	}
	writeOpt(&b, keyTLSCreds, a.TLS.Creds)
	writeOpt(&b, keyTLSHostname, a.TLS.Hostname)
	writeOpt(&b, keyTLSAuthz, a.TLS.Authz)
	return b.String()
}

// writeOptions appends the tcp options of i in canonical order.
func (i Inet) writeOptions(b *strings.Builder) {
	if i.To != 0 {
		writeOpt(b, keyTo, strconv.FormatUint(uint64(i.To), 10))
	}
	writeOpt(b, keyNumeric, i.Numeric.word())
	writeOpt(b, keyIPv4, i.IPv4.word())
	writeOpt(b, keyIPv6, i.IPv6.word())
	writeOpt(b, keyKeepAlive, i.KeepAlive.word())
	writeUint(b, keyKeepAliveCount, i.KeepAliveCount)
	writeUint(b, keyKeepAliveIdle, i.KeepAliveIdle)
	writeUint(b, keyKeepAliveInterval, i.KeepAliveInterval)
	writeOpt(b, keyMPTCP, i.MPTCP.word())
}

// writeOpt appends ",key=value" unless value is empty.
func writeOpt(b *strings.Builder, key, value string) {
	if value == "" {
		return
	}
	b.WriteByte(',')
	b.WriteString(key)
	b.WriteByte('=')
	b.WriteString(value)
}

// writeUint appends ",key=n" unless n is zero.
func writeUint(b *strings.Builder, key string, n uint32) {
	if n != 0 {
		writeOpt(b, key, strconv.FormatUint(uint64(n), 10))
	}
}

// joinHostPort is net.JoinHostPort, without importing net.
func joinHostPort(host, port string) string {
	if strings.IndexByte(host, ':') >= 0 {
		return "[" + host + "]:" + port
	}
	return host + ":" + port
}
