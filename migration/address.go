package migration

import (
	"errors"
	"fmt"
	"strings"

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

// sunPathLen is the size of sun_path in struct sockaddr_un on Linux
// (unix(7)).
const sunPathLen = 108

// unixSockaddr returns the address Go's net package (through package
// channel) takes for u. A path socket is its path, and an abstract one is
// "@" and its name, which Go turns into a leading NUL and an address
// length that ends with the name, QEMU's tight=on.
//
// For tight=off, QEMU gives the kernel the whole sockaddr_un, the name
// followed by NUL bytes up to the end of sun_path. Go does the same when
// the name it is given fills sun_path: "@", the name and NUL bytes, 108 in
// all, make Go pass sizeof(struct sockaddr_un). The padded and the tight
// address are different sockets to the kernel, so both ends must agree.
//
// A path that starts with '@' but is not abstract (only JSON can say it)
// gets "./" in front, which names the same file and keeps Go from reading
// the '@' as abstract.
func unixSockaddr(u uri.UnixAddr) (string, error) {
	switch {
	case u.Abstract && u.Tight == uri.Off:
		if len(u.Path)+1 > sunPathLen {
			return "", fmt.Errorf("migration: abstract unix socket name is %d bytes long: at most %d fit sun_path", len(u.Path), sunPathLen-1)
		}
		return "@" + u.Path + strings.Repeat("\x00", sunPathLen-1-len(u.Path)), nil
	case u.Abstract:
		return "@" + u.Path, nil
	case strings.HasPrefix(u.Path, "@"):
		if len(u.Path)+2 > sunPathLen-1 {
			return "", fmt.Errorf("migration: unix socket path %q starts with '@' and is too long to prefix with ./ (at most %d bytes)", u.Path, sunPathLen-3)
		}
		return "./" + u.Path, nil
	}
	return u.Path, nil
}
