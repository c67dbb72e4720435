package uri

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/livemig/livemig/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// tcp returns a tcp Address for host and port with inet options from f.
func tcp(host, port string, f ...func(*Address)) Address {
	a := Address{Transport: TCP, Inet: Inet{Host: host, Port: port}}
	for _, f := range f {
		f(&a)
	}
	return a
}

func withTLS(creds, hostname, authz string) func(*Address) {
	return func(a *Address) { a.TLS = TLS{Creds: creds, Hostname: hostname, Authz: authz} }
}

func withInet(f func(*Inet)) func(*Address) { return func(a *Address) { f(&a.Inet) } }

// parseTests are inputs Parse accepts. canon is the expected String(), ""
// when it equals in.
var parseTests = []struct {
	name  string
	in    string
	want  Address
	canon string
}{
	// qemu-options.hx, -incoming tcp:[host]:port[,to=maxport][,ipv4=on|off][,ipv6=on|off]
	{"tcp host port", "tcp:example.com:4444", tcp("example.com", "4444"), ""},
	// docs/devel/migration/main.rst: "-incoming tcp:0:4444" style (host "0" is any IPv4)
	{"tcp host 0", "tcp:0:4444", tcp("0", "4444"), ""},
	// qemu-options.hx: the host is optional; util/qemu-sockets.c inet_parse ":%32[^,]"
	{"tcp empty host", "tcp::4444", tcp("", "4444"), ""},
	// tests in other packages listen on port 0; QEMU's listen takes 0 as any port
	{"tcp port 0", "tcp:127.0.0.1:0", tcp("127.0.0.1", "0"), ""},
	{"tcp port max", "tcp:127.0.0.1:65535", tcp("127.0.0.1", "65535"), ""},
	{"tcp port leading zeros", "tcp:h:0080", tcp("h", "80"), "tcp:h:80"},
	// util/qemu-sockets.c inet_parse: "[%64[^]]]:%32[^,]" for IPv6
	{"tcp ipv6", "tcp:[::1]:4444", tcp("::1", "4444"), ""},
	{"tcp ipv6 full", "tcp:[2001:db8::1]:4444", tcp("2001:db8::1", "4444"), ""},
	{"tcp ipv6 zone", "tcp:[fe80::1%eth0]:4444", tcp("fe80::1%eth0", "4444"), ""},
	{"tcp ipv6 zone index", "tcp:[fe80::1%2]:4444", tcp("fe80::1%2", "4444"), ""},
	{"tcp ipv6 zone max", "tcp:[fe80::1%br-lan.100_abcd]:1", tcp("fe80::1%br-lan.100_abcd", "1"), ""},
	{"tcp ipv6 any", "tcp:[::]:4444", tcp("::", "4444"), ""},
	{"tcp ipv4-mapped", "tcp:[::ffff:10.0.0.1]:1", tcp("::ffff:10.0.0.1", "1"), ""},
	// inet_parse keeps the port a string: getaddrinfo resolves service names
	{"tcp service", "tcp:localhost:http", tcp("localhost", "http"), ""},
	{"tcp service dash", "tcp:localhost:x11-ssh", tcp("localhost", "x11-ssh"), ""},
	{"tcp service digits", "tcp:localhost:9pfs", tcp("localhost", "9pfs"), ""},
	{"tcp host underscore", "tcp:my_host.example:1", tcp("my_host.example", "1"), ""},
	// qemu-options.hx, the full -incoming tcp: form with every documented option
	{"tcp qemu-options full", "tcp:[::]:4444,to=4450,ipv4=on,ipv6=on",
		tcp("::", "4444", withInet(func(i *Inet) { i.To, i.IPv4, i.IPv6 = 4450, On, On })), ""},
	// qemu-options.hx: ,to=maxport
	{"tcp to", "tcp::4444,to=4450", tcp("", "4444", withInet(func(i *Inet) { i.To = 4450 })), ""},
	{"tcp to equal", "tcp::4444,to=4444", tcp("", "4444", withInet(func(i *Inet) { i.To = 4444 })), ""},
	{"tcp to zero with port zero", "tcp::0,to=0", tcp("", "0"), "tcp::0"},
	// qemu-options.hx: ,ipv4=on|off ,ipv6=on|off (QEMU 7.2 and 10.1)
	{"tcp ipv4=on", "tcp::1,ipv4=on", tcp("", "1", withInet(func(i *Inet) { i.IPv4 = On })), ""},
	{"tcp ipv6=off", "tcp::1,ipv6=off", tcp("", "1", withInet(func(i *Inet) { i.IPv6 = Off })), ""},
	// util/qemu-sockets.c (7.2): strstr(",ipv4") takes a bare flag as on
	{"tcp bare ipv4", "tcp::1,ipv4", tcp("", "1", withInet(func(i *Inet) { i.IPv4 = On })), "tcp::1,ipv4=on"},
	// QemuOpts (10.1): "noflag" is off
	{"tcp noipv6", "tcp::1,noipv6", tcp("", "1", withInet(func(i *Inet) { i.IPv6 = Off })), "tcp::1,ipv6=off"},
	// qapi/qapi-util.c qapi_bool_parse: on/yes/true/y and off/no/false/n
	{"tcp yes", "tcp::1,keep-alive=yes", tcp("", "1", withInet(func(i *Inet) { i.KeepAlive = On })), "tcp::1,keep-alive=on"},
	{"tcp true", "tcp::1,mptcp=true", tcp("", "1", withInet(func(i *Inet) { i.MPTCP = On })), "tcp::1,mptcp=on"},
	{"tcp y", "tcp::1,numeric=y", tcp("", "1", withInet(func(i *Inet) { i.Numeric = On })), "tcp::1,numeric=on"},
	{"tcp no", "tcp::1,mptcp=no", tcp("", "1", withInet(func(i *Inet) { i.MPTCP = Off })), "tcp::1,mptcp=off"},
	{"tcp false", "tcp::1,keep-alive=false", tcp("", "1", withInet(func(i *Inet) { i.KeepAlive = Off })), "tcp::1,keep-alive=off"},
	{"tcp n", "tcp::1,ipv4=n", tcp("", "1", withInet(func(i *Inet) { i.IPv4 = Off })), "tcp::1,ipv4=off"},
	{"tcp nonumeric", "tcp:h:1,nonumeric", tcp("h", "1", withInet(func(i *Inet) { i.Numeric = Off })), "tcp:h:1,numeric=off"},
	{"tcp nomptcp", "tcp::1,nomptcp", tcp("", "1", withInet(func(i *Inet) { i.MPTCP = Off })), "tcp::1,mptcp=off"},
	{"tcp nokeep-alive", "tcp::1,nokeep-alive", tcp("", "1", withInet(func(i *Inet) { i.KeepAlive = Off })), "tcp::1,keep-alive=off"},
	// qapi/sockets.json InetSocketAddress: numeric (10.1 in the URI)
	{"tcp numeric ip", "tcp:10.0.0.1:1,numeric=on", tcp("10.0.0.1", "1", withInet(func(i *Inet) { i.Numeric = On })), ""},
	{"tcp numeric empty host", "tcp::1,numeric=on", tcp("", "1", withInet(func(i *Inet) { i.Numeric = On })), ""},
	// qapi/sockets.json: keep-alive-count/idle/interval are uint32 (10.1)
	{"tcp keep-alive knobs", "tcp:h:1,keep-alive=on,keep-alive-count=9,keep-alive-idle=60,keep-alive-interval=4294967295",
		tcp("h", "1", withInet(func(i *Inet) {
			i.KeepAlive, i.KeepAliveCount, i.KeepAliveIdle, i.KeepAliveInterval = On, 9, 60, 4294967295
		})), ""},
	// every option, out of canonical order
	{"tcp all options", "tcp:[::1]:4444,tls-authz=auth0,mptcp,keep-alive-interval=3,keep-alive-idle=2,keep-alive-count=1,keep-alive=on,ipv6,ipv4=off,numeric=on,to=4445,tls-hostname=server.example,tls-creds=tls0",
		tcp("::1", "4444", withTLS("tls0", "server.example", "auth0"), withInet(func(i *Inet) {
			i.To, i.Numeric, i.IPv4, i.IPv6, i.KeepAlive, i.MPTCP = 4445, On, Off, On, On, On
			i.KeepAliveCount, i.KeepAliveIdle, i.KeepAliveInterval = 1, 2, 3
		})),
		"tcp:[::1]:4444,to=4445,numeric=on,ipv4=off,ipv6=on,keep-alive=on,keep-alive-count=1,keep-alive-idle=2,keep-alive-interval=3,mptcp=on,tls-creds=tls0,tls-hostname=server.example,tls-authz=auth0"},
	// DESIGN.md: tls-creds on tcp
	{"tcp tls", "tcp:[::1]:4444,tls-creds=tls0", tcp("::1", "4444", withTLS("tls0", "", "")), ""},
	{"tcp tls hostname ip", "tcp:h:1,tls-creds=a,tls-hostname=192.0.2.1", tcp("h", "1", withTLS("a", "192.0.2.1", "")), ""},
	{"tcp tls hostname ipv6", "tcp:h:1,tls-creds=a,tls-hostname=2001:db8::1", tcp("h", "1", withTLS("a", "2001:db8::1", "")), ""},
	{"tcp tls id chars", "tcp:h:1,tls-creds=a-b.c_d9", tcp("h", "1", withTLS("a-b.c_d9", "", "")), ""},

	// qemu-options.hx, -incoming unix:socketpath; the rest of the URI is the path
	{"unix", "unix:/tmp/migrate.sock", Address{Transport: Unix, Unix: UnixAddr{Path: "/tmp/migrate.sock"}}, ""},
	{"unix relative", "unix:sock", Address{Transport: Unix, Unix: UnixAddr{Path: "sock"}}, ""},
	{"unix commas", "unix:/tmp/a,b=c,d", Address{Transport: Unix, Unix: UnixAddr{Path: "/tmp/a,b=c,d"}}, ""},
	{"unix colon", "unix:/tmp/a:b", Address{Transport: Unix, Unix: UnixAddr{Path: "/tmp/a:b"}}, ""},
	{"unix abstract", "unix:@livemig", Address{Transport: Unix, Unix: UnixAddr{Path: "livemig", Abstract: true}}, ""},
	{"unix max path", "unix:/" + strings.Repeat("p", 106), Address{Transport: Unix, Unix: UnixAddr{Path: "/" + strings.Repeat("p", 106)}}, ""},
	{"unix max abstract", "unix:@" + strings.Repeat("p", 107), Address{Transport: Unix, Unix: UnixAddr{Path: strings.Repeat("p", 107), Abstract: true}}, ""},
	// livemig: trailing TLS options on unix:
	{"unix tls", "unix:/tmp/m.sock,tls-creds=tls0,tls-hostname=dst.example",
		Address{Transport: Unix, Unix: UnixAddr{Path: "/tmp/m.sock"}, TLS: TLS{Creds: "tls0", Hostname: "dst.example"}}, ""},
	{"unix tls reordered", "unix:/s,tls-authz=z,tls-hostname=h,tls-creds=c",
		Address{Transport: Unix, Unix: UnixAddr{Path: "/s"}, TLS: TLS{Creds: "c", Hostname: "h", Authz: "z"}}, "unix:/s,tls-creds=c,tls-hostname=h,tls-authz=z"},
	{"unix comma before tls", "unix:/s,,tls-creds=c", Address{Transport: Unix, Unix: UnixAddr{Path: "/s,"}, TLS: TLS{Creds: "c"}}, ""},
	{"unix tls-like without =", "unix:/s,tls-creds", Address{Transport: Unix, Unix: UnixAddr{Path: "/s,tls-creds"}}, ""},
	{"unix tls not trailing", "unix:/s,tls-creds=c,x", Address{Transport: Unix, Unix: UnixAddr{Path: "/s,tls-creds=c,x"}}, ""},

	// qemu-options.hx, -incoming vsock:cid:port (util/qemu-sockets.c vsock_parse)
	{"vsock", "vsock:3:1234", Address{Transport: Vsock, Vsock: VsockAddr{CID: 3, Port: 1234}}, ""},
	{"vsock any", "vsock:4294967295:4294967295", Address{Transport: Vsock, Vsock: VsockAddr{CID: 4294967295, Port: 4294967295}}, ""},
	{"vsock zeros", "vsock:02:010", Address{Transport: Vsock, Vsock: VsockAddr{CID: 2, Port: 10}}, "vsock:2:10"},
	{"vsock tls", "vsock:2:1,tls-creds=t,tls-hostname=h", Address{Transport: Vsock, Vsock: VsockAddr{CID: 2, Port: 1}, TLS: TLS{Creds: "t", Hostname: "h"}}, ""},

	// docs/devel/migration/main.rst: migrate "exec:cat > mig" / -incoming "exec:cat mig"
	{"exec", "exec:cat > mig", Address{Transport: Exec, Command: "cat > mig"}, ""},
	// QEMU wiki / docs: exec:gzip -c > STATEFILE.gz
	{"exec gzip", "exec:gzip -c > /tmp/vm.gz", Address{Transport: Exec, Command: "gzip -c > /tmp/vm.gz"}, ""},
	{"exec commas", "exec:echo a,b,c", Address{Transport: Exec, Command: "echo a,b,c"}, ""},
	{"exec leading space", "exec: cat", Address{Transport: Exec, Command: " cat"}, ""},
	{"exec ssh tls", "exec:ssh dst nc -U /run/m.sock,tls-creds=tls0,tls-hostname=dst",
		Address{Transport: Exec, Command: "ssh dst nc -U /run/m.sock", TLS: TLS{Creds: "tls0", Hostname: "dst"}}, ""},

	// qemu-options.hx, -incoming fd:fd; monitor_fd_param takes a number or a getfd name
	{"fd number", "fd:3", Address{Transport: FD, FD: "3"}, ""},
	{"fd zero", "fd:0", Address{Transport: FD, FD: "0"}, ""},
	{"fd max", "fd:2147483647", Address{Transport: FD, FD: "2147483647"}, ""},
	{"fd leading zeros", "fd:007", Address{Transport: FD, FD: "7"}, "fd:7"},
	{"fd name", "fd:migrate", Address{Transport: FD, FD: "migrate"}, ""},
	{"fd name odd", "fd:my fd=1:x", Address{Transport: FD, FD: "my fd=1:x"}, ""},
	{"fd tls", "fd:mig,tls-creds=t,tls-hostname=h,tls-authz=z", Address{Transport: FD, FD: "mig", TLS: TLS{Creds: "t", Hostname: "h", Authz: "z"}}, ""},

	// qemu-options.hx, -incoming file:filename[,offset=offset] (8.2)
	{"file", "file:/tmp/vm.state", Address{Transport: File, File: FileAddr{Path: "/tmp/vm.state"}}, ""},
	// docs/devel/migration/mapped-ram.rst: migrate file:/path/to/migration/file
	{"file mapped-ram doc", "file:/path/to/migration/file", Address{Transport: File, File: FileAddr{Path: "/path/to/migration/file"}}, ""},
	{"file commas", "file:/tmp/a,b", Address{Transport: File, File: FileAddr{Path: "/tmp/a,b"}}, ""},
	{"file offset", "file:/tmp/vm,offset=4096", Address{Transport: File, File: FileAddr{Path: "/tmp/vm", Offset: 4096}}, ""},
	{"file offset 0", "file:/tmp/vm,offset=0", Address{Transport: File, File: FileAddr{Path: "/tmp/vm"}}, "file:/tmp/vm"},
	// util/cutils.c qemu_strtosz: suffixes b k M G T P E, case-insensitive, binary
	{"file offset b", "file:/f,offset=7b", Address{Transport: File, File: FileAddr{Path: "/f", Offset: 7}}, "file:/f,offset=7"},
	{"file offset B", "file:/f,offset=7B", Address{Transport: File, File: FileAddr{Path: "/f", Offset: 7}}, "file:/f,offset=7"},
	{"file offset k", "file:/f,offset=64k", Address{Transport: File, File: FileAddr{Path: "/f", Offset: 64 << 10}}, "file:/f,offset=65536"},
	{"file offset K", "file:/f,offset=64K", Address{Transport: File, File: FileAddr{Path: "/f", Offset: 64 << 10}}, "file:/f,offset=65536"},
	{"file offset M", "file:/f,offset=1M", Address{Transport: File, File: FileAddr{Path: "/f", Offset: 1 << 20}}, "file:/f,offset=1048576"},
	{"file offset m", "file:/f,offset=1m", Address{Transport: File, File: FileAddr{Path: "/f", Offset: 1 << 20}}, "file:/f,offset=1048576"},
	{"file offset G", "file:/f,offset=2G", Address{Transport: File, File: FileAddr{Path: "/f", Offset: 2 << 30}}, "file:/f,offset=2147483648"},
	{"file offset T", "file:/f,offset=1T", Address{Transport: File, File: FileAddr{Path: "/f", Offset: 1 << 40}}, "file:/f,offset=1099511627776"},
	{"file offset P", "file:/f,offset=1p", Address{Transport: File, File: FileAddr{Path: "/f", Offset: 1 << 50}}, "file:/f,offset=1125899906842624"},
	{"file offset E", "file:/f,offset=7E", Address{Transport: File, File: FileAddr{Path: "/f", Offset: 7 << 60}}, "file:/f,offset=8070450532247928832"},
	// qemu_strtosz: fractions need a scale, "1.k" and ".5k" are valid, halves round up
	{"file offset fraction", "file:/f,offset=1.5k", Address{Transport: File, File: FileAddr{Path: "/f", Offset: 1536}}, "file:/f,offset=1536"},
	{"file offset no frac digits", "file:/f,offset=1.k", Address{Transport: File, File: FileAddr{Path: "/f", Offset: 1024}}, "file:/f,offset=1024"},
	{"file offset no int digits", "file:/f,offset=.5M", Address{Transport: File, File: FileAddr{Path: "/f", Offset: 512 << 10}}, "file:/f,offset=524288"},
	{"file offset round half up", "file:/f,offset=0.0009765625k", Address{Transport: File, File: FileAddr{Path: "/f", Offset: 1}}, "file:/f,offset=1"},
	{"file offset round down", "file:/f,offset=0.00048828125k", Address{Transport: File, File: FileAddr{Path: "/f", Offset: 1}}, "file:/f,offset=1"},
	{"file offset round small", "file:/f,offset=0.0001k", Address{Transport: File, File: FileAddr{Path: "/f"}}, "file:/f"},
	{"file offset whole fraction", "file:/f,offset=1.0", Address{Transport: File, File: FileAddr{Path: "/f", Offset: 1}}, "file:/f,offset=1"},
	{"file offset trailing dot", "file:/f,offset=3.", Address{Transport: File, File: FileAddr{Path: "/f", Offset: 3}}, "file:/f,offset=3"},
	{"file offset octal-looking", "file:/f,offset=010", Address{Transport: File, File: FileAddr{Path: "/f", Offset: 10}}, "file:/f,offset=10"},
	// qemu-options.hx: "offset allows the common size suffixes, or a 0x prefix, but not both";
	// so 0x1b is 27 and 0x1E is 30
	{"file offset hex", "file:/f,offset=0x1000", Address{Transport: File, File: FileAddr{Path: "/f", Offset: 4096}}, "file:/f,offset=4096"},
	{"file offset hex b", "file:/f,offset=0x1b", Address{Transport: File, File: FileAddr{Path: "/f", Offset: 27}}, "file:/f,offset=27"},
	{"file offset HEX E", "file:/f,offset=0X1E", Address{Transport: File, File: FileAddr{Path: "/f", Offset: 30}}, "file:/f,offset=30"},
	{"file offset max", "file:/f,offset=9223372036854775807", Address{Transport: File, File: FileAddr{Path: "/f", Offset: 1<<63 - 1}}, ""},
	{"file offset max hex", "file:/f,offset=0x7fffffffffffffff", Address{Transport: File, File: FileAddr{Path: "/f", Offset: 1<<63 - 1}}, "file:/f,offset=9223372036854775807"},
	{"file offset 8E-1", "file:/f,offset=7.99999999999999999913k", Address{Transport: File, File: FileAddr{Path: "/f", Offset: 8192}}, "file:/f,offset=8192"},
	// file_parse_offset: strstr finds the first ",offset="
	{"file path with tls text not trailing", "file:/a,tls-creds=x,b", Address{Transport: File, File: FileAddr{Path: "/a,tls-creds=x,b"}}, ""},
}

func TestParse(t *testing.T) {
	for _, tt := range parseTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("Parse(%q)\n got %+v\nwant %+v", tt.in, got, tt.want)
			}
			canon := tt.canon
			if canon == "" {
				canon = tt.in
			}
			s := got.String()
			if s != canon {
				t.Fatalf("Parse(%q).String() = %q, want %q", tt.in, s, canon)
			}
			again, err := Parse(s)
			if err != nil {
				t.Fatalf("Parse(String()=%q): %v", s, err)
			}
			if again != got {
				t.Fatalf("Parse(%q) = %+v, want %+v", s, again, got)
			}
		})
	}
}

// errorTests are inputs Parse rejects, with the whole message.
var errorTests = []struct {
	name    string
	in      string
	wantErr string
}{
	// migration/channel.c migrate_uri_parse: unknown protocols are errors
	{"empty", "", `uri: parse "": at offset 0: missing transport: expected one of tcp:, unix:, vsock:, exec:, fd:, file:`},
	{"no transport", "localhost:4444", `uri: parse "localhost:4444": at offset 0: unknown transport "localhost": expected one of tcp:, unix:, vsock:, exec:, fd:, file:`},
	{"no colon", "tcp", `uri: parse "tcp": at offset 0: missing transport: expected one of tcp:, unix:, vsock:, exec:, fd:, file:`},
	{"upper case", "TCP:h:1", `uri: parse "TCP:h:1": at offset 0: unknown transport "TCP": expected one of tcp:, unix:, vsock:, exec:, fd:, file:`},
	// qemu-options.hx -incoming rdma: exists in QEMU; livemig does not carry it
	{"rdma", "rdma:h:1", `uri: parse "rdma:h:1": at offset 0: rdma: is not supported by livemig: expected one of tcp:, unix:, vsock:, exec:, fd:, file:`},
	// qemu-options.hx: "-incoming defer" waits for migrate_incoming; it is no URI
	{"defer", "defer", `uri: parse "defer": at offset 0: defer is QEMU's -incoming keyword, not a URI: expected one of tcp:, unix:, vsock:, exec:, fd:, file:`},
	{"NUL", "tcp:h\x00:1", `uri: parse "tcp:h\x00:1": at offset 5: NUL byte: expected none anywhere`},
	{"too long", "exec:" + strings.Repeat("x", MaxLength), `uri: parse "exec:` + strings.Repeat("x", 251) + `"...: at offset 4096: input is 4101 bytes long: expected at most 4096 (uri.MaxLength)`},

	// util/qemu-sockets.c inet_parse: "error parsing address"
	{"tcp missing port", "tcp:x", `uri: parse "tcp:x": at offset 5: missing port: expected HOST:PORT`},
	{"tcp empty", "tcp:", `uri: parse "tcp:": at offset 4: missing port: expected HOST:PORT`},
	{"tcp missing port before option", "tcp:h,ipv4", `uri: parse "tcp:h,ipv4": at offset 5: missing port: expected HOST:PORT`},
	{"tcp empty port", "tcp:h:", `uri: parse "tcp:h:": at offset 6: missing port: expected a port number or service name after ':'`},
	{"tcp empty port option", "tcp:h:,ipv4", `uri: parse "tcp:h:,ipv4": at offset 6: missing port: expected a port number or service name after ':'`},
	{"tcp port range", "tcp:h:65536", `uri: parse "tcp:h:65536": at offset 6: port 65536 out of range: expected 0 to 65535`},
	{"tcp port huge", "tcp:h:99999999999999999999", `uri: parse "tcp:h:99999999999999999999": at offset 6: port 99999999999999999999 out of range: expected 0 to 65535`},
	{"tcp port long", "tcp:h:" + strings.Repeat("a", 33), `uri: parse "tcp:h:` + strings.Repeat("a", 33) + `": at offset 38: port is 33 bytes long: expected at most 32`},
	{"tcp port bad char", "tcp:h:ht_tp", `uri: parse "tcp:h:ht_tp": at offset 8: invalid character '_' in port: expected a port number or service name (letters, digits, '-')`},
	{"tcp port dash", "tcp:h:-http", `uri: parse "tcp:h:-http": at offset 6: invalid port "-http": expected a port number or service name (letters, digits, '-')`},
	{"tcp port negative", "tcp:h:-1", `uri: parse "tcp:h:-1": at offset 6: invalid port "-1": expected a port number or service name (letters, digits, '-')`},
	// util/qemu-sockets.c: IPv6 must be bracketed
	{"tcp ipv6 unbracketed", "tcp:::1:4444", `uri: parse "tcp:::1:4444": at offset 5: unexpected ':' in port: an IPv6 address must be in brackets, as in [::1]:4444`},
	{"tcp ipv6 unbracketed 2", "tcp:2001:db8::1:4444", `uri: parse "tcp:2001:db8::1:4444": at offset 12: unexpected ':' in port: an IPv6 address must be in brackets, as in [::1]:4444`},
	{"tcp unterminated bracket", "tcp:[::1:4444", `uri: parse "tcp:[::1:4444": at offset 4: unterminated '[': expected ']' after the IPv6 address`},
	{"tcp bracket no port", "tcp:[::1]", `uri: parse "tcp:[::1]": at offset 9: missing port: expected ':' and a port after ']'`},
	{"tcp bracket junk", "tcp:[::1]x:1", `uri: parse "tcp:[::1]x:1": at offset 9: missing port: expected ':' and a port after ']'`},
	{"tcp bracket ipv4", "tcp:[10.0.0.1]:1", `uri: parse "tcp:[10.0.0.1]:1": at offset 5: invalid IPv6 address "10.0.0.1": expected an IPv6 address inside brackets`},
	{"tcp bracket name", "tcp:[host]:1", `uri: parse "tcp:[host]:1": at offset 5: invalid IPv6 address "host": expected an IPv6 address inside brackets`},
	// a zone is an interface name: it must not swallow ',' (found by FuzzParse)
	{"tcp zone comma", "tcp:[::%,]:0", `uri: parse "tcp:[::%,]:0": at offset 8: invalid character ',' in zone: expected an interface name or index`},
	{"tcp zone long", "tcp:[fe80::1%" + strings.Repeat("e", 16) + "]:0", `uri: parse "tcp:[fe80::1%` + strings.Repeat("e", 16) + `]:0": at offset 28: zone is 16 bytes long: expected an interface name of at most 15`},
	{"tcp bracket empty", "tcp:[]:1", `uri: parse "tcp:[]:1": at offset 5: invalid IPv6 address "": expected an IPv6 address inside brackets`},
	{"tcp host bad char", "tcp:a/b:1", `uri: parse "tcp:a/b:1": at offset 5: invalid character '/' in host: expected a host name, an IPv4 address, or an IPv6 address in brackets`},
	{"tcp host bracket inside", "tcp:a]:1", `uri: parse "tcp:a]:1": at offset 5: invalid character ']' in host: expected a host name, an IPv4 address, or an IPv6 address in brackets`},
	{"tcp host long", "tcp:" + strings.Repeat("h", 254) + ":1", `uri: parse "tcp:` + strings.Repeat("h", 252) + `"...: at offset 257: host is 254 bytes long: expected at most 253`},
	// qemu-options.hx: to=maxport; livemig: never below port
	{"tcp to below", "tcp::4444,to=4443", `uri: parse "tcp::4444,to=4443": at offset 13: to=4443 is below port 4444: expected a last port >= the first`},
	{"tcp to range", "tcp::4444,to=65536", `uri: parse "tcp::4444,to=65536": at offset 13: to=65536 out of range: expected at most 65535 (QEMU would keep only the low 16 bits)`},
	{"tcp to empty", "tcp::4444,to=", `uri: parse "tcp::4444,to=": at offset 12: to needs a value: expected to=NUMBER`},
	{"tcp to bare", "tcp::4444,to", `uri: parse "tcp::4444,to": at offset 12: to needs a value: expected to=NUMBER`},
	{"tcp to signed", "tcp::4444,to=+4445", `uri: parse "tcp::4444,to=+4445": at offset 13: invalid value "+4445" for to: expected an unsigned number without sign or blanks (QEMU would take them, and turn -1 into the largest value)`},
	{"tcp to service", "tcp::http,to=90", `uri: parse "tcp::http,to=90": at offset 10: to= needs a numeric port, not the service name "http"`},
	{"tcp to zero", "tcp::1,to=0", `uri: parse "tcp::1,to=0": at offset 10: to=0 is below port 1: expected a last port >= the first`},
	// duplicate and unknown options
	{"tcp duplicate", "tcp::1,ipv4=on,ipv4=off", `uri: parse "tcp::1,ipv4=on,ipv4=off": at offset 15: duplicate option ipv4: expected each option at most once (QEMU up to 10.0 takes the first, QEMU 10.1 the last)`},
	{"tcp duplicate no", "tcp::1,ipv4,noipv4", `uri: parse "tcp::1,ipv4,noipv4": at offset 12: duplicate option ipv4: expected each option at most once (QEMU up to 10.0 takes the first, QEMU 10.1 the last)`},
	{"tcp duplicate to", "tcp::1,to=2,to=3", `uri: parse "tcp::1,to=2,to=3": at offset 12: duplicate option to: expected each option at most once (QEMU up to 10.0 takes the first, QEMU 10.1 the last)`},
	{"tcp duplicate count", "tcp::1,keep-alive-count=2,keep-alive-count=2", `uri: parse "tcp::1,keep-alive-count=2,keep-alive-count=2": at offset 26: duplicate option keep-alive-count: expected each option at most once (QEMU up to 10.0 takes the first, QEMU 10.1 the last)`},
	{"tcp duplicate tls", "tcp::1,tls-creds=a,tls-creds=a", `uri: parse "tcp::1,tls-creds=a,tls-creds=a": at offset 19: duplicate option tls-creds: expected each option at most once`},
	{"tcp unknown", "tcp::1,foo=bar", `uri: parse "tcp::1,foo=bar": at offset 7: unknown option "foo": expected one of to, numeric, ipv4, ipv6, keep-alive, keep-alive-count, keep-alive-idle, keep-alive-interval, mptcp, tls-creds, tls-hostname, tls-authz`},
	{"tcp unknown no", "tcp::1,noto", `uri: parse "tcp::1,noto": at offset 7: unknown option "noto": expected one of to, numeric, ipv4, ipv6, keep-alive, keep-alive-count, keep-alive-idle, keep-alive-interval, mptcp, tls-creds, tls-hostname, tls-authz`},
	{"tcp no with value", "tcp::1,noipv4=on", `uri: parse "tcp::1,noipv4=on": at offset 7: unknown option "noipv4": expected ipv4=on|off or a bare ipv4 or noipv4`},
	{"tcp upper key", "tcp::1,IPV4=on", `uri: parse "tcp::1,IPV4=on": at offset 7: unknown option "IPV4": expected one of to, numeric, ipv4, ipv6, keep-alive, keep-alive-count, keep-alive-idle, keep-alive-interval, mptcp, tls-creds, tls-hostname, tls-authz`},
	// qapi_bool_parse: "Parameter '%s' expects 'on' or 'off'"
	{"tcp bad bool", "tcp::1,ipv6=maybe", `uri: parse "tcp::1,ipv6=maybe": at offset 12: invalid value "maybe" for ipv6: expected on or off`},
	{"tcp empty bool", "tcp::1,mptcp=", `uri: parse "tcp::1,mptcp=": at offset 13: invalid value "" for mptcp: expected on or off`},
	{"tcp bool case", "tcp::1,mptcp=ON", `uri: parse "tcp::1,mptcp=ON": at offset 13: invalid value "ON" for mptcp: expected on or off`},
	// ",," and a trailing comma: rows in tcp_test.go
	// util/qemu-sockets.c: cannot disable IPv4 and IPv6 at the same time
	{"tcp both families off", "tcp::1,ipv4=off,ipv6=off", `uri: parse "tcp::1,ipv4=off,ipv6=off": at offset 24: ipv4=off and ipv6=off: expected at least one address family`},
	{"tcp ipv4 host ipv4 off", "tcp:10.0.0.1:1,ipv4=off", `uri: parse "tcp:10.0.0.1:1,ipv4=off": at offset 23: host 10.0.0.1 is an IPv4 address but ipv4=off`},
	{"tcp ipv6 host ipv6 off", "tcp:[::1]:1,noipv6", `uri: parse "tcp:[::1]:1,noipv6": at offset 18: host ::1 is an IPv6 address but ipv6=off`},
	{"tcp numeric name", "tcp:localhost:1,numeric=on", `uri: parse "tcp:localhost:1,numeric=on": at offset 26: host "localhost" is a name but numeric=on: expected an IP address`},
	// keep-alive knobs: uint32, and Linux rejects 0
	{"tcp count zero", "tcp::1,keep-alive-count=0", `uri: parse "tcp::1,keep-alive-count=0": at offset 24: keep-alive-count=0: expected a number from 1 (the kernel rejects 0)`},
	{"tcp idle range", "tcp::1,keep-alive-idle=4294967296", `uri: parse "tcp::1,keep-alive-idle=4294967296": at offset 23: keep-alive-idle=4294967296 out of range: expected at most 4294967295 (QEMU would keep only the low 32 bits)`},
	{"tcp interval neg", "tcp::1,keep-alive-interval=-1", `uri: parse "tcp::1,keep-alive-interval=-1": at offset 27: invalid value "-1" for keep-alive-interval: expected an unsigned number without sign or blanks (QEMU would take them, and turn -1 into the largest value)`},
	// TLS options: IDs follow util/id.c id_wellformed
	{"tcp hostname empty", "tcp::1,tls-creds=a,tls-hostname=", `uri: parse "tcp::1,tls-creds=a,tls-hostname=": at offset 31: tls-hostname needs a value: expected tls-hostname=NAME`},
	{"tcp tls empty", "tcp::1,tls-creds=", `uri: parse "tcp::1,tls-creds=": at offset 16: tls-creds needs a value: expected tls-creds=ID`},
	{"tcp tls bare", "tcp::1,tls-creds", `uri: parse "tcp::1,tls-creds": at offset 16: tls-creds needs a value: expected tls-creds=ID`},
	{"tcp tls digit first", "tcp::1,tls-creds=0tls", `uri: parse "tcp::1,tls-creds=0tls": at offset 17: invalid object ID "0tls" for tls-creds: expected a letter, then letters, digits, '-', '.' or '_'`},
	{"tcp tls bad char", "tcp::1,tls-creds=tl/s", `uri: parse "tcp::1,tls-creds=tl/s": at offset 19: invalid object ID "tl/s" for tls-creds: expected a letter, then letters, digits, '-', '.' or '_'`},
	{"tcp authz bad", "tcp::1,tls-creds=a,tls-authz=a b", `uri: parse "tcp::1,tls-creds=a,tls-authz=a b": at offset 30: invalid object ID "a b" for tls-authz: expected a letter, then letters, digits, '-', '.' or '_'`},
	{"tcp hostname bad", "tcp::1,tls-creds=a,tls-hostname=a/b", `uri: parse "tcp::1,tls-creds=a,tls-hostname=a/b": at offset 33: invalid character '/' in tls-hostname: expected a host name or IP address`},
	{"tcp hostname zone", "tcp::1,tls-creds=a,tls-hostname=fe80::1%eth0", `uri: parse "tcp::1,tls-creds=a,tls-hostname=fe80::1%eth0": at offset 36: invalid character ':' in tls-hostname: expected a host name or IP address`},
	{"tcp hostname long", "tcp::1,tls-creds=a,tls-hostname=" + strings.Repeat("h", 254), `uri: parse "tcp::1,tls-creds=a,tls-hostname=` + strings.Repeat("h", 224) + `"...: at offset 285: tls-hostname is 254 bytes long: expected at most 253`},
	{"tcp hostname without creds", "tcp::1,tls-hostname=h", `uri: parse "tcp::1,tls-hostname=h": at offset 7: tls-hostname without tls-creds: expected tls-creds=ID as well`},
	{"tcp authz without creds", "tcp::1,tls-authz=z", `uri: parse "tcp::1,tls-authz=z": at offset 7: tls-authz without tls-creds: expected tls-creds=ID as well`},

	// unix: the path must be usable as sun_path (unix(7))
	{"unix empty", "unix:", `uri: parse "unix:": at offset 5: empty path: expected unix:PATH or unix:@NAME`},
	{"unix only tls", "unix:,tls-creds=a", `uri: parse "unix:,tls-creds=a": at offset 5: empty path: expected unix:PATH or unix:@NAME`},
	{"unix at", "unix:@", `uri: parse "unix:@": at offset 6: empty abstract socket name: expected a name after '@'`},
	{"unix long", "unix:/" + strings.Repeat("p", 107), `uri: parse "unix:/` + strings.Repeat("p", 107) + `": at offset 112: path is 108 bytes long: expected at most 107 for a unix socket`},
	{"unix long abstract", "unix:@" + strings.Repeat("p", 108), `uri: parse "unix:@` + strings.Repeat("p", 108) + `": at offset 113: abstract socket name is 108 bytes long: expected at most 107 after '@'`},
	// the rule is lexical: a trailing ",tls-creds=" item is an option, even a bad one
	{"unix tls slash", "unix:/a,tls-creds=x/b", `uri: parse "unix:/a,tls-creds=x/b": at offset 19: invalid object ID "x/b" for tls-creds: expected a letter, then letters, digits, '-', '.' or '_'`},
	{"file tls slash", "file:/a,tls-creds=x/b", `uri: parse "file:/a,tls-creds=x/b": at offset 8: option tls-creds on file: a file is no peer: expected no TLS options`},
	{"unix tls bad id", "unix:/s,tls-creds=1", `uri: parse "unix:/s,tls-creds=1": at offset 18: invalid object ID "1" for tls-creds: expected a letter, then letters, digits, '-', '.' or '_'`},
	{"unix tls empty", "unix:/s,tls-creds=", `uri: parse "unix:/s,tls-creds=": at offset 17: tls-creds needs a value: expected tls-creds=ID`},
	{"unix tls dup", "unix:/s,tls-creds=a,tls-creds=b", `uri: parse "unix:/s,tls-creds=a,tls-creds=b": at offset 20: duplicate option tls-creds: expected each option at most once`},
	{"unix hostname alone", "unix:/s,tls-hostname=h", `uri: parse "unix:/s,tls-hostname=h": at offset 8: tls-hostname without tls-creds: expected tls-creds=ID as well`},

	// vsock_parse: "%32[^:]:%32[^,]" and no trailing characters
	{"vsock empty", "vsock:", `uri: parse "vsock:": at offset 6: missing port: expected vsock:CID:PORT`},
	{"vsock no port", "vsock:3", `uri: parse "vsock:3": at offset 7: missing port: expected vsock:CID:PORT`},
	{"vsock empty cid", "vsock::1", `uri: parse "vsock::1": at offset 6: missing CID: expected vsock:CID:PORT`},
	{"vsock empty port", "vsock:3:", `uri: parse "vsock:3:": at offset 8: missing port: expected vsock:CID:PORT`},
	{"vsock bad cid", "vsock:x:1", `uri: parse "vsock:x:1": at offset 6: invalid character 'x' in CID: expected a decimal number`},
	{"vsock extra colon", "vsock:3:1:2", `uri: parse "vsock:3:1:2": at offset 9: invalid character ':' in port: expected a decimal number`},
	{"vsock cid range", "vsock:4294967296:1", `uri: parse "vsock:4294967296:1": at offset 6: CID 4294967296 out of range: expected at most 4294967295`},
	{"vsock port range", "vsock:3:4294967296", `uri: parse "vsock:3:4294967296": at offset 8: port 4294967296 out of range: expected at most 4294967295`},
	{"vsock unknown option", "vsock:3:1,ipv4", `uri: parse "vsock:3:1,ipv4": at offset 10: unknown option "ipv4" for vsock: expected one of tls-creds, tls-hostname, tls-authz`},
	{"vsock trailing comma", "vsock:3:1,", `uri: parse "vsock:3:1,": at offset 10: empty option: expected key=value after ','`},

	// exec: the command must not be empty
	{"exec empty", "exec:", `uri: parse "exec:": at offset 5: empty command: expected exec:COMMAND`},
	{"exec blank", "exec: \t", `uri: parse "exec: \t": at offset 5: empty command: expected exec:COMMAND`},
	{"exec only tls", "exec:,tls-creds=a", `uri: parse "exec:,tls-creds=a": at offset 5: empty command: expected exec:COMMAND`},

	// qemu_parse_fd: decimal, 0..INT_MAX; getfd names must not start with a digit
	{"fd empty", "fd:", `uri: parse "fd:": at offset 3: missing file descriptor: expected fd:NUMBER or fd:NAME`},
	{"fd empty tls", "fd:,tls-creds=a", `uri: parse "fd:,tls-creds=a": at offset 3: missing file descriptor: expected fd:NUMBER or fd:NAME`},
	{"fd digit name", "fd:3x", `uri: parse "fd:3x": at offset 4: invalid character 'x' in file descriptor number: expected decimal digits (a name must not start with a digit)`},
	{"fd range", "fd:2147483648", `uri: parse "fd:2147483648": at offset 3: file descriptor 2147483648 out of range: expected at most 2147483647`},
	{"fd control", "fd:a\tb", `uri: parse "fd:a\tb": at offset 4: control character '\t' in file descriptor name: expected printable characters`},
	{"fd unknown option", "fd:3,offset=1", `uri: parse "fd:3,offset=1": at offset 5: unknown option "offset" for fd: expected one of tls-creds, tls-hostname, tls-authz`},

	// file: a file is no peer
	{"file empty", "file:", `uri: parse "file:": at offset 5: empty path: expected file:PATH[,offset=SIZE]`},
	{"file only offset", "file:,offset=1", `uri: parse "file:,offset=1": at offset 5: empty path: expected file:PATH[,offset=SIZE]`},
	{"file tls", "file:/f,tls-creds=a", `uri: parse "file:/f,tls-creds=a": at offset 8: option tls-creds on file: a file is no peer: expected no TLS options`},
	{"file tls before offset", "file:/f,tls-authz=a,offset=1", `uri: parse "file:/f,tls-authz=a,offset=1": at offset 8: option tls-authz on file: a file is no peer: expected no TLS options`},
	{"file tls after offset", "file:/f,offset=1,tls-creds=a", `uri: parse "file:/f,offset=1,tls-creds=a": at offset 17: option tls-creds on file: a file is no peer: expected no TLS options`},
	// file_parse_offset takes the first ",offset="; the rest must be one size
	{"file duplicate offset", "file:/f,offset=1,offset=2", `uri: parse "file:/f,offset=1,offset=2": at offset 17: duplicate option offset: expected each option at most once`},
	{"file option after offset", "file:/f,offset=1,x=2", `uri: parse "file:/f,offset=1,x=2": at offset 16: unexpected ',' after offset: expected file:PATH[,offset=SIZE] with nothing after SIZE`},
	{"file offset empty", "file:/f,offset=", `uri: parse "file:/f,offset=": at offset 15: empty offset: expected a size such as 4096, 64k, 1.5G or 0x1000`},
	// qemu_strtosz rejections
	{"file offset negative", "file:/f,offset=-1", `uri: parse "file:/f,offset=-1": at offset 15: invalid offset "-1": expected a size such as 4096, 64k, 1.5G or 0x1000`},
	{"file offset plus", "file:/f,offset=+1", `uri: parse "file:/f,offset=+1": at offset 15: invalid offset "+1": expected a size such as 4096, 64k, 1.5G or 0x1000`},
	{"file offset space", "file:/f,offset= 1", `uri: parse "file:/f,offset= 1": at offset 15: invalid offset " 1": expected a size such as 4096, 64k, 1.5G or 0x1000`},
	{"file offset dot", "file:/f,offset=.", `uri: parse "file:/f,offset=.": at offset 15: invalid offset ".": expected a size such as 4096, 64k, 1.5G or 0x1000`},
	{"file offset dot k", "file:/f,offset=.k", `uri: parse "file:/f,offset=.k": at offset 15: invalid offset ".k": expected a size such as 4096, 64k, 1.5G or 0x1000`},
	{"file offset bad suffix", "file:/f,offset=1x", `uri: parse "file:/f,offset=1x": at offset 16: invalid character 'x' in offset: expected digits, '.', or one suffix of b, k, M, G, T, P, E`},
	{"file offset two suffixes", "file:/f,offset=1kb", `uri: parse "file:/f,offset=1kb": at offset 17: unexpected "b" after the offset: expected one suffix at the end`},
	{"file offset exponent", "file:/f,offset=1e3", `uri: parse "file:/f,offset=1e3": at offset 17: unexpected "3" after the offset: expected one suffix at the end`},
	{"file offset fraction bytes", "file:/f,offset=1.5", `uri: parse "file:/f,offset=1.5": at offset 15: fraction in offset "1.5" without a scale suffix: expected k, M, G, T, P or E after it`},
	{"file offset fraction b", "file:/f,offset=1.5b", `uri: parse "file:/f,offset=1.5b": at offset 15: fraction in offset "1.5b" without a scale suffix: expected k, M, G, T, P or E after it`},
	{"file offset two dots", "file:/f,offset=1.2.3k", `uri: parse "file:/f,offset=1.2.3k": at offset 18: invalid character '.' in offset: expected digits, '.', or one suffix of b, k, M, G, T, P, E`},
	{"file offset overflow", "file:/f,offset=9223372036854775808", `uri: parse "file:/f,offset=9223372036854775808": at offset 15: offset 9223372036854775808 overflows: expected at most 9223372036854775807 bytes`},
	{"file offset overflow E", "file:/f,offset=8E", `uri: parse "file:/f,offset=8E": at offset 15: offset 8E overflows: expected at most 9223372036854775807 bytes`},
	{"file offset overflow 16E", "file:/f,offset=16E", `uri: parse "file:/f,offset=16E": at offset 15: offset 16E overflows: expected at most 9223372036854775807 bytes`},
	{"file offset overflow fraction", "file:/f,offset=7.9999999999999999999E", `uri: parse "file:/f,offset=7.9999999999999999999E": at offset 15: offset 7.9999999999999999999E overflows: expected at most 9223372036854775807 bytes`},
	{"file offset hex overflow", "file:/f,offset=0x8000000000000000", `uri: parse "file:/f,offset=0x8000000000000000": at offset 15: offset 0x8000000000000000 overflows: expected at most 0x7fffffffffffffff bytes`},
	{"file offset hex huge", "file:/f,offset=0x10000000000000000", `uri: parse "file:/f,offset=0x10000000000000000": at offset 15: offset 0x10000000000000000 overflows: expected at most 0x7fffffffffffffff bytes`},
	{"file offset hex empty", "file:/f,offset=0x", `uri: parse "file:/f,offset=0x": at offset 17: missing hex digits after 0x: expected a size such as 0x1000`},
	{"file offset hex suffix", "file:/f,offset=0x20M", `uri: parse "file:/f,offset=0x20M": at offset 19: suffix on hex offset: expected hex digits only`},
	{"file offset hex fraction", "file:/f,offset=0x1.8", `uri: parse "file:/f,offset=0x1.8": at offset 18: fraction in hex offset: expected hex digits only`},
	{"file offset hex junk", "file:/f,offset=0x1z", `uri: parse "file:/f,offset=0x1z": at offset 18: invalid character 'z' in hex offset: expected hex digits`},
	{"file offset double 0x", "file:/f,offset=00x1", `uri: parse "file:/f,offset=00x1": at offset 17: invalid character 'x' in offset: expected digits, '.', or one suffix of b, k, M, G, T, P, E`},
	{"file offset inf", "file:/f,offset=inf", `uri: parse "file:/f,offset=inf": at offset 15: invalid offset "inf": expected a size such as 4096, 64k, 1.5G or 0x1000`},
}

func TestParseErrors(t *testing.T) {
	for _, tt := range errorTests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want error %s", tt.in, a, tt.wantErr)
			}
			if !a.IsZero() {
				t.Errorf("Parse(%q) returned %+v with its error, want the zero Address", tt.in, a)
			}
			if got := err.Error(); got != tt.wantErr {
				t.Fatalf("Parse(%q) error\n got %s\nwant %s", tt.in, got, tt.wantErr)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse(%q) error is %T, want *uri.Error", tt.in, err)
			}
			if e.Input != tt.in {
				t.Errorf("Error.Input = %q, want %q", e.Input, tt.in)
			}
			if e.Offset < 0 || e.Offset > len(tt.in) {
				t.Errorf("Error.Offset = %d, outside the input of %d bytes", e.Offset, len(tt.in))
			}
		})
	}
}

func TestErrorUnwrap(t *testing.T) {
	for _, in := range []string{
		"tcp:h:65536",
		"tcp::1,to=70000",
		"tcp::1,keep-alive-idle=4294967296",
		"vsock:4294967296:1",
		"vsock:1:4294967296",
		"fd:2147483648",
		"file:/f,offset=16E",
		"file:/f,offset=0x8000000000000000",
	} {
		_, err := Parse(in)
		if !errors.Is(err, strconv.ErrRange) {
			t.Errorf("Parse(%q) = %v, want an error wrapping strconv.ErrRange", in, err)
		}
	}
	_, err := Parse("tcp:x")
	if errors.Unwrap(err) != nil {
		t.Errorf("Parse(%q) error unwraps to %v, want nil", "tcp:x", errors.Unwrap(err))
	}
}

func TestSwitch(t *testing.T) {
	for _, tt := range []struct {
		s          Switch
		str        string
		def, value bool
	}{
		{Unset, "unset", true, true},
		{Unset, "unset", false, false},
		{On, "on", false, true},
		{Off, "off", true, false},
	} {
		if got := tt.s.String(); got != tt.str {
			t.Errorf("Switch(%d).String() = %q, want %q", tt.s, got, tt.str)
		}
		if got := tt.s.Value(tt.def); got != tt.value {
			t.Errorf("Switch(%d).Value(%v) = %v, want %v", tt.s, tt.def, got, tt.value)
		}
	}
}
