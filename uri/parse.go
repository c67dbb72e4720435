package uri

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/livemig/livemig/internal/qemuopt"
)

// Option keys, as written in a URI.
const (
	keyAddr              = "addr"
	keyTo                = "to"
	keyNumeric           = "numeric"
	keyIPv4              = "ipv4"
	keyIPv6              = "ipv6"
	keyKeepAlive         = "keep-alive"
	keyKeepAliveCount    = "keep-alive-count"
	keyKeepAliveIdle     = "keep-alive-idle"
	keyKeepAliveInterval = "keep-alive-interval"
	keyMPTCP             = "mptcp"
	keyTLSCreds          = "tls-creds"
	keyTLSHostname       = "tls-hostname"
	keyTLSAuthz          = "tls-authz"
	keyOffset            = "offset"
)

// Limits taken from QEMU and Linux.
const (
	maxPortLen      = 32  // inet_parse in QEMU <= 10.0 reads the port with %32[^,]
	maxHostLen      = 253 // longest DNS name in text form (RFC 1035, 2.3.4)
	maxUnixPath     = 107 // sun_path is 108 bytes and a path needs its NUL (unix(7))
	maxUnixAbstract = 108 // an abstract name uses all of sun_path, '@' standing for its NUL
	maxFD           = 1<<31 - 1
	maxZoneLen      = 15 // IFNAMSIZ - 1 (Linux netdevice(7))
)

// parser holds the input of one Parse call, for error messages.
type parser struct {
	in string
}

// option is one key[=value] item of an option list.
type option struct {
	key    string
	value  string
	hasVal bool
	off    int // offset of key in the input
}

// valOff returns the offset of the option's value in the input.
func (o *option) valOff() int { return o.off + len(o.key) + 1 }

// Parse parses a migration URI into an Address. Input that starts with
// '{' or '[' is QEMU's JSON channels instead (see the package
// documentation). The grammar is in the package documentation. Every
// malformed input gives an *Error naming the offset of the problem, and
// the zero Address; Parse never panics.
func Parse(s string) (Address, error) {
	if isJSON(s) {
		return parseJSON(s)
	}
	p := &parser{in: s}
	a, err := p.parse()
	if err != nil {
		return Address{}, err
	}
	return *a, nil
}

func (p *parser) parse() (*Address, *Error) {
	s := p.in
	if len(s) > MaxLength {
		return nil, p.fail(MaxLength, "input is %d bytes long: expected at most %d (uri.MaxLength)", len(s), MaxLength)
	}
	if i := strings.IndexByte(s, 0); i >= 0 {
		return nil, p.fail(i, "NUL byte: expected none anywhere")
	}
	if i := invalidUTF8(s); i >= 0 {
		return nil, p.fail(i, "invalid UTF-8: expected UTF-8 text (so that JSON can say every address)")
	}
	scheme, body, ok := strings.Cut(s, ":")
	if s == "defer" {
		return nil, p.fail(0, "defer is QEMU's -incoming keyword, not a URI: expected one of tcp:, unix:, vsock:, exec:, fd:, file:")
	}
	if !ok {
		return nil, p.fail(0, "missing transport: expected one of tcp:, unix:, vsock:, exec:, fd:, file:")
	}
	off := len(scheme) + 1 // offset of body
	a := &Address{Transport: Transport(scheme)}
	var err *Error
	switch a.Transport {
	case TCP:
		err = p.parseTCP(a, body, off)
	case Unix:
		err = p.parseUnix(a, body, off)
	case Vsock:
		err = p.parseVsock(a, body, off)
	case Exec:
		err = p.parseExec(a, body, off)
	case FD:
		err = p.parseFD(a, body, off)
	case File:
		err = p.parseFile(a, body, off)
	case "rdma":
		return nil, p.fail(0, "rdma: is not supported by livemig: expected one of tcp:, unix:, vsock:, exec:, fd:, file:")
	default:
		return nil, p.fail(0, "unknown transport %q: expected one of tcp:, unix:, vsock:, exec:, fd:, file:", scheme)
	}
	if err != nil {
		return nil, err
	}
	return a, nil
}

// parseTCP parses [addr=]HOST:PORT[,OPTION]... at offset off.
func (p *parser) parseTCP(a *Address, body string, off int) *Error {
	in := &a.Inet
	if i := strings.Index(body, ",,"); i >= 0 {
		return p.fail(off+i, "',,' in a tcp address: QEMU 10.1 reads it as a comma inside the value before it, QEMU up to 10.0 as an empty option, and no tcp host, port or option value holds a comma: expected a single ','")
	}
	if strings.HasPrefix(body, keyAddr+"=") {
		// QemuOpts' implied key: "addr=HOST:PORT" is "HOST:PORT".
		body, off = body[len(keyAddr)+1:], off+len(keyAddr)+1
		if strings.HasPrefix(body, "[") {
			return p.fail(off, "'[' after addr=: QEMU 10.1 looks for the brackets of an IPv6 address only at the start of the URI and misreads them here: expected tcp:[IPV6]:PORT without addr=")
		}
	} else if item, _, _ := strings.Cut(body, ","); !strings.HasPrefix(item, "[") {
		if key, _, ok := strings.Cut(item, "="); ok && key != "" && !strings.Contains(key, ":") {
			return p.fail(off, "option %q before the address: expected HOST:PORT or addr=HOST:PORT first (QEMU 10.1 would take the address from a later addr=; livemig wants it first)", key)
		}
	}
	var rest string // ":PORT[,options]"
	restOff := off
	if strings.HasPrefix(body, "[") {
		end := strings.IndexByte(body, ']')
		if end < 0 {
			return p.fail(off, "unterminated '[': expected ']' after the IPv6 address")
		}
		host := body[1:end]
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.Is6() {
			return p.fail(off+1, "invalid IPv6 address %q: expected an IPv6 address inside brackets", host)
		}
		if zone := ip.Zone(); zone != "" {
			zoff := off + 1 + strings.IndexByte(host, '%') + 1
			if err := p.checkZone(zone, zoff); err != nil {
				return err
			}
		}
		in.Host = host
		rest, restOff = body[end+1:], off+end+1
		if !strings.HasPrefix(rest, ":") {
			return p.fail(restOff, "missing port: expected ':' and a port after ']'")
		}
	} else {
		end := strings.IndexAny(body, ":,")
		if end < 0 || body[end] == ',' {
			if end < 0 {
				end = len(body)
			}
			return p.fail(off+end, "missing port: expected HOST:PORT")
		}
		host := body[:end]
		if err := p.checkHost(host, off); err != nil {
			return err
		}
		in.Host = host
		rest, restOff = body[end:], off+end
	}
	// rest starts with ':'.
	rest, restOff = rest[1:], restOff+1
	port, opts, _ := strings.Cut(rest, ",")
	if err := p.parsePort(in, port, restOff); err != nil {
		return err
	}
	if len(port) < len(rest) {
		if opts == "" || strings.HasSuffix(opts, ",") {
			return p.fail(len(p.in)-1, "trailing ',': expected an option after it (QEMU ignores a trailing comma; livemig takes it for a cut option list)")
		}
		list, err := p.splitOptions(opts, restOff+len(port)+1)
		if err != nil {
			return err
		}
		if err := p.tcpOptions(a, list); err != nil {
			return err
		}
	}
	return nil
}

// checkHost checks an unbracketed tcp host at offset off.
func (p *parser) checkHost(host string, off int) *Error {
	if len(host) > maxHostLen {
		return p.fail(off+maxHostLen, "host is %d bytes long: expected at most %d", len(host), maxHostLen)
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !isAlnum(c) && c != '-' && c != '.' && c != '_' {
			return p.fail(off+i, "invalid character %q in host: expected a host name, an IPv4 address, or an IPv6 address in brackets", c)
		}
	}
	return nil
}

// checkZone checks the zone of a bracketed IPv6 address at offset off: an
// interface name or index. Linux interface names are at most 15 bytes
// (IFNAMSIZ); livemig also limits them to letters, digits, '-', '.', '_' so
// that the address can never swallow a ',' or ']'.
func (p *parser) checkZone(zone string, off int) *Error {
	if len(zone) > maxZoneLen {
		return p.fail(off+maxZoneLen, "zone is %d bytes long: expected an interface name of at most %d", len(zone), maxZoneLen)
	}
	for i := 0; i < len(zone); i++ {
		if c := zone[i]; !isAlnum(c) && c != '-' && c != '.' && c != '_' {
			return p.fail(off+i, "invalid character %q in zone: expected an interface name or index", c)
		}
	}
	return nil
}

// parsePort checks a tcp port at offset off and stores it in canonical form.
func (p *parser) parsePort(in *Inet, port string, off int) *Error {
	if port == "" {
		return p.fail(off, "missing port: expected a port number or service name after ':'")
	}
	if strings.IndexByte(port, ':') >= 0 {
		return p.fail(off+strings.IndexByte(port, ':'), "unexpected ':' in port: an IPv6 address must be in brackets, as in [::1]:4444")
	}
	if len(port) > maxPortLen {
		return p.fail(off+maxPortLen, "port is %d bytes long: expected at most %d", len(port), maxPortLen)
	}
	if allDigits(port) {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return p.failErr(off, strconv.ErrRange, "port %s out of range: expected 0 to 65535", port)
		}
		in.Port = strconv.FormatUint(n, 10)
		return nil
	}
	letter := false
	for i := 0; i < len(port); i++ {
		c := port[i]
		switch {
		case isAlpha(c):
			letter = true
		case isDigit(c) || c == '-':
		default:
			return p.fail(off+i, "invalid character %q in port: expected a port number or service name (letters, digits, '-')", c)
		}
	}
	if !letter || port[0] == '-' || port[len(port)-1] == '-' {
		return p.fail(off, "invalid port %q: expected a port number or service name (letters, digits, '-')", port)
	}
	in.Port = port
	return nil
}

// splitOptions splits a comma-separated option list found at offset off.
func (p *parser) splitOptions(s string, off int) ([]option, *Error) {
	var list []option
	for {
		item, more, found := strings.Cut(s, ",")
		if item == "" {
			return nil, p.fail(off, "empty option: expected key=value after ','")
		}
		key, value, hasVal := strings.Cut(item, "=")
		list = append(list, option{key: key, value: value, hasVal: hasVal, off: off})
		if !found {
			return list, nil
		}
		s, off = more, off+len(item)+1
	}
}

// tcpOptions applies the options of a tcp address.
func (p *parser) tcpOptions(a *Address, list []option) *Error {
	in := &a.Inet
	seen := make(map[string]bool, len(list))
	var tls []option
	var toOpt *option
	for i := range list {
		o := &list[i]
		key := o.key
		var sw *Switch
		switch key {
		case keyNumeric, "no" + keyNumeric:
			sw = &in.Numeric
		case keyIPv4, "no" + keyIPv4:
			sw = &in.IPv4
		case keyIPv6, "no" + keyIPv6:
			sw = &in.IPv6
		case keyKeepAlive, "no" + keyKeepAlive:
			sw = &in.KeepAlive
		case keyMPTCP, "no" + keyMPTCP:
			sw = &in.MPTCP
		}
		if sw != nil {
			neg := strings.HasPrefix(key, "no") // no switch key starts with "no"
			if neg {
				key = key[2:]
				if o.hasVal {
					return p.fail(o.off, "unknown option %q: expected %s=on|off or a bare %s or no%s", o.key, key, key, key)
				}
			}
			if err := p.markSeen(seen, key, o); err != nil {
				return err
			}
			switch {
			case neg:
				*sw = Off
			case !o.hasVal:
				*sw = On
			default:
				v, err := p.parseBool(o)
				if err != nil {
					return err
				}
				*sw = v
			}
			continue
		}
		switch key {
		case keyTo:
			if err := p.markSeen(seen, key, o); err != nil {
				return err
			}
			n, err := p.parseUint(o, 16, false)
			if err != nil {
				return err
			}
			in.To, toOpt = uint16(n), o
		case keyKeepAliveCount, keyKeepAliveIdle, keyKeepAliveInterval:
			if err := p.markSeen(seen, key, o); err != nil {
				return err
			}
			n, err := p.parseUint(o, 32, true)
			if err != nil {
				return err
			}
			switch key {
			case keyKeepAliveCount:
				in.KeepAliveCount = uint32(n)
			case keyKeepAliveIdle:
				in.KeepAliveIdle = uint32(n)
			default:
				in.KeepAliveInterval = uint32(n)
			}
		case keyTLSCreds, keyTLSHostname, keyTLSAuthz:
			tls = append(tls, *o)
		case keyAddr:
			return p.fail(o.off, "addr= after the address: QEMU 10.1 would let it replace the address given first, QEMU up to 10.0 ignores it: expected the address once, at the start")
		default:
			return p.fail(o.off, "unknown option %q: expected one of to, numeric, ipv4, ipv6, keep-alive, keep-alive-count, keep-alive-idle, keep-alive-interval, mptcp, tls-creds, tls-hostname, tls-authz", key)
		}
	}
	if toOpt != nil {
		first, _, ok := in.PortRange()
		switch {
		case !ok:
			return p.fail(toOpt.off, "to= needs a numeric port, not the service name %q", in.Port)
		case in.To < first:
			return p.fail(toOpt.valOff(), "to=%d is below port %d: expected a last port >= the first", in.To, first)
		}
	}
	if in.IPv4 == Off && in.IPv6 == Off {
		return p.fail(len(p.in), "ipv4=off and ipv6=off: expected at least one address family")
	}
	if in.Host != "" {
		ip, err := netip.ParseAddr(in.Host)
		switch {
		case err == nil && ip.Is4() && in.IPv4 == Off:
			return p.fail(len(p.in), "host %s is an IPv4 address but ipv4=off", in.Host)
		case err == nil && ip.Is6() && in.IPv6 == Off:
			return p.fail(len(p.in), "host %s is an IPv6 address but ipv6=off", in.Host)
		case err != nil && in.Numeric == On:
			return p.fail(len(p.in), "host %q is a name but numeric=on: expected an IP address", in.Host)
		}
	}
	return p.tlsOptions(a, tls)
}

// markSeen records key and fails if it was given before.
func (p *parser) markSeen(seen map[string]bool, key string, o *option) *Error {
	if seen[key] {
		return p.fail(o.off, "duplicate option %s: expected each option at most once (QEMU up to 10.0 takes the first, QEMU 10.1 the last)", key)
	}
	seen[key] = true
	return nil
}

// parseBool parses the value of a switch option. It accepts what QEMU's
// qapi_bool_parse accepts.
func (p *parser) parseBool(o *option) (Switch, *Error) {
	if v, ok := qemuopt.ParseBool(o.value); ok {
		if v {
			return On, nil
		}
		return Off, nil
	}
	return Unset, p.fail(o.valOff(), "invalid value %q for %s: expected on or off", o.value, o.key)
}

// parseUint parses the value of a numeric tcp option of the given bit
// size; nonzero rejects 0. It takes what QEMU 10.1 and QEMU up to 10.0 read
// alike: decimal digits without a leading zero, and (new in 10.1, an error
// before) 0x or 0X and hex digits. The package doc's tcp table says why
// each other spelling is refused.
func (p *parser) parseUint(o *option, bits int, nonzero bool) (uint64, *Error) {
	v := o.value
	if !o.hasVal || v == "" {
		return 0, p.fail(o.off+len(o.key), "%s needs a value: expected %s=NUMBER", o.key, o.key)
	}
	var n uint64
	var err error
	switch {
	case len(v) > 1 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X'):
		if len(v) == 2 {
			return 0, p.fail(o.valOff()+2, "missing hex digits after %s in %s=%s: expected %s=0x and hex digits", v, o.key, v, o.key)
		}
		for i := 2; i < len(v); i++ {
			if !isHex(v[i]) {
				return 0, p.fail(o.valOff()+i, "invalid character %q in hex value %s=%s: expected hex digits after 0x", v[i], o.key, v)
			}
		}
		n, err = strconv.ParseUint(v[2:], 16, bits)
	case len(v) > 1 && v[0] == '0' && (v[1] == 'b' || v[1] == 'B'):
		return 0, p.fail(o.valOff(), "binary value %s=%s: QEMU up to 10.0 rejects it, and QEMU 10.1 reads it with strtoull, where 0b is a C23 prefix that only newer C libraries take: expected decimal digits or 0x and hex digits", o.key, v)
	case allDigits(v) && len(v) > 1 && v[0] == '0':
		older := "QEMU up to 10.0 as decimal"
		if o.key != keyTo {
			older = "not as decimal" // QEMU up to 10.0 has no such option
		}
		return 0, p.fail(o.valOff(), "%s=%s has a leading zero: QEMU 10.1 reads it as octal (%s), %s (%s): expected the number without leading zeros, in decimal or as 0x and hex digits", o.key, v, octalReading(v), older, decimalReading(v))
	case allDigits(v):
		n, err = strconv.ParseUint(v, 10, bits)
	case v[0] == '+' || v[0] == '-' || v[0] == ' ' || v[0] == '\t':
		return 0, p.fail(o.valOff(), "invalid value %q for %s: expected an unsigned number without sign or blanks (QEMU would take them, and turn -1 into the largest value)", v, o.key)
	default:
		return 0, p.fail(o.valOff(), "invalid value %q for %s: expected decimal digits or 0x and hex digits", v, o.key)
	}
	if err != nil {
		return 0, p.failErr(o.valOff(), strconv.ErrRange, "%s=%s out of range: expected at most %d (QEMU would keep only the low %d bits)", o.key, v, uint64(1)<<bits-1, bits)
	}
	if nonzero && n == 0 {
		return 0, p.fail(o.valOff(), "%s=%s: expected a number from 1 (the kernel rejects 0)", o.key, v)
	}
	return n, nil
}

// octalReading says what QEMU 10.1's strtoull with base 0 makes of the
// digits s, which start with '0'.
func octalReading(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] > '7' {
			return "an error, as " + s[i:i+1] + " is no octal digit"
		}
	}
	n, err := strconv.ParseUint(s, 8, 64)
	if err != nil {
		return "out of range"
	}
	return strconv.FormatUint(n, 10)
}

// decimalReading returns the digits s without leading zeros, which is what
// QEMU up to 10.0 reads with sscanf's %d.
func decimalReading(s string) string {
	if t := strings.TrimLeft(s, "0"); t != "" {
		return t
	}
	return "0"
}

// tlsOptions applies tls-creds, tls-hostname and tls-authz options.
func (p *parser) tlsOptions(a *Address, list []option) *Error {
	var seen [3]*option
	for i := range list {
		o := &list[i]
		var dst *string
		var slot int
		switch o.key {
		case keyTLSCreds:
			dst, slot = &a.TLS.Creds, 0
		case keyTLSHostname:
			dst, slot = &a.TLS.Hostname, 1
		default:
			dst, slot = &a.TLS.Authz, 2
		}
		if seen[slot] != nil {
			return p.fail(o.off, "duplicate option %s: expected each option at most once", o.key)
		}
		seen[slot] = o
		if !o.hasVal || o.value == "" {
			return p.fail(o.off+len(o.key), "%s needs a value: expected %s=%s", o.key, o.key, tlsValueName(o.key))
		}
		if o.key == keyTLSHostname {
			if err := p.checkTLSHostname(o); err != nil {
				return err
			}
		} else if i := qemuopt.BadID(o.value); i >= 0 {
			return p.fail(o.valOff()+i, "invalid object ID %q for %s: expected a letter, then letters, digits, '-', '.' or '_'", o.value, o.key)
		}
		*dst = o.value
	}
	if a.TLS.Creds == "" {
		for _, o := range seen[1:] {
			if o != nil {
				return p.fail(o.off, "%s without tls-creds: expected tls-creds=ID as well", o.key)
			}
		}
	}
	return nil
}

func tlsValueName(key string) string {
	if key == keyTLSHostname {
		return "NAME"
	}
	return "ID"
}

// checkTLSHostname checks a tls-hostname value: a DNS name or an IP
// address, as the server certificate would list it.
func (p *parser) checkTLSHostname(o *option) *Error {
	v := o.value
	if ip, err := netip.ParseAddr(v); err == nil && ip.Zone() == "" {
		return nil
	}
	if len(v) > maxHostLen {
		return p.fail(o.valOff()+maxHostLen, "tls-hostname is %d bytes long: expected at most %d", len(v), maxHostLen)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !isAlnum(c) && c != '-' && c != '.' && c != '_' {
			return p.fail(o.valOff()+i, "invalid character %q in tls-hostname: expected a host name or IP address", c)
		}
	}
	return nil
}

// cutTrailingTLS strips trailing ",tls-creds=V", ",tls-hostname=V" and
// ",tls-authz=V" items (V free of commas) from s, found at offset off, and
// returns what is left and the stripped items in input order.
func cutTrailingTLS(s string, off int) (string, []option) {
	var list []option
	for {
		i := strings.LastIndexByte(s, ',')
		if i < 0 {
			break
		}
		key, value, ok := strings.Cut(s[i+1:], "=")
		if !ok || (key != keyTLSCreds && key != keyTLSHostname && key != keyTLSAuthz) {
			break
		}
		list = append(list, option{key: key, value: value, hasVal: true, off: off + i + 1})
		s = s[:i]
	}
	for i, j := 0, len(list)-1; i < j; i, j = i+1, j-1 {
		list[i], list[j] = list[j], list[i]
	}
	return s, list
}

// parseUnix parses PATH[,TLS]... at offset off.
func (p *parser) parseUnix(a *Address, body string, off int) *Error {
	path, tls := cutTrailingTLS(body, off)
	switch {
	case path == "":
		return p.fail(off, "empty path: expected unix:PATH or unix:@NAME")
	case path == "@":
		return p.fail(off+1, "empty abstract socket name: expected a name after '@'")
	case path[0] == '@' && len(path) > maxUnixAbstract:
		return p.fail(off+maxUnixAbstract, "abstract socket name is %d bytes long: expected at most %d after '@'", len(path)-1, maxUnixAbstract-1)
	case path[0] != '@' && len(path) > maxUnixPath:
		return p.fail(off+maxUnixPath, "path is %d bytes long: expected at most %d for a unix socket", len(path), maxUnixPath)
	}
	a.Unix.Path = path
	if path[0] == '@' {
		a.Unix.Path, a.Unix.Abstract = path[1:], true
	}
	return p.tlsOptions(a, tls)
}

// parseExec parses COMMAND[,TLS]... at offset off.
func (p *parser) parseExec(a *Address, body string, off int) *Error {
	cmd, tls := cutTrailingTLS(body, off)
	if strings.TrimSpace(cmd) == "" {
		return p.fail(off, "empty command: expected exec:COMMAND")
	}
	a.Command = cmd
	return p.tlsOptions(a, tls)
}

// parseVsock parses CID:PORT[,TLS]... at offset off.
func (p *parser) parseVsock(a *Address, body string, off int) *Error {
	addr, opts, hasOpts := strings.Cut(body, ",")
	cid, port, ok := strings.Cut(addr, ":")
	if !ok {
		return p.fail(off+len(addr), "missing port: expected vsock:CID:PORT")
	}
	n, err := p.parseU32(cid, off, "CID")
	if err != nil {
		return err
	}
	a.Vsock.CID = n
	if n, err = p.parseU32(port, off+len(cid)+1, "port"); err != nil {
		return err
	}
	a.Vsock.Port = n
	return p.peerOptions(a, opts, hasOpts, off+len(addr)+1)
}

// parseU32 parses a decimal uint32 field of a vsock address.
func (p *parser) parseU32(s string, off int, what string) (uint32, *Error) {
	if s == "" {
		return 0, p.fail(off, "missing %s: expected vsock:CID:PORT", what)
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, p.fail(off+i, "invalid character %q in %s: expected a decimal number", s[i], what)
		}
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, p.failErr(off, strconv.ErrRange, "%s %s out of range: expected at most 4294967295", what, s)
	}
	return uint32(n), nil
}

// peerOptions parses the option list of vsock: and fd:, where only TLS
// options exist.
func (p *parser) peerOptions(a *Address, opts string, hasOpts bool, off int) *Error {
	if !hasOpts {
		return nil
	}
	list, err := p.splitOptions(opts, off)
	if err != nil {
		return err
	}
	for _, o := range list {
		switch o.key {
		case keyTLSCreds, keyTLSHostname, keyTLSAuthz:
		default:
			return p.fail(o.off, "unknown option %q for %s: expected one of tls-creds, tls-hostname, tls-authz", o.key, a.Transport)
		}
	}
	return p.tlsOptions(a, list)
}

// parseFD parses NUMBER|NAME[,TLS]... at offset off.
func (p *parser) parseFD(a *Address, body string, off int) *Error {
	name, opts, hasOpts := strings.Cut(body, ",")
	switch {
	case name == "":
		return p.fail(off, "missing file descriptor: expected fd:NUMBER or fd:NAME")
	case isDigit(name[0]):
		for i := 0; i < len(name); i++ {
			if !isDigit(name[i]) {
				return p.fail(off+i, "invalid character %q in file descriptor number: expected decimal digits (a name must not start with a digit)", name[i])
			}
		}
		n, err := strconv.ParseUint(name, 10, 31)
		if err != nil {
			return p.failErr(off, strconv.ErrRange, "file descriptor %s out of range: expected at most %d", name, maxFD)
		}
		a.FD = strconv.FormatUint(n, 10)
	default:
		for i := 0; i < len(name); i++ {
			if c := name[i]; c < 0x20 || c == 0x7f {
				return p.fail(off+i, "control character %q in file descriptor name: expected printable characters", c)
			}
		}
		a.FD = name
	}
	return p.peerOptions(a, opts, hasOpts, off+len(name)+1)
}

// parseFile parses PATH[,offset=SIZE] at offset off. As QEMU's
// file_parse_offset does, the path ends at the first ",offset=".
func (p *parser) parseFile(a *Address, body string, off int) *Error {
	const sep = "," + keyOffset + "="
	path, size, hasOffset := strings.Cut(body, sep)
	if path == "" {
		return p.fail(off, "empty path: expected file:PATH[,offset=SIZE]")
	}
	if _, tls := cutTrailingTLS(path, off); len(tls) > 0 {
		return p.fail(tls[0].off, "option %s on file: a file is no peer: expected no TLS options", tls[0].key)
	}
	a.File.Path = path
	if !hasOffset {
		return nil
	}
	sizeOff := off + len(path) + len(sep)
	if i := strings.IndexByte(size, ','); i >= 0 {
		item := size[i+1:]
		key, _, _ := strings.Cut(item, "=")
		switch key {
		case keyOffset:
			return p.fail(sizeOff+i+1, "duplicate option offset: expected each option at most once")
		case keyTLSCreds, keyTLSHostname, keyTLSAuthz:
			return p.fail(sizeOff+i+1, "option %s on file: a file is no peer: expected no TLS options", key)
		}
		return p.fail(sizeOff+i, "unexpected ',' after offset: expected file:PATH[,offset=SIZE] with nothing after SIZE")
	}
	n, bad, reason, cause := parseSize(size)
	if reason != "" {
		return p.failErr(sizeOff+bad, cause, "%s", reason)
	}
	a.File.Offset = n
	return nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isAlnum(c byte) bool { return isDigit(c) || isAlpha(c) }

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s != ""
}
