package migration

import (
	"errors"

	"github.com/livemig/livemig/uri"
)

// errZeroAddress is the error of Listen, Connect, Dial and DialSession
// given the zero uri.Address, which names no endpoint.
var errZeroAddress = errors.New("migration: no address: the zero uri.Address names no endpoint")

// reachesPeer reports whether addr names a peer process (tcp, unix,
// vsock, exec, fd) rather than a file. Only such addresses take TLS
// options, a hello exchange and a return path.
func reachesPeer(addr uri.Address) bool {
	switch addr.Transport {
	case uri.TCP, uri.Unix, uri.Vsock, uri.Exec, uri.FD:
		return true
	}
	return false
}

// tlsHostname returns the name a TLS client checks the server's x509
// certificate against: addr.TLS.Hostname when set, else the host of a
// tcp address (as QEMU uses the host of its tcp: URI), else "". The
// caller merges Config.TLSHostname into addr.TLS first.
func tlsHostname(addr uri.Address) string {
	if addr.TLS.Hostname != "" {
		return addr.TLS.Hostname
	}
	if addr.Transport == uri.TCP {
		return addr.Inet.Host
	}
	return ""
}

// needsTLSHostname reports whether a client connecting to addr with x509
// credentials lacks a name to check the server certificate against: TLS
// is on (addr.TLS.Creds is set) and tlsHostname is "". That is the case
// for unix, vsock, exec and fd without tls-hostname, and for tcp with an
// empty host. As in QEMU, such a client must fail; PSK and anonymous
// credentials need no name, and the listening side never needs one.
func needsTLSHostname(addr uri.Address) bool {
	return addr.TLS.Creds != "" && tlsHostname(addr) == ""
}
