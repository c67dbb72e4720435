package uri

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
)

// FuzzParse checks, for any input: Parse does not panic; an error is an
// *Error whose Input is the input and whose Offset lies inside it; a
// parsed Address survives the round trip, Parse(a.String()) == a, and its
// String is a fixed point; it sets only the fields of its own transport;
// and a tcp address agrees with net.SplitHostPort on host and port. A
// failed Parse returns the zero Address.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		// tcp, qemu-options.hx -incoming tcp:[host]:port[,to=maxport][,ipv4=on|off][,ipv6=on|off]
		"tcp:example.com:4444",
		"tcp:0:4444",                // docs/devel/migration: host 0
		"tcp::4444",                 // empty host: any address
		"tcp:127.0.0.1:0",           // port 0: any free port
		"tcp:h:65535",               // highest port
		"tcp:h:65536",               // one past it
		"tcp:h:0080",                // leading zeros are dropped
		"tcp:localhost:http",        // service name
		"tcp:[::1]:4444",            // bracketed IPv6
		"tcp:[fe80::1%eth0]:1",      // zone
		"tcp:[::ffff:1.2.3.4]:1",    // IPv4-mapped
		"tcp:[1.2.3.4]:1",           // IPv4 in brackets: SplitHostPort takes it, Parse does not
		"tcp:::1:4444",              // unbracketed IPv6
		"tcp:[::1:4444",             // unterminated bracket
		"tcp:[::1]",                 // no port after ]
		"tcp:x",                     // no port
		"tcp:h:",                    // empty port
		"tcp::4444,to=4450",         // listen range
		"tcp::4444,to=4443",         // to below port
		"tcp::http,to=90",           // to with a service name
		"tcp::1,ipv4",               // QEMU 7.2 bare flag
		"tcp::1,noipv6",             // QEMU 10.1 noflag
		"tcp::1,ipv4=on,ipv6=off",   // 7.2 and 10.1
		"tcp::1,ipv4=yes,ipv6=n",    // qapi_bool_parse spellings
		"tcp::1,ipv4=off,ipv6=off",  // both families off
		"tcp::1,ipv4,ipv4",          // duplicate
		"tcp::1,,ipv4",              // ",,": QEMU 10.1 escape, 10.0 empty option
		"tcp::1,",                   // trailing comma
		"tcp::1,to=04450",           // leading zero: 10.1 octal, 10.0 decimal
		"tcp::1,to=089",             // leading zero, no octal digits
		"tcp::4450,to=0x1162",       // hex: 10.1 only
		"tcp::1,to=0x",              // hex prefix without digits
		"tcp::1,to=0b1",             // binary: C-library dependent in 10.1
		"tcp::1,to=+2",              // sign: QEMU takes it, livemig does not
		"tcp::1,to=0x10000",         // hex out of range
		"tcp:addr=h:1",              // QemuOpts implied key (10.1)
		"tcp:addr=[::1]:1",          // 10.1 misreads brackets after addr=
		"tcp:h:1,addr=g:2",          // 10.1: the last addr wins
		"tcp:ipv4=on,addr=h:1",      // option before the address
		"tcp:10.0.0.1:1,numeric=on", // numeric with an IP
		"tcp:name:1,numeric=on",     // numeric with a name
		"tcp::1,keep-alive=on,keep-alive-count=9,keep-alive-idle=60,keep-alive-interval=5",
		"tcp::1,keep-alive-count=0", // the kernel rejects 0
		"tcp::1,keep-alive-idle=4294967296",
		"tcp::1,mptcp",
		"tcp:[::1]:4444,tls-creds=tls0,tls-hostname=h.example,tls-authz=authz0",
		"tcp::1,tls-hostname=h", // hostname without creds
		"tcp::1,tls-creds=0bad", // ID must start with a letter
		// unix, qemu-options.hx -incoming unix:socketpath
		"unix:/tmp/m.sock",
		"unix:@abstract",
		"unix:@",
		"unix:",
		"unix:/a,b,tls-creds=c", // commas stay in the path
		"unix:/a,tls-creds=c,tls-hostname=h,tls-authz=z",
		"unix:/a,tls-creds=x/b", // trailing TLS item with a bad ID
		"unix:/" + strings.Repeat("p", 107),
		// vsock, util/qemu-sockets.c vsock_parse
		"vsock:3:1234",
		"vsock:4294967295:4294967295",
		"vsock:4294967296:1",
		"vsock:3:1,tls-creds=c",
		"vsock:3",
		// exec, docs/devel/migration: exec:cat > mig
		"exec:cat > mig",
		"exec:gzip -c > /tmp/vm.gz,tls-creds=c",
		"exec: ",
		// fd, qemu-options.hx -incoming fd:fd
		"fd:3",
		"fd:007",
		"fd:migrate,tls-creds=c",
		"fd:2147483648",
		"fd:3x",
		// file, qemu-options.hx -incoming file:filename[,offset=offset]
		"file:/tmp/vm",
		"file:/tmp/vm,offset=4096",
		"file:/tmp/vm,offset=0",
		"file:/f,offset=1.5k",  // fraction with a suffix
		"file:/f,offset=.5M",   // no integer digits
		"file:/f,offset=1.",    // no fraction digits
		"file:/f,offset=1.5",   // fraction without a suffix
		"file:/f,offset=0x1b",  // hex: b is a digit
		"file:/f,offset=0x20M", // hex with a suffix
		"file:/f,offset=7E",    // largest suffix
		"file:/f,offset=8E",    // overflow
		"file:/f,offset=9223372036854775807",
		"file:/f,offset=1,offset=2", // duplicate
		"file:/f,tls-creds=c",       // a file is no peer
		// everywhere
		"",
		"defer", // qemu-options.hx -incoming defer: no URI
		"rdma:h:1",
		"tcp:h\x00:1",
		"exec:" + strings.Repeat("x", MaxLength),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Parse(s)
		if err != nil {
			if !a.IsZero() {
				t.Fatalf("Parse(%q) returned %+v and an error", s, a)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse(%q) error %T is not *Error", s, err)
			}
			if e.Input != s || e.Offset < 0 || e.Offset > len(s) || e.Reason == "" {
				t.Fatalf("Parse(%q): bad Error %#v", s, e)
			}
			return
		}
		str := a.String()
		b, err := Parse(str)
		if err != nil {
			t.Fatalf("Parse(%q).String() = %q, which does not parse: %v", s, str, err)
		}
		if b != a {
			t.Fatalf("round trip of %q through %q:\n got %+v\nwant %+v", s, str, b, a)
		}
		if o := otherFields(a); !o.IsZero() {
			t.Fatalf("Parse(%q) sets fields of other transports: %+v", s, o)
		}
		if str2 := b.String(); str2 != str {
			t.Fatalf("String is not stable: %q then %q", str, str2)
		}
		if len(str) > MaxLength && !isJSON(s) {
			t.Fatalf("String() of %q is %d bytes, longer than MaxLength", s, len(str))
		}
		if a.Transport == TCP && !isJSON(s) {
			checkSplitHostPort(t, s, a)
		}
	})
}

// checkSplitHostPort compares a tcp Address with what net.SplitHostPort
// makes of the input's address part and of Inet.HostPort.
func checkSplitHostPort(t *testing.T, s string, a Address) {
	t.Helper()
	addr, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(s, "tcp:"), keyAddr+"="), ",")
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("Parse(%q) succeeded but net.SplitHostPort(%q): %v", s, addr, err)
	}
	if host != a.Inet.Host {
		t.Fatalf("Parse(%q): host %q, net.SplitHostPort: %q", s, a.Inet.Host, host)
	}
	if n, err := strconv.ParseUint(port, 10, 64); err == nil {
		if a.Inet.Port != strconv.FormatUint(n, 10) {
			t.Fatalf("Parse(%q): port %q, net.SplitHostPort: %q", s, a.Inet.Port, port)
		}
	} else if port != a.Inet.Port {
		t.Fatalf("Parse(%q): port %q, net.SplitHostPort: %q", s, a.Inet.Port, port)
	}
	host, port, err = net.SplitHostPort(a.Inet.HostPort())
	if err != nil || host != a.Inet.Host || port != a.Inet.Port {
		t.Fatalf("net.SplitHostPort(%q) = %q, %q, %v; want %q, %q", a.Inet.HostPort(), host, port, err, a.Inet.Host, a.Inet.Port)
	}
}
