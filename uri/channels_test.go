package uri

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
)

// ch returns one channel object with the addr members addr and the
// channel members extra (each with a leading comma).
func ch(addr, extra string) string {
	return `{"channel-type":"main","addr":{` + addr + `}` + extra + `}`
}

// list puts a channel object in a list, the form of QMP's channels.
func list(channel string) string { return "[" + channel + "]" }

// argv returns an exec Address running args.
func argv(args ...string) Address {
	return Address{Transport: Exec, Args: makeArgv(args)}
}

// jsonTests are JSON inputs Parse accepts. canon is the expected String()
// ("" when it is the JSON form, which must equal JSON()); json the
// expected JSON() ("" when it equals in).
var jsonTests = []struct {
	name        string
	in          string
	want        Address
	canon, json string
}{
	// qapi/sockets.json InetSocketAddress: host and port are strings
	{"inet", list(ch(`"transport":"socket","type":"inet","host":"example.com","port":"4444"`, "")),
		tcp("example.com", "4444"), "tcp:example.com:4444", ch(`"transport":"socket","type":"inet","host":"example.com","port":"4444"`, "")},
	// system/vl.c (10.0): -incoming takes one MigrationChannel object
	{"inet object", ch(`"transport":"socket","type":"inet","host":"::1","port":"4444"`, ""),
		tcp("::1", "4444"), "tcp:[::1]:4444", ""},
	{"inet empty host", ch(`"transport":"socket","type":"inet","host":"","port":"0"`, ""), tcp("", "0"), "tcp::0", ""},
	{"inet zone", ch(`"transport":"socket","type":"inet","host":"fe80::1%eth0","port":"1"`, ""), tcp("fe80::1%eth0", "1"), "tcp:[fe80::1%eth0]:1", ""},
	{"inet service", ch(`"transport":"socket","type":"inet","host":"h","port":"http"`, ""), tcp("h", "http"), "tcp:h:http", ""},
	{"inet port leading zeros", ch(`"transport":"socket","type":"inet","host":"h","port":"0080"`, ""), tcp("h", "80"), "tcp:h:80",
		ch(`"transport":"socket","type":"inet","host":"h","port":"80"`, "")},
	// every InetSocketAddress member, out of schema order, with white space
	{"inet all", " {\n \"addr\": {\"mptcp\": true, \"keep-alive-interval\": 3, \"keep-alive-idle\": 2, \"keep-alive-count\": 1,\n" +
		"  \"keep-alive\": true, \"ipv6\": true, \"ipv4\": false, \"to\": 4445, \"numeric\": true, \"port\": \"4444\", \"host\": \"::1\",\n" +
		"  \"type\": \"inet\", \"transport\": \"socket\"},\n \"tls-authz\": \"auth0\", \"tls-hostname\": \"server.example\", \"tls-creds\": \"tls0\", \"channel-type\": \"main\"\n} ",
		tcp("::1", "4444", withTLS("tls0", "server.example", "auth0"), withInet(func(i *Inet) {
			i.To, i.Numeric, i.IPv4, i.IPv6, i.KeepAlive, i.MPTCP = 4445, On, Off, On, On, On
			i.KeepAliveCount, i.KeepAliveIdle, i.KeepAliveInterval = 1, 2, 3
		})),
		"tcp:[::1]:4444,to=4445,numeric=on,ipv4=off,ipv6=on,keep-alive=on,keep-alive-count=1,keep-alive-idle=2,keep-alive-interval=3,mptcp=on,tls-creds=tls0,tls-hostname=server.example,tls-authz=auth0",
		ch(`"transport":"socket","type":"inet","host":"::1","port":"4444","numeric":true,"to":4445,"ipv4":false,"ipv6":true,"keep-alive":true,"keep-alive-count":1,"keep-alive-idle":2,"keep-alive-interval":3,"mptcp":true`,
			`,"tls-creds":"tls0","tls-hostname":"server.example","tls-authz":"auth0"`)},
	{"inet false switch", ch(`"transport":"socket","type":"inet","host":"h","port":"1","keep-alive":false`, ""),
		tcp("h", "1", withInet(func(i *Inet) { i.KeepAlive = Off })), "tcp:h:1,keep-alive=off", ""},

	// UnixSocketAddress: abstract and tight (since 5.1), tight defaults to true
	{"unix", ch(`"transport":"socket","type":"unix","path":"/run/m.sock"`, ""),
		Address{Transport: Unix, Unix: UnixAddr{Path: "/run/m.sock"}}, "unix:/run/m.sock", ""},
	{"unix abstract", ch(`"transport":"socket","type":"unix","path":"mig","abstract":true`, ""),
		Address{Transport: Unix, Unix: UnixAddr{Path: "mig", Abstract: true}}, "unix:@mig", ""},
	{"unix abstract false", ch(`"transport":"socket","type":"unix","path":"/s","abstract":false`, ""),
		Address{Transport: Unix, Unix: UnixAddr{Path: "/s"}}, "unix:/s", ch(`"transport":"socket","type":"unix","path":"/s"`, "")},
	{"unix tight off", ch(`"transport":"socket","type":"unix","path":"mig","abstract":true,"tight":false`, ""),
		Address{Transport: Unix, Unix: UnixAddr{Path: "mig", Abstract: true, Tight: Off}}, "", ""},
	{"unix tight on", ch(`"transport":"socket","type":"unix","path":"mig","abstract":true,"tight":true`, ""),
		Address{Transport: Unix, Unix: UnixAddr{Path: "mig", Abstract: true, Tight: On}}, "", ""},
	// QEMU ignores tight on a path socket; livemig keeps what was written
	{"unix path tight", ch(`"transport":"socket","type":"unix","path":"/s","tight":false`, ""),
		Address{Transport: Unix, Unix: UnixAddr{Path: "/s", Tight: Off}}, "", ""},
	// a file name that starts with '@': only JSON can say it
	{"unix at path", ch(`"transport":"socket","type":"unix","path":"@x"`, ""),
		Address{Transport: Unix, Unix: UnixAddr{Path: "@x"}}, "", ""},
	// a path a URI would cut at its trailing TLS option
	{"unix path tls text", ch(`"transport":"socket","type":"unix","path":"/a,tls-creds=b"`, ""),
		Address{Transport: Unix, Unix: UnixAddr{Path: "/a,tls-creds=b"}}, "", ""},
	{"unix max path", ch(`"transport":"socket","type":"unix","path":"/`+strings.Repeat("p", 106)+`"`, ""),
		Address{Transport: Unix, Unix: UnixAddr{Path: "/" + strings.Repeat("p", 106)}}, "unix:/" + strings.Repeat("p", 106), ""},
	{"unix max abstract", ch(`"transport":"socket","type":"unix","path":"`+strings.Repeat("p", 107)+`","abstract":true`, ""),
		Address{Transport: Unix, Unix: UnixAddr{Path: strings.Repeat("p", 107), Abstract: true}}, "unix:@" + strings.Repeat("p", 107), ""},
	{"unix tls", ch(`"transport":"socket","type":"unix","path":"/s"`, `,"tls-creds":"c","tls-hostname":"h"`),
		Address{Transport: Unix, Unix: UnixAddr{Path: "/s"}, TLS: TLS{Creds: "c", Hostname: "h"}}, "unix:/s,tls-creds=c,tls-hostname=h", ""},
	{"unix escapes", ch(`"transport":"socket","type":"unix","path":"/tmp/\u00e9\"\\\/x\ty"`, ""),
		Address{Transport: Unix, Unix: UnixAddr{Path: "/tmp/é\"\\/x\ty"}}, "unix:/tmp/é\"\\/x\ty",
		ch(`"transport":"socket","type":"unix","path":"/tmp/é\"\\/x\ty"`, "")},

	// VsockSocketAddress: cid and port are strings
	{"vsock", ch(`"transport":"socket","type":"vsock","cid":"3","port":"1234"`, ""),
		Address{Transport: Vsock, Vsock: VsockAddr{CID: 3, Port: 1234}}, "vsock:3:1234", ""},
	{"vsock zeros", ch(`"transport":"socket","type":"vsock","cid":"03","port":"4294967295"`, ""),
		Address{Transport: Vsock, Vsock: VsockAddr{CID: 3, Port: 4294967295}}, "vsock:3:4294967295",
		ch(`"transport":"socket","type":"vsock","cid":"3","port":"4294967295"`, "")},

	// FdSocketAddress: str is a number or a getfd name
	{"fd number", ch(`"transport":"socket","type":"fd","str":"3"`, ""), Address{Transport: FD, FD: "3"}, "fd:3", ""},
	{"fd name", ch(`"transport":"socket","type":"fd","str":"mig fd"`, `,"tls-creds":"t"`),
		Address{Transport: FD, FD: "mig fd", TLS: TLS{Creds: "t"}}, "fd:mig fd,tls-creds=t", ""},

	// MigrationExecCommand: args run without a shell (migration/exec.c)
	{"exec argv", ch(`"transport":"exec","args":["/usr/bin/nc","-U","/run/m.sock"]`, ""),
		argv("/usr/bin/nc", "-U", "/run/m.sock"), "", ""},
	{"exec argv shell text", ch(`"transport":"exec","args":["/bin/dd","of=a b $HOME","",";"]`, `,"tls-creds":"t","tls-hostname":"h"`),
		Address{Transport: Exec, Args: makeArgv([]string{"/bin/dd", "of=a b $HOME", "", ";"}), TLS: TLS{Creds: "t", Hostname: "h"}}, "", ""},
	{"exec one", ch(`"transport":"exec","args":["./prog"]`, ""), argv("./prog"), "", ""},
	// migration/migration.c migrate_uri_parse: exec:CMD is ["/bin/sh", "-c", CMD]
	{"exec sh -c", ch(`"transport":"exec","args":["/bin/sh","-c","cat > mig"]`, ""),
		Address{Transport: Exec, Command: "cat > mig"}, "exec:cat > mig", ""},
	{"exec sh -c tls", ch(`"transport":"exec","args":["/bin/sh","-c","cat > mig"]`, `,"tls-creds":"t"`),
		Address{Transport: Exec, Command: "cat > mig", TLS: TLS{Creds: "t"}}, "exec:cat > mig,tls-creds=t", ""},
	// a command the URI would cut (trailing TLS text) or refuse (blank) stays argv
	{"exec sh -c tls text", ch(`"transport":"exec","args":["/bin/sh","-c","echo ,tls-creds=x"]`, ""),
		argv("/bin/sh", "-c", "echo ,tls-creds=x"), "", ""},
	{"exec sh -c blank", ch(`"transport":"exec","args":["/bin/sh","-c"," "]`, ""), argv("/bin/sh", "-c", " "), "", ""},
	{"exec sh -c extra", ch(`"transport":"exec","args":["/bin/sh","-c","cat","x"]`, ""), argv("/bin/sh", "-c", "cat", "x"), "", ""},

	// FileMigrationArgs: filename and offset (uint64, required)
	{"file", ch(`"transport":"file","filename":"/tmp/vm","offset":0`, ""),
		Address{Transport: File, File: FileAddr{Path: "/tmp/vm"}}, "file:/tmp/vm", ""},
	{"file offset", ch(`"transport":"file","filename":"/tmp/vm","offset":4096`, ""),
		Address{Transport: File, File: FileAddr{Path: "/tmp/vm", Offset: 4096}}, "file:/tmp/vm,offset=4096", ""},
	{"file offset max", ch(`"transport":"file","filename":"/f","offset":9223372036854775807`, ""),
		Address{Transport: File, File: FileAddr{Path: "/f", Offset: 1<<63 - 1}}, "file:/f,offset=9223372036854775807", ""},
	// migration/file.c file_parse_offset would cut this path at ",offset="
	{"file path offset text", ch(`"transport":"file","filename":"/a,offset=1","offset":2`, ""),
		Address{Transport: File, File: FileAddr{Path: "/a,offset=1", Offset: 2}}, "", ""},
	{"file path tls text", ch(`"transport":"file","filename":"/a,tls-creds=x","offset":0`, ""),
		Address{Transport: File, File: FileAddr{Path: "/a,tls-creds=x"}}, "", ""},
}

func TestParseJSON(t *testing.T) {
	for _, tt := range jsonTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("Parse(%q)\n got %#v\nwant %#v", tt.in, got, tt.want)
			}
			wantJSON := tt.json
			if wantJSON == "" {
				wantJSON = tt.in
			}
			if j := got.JSON(); j != wantJSON {
				t.Fatalf("JSON() = %s\n           want %s", j, wantJSON)
			}
			if !json.Valid([]byte(got.JSON())) {
				t.Fatalf("JSON() is not valid JSON: %s", got.JSON())
			}
			canon := tt.canon
			if canon == "" {
				canon = wantJSON
			}
			if s := got.String(); s != canon {
				t.Fatalf("String() = %q, want %q", s, canon)
			}
			for _, s := range []string{got.String(), got.JSON(), list(got.JSON())} {
				again, err := Parse(s)
				if err != nil || again != got {
					t.Fatalf("Parse(%q) = %#v, %v; want %#v", s, again, err, got)
				}
			}
			if o := otherFields(got); !o.IsZero() {
				t.Errorf("sets fields of other transports: %#v", o)
			}
		})
	}
}

// TestURIJSONAgree: every Address a URI gives has a JSON form that QEMU's
// schema accepts and that parses back to it.
func TestURIJSONAgree(t *testing.T) {
	for _, tt := range parseTests {
		a := tt.want
		j := a.JSON()
		var v struct {
			ChannelType string          `json:"channel-type"`
			Addr        json.RawMessage `json:"addr"`
		}
		if err := json.Unmarshal([]byte(j), &v); err != nil || v.ChannelType != "main" {
			t.Errorf("%s: JSON() = %s: %v", tt.name, j, err)
			continue
		}
		b, err := Parse(j)
		if err != nil || b != a {
			t.Errorf("%s: Parse(%s) = %#v, %v; want %#v", tt.name, j, b, err, a)
		}
	}
}

// jsonErrorTests are JSON inputs Parse rejects: the offset, the path and
// the reason.
var jsonErrorTests = []struct {
	name   string
	in     string
	off    int
	path   string
	reason string
}{
	// JSON syntax (RFC 8259; QEMU's qobject_from_json refuses the same)
	{"empty list", `[]`, 0, "channels", "empty list: expected one channel, of type main"},
	{"unterminated", `{"channel-type":"main"`, 22, "", "unexpected end of input: expected ',' or '}'"},
	{"trailing garbage", ch(`"transport":"socket","type":"fd","str":"3"`, "") + ` x`, 76, "", "unexpected 'x' after the JSON value: expected the end of the input"},
	{"second value", ch(`"transport":"socket","type":"fd","str":"3"`, "") + `{}`, 75, "", "unexpected '{' after the JSON value: expected the end of the input"},
	// system/vl.c: QEMU says "JSON parse error, duplicate key"
	{"duplicate key", `{"channel-type":"main","channel-type":"main"}`, 23, "", `duplicate key "channel-type": expected each key at most once`},
	{"single quotes", `{'channel-type':'main'}`, 1, "", `single-quoted key: QEMU accepts them, livemig takes standard JSON: expected '"'`},
	{"single-quoted value", `{"channel-type":'main'}`, 16, "", `single-quoted string: QEMU accepts them, livemig takes standard JSON: expected '"'`},
	{"trailing comma", `{"channel-type":"main",}`, 23, "", `unexpected '}': expected a key in double quotes`},
	{"raw control", "{\"channel-type\":\"ma\tin\"}", 19, "", `control character '\t' in a string: expected it escaped, as \u0009`},
	{"bad escape", `{"channel-type":"\x"}`, 17, "", `invalid escape 'x' after '\': expected one of \" \\ \/ \b \f \n \r \t \uXXXX`},
	{"bad unicode escape", `{"channel-type":"\u12"}`, 17, "", `invalid \u escape: expected four hex digits`},
	{"lone surrogate", `{"channel-type":"\ud800x"}`, 17, "", `unpaired surrogate \ud800: expected a valid UTF-16 pair`},
	{"invalid utf-8", "{\"channel-type\":\"m\xffain\"}", 18, "", `invalid UTF-8 in a string: expected UTF-8 text`},
	{"leading zero", ch(`"transport":"file","filename":"/f","offset":01`, ""), 75, "", "number with a leading zero: expected a JSON number"},
	{"deep", strings.Repeat("[", 9) + strings.Repeat("]", 9), 8, "", "JSON nested deeper than 8 levels: expected QEMU's channels, which need 4"},
	{"many keys", `{` + manyKeys(40) + `"b":2}`, 1 + 32*8, "", "object with more than 32 keys: expected QEMU's channels, which need at most 14"},
	{"too long", `[` + strings.Repeat(" ", MaxJSONLength), MaxJSONLength, "", "input is 32769 bytes long: expected at most 32768 for JSON (uri.MaxJSONLength)"},

	// qapi/migration.json MigrationChannel
	{"root type", `[1]`, 1, "channels[0]", "expected an object, not a number"},
	{"two channels", list(ch(`"transport":"socket","type":"fd","str":"3"`, "") + `,{}`), 77, "channels[1]", "a second channel: livemig takes exactly one channel, of type main"},
	// migration/migration.c (10.0): a cpr channel serves cpr-transfer mode only
	{"cpr", `{"channel-type":"cpr","addr":{"transport":"file","filename":"/f","offset":0}}`, 16, "channel.channel-type", "cpr is not supported by livemig: expected main"},
	{"unknown channel type", `[{"channel-type":"multifd","addr":{}}]`, 17, "channels[0].channel-type", `unknown channel type "multifd": expected main`},
	{"channel type number", `{"channel-type":1}`, 16, "channel.channel-type", "expected a string, not a number"},
	// system/vl.c (10.0): "Parameter 'channel-type' is missing"
	{"no channel type", `{"addr":{"transport":"exec","args":["/bin/true"]}}`, 0, "channel.channel-type", "missing: expected a string"},
	{"no addr", `{"channel-type":"main"}`, 0, "channel.addr", "missing: expected an object"},
	{"addr string", `{"channel-type":"main","addr":"tcp:h:1"}`, 30, "channel.addr", "expected an object, not a string"},
	// a bare MigrationAddress is no channel
	{"bare addr", `{"transport":"socket","type":"fd","str":"3"}`, 1, "channel", `unknown key "transport": expected one of channel-type, addr, tls-creds, tls-hostname, tls-authz`},
	{"unknown channel key", ch(`"transport":"socket","type":"fd","str":"3"`, `,"x-foo":1`), 75, "channel", `unknown key "x-foo": expected one of channel-type, addr, tls-creds, tls-hostname, tls-authz`},

	// MigrationAddress: transport socket, exec, rdma or file
	{"no transport", ch(``, ""), 30, "channel.addr.transport", "missing: expected socket, exec or file"},
	{"rdma", list(ch(`"transport":"rdma","host":"h","port":"1"`, "")), 44, "channels[0].addr.transport", "rdma is not supported by livemig: expected socket, exec or file"},
	{"unknown transport", ch(`"transport":"tcp"`, ""), 43, "channel.addr.transport", `unknown transport "tcp": expected socket, exec or file`},
	{"transport type", ch(`"transport":null`, ""), 43, "channel.addr.transport", "expected a string, not null"},
	{"no socket type", ch(`"transport":"socket"`, ""), 30, "channel.addr.type", "missing: expected inet, unix, vsock or fd"},
	{"unknown socket type", ch(`"transport":"socket","type":"tcp"`, ""), 59, "channel.addr.type", `unknown socket type "tcp": expected inet, unix, vsock or fd`},

	// inet: types from qapi/sockets.json, values by the URI rules
	{"inet no port", ch(`"transport":"socket","type":"inet","host":"h"`, ""), 30, "channel.addr.port", "missing: expected a string"},
	{"inet port number", ch(`"transport":"socket","type":"inet","host":"h","port":4444`, ""), 84, "channel.addr.port", "expected a string, not a number"},
	{"inet unknown key", ch(`"transport":"socket","type":"inet","host":"h","port":"1","path":"/s"`, ""), 88, "channel.addr",
		`unknown key "path": expected one of transport, type, host, port, numeric, to, ipv4, ipv6, keep-alive, keep-alive-count, keep-alive-idle, keep-alive-interval, mptcp`},
	{"inet bool type", ch(`"transport":"socket","type":"inet","host":"h","port":"1","ipv4":"on"`, ""), 95, "channel.addr.ipv4", `expected true or false, not a string`},
	{"inet to float", ch(`"transport":"socket","type":"inet","host":"h","port":"1","to":2.0`, ""), 93, "channel.addr.to", "2.0 is not an integer: expected an integer from 0 to 65535"},
	{"inet to range", ch(`"transport":"socket","type":"inet","host":"h","port":"1","to":65536`, ""), 93, "channel.addr.to", "65536 out of range: expected an integer from 0 to 65535"},
	{"inet to negative", ch(`"transport":"socket","type":"inet","host":"h","port":"1","to":-1`, ""), 93, "channel.addr.to", "-1 out of range: expected an integer from 0 to 65535"},
	{"inet to below", ch(`"transport":"socket","type":"inet","host":"h","port":"2","to":1`, ""), 93, "channel.addr.to", "to=1 is below port 2: expected a last port >= the first"},
	{"inet count range", ch(`"transport":"socket","type":"inet","host":"h","port":"1","keep-alive-count":4294967296`, ""), 107, "channel.addr.keep-alive-count", "4294967296 out of range: expected an integer from 0 to 4294967295"},
	{"inet count zero", ch(`"transport":"socket","type":"inet","host":"h","port":"1","keep-alive-count":0`, ""), 107, "channel.addr.keep-alive-count", "keep-alive-count=0: expected a number from 1 (the kernel rejects 0)"},
	{"inet host char", ch(`"transport":"socket","type":"inet","host":"a/b","port":"1"`, ""), 73, "channel.addr.host", "invalid character '/' in host: expected a host name, an IPv4 address, or an IPv6 address in brackets"},
	{"inet host comma", ch(`"transport":"socket","type":"inet","host":"h,ipv4=off","port":"1"`, ""), 73, "channel.addr.host", "invalid character ',' in host: expected a host name, an IPv4 address or an IPv6 address"},
	{"inet host bracket", ch(`"transport":"socket","type":"inet","host":"[::1]","port":"1"`, ""), 73, "channel.addr.host", "invalid character '[' in host: expected a host name, an IPv4 address or an IPv6 address"},
	// The URI the host is checked through would read "addr=H" as H.
	{"inet host addr=", ch(`"transport":"socket","type":"inet","host":"addr=127.0.0.1","port":"1"`, ""), 73, "channel.addr.host", "invalid character '=' in host: expected a host name, an IPv4 address or an IPv6 address"},
	{"inet bad ipv6", ch(`"transport":"socket","type":"inet","host":"::g","port":"1"`, ""), 73, "channel.addr.host", `invalid IPv6 address "::g": expected an IPv6 address inside brackets`},
	{"inet port comma", ch(`"transport":"socket","type":"inet","host":"h","port":"1,to=2"`, ""), 84, "channel.addr.port", "invalid character ',' in port: expected a port number or service name"},
	{"inet port range", ch(`"transport":"socket","type":"inet","host":"h","port":"65536"`, ""), 84, "channel.addr.port", "port 65536 out of range: expected 0 to 65535"},
	{"inet empty port", ch(`"transport":"socket","type":"inet","host":"h","port":""`, ""), 84, "channel.addr.port", "missing port: expected a port number or service name after ':'"},
	{"inet families", ch(`"transport":"socket","type":"inet","host":"h","port":"1","ipv4":false,"ipv6":false`, ""), 30, "channel.addr", "ipv4=off and ipv6=off: expected at least one address family"},

	// unix
	{"unix no path", ch(`"transport":"socket","type":"unix"`, ""), 30, "channel.addr.path", "missing: expected a string"},
	{"unix empty", ch(`"transport":"socket","type":"unix","path":""`, ""), 73, "channel.addr.path", "empty path: expected a socket path"},
	{"unix empty abstract", ch(`"transport":"socket","type":"unix","path":"","abstract":true`, ""), 73, "channel.addr.path", "empty abstract socket name: expected a name"},
	{"unix long", ch(`"transport":"socket","type":"unix","path":"/`+strings.Repeat("p", 107)+`"`, ""), 73, "channel.addr.path", "path is 108 bytes long: expected at most 107 for a unix socket"},
	{"unix long abstract", ch(`"transport":"socket","type":"unix","path":"`+strings.Repeat("p", 108)+`","abstract":true`, ""), 73, "channel.addr.path", "abstract socket name is 108 bytes long: expected at most 107"},
	{"unix NUL", ch(`"transport":"socket","type":"unix","path":"a\u0000b"`, ""), 73, "channel.addr.path", "NUL character: expected none"},
	{"unix tight type", ch(`"transport":"socket","type":"unix","path":"a","tight":0`, ""), 85, "channel.addr.tight", "expected true or false, not a number"},
	{"unix host key", ch(`"transport":"socket","type":"unix","path":"a","host":"h"`, ""), 77, "channel.addr", `unknown key "host": expected one of transport, type, path, abstract, tight`},

	// vsock: strings, decimal uint32
	{"vsock cid number", ch(`"transport":"socket","type":"vsock","cid":3,"port":"1"`, ""), 73, "channel.addr.cid", "expected a string, not a number"},
	{"vsock bad cid", ch(`"transport":"socket","type":"vsock","cid":"x","port":"1"`, ""), 73, "channel.addr.cid", "invalid character 'x' in CID: expected a decimal number"},
	{"vsock port range", ch(`"transport":"socket","type":"vsock","cid":"3","port":"4294967296"`, ""), 84, "channel.addr.port", "port 4294967296 out of range: expected at most 4294967295"},
	{"vsock colon", ch(`"transport":"socket","type":"vsock","cid":"3:4","port":"1"`, ""), 73, "channel.addr.cid", "invalid character ':' in cid: expected a decimal number"},

	// fd
	{"fd digit name", ch(`"transport":"socket","type":"fd","str":"3x"`, ""), 70, "channel.addr.str", "invalid character 'x' in file descriptor number: expected decimal digits (a name must not start with a digit)"},
	{"fd comma", ch(`"transport":"socket","type":"fd","str":"a,b"`, ""), 70, "channel.addr.str", "',' in a file descriptor name: expected a number or a name without commas"},
	{"fd empty", ch(`"transport":"socket","type":"fd","str":""`, ""), 70, "channel.addr.str", "missing file descriptor: expected fd:NUMBER or fd:NAME"},

	// exec: migration/exec.c spawns args[0] (g_spawn asserts a non-empty argv)
	{"exec no args", ch(`"transport":"exec"`, ""), 30, "channel.addr.args", "missing: expected a list of strings, the program and its arguments"},
	{"exec empty args", ch(`"transport":"exec","args":[]`, ""), 57, "channel.addr.args", "empty list: expected the program and its arguments"},
	{"exec args string", ch(`"transport":"exec","args":"cat"`, ""), 57, "channel.addr.args", "expected a list of strings, not a string"},
	{"exec arg number", ch(`"transport":"exec","args":["/bin/echo",1]`, ""), 70, "channel.addr.args[1]", "expected a string, not a number"},
	{"exec empty program", ch(`"transport":"exec","args":["","x"]`, ""), 58, "channel.addr.args[0]", "empty program: expected the path of the program to run"},
	{"exec NUL", ch(`"transport":"exec","args":["/bin/echo","a\u0000"]`, ""), 70, "channel.addr.args[1]", "NUL character: expected none (no argument of a program can hold one)"},
	{"exec type key", ch(`"transport":"exec","type":"x","args":["/bin/true"]`, ""), 50, "channel.addr", `unknown key "type": expected transport or args`},

	// file: qapi/migration.json FileMigrationArgs, offset required
	{"file no offset", ch(`"transport":"file","filename":"/f"`, ""), 30, "channel.addr.offset", "missing: expected an integer from 0 to 9223372036854775807"},
	{"file offset string", ch(`"transport":"file","filename":"/f","offset":"4k"`, ""), 75, "channel.addr.offset", "expected an integer from 0 to 9223372036854775807, not a string"},
	{"file offset range", ch(`"transport":"file","filename":"/f","offset":9223372036854775808`, ""), 75, "channel.addr.offset", "9223372036854775808 out of range: expected an integer from 0 to 9223372036854775807"},
	{"file offset exponent", ch(`"transport":"file","filename":"/f","offset":1e3`, ""), 75, "channel.addr.offset", "1e3 is not an integer: expected an integer from 0 to 9223372036854775807"},
	{"file empty", ch(`"transport":"file","filename":"","offset":0`, ""), 61, "channel.addr.filename", "empty path: expected a file name"},
	{"file tls", ch(`"transport":"file","filename":"/f","offset":0`, `,"tls-creds":"t"`), 90, "channel.tls-creds", "tls-creds with transport file: a file is no peer: expected no TLS keys"},

	// TLS extension keys, checked as the URI options are
	{"tls bad id", ch(`"transport":"socket","type":"fd","str":"3"`, `,"tls-creds":"0t"`), 87, "channel.tls-creds", `invalid object ID "0t" for tls-creds: expected a letter, then letters, digits, '-', '.' or '_'`},
	{"tls comma", ch(`"transport":"socket","type":"fd","str":"3"`, `,"tls-creds":"a,tls-authz=b"`), 87, "channel.tls-creds", "invalid character ',' in tls-creds"},
	{"tls empty", ch(`"transport":"socket","type":"fd","str":"3"`, `,"tls-creds":""`), 87, "channel.tls-creds", "tls-creds needs a value: expected tls-creds=ID"},
	{"tls hostname alone", ch(`"transport":"socket","type":"fd","str":"3"`, `,"tls-hostname":"h"`), 90, "channel.tls-hostname", "tls-hostname without tls-creds: expected tls-creds=ID as well"},
	{"tls hostname bad", ch(`"transport":"socket","type":"fd","str":"3"`, `,"tls-creds":"t","tls-hostname":"a b"`), 106, "channel.tls-hostname", "invalid character ' ' in tls-hostname: expected a host name or IP address"},
	{"tls too long", ch(`"transport":"socket","type":"fd","str":"3"`, `,"tls-creds":"`+strings.Repeat("c", 4090)+`"`), 0, "channel", "the address is 4105 bytes long as a URI: expected at most 4096 (uri.MaxLength)"},
	{"tls type", ch(`"transport":"socket","type":"fd","str":"3"`, `,"tls-creds":true`), 87, "channel.tls-creds", "expected a string, not a boolean"},
}

func TestParseJSONErrors(t *testing.T) {
	for _, tt := range jsonErrorTests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %v, want an error", tt.in, a)
			}
			if !a.IsZero() {
				t.Errorf("Parse returned %#v with its error", a)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not *Error: %v", err, err)
			}
			if e.Input != tt.in || e.Offset != tt.off || e.Path != tt.path || e.Reason != tt.reason {
				t.Errorf("Parse(%q):\n got offset %d, path %q, reason %q\nwant offset %d, path %q, reason %q",
					tt.in, e.Offset, e.Path, e.Reason, tt.off, tt.path, tt.reason)
			}
			if tt.name == "inet count range" || tt.name == "file offset range" || tt.name == "inet port range" {
				if !errors.Is(err, strconv.ErrRange) {
					t.Errorf("error does not wrap strconv.ErrRange: %v", err)
				}
			}
			if !strings.Contains(err.Error(), ": at offset "+strconv.Itoa(e.Offset)+": ") {
				t.Errorf("message %q lacks the offset", err)
			}
			if e.Path != "" && !strings.Contains(err.Error(), ": "+e.Path+": "+e.Reason) {
				t.Errorf("message %q lacks the path", err)
			}
		})
	}
}

// TestParseURIUTF8: a URI must be UTF-8, so that JSON can say it.
func TestParseURIUTF8(t *testing.T) {
	_, err := Parse("unix:/tmp/\xff")
	var e *Error
	if !errors.As(err, &e) || e.Offset != 10 || e.Reason != "invalid UTF-8: expected UTF-8 text (so that JSON can say every address)" {
		t.Fatalf("Parse of a URI with byte 0xff: %v", err)
	}
}

// manyKeys returns n distinct members "k00":1, and so on, 8 bytes each.
func manyKeys(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(`"k` + strconv.Itoa(i/10) + strconv.Itoa(i%10) + `":1,`)
	}
	return b.String()
}
