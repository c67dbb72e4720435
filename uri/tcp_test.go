package uri

import (
	"errors"
	"strings"
	"testing"
)

// tcpRuleTests has rows for each rule of the table in the package doc's
// "tcp" section, where QEMU 7.2, 10.0 and 10.1 read a tcp: URI
// differently. The comment over each group names the table row and the
// QEMU source; "by hand" marks what Debian's QEMU 7.2.22 and 10.0.2 were
// seen to do with -incoming and query-migrate. A row wants either an
// Address (and canon, its String, "" when it equals in) or the exact
// error text.
var tcpRuleTests = []struct {
	name    string
	in      string
	want    Address
	canon   string
	wantErr string
}{
	// Unknown option. 7.2/10.0 inet_parse looks for each key with strstr
	// and ignores the rest (by hand: bogus=1 ignored); 10.1 opt_validate
	// (util/qemu-option.c) fails with "Invalid parameter".
	{name: "unknown option", in: "tcp::1,bogus=1",
		wantErr: `uri: parse "tcp::1,bogus=1": at offset 7: unknown option "bogus": expected one of to, numeric, ipv4, ipv6, keep-alive, keep-alive-count, keep-alive-idle, keep-alive-interval, mptcp, tls-creds, tls-hostname, tls-authz`},
	// id=: 10.1 opts_parse takes it as the QemuOpts ID and opts_do_parse
	// drops it; 7.2/10.0 ignore it (by hand). It means nothing to livemig.
	{name: "id", in: "tcp::1,id=mig0",
		wantErr: `uri: parse "tcp::1,id=mig0": at offset 7: unknown option "id": expected one of to, numeric, ipv4, ipv6, keep-alive, keep-alive-count, keep-alive-idle, keep-alive-interval, mptcp, tls-creds, tls-hostname, tls-authz`},

	// Bare switch: on in 7.2/10.0 (inet_parse_flag, empty rest) and 10.1
	// (get_opt_name_value's short form).
	{name: "bare switch", in: "tcp::1,keep-alive", want: tcp("", "1", withInet(func(i *Inet) { i.KeepAlive = On })), canon: "tcp::1,keep-alive=on"},
	// noX: 10.1 get_opt_name_value strips "no" and sets off; 7.2/10.0 find
	// no ",ipv4" in ",noipv4" and ignore it (by hand).
	{name: "no prefix", in: "tcp::1,noipv4", want: tcp("", "1", withInet(func(i *Inet) { i.IPv4 = Off })), canon: "tcp::1,ipv4=off"},
	// yes/no/true/false/y/n: 10.1 qapi_bool_parse (qapi/qapi-util.c);
	// 7.2/10.0 inet_parse_flag takes only on and off (by hand:
	// "error parsing 'ipv4' flag '=yes'").
	{name: "yes", in: "tcp::1,ipv6=yes", want: tcp("", "1", withInet(func(i *Inet) { i.IPv6 = On })), canon: "tcp::1,ipv6=on"},
	{name: "false", in: "tcp::1,ipv6=false", want: tcp("", "1", withInet(func(i *Inet) { i.IPv6 = Off })), canon: "tcp::1,ipv6=off"},
	// numeric: 10.1 inet_opts; 7.2/10.0 ignore it (by hand).
	{name: "numeric", in: "tcp:10.0.0.1:1,numeric", want: tcp("10.0.0.1", "1", withInet(func(i *Inet) { i.Numeric = On })), canon: "tcp:10.0.0.1:1,numeric=on"},
	// keep-alive-*: 10.1 inet_opts; 7.2/10.0 match them as ",keep-alive"
	// and fail (by hand: "error parsing 'keep-alive' flag '-count=010'").
	// This input is the one the 10.1 commit (316e8ee8d6) names as broken.
	{name: "keep-alive-idle before keep-alive", in: "tcp:127.0.0.1:5000,keep-alive-idle=60,keep-alive",
		want: tcp("127.0.0.1", "5000", withInet(func(i *Inet) { i.KeepAlive, i.KeepAliveIdle = On, 60 })), canon: "tcp:127.0.0.1:5000,keep-alive=on,keep-alive-idle=60"},

	// An option twice: 7.2/10.0 strstr finds the first (by hand: to=4451,
	// to=4452 used 4451); 10.1 qemu_opt_find searches from the end.
	{name: "duplicate to", in: "tcp::4450,to=4451,to=4452",
		wantErr: `uri: parse "tcp::4450,to=4451,to=4452": at offset 18: duplicate option to: expected each option at most once (QEMU up to 10.0 takes the first, QEMU 10.1 the last)`},

	// Decimal: the same in every version.
	{name: "to decimal", in: "tcp::4450,to=4452", want: tcp("", "4450", withInet(func(i *Inet) { i.To = 4452 }))},
	// Leading zero: 7.2/10.0 sscanf "%d" reads decimal (by hand: to=04452
	// bound 4452); 10.1 parse_option_number calls qemu_strtou64 with base
	// 0 (util/cutils.c), which reads octal. 10.0 has no keep-alive counts,
	// but earlier livemig read them in decimal: refused alike.
	{name: "to leading zero", in: "tcp::1,to=04450",
		wantErr: `uri: parse "tcp::1,to=04450": at offset 10: to=04450 has a leading zero: QEMU 10.1 reads it as octal (2344), QEMU up to 10.0 as decimal (4450): expected the number without leading zeros, in decimal or as 0x and hex digits`},
	{name: "to leading zero not octal", in: "tcp::1,to=089",
		wantErr: `uri: parse "tcp::1,to=089": at offset 10: to=089 has a leading zero: QEMU 10.1 reads it as octal (an error, as 8 is no octal digit), QEMU up to 10.0 as decimal (89): expected the number without leading zeros, in decimal or as 0x and hex digits`},
	{name: "to zeros", in: "tcp::0,to=00",
		wantErr: `uri: parse "tcp::0,to=00": at offset 10: to=00 has a leading zero: QEMU 10.1 reads it as octal (0), QEMU up to 10.0 as decimal (0): expected the number without leading zeros, in decimal or as 0x and hex digits`},
	{name: "count leading zero", in: "tcp::1,keep-alive-count=010",
		wantErr: `uri: parse "tcp::1,keep-alive-count=010": at offset 24: keep-alive-count=010 has a leading zero: QEMU 10.1 reads it as octal (8), not as decimal (10): expected the number without leading zeros, in decimal or as 0x and hex digits`},
	{name: "idle leading zero huge", in: "tcp::1,keep-alive-idle=07777777777777777777777",
		wantErr: `uri: parse "tcp::1,keep-alive-idle=07777777777777777777777": at offset 23: keep-alive-idle=07777777777777777777777 has a leading zero: QEMU 10.1 reads it as octal (out of range), not as decimal (7777777777777777777777): expected the number without leading zeros, in decimal or as 0x and hex digits`},
	// Plain 0 has no leading zero.
	{name: "to zero", in: "tcp::0,to=0", want: tcp("", "0"), canon: "tcp::0"},

	// Hex: 10.1 qemu_strtou64 base 0 takes 0x; 7.2/10.0 sscanf "%d" stops
	// at the x (by hand: "error parsing to= argument"), so no working
	// spelling changes its meaning. String writes decimal.
	{name: "to hex", in: "tcp::4450,to=0x1162", want: tcp("", "4450", withInet(func(i *Inet) { i.To = 4450 })), canon: "tcp::4450,to=4450"},
	{name: "to hex upper", in: "tcp::4450,to=0XFFFF", want: tcp("", "4450", withInet(func(i *Inet) { i.To = 65535 })), canon: "tcp::4450,to=65535"},
	{name: "interval hex", in: "tcp::1,keep-alive-interval=0x3c", want: tcp("", "1", withInet(func(i *Inet) { i.KeepAliveInterval = 60 })), canon: "tcp::1,keep-alive-interval=60"},
	{name: "to hex empty", in: "tcp::1,to=0x",
		wantErr: `uri: parse "tcp::1,to=0x": at offset 12: missing hex digits after 0x in to=0x: expected to=0x and hex digits`},
	{name: "to hex bad digit", in: "tcp::1,to=0x11g2",
		wantErr: `uri: parse "tcp::1,to=0x11g2": at offset 14: invalid character 'g' in hex value to=0x11g2: expected hex digits after 0x`},
	{name: "to hex range", in: "tcp::1,to=0x10000",
		wantErr: `uri: parse "tcp::1,to=0x10000": at offset 10: to=0x10000 out of range: expected at most 65535 (QEMU would keep only the low 16 bits)`},
	{name: "count hex zero", in: "tcp::1,keep-alive-count=0x0",
		wantErr: `uri: parse "tcp::1,keep-alive-count=0x0": at offset 24: keep-alive-count=0x0: expected a number from 1 (the kernel rejects 0)`},
	// Binary: 7.2/10.0 fail (by hand); 10.1 passes the value to strtoull,
	// which takes C23's 0b only in newer C libraries.
	{name: "to binary", in: "tcp::1,to=0b11",
		wantErr: `uri: parse "tcp::1,to=0b11": at offset 10: binary value to=0b11: QEMU up to 10.0 rejects it, and QEMU 10.1 reads it with strtoull, where 0b is a C23 prefix that only newer C libraries take: expected decimal digits or 0x and hex digits`},
	// Sign and blanks: sscanf "%d" (7.2/10.0, by hand: to=+4452 and
	// to= 4452 worked) and strtoull (10.1) skip blanks and take a sign;
	// -1 becomes 65535 in both.
	{name: "to plus", in: "tcp::1,to=+4452",
		wantErr: `uri: parse "tcp::1,to=+4452": at offset 10: invalid value "+4452" for to: expected an unsigned number without sign or blanks (QEMU would take them, and turn -1 into the largest value)`},
	{name: "to blank", in: "tcp::1,to= 4452",
		wantErr: `uri: parse "tcp::1,to= 4452": at offset 10: invalid value " 4452" for to: expected an unsigned number without sign or blanks (QEMU would take them, and turn -1 into the largest value)`},
	{name: "to minus", in: "tcp::1,to=-1",
		wantErr: `uri: parse "tcp::1,to=-1": at offset 10: invalid value "-1" for to: expected an unsigned number without sign or blanks (QEMU would take them, and turn -1 into the largest value)`},
	{name: "to junk", in: "tcp::1,to=5k",
		wantErr: `uri: parse "tcp::1,to=5k": at offset 10: invalid value "5k" for to: expected decimal digits or 0x and hex digits`},
	// Out of range: every version stores the number in the uint16 to
	// field of InetSocketAddress (qapi/sockets.json) and drops high bits.
	{name: "to range", in: "tcp::1,to=70000",
		wantErr: `uri: parse "tcp::1,to=70000": at offset 10: to=70000 out of range: expected at most 65535 (QEMU would keep only the low 16 bits)`},

	// The port is no QemuOpts number: inet_parse keeps it a string in
	// every version and getaddrinfo reads a numeric service in decimal (by
	// hand: port 04450 collided with a listener on 4450).
	{name: "port leading zero", in: "tcp::04450", want: tcp("", "4450"), canon: "tcp::4450"},
	// ... so 0x1162 is a service name everywhere (and names no service).
	{name: "port hex is a name", in: "tcp::0x1162", want: tcp("", "0x1162")},

	// ",,": 10.1 get_opt_value reads it as one comma inside the value
	// before it; 7.2/10.0 inet_parse ends the port at the first comma and
	// skips the empty item (by hand: ",,ipv6" set ipv6), but
	// inet_parse_flag rejects ",," right after a switch.
	{name: "comma comma option", in: "tcp::1,,ipv4",
		wantErr: `uri: parse "tcp::1,,ipv4": at offset 6: ',,' in a tcp address: QEMU 10.1 reads it as a comma inside the value before it, QEMU up to 10.0 as an empty option, and no tcp host, port or option value holds a comma: expected a single ','`},
	{name: "comma comma value", in: "tcp::1,to=5,,6",
		wantErr: `uri: parse "tcp::1,to=5,,6": at offset 11: ',,' in a tcp address: QEMU 10.1 reads it as a comma inside the value before it, QEMU up to 10.0 as an empty option, and no tcp host, port or option value holds a comma: expected a single ','`},
	{name: "comma comma host", in: "tcp:ho,,st:1",
		wantErr: `uri: parse "tcp:ho,,st:1": at offset 6: ',,' in a tcp address: QEMU 10.1 reads it as a comma inside the value before it, QEMU up to 10.0 as an empty option, and no tcp host, port or option value holds a comma: expected a single ','`},
	{name: "comma comma end", in: "tcp:[::1]:1,ipv6,,",
		wantErr: `uri: parse "tcp:[::1]:1,ipv6,,": at offset 16: ',,' in a tcp address: QEMU 10.1 reads it as a comma inside the value before it, QEMU up to 10.0 as an empty option, and no tcp host, port or option value holds a comma: expected a single ','`},
	// Trailing comma: 7.2/10.0 (by hand) and 10.1 (get_opt_name_value
	// steps over a last ',') ignore it; livemig refuses it.
	{name: "trailing comma", in: "tcp::1,",
		wantErr: `uri: parse "tcp::1,": at offset 6: trailing ',': expected an option after it (QEMU ignores a trailing comma; livemig takes it for a cut option list)`},
	{name: "trailing comma after option", in: "tcp::1,ipv4,",
		wantErr: `uri: parse "tcp::1,ipv4,": at offset 11: trailing ',': expected an option after it (QEMU ignores a trailing comma; livemig takes it for a cut option list)`},

	// addr=: 10.1 inet_opts has implied_opt_name "addr", so a first item
	// without '=' is addr's value and addr=HOST:PORT says the same;
	// 7.2/10.0 take "addr=HOST" for the host name, which does not resolve
	// (by hand: "address resolution failed for addr=127.0.0.1:4450").
	{name: "addr", in: "tcp:addr=127.0.0.1:4444", want: tcp("127.0.0.1", "4444"), canon: "tcp:127.0.0.1:4444"},
	{name: "addr empty host", in: "tcp:addr=:4444,ipv4", want: tcp("", "4444", withInet(func(i *Inet) { i.IPv4 = On })), canon: "tcp::4444,ipv4=on"},
	{name: "addr no port", in: "tcp:addr=h",
		wantErr: `uri: parse "tcp:addr=h": at offset 10: missing port: expected HOST:PORT`},
	{name: "addr twice", in: "tcp:addr=addr=h:1",
		wantErr: `uri: parse "tcp:addr=addr=h:1": at offset 13: invalid character '=' in host: expected a host name, an IPv4 address, or an IPv6 address in brackets`},
	// 10.1 inet_parse looks for '[' at the start of the whole string, not
	// of addr's value, so it splits "[::1]:4444" at its first ':'.
	{name: "addr ipv6", in: "tcp:addr=[::1]:4444",
		wantErr: `uri: parse "tcp:addr=[::1]:4444": at offset 9: '[' after addr=: QEMU 10.1 looks for the brackets of an IPv6 address only at the start of the URI and misreads them here: expected tcp:[IPV6]:PORT without addr=`},
	// A later addr=: 10.1 qemu_opt_get takes the last one; 7.2/10.0
	// ignore it.
	{name: "addr later", in: "tcp:h:1,addr=g:2",
		wantErr: `uri: parse "tcp:h:1,addr=g:2": at offset 8: addr= after the address: QEMU 10.1 would let it replace the address given first, QEMU up to 10.0 ignores it: expected the address once, at the start`},
	{name: "addr bare later", in: "tcp:[::1]:1,addr",
		wantErr: `uri: parse "tcp:[::1]:1,addr": at offset 12: addr= after the address: QEMU 10.1 would let it replace the address given first, QEMU up to 10.0 ignores it: expected the address once, at the start`},
	// An option before the address: 10.1 takes the address from a later
	// addr=; 7.2/10.0 read everything before the last ':' as the host.
	{name: "option before addr", in: "tcp:ipv4=on,addr=h:1",
		wantErr: `uri: parse "tcp:ipv4=on,addr=h:1": at offset 4: option "ipv4" before the address: expected HOST:PORT or addr=HOST:PORT first (QEMU 10.1 would take the address from a later addr=; livemig wants it first)`},

	// Host length: 7.2/10.0 sscanf "%64[^:]" fails past 64 bytes; 10.1
	// has no limit; livemig takes a DNS name's 253.
	{name: "host 65 bytes", in: "tcp:" + strings.Repeat("h", 65) + ":1", want: tcp(strings.Repeat("h", 65), "1")},
}

func TestTCPRules(t *testing.T) {
	for _, tt := range tcpRuleTests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := Parse(tt.in)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Parse(%q) = %+v, want error %s", tt.in, a, tt.wantErr)
				}
				if got := err.Error(); got != tt.wantErr {
					t.Fatalf("Parse(%q) error\n got %s\nwant %s", tt.in, got, tt.wantErr)
				}
				var e *Error
				if !errors.As(err, &e) || e.Input != tt.in {
					t.Fatalf("Parse(%q) error %#v is not an *Error for the input", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if a != tt.want {
				t.Fatalf("Parse(%q)\n got %+v\nwant %+v", tt.in, a, tt.want)
			}
			canon := tt.canon
			if canon == "" {
				canon = tt.in
			}
			if got := a.String(); got != canon {
				t.Fatalf("Parse(%q).String() = %q, want %q", tt.in, got, canon)
			}
			if b, err := Parse(canon); err != nil || b != a {
				t.Fatalf("Parse(%q) = %+v, %v; want %+v", canon, b, err, a)
			}
		})
	}
}
