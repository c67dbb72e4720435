package channel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/hashicorp/go-multierror"
)

// Dialer holds options for dialing. The zero value is usable. A Dialer
// must not be modified after use; it is safe for concurrent use.
type Dialer struct {
	// NetDialer supplies Timeout, LocalAddr, KeepAliveConfig, Resolver and
	// the multipath TCP setting for tcp, and is used for unix. Nil means a
	// zero net.Dialer (Go's defaults: keep-alive on, no timeout).
	NetDialer *net.Dialer
	// Numeric refuses host names: the host must be an IP literal, so no
	// DNS lookup happens. Default false.
	Numeric bool
	// MultipathTCP asks for multipath TCP (falling back to TCP where the
	// kernel or peer lacks it), as NetDialer.SetMultipathTCP(true) does.
	// Default false.
	MultipathTCP bool
}

// Dial connects on network "tcp", "tcp4" or "tcp6" (address "host:port",
// IPv6 literals in brackets), "unix" (address a path, or "@name" for
// Linux's abstract namespace) or "vsock" (address "cid:port"; Linux only).
//
// The provided Context must be non-nil. If the context expires before the
// connection is complete, an error is returned. Once successfully
// connected, any expiration of the context will not affect the connection.
//
// For tcp, Dial resolves the host and tries each address in turn (in the
// resolver's order); when every attempt fails, the error wraps a
// *multierror.Error holding each attempt's error. Errors are *[OpError]
// with Op "dial".
func (d *Dialer) Dial(ctx context.Context, network, address string) (*Socket, error) {
	c, err := d.dial(ctx, network, address)
	if err != nil {
		return nil, &OpError{Op: "dial", Channel: network + " " + displayAddress(address), Err: err}
	}
	s, err := NewSocket(c)
	if err != nil {
		c.Close()
		return nil, err
	}
	return s, nil
}

// Dial is (&Dialer{}).Dial.
func Dial(ctx context.Context, network, address string) (*Socket, error) {
	var d Dialer
	return d.Dial(ctx, network, address)
}

func (d *Dialer) netDialer() *net.Dialer {
	var nd net.Dialer
	if d.NetDialer != nil {
		nd = *d.NetDialer
	}
	if d.MultipathTCP {
		nd.SetMultipathTCP(true)
	}
	return &nd
}

func (d *Dialer) dial(ctx context.Context, network, address string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
		return d.dialTCP(ctx, network, address)
	case "unix":
		if address == "" {
			return nil, errors.New("empty unix socket path")
		}
		c, err := d.netDialer().DialContext(ctx, "unix", address)
		if err != nil {
			return nil, cause(err)
		}
		return c, nil
	case "vsock":
		return dialVsock(ctx, address)
	}
	return nil, net.UnknownNetworkError(network)
}

func (d *Dialer) dialTCP(ctx context.Context, network, address string) (net.Conn, error) {
	nd := d.netDialer()
	addrs, err := resolveTCP(ctx, nd.Resolver, network, address, d.Numeric, false)
	if err != nil {
		return nil, err
	}
	var merr *multierror.Error
	for _, ap := range addrs {
		c, err := nd.DialContext(ctx, network, ap.String())
		if err == nil {
			return c, nil
		}
		merr = multierror.Append(merr, fmt.Errorf("%s: %w", ap, cause(err)))
		if ctx.Err() != nil {
			break
		}
	}
	merr.ErrorFormat = joinErrors
	return nil, merr
}

// joinErrors renders a multierror on one line: "3 attempts failed: a; b; c".
func joinErrors(errs []error) string {
	if len(errs) == 1 {
		return errs[0].Error()
	}
	var b strings.Builder
	b.WriteString(strconv.Itoa(len(errs)))
	b.WriteString(" attempts failed: ")
	for i, e := range errs {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// resolveTCP splits "host:port" and resolves host to addresses of the
// network's families. An empty host resolves to nothing when listening
// (the caller listens on every address) and to the loopback otherwise, as
// net.Dial does.
func resolveTCP(ctx context.Context, r *net.Resolver, network, address string, numeric, listen bool) ([]netip.AddrPort, error) {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	if r == nil {
		r = net.DefaultResolver
	}
	port, err := r.LookupPort(ctx, network, portStr)
	if err != nil {
		return nil, err
	}
	if port < 0 || port > 65535 {
		return nil, fmt.Errorf("port %d out of range", port)
	}
	if host == "" {
		if listen {
			return []netip.AddrPort{netip.AddrPortFrom(netip.Addr{}, uint16(port))}, nil
		}
		host = "localhost"
		if network == "tcp6" {
			host = "::1"
		} else if network == "tcp4" {
			host = "127.0.0.1"
		}
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else if numeric {
		return nil, fmt.Errorf("host %q is not a numeric IP address", host)
	} else {
		want := "ip"
		if network == "tcp4" {
			want = "ip4"
		} else if network == "tcp6" {
			want = "ip6"
		}
		ips, err = r.LookupNetIP(ctx, want, host)
		if err != nil {
			return nil, err
		}
	}
	var out []netip.AddrPort
	seen := map[netip.Addr]bool{}
	for _, ip := range ips {
		ip = ip.Unmap()
		if (network == "tcp4" && !ip.Is4()) || (network == "tcp6" && !ip.Is6()) || seen[ip] {
			continue
		}
		seen[ip] = true
		out = append(out, netip.AddrPortFrom(ip, uint16(port)))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no %s address for host %q", network, host)
	}
	return out, nil
}

// displayAddress spells a dial or listen address for messages: an
// abstract unix name padded with NUL bytes to fill sun_path (QEMU's
// tight=off) shows as its name and "(padded)", not as raw NULs.
func displayAddress(address string) string {
	if strings.HasPrefix(address, "@") && strings.HasSuffix(address, "\x00") {
		return strings.TrimRight(address, "\x00") + " (padded)"
	}
	return address
}
