// Package uri parses and prints migration URIs: the strings that name where
// a migration stream goes, such as "tcp:[::1]:4444,tls-creds=tls0" or
// "exec:gzip -c > /tmp/vm.gz".
//
// [Parse] turns a string into an [Address], a comparable value with its own
// fields for each transport, and [Address.String] turns it back into a
// canonical string: for every Address a that Parse returns,
// Parse(a.String()) == a. Malformed input gives an [*Error] that quotes the
// input, names the byte offset of the problem and says what was expected
// there.
//
// The grammar is QEMU's (the -incoming option and the migrate command's
// uri), extended with TLS options. Parse also reads QEMU's JSON form of
// an address, the channels of the migrate and migrate-incoming commands
// (see JSON channels below), so that a control plane can hand livemig
// exactly what it hands QEMU; [Address.JSON] writes it. This package knows nothing of sockets,
// processes or credentials: it checks only what the string itself says.
// Package migration joins an Address to a channel.
//
// # Grammar
//
// A URI is TRANSPORT ":" REST. Transport prefixes are lower case. Options
// follow the address as ",key=value" items.
//
//	| URI                                | Address fields              | Options                                   |
//	|------------------------------------|-----------------------------|-------------------------------------------|
//	| tcp:HOST:PORT[,opt]...             | Inet.Host, Inet.Port        | to, numeric, ipv4, ipv6, keep-alive,      |
//	| tcp:[IPV6]:PORT[,opt]...           |                             | keep-alive-count, keep-alive-idle,        |
//	| tcp::PORT[,opt]...                 |                             | keep-alive-interval, mptcp, tls-*         |
//	| unix:PATH[,tls-*]...               | Unix.Path                   | trailing tls-* only                       |
//	| unix:@NAME[,tls-*]...              | Unix.Path, Unix.Abstract    | trailing tls-* only                       |
//	| vsock:CID:PORT[,tls-*]...          | Vsock.CID, Vsock.Port       | tls-*                                     |
//	| exec:COMMAND[,tls-*]...            | Command                     | trailing tls-* only                       |
//	| fd:NUMBER[,tls-*]...               | FD                          | tls-*                                     |
//	| fd:NAME[,tls-*]...                 | FD                          | tls-*                                     |
//	| file:PATH[,offset=SIZE]            | File.Path, File.Offset      | offset; no tls-* (a file is no peer)      |
//
// The options:
//
//	| Option                  | Transports              | Value                        | Field                  |
//	|-------------------------|-------------------------|------------------------------|------------------------|
//	| to=PORT                 | tcp                     | 0..65535, >= PORT (numeric)  | Inet.To                |
//	| numeric=on|off          | tcp                     | switch                       | Inet.Numeric           |
//	| ipv4=on|off             | tcp                     | switch                       | Inet.IPv4              |
//	| ipv6=on|off             | tcp                     | switch                       | Inet.IPv6              |
//	| keep-alive=on|off       | tcp                     | switch                       | Inet.KeepAlive         |
//	| keep-alive-count=N      | tcp                     | 1..4294967295                | Inet.KeepAliveCount    |
//	| keep-alive-idle=SECS    | tcp                     | 1..4294967295                | Inet.KeepAliveIdle     |
//	| keep-alive-interval=SECS| tcp                     | 1..4294967295                | Inet.KeepAliveInterval |
//	| mptcp=on|off            | tcp                     | switch                       | Inet.MPTCP             |
//	| tls-creds=ID            | tcp unix vsock exec fd  | object ID                    | TLS.Creds              |
//	| tls-hostname=NAME       | tcp unix vsock exec fd  | host name or IP address      | TLS.Hostname           |
//	| tls-authz=ID            | tcp unix vsock exec fd  | object ID                    | TLS.Authz              |
//	| offset=SIZE             | file                    | bytes, with suffixes         | File.Offset            |
//
// String writes options in the order of this table, switches as on or off,
// numbers in decimal, and leaves out absent options.
//
// # tcp
//
// HOST is a host name or IPv4 address (letters, digits, '-', '.', '_', at
// most 253 bytes), an IPv6 address in brackets, or empty, which means every
// address on the listen side. An IPv6 address may carry a zone, an interface
// name or index of at most 15 bytes (IFNAMSIZ) made of letters, digits, '-',
// '.' and '_', as in [fe80::1%eth0].
// An IPv6 address without brackets is an error. PORT is a decimal number
// from 0 to 65535 (0 asks a listener for any free port; leading zeros are
// dropped) or a service name of letters, digits and inner '-' with at least
// one letter, at most 32 bytes (NI_MAXSERV, and QEMU's limit up to 10.0).
// The address ends at the first comma. It may also be written
// addr=HOST:PORT, the spelling of QEMU 10.1; String leaves addr= out.
//
// Options are the keys of QEMU's InetSocketAddress (qapi/sockets.json).
// QEMU changed how it reads them in 10.1. Up to 10.0, inet_parse
// (util/qemu-sockets.c) reads the address with sscanf and looks for each
// known ",key" with strstr, ignoring everything else; 7.2 and 10.0 behave
// alike. 10.1 (commit 316e8ee8d6) gives the whole string to QemuOpts
// (util/qemu-option.c) with addr as the implied key of the first item.
// Where the versions disagree, livemig takes the newer reading, unless that
// would silently give another meaning to a spelling an older QEMU took:
// such a spelling is an error that says what each version makes of it.
// Older QEMUs ignore what they do not know, so a spelling that only they
// ignore (noipv4, numeric) is read as 10.1 reads it; livemig never ignores
// an option. The rules, with the QEMU source of each (keys below):
//
//	| Spelling                      | QEMU 7.2         | QEMU 10.0        | QEMU 10.1          | livemig          | Source   |
//	|-------------------------------|------------------|------------------|--------------------|------------------|----------|
//	| unknown key: bogus=1          | ignored          | ignored          | error              | error            | A H O3   |
//	| id=ID                         | ignored          | ignored          | QemuOpts ID,       | error (unknown)  | H O5     |
//	|                               |                  |                  |   dropped          |                  |          |
//	| bare switch: ipv4             | on               | on               | on                 | on               | A O1     |
//	| no + switch: noipv4           | ignored          | ignored          | off                | off              | H O1     |
//	| ipv4=yes|no|true|false|y|n    | error            | error            | on or off          | on or off        | H B      |
//	| numeric                       | ignored          | ignored          | taken              | taken            | H P      |
//	| keep-alive-count=N, -idle=,   | error: read as   | error: read as   | taken              | taken            | H A P    |
//	|   -interval=                  |   keep-alive     |   keep-alive     |                    |                  |          |
//	| a key twice: to=5,to=6        | the first: 5     | the first: 5     | the last: 6        | error            | H A O4   |
//	| to=4450                       | 4450             | 4450             | 4450               | 4450             | A O6     |
//	| to=04450 (leading zero)       | 4450             | 4450             | 2344 (octal)       | error            | H A O6 C |
//	| to=0x1162                     | error            | error            | 4450               | 4450             | H O6 C   |
//	| to=0b11                       | error            | error            | the C library's    | error            | H C      |
//	|                               |                  |                  |   strtoull decides |                  |          |
//	| to=+5, to= 5, to=-1           | 5, 5, 65535      | 5, 5, 65535      | 5, 5, 65535        | error            | H A C    |
//	| to=70000                      | 4464 (low bits)  | 4464 (low bits)  | 4464 (low bits)    | error            | H A O6   |
//	| port 04450                    | 4450             | 4450             | 4450               | 4450             | H G      |
//	| port 0x1162                   | a service name   | a service name   | a service name     | a service name   | G        |
//	| ",,": tcp::1,,ipv6            | empty item,      | empty item,      | a comma inside the | error            | H A O2   |
//	|                               |   skipped        |   skipped        |   value before it  |                  |          |
//	| trailing comma: tcp::1,       | ignored          | ignored          | ignored            | error            | H O1     |
//	| addr=HOST:PORT, first         | host "addr=HOST" | host "addr=HOST" | HOST:PORT          | HOST:PORT        | H P O1   |
//	| addr=[IPV6]:PORT              | host "addr=["    | host "addr=["    | misread: host "["  | error            | P        |
//	| HOST:PORT,addr=H2:P2          | ignored          | ignored          | H2:P2 (the last)   | error            | A O4     |
//	| ipv4=on,addr=HOST:PORT        | bad host         | bad host         | HOST:PORT, ipv4=on | error            | H P O1   |
//	| host of 65 to 253 bytes       | error            | error            | taken              | taken            | A P      |
//
// Sources. A: inet_parse and inet_parse_flag in util/qemu-sockets.c, 7.2
// and 10.0: sscanf "%64[^:]:%32[^,]" (or "[%64[^]]]:%32[^,]") for the
// address, strstr for ",to=", ",ipv4", ",ipv6", ",keep-alive" and
// ",mptcp", sscanf "%d" for the number after ",to=", and only on, off or
// nothing after a switch (so ",ipv4=on,,x" is an error); the int is then
// stored in the uint16 to field. P: inet_parse in util/qemu-sockets.c,
// 10.1: qemu_opts_parse over inet_opts, whose implied_opt_name is "addr";
// it looks for '[' only at the start of the whole string, then splits
// addr's value at "]:" or at its first ':'. In util/qemu-option.c, 10.1:
// O1 get_opt_name_value (a first item without '=' is addr's value; a
// later item without '=' is a switch set on, or off after a "no" prefix; a
// last ',' is stepped over), O2 get_opt_value (",," is one comma of the
// value), O3 opt_validate ("Invalid parameter"), O4 qemu_opt_find (searches
// from the end), O5 opts_parse and opts_do_parse (id= names the option
// group and is no option), O6 parse_option_number (qemu_strtou64 with base
// 0; inet_parse stores the uint64 in the uint16 to or the uint32
// keep-alive fields). B: qapi_bool_parse in qapi/qapi-util.c. C:
// qemu_strtou64 in util/cutils.c, which is strtoull over the whole string:
// leading blanks and a sign pass, -1 becomes the largest value, a leading
// 0 means octal, 0x hex, and 0b binary only where the C library follows
// C23 (glibc from 2.38 with _GNU_SOURCE, which QEMU defines). G: in every
// version the port stays a string and goes to getaddrinfo, and glibc reads
// a numeric service in decimal; anything else is a service name. H: seen
// with Debian's QEMU 7.2.22 and 10.0.2, by starting them with -incoming and
// reading query-migrate's socket-address or QEMU's error (no 10.1 binary
// was at hand; its column comes from the source).
//
// So numbers (to= and the keep-alive counts) are decimal digits without a
// leading zero, or 0x or 0X and hex digits; String writes them in
// decimal. A leading zero is refused in the keep-alive counts too: QEMU
// 10.0 has none, but livemig read them in decimal before. A comma never belongs to a tcp value: no host name, address,
// port or option value holds one, so ",," is refused wherever it stands,
// in the host too, where 10.1 would keep a comma in the name that no
// resolver takes. A trailing comma is refused although every QEMU version
// ignores it, as the sign of an option list cut short.
//
// Checks beyond QEMU's syntax, made here so that mistakes fail early: to=
// needs a numeric PORT and must not be below it; ipv4=off together with
// ipv6=off is an error, as in QEMU; an IPv4 host with ipv4=off, an IPv6 host
// with ipv6=off, and a host name with numeric=on are errors. The
// keep-alive-count, keep-alive-idle and keep-alive-interval values are
// uint32 as in QEMU, but 0 is an error because Linux rejects it for
// TCP_KEEPCNT, TCP_KEEPIDLE and TCP_KEEPINTVL (whose upper limits, 127 and
// 32767 on Linux, are left to the kernel); a zero field therefore always
// means absent. They are accepted whatever keep-alive says.
//
// # unix and exec
//
// QEMU takes the whole rest of a unix: or exec: URI verbatim as the path or
// command. livemig does the same, except that it first strips trailing TLS
// options: while the string ends in ",tls-creds=V", ",tls-hostname=V" or
// ",tls-authz=V" with V free of commas, that item is an option. Everything
// before it is the path or command, commas included.
//
// A unix PATH that starts with '@' names a socket in Linux's abstract
// namespace (as Go's net package does; QEMU would take '@' literally):
// Unix.Abstract is set and Unix.Path holds NAME without the '@'. A PATH
// may be at most 107 bytes and an abstract NAME at most 107 bytes after
// the '@', the size of sun_path in unix(7). The empty path is an error.
//
// COMMAND is run later by "/bin/sh -c"; it must not be empty or blank.
//
// # vsock and fd
//
// vsock:CID:PORT takes two decimal uint32 values, as QEMU's vsock_parse
// does; 4294967295 is VMADDR_CID_ANY or VMADDR_PORT_ANY. fd:NUMBER names a
// file descriptor of the process, 0 to 2147483647 as QEMU's qemu_parse_fd
// allows; fd:NAME (not starting with a digit, without commas or control
// characters) names a descriptor passed earlier under that name, as QEMU's
// getfd does. After the first comma only TLS options may follow.
//
// # file
//
// As QEMU's file_parse_offset (migration/file.c) does, PATH ends at the
// first ",offset=", and everything after it is SIZE. So a path cannot
// contain ",offset=", and a second offset is reported as a duplicate. A
// path that ends in a TLS option is an error: a file is no peer.
//
// SIZE follows QEMU's qemu_strtosz (util/cutils.c, 8.1 and later), which
// QEMU uses for this option:
//
//   - decimal digits, as bytes: 4096 (leading zeros are decimal, not octal);
//   - optionally one suffix, case-insensitive and binary: b (1), k (1024),
//     M, G, T, P, E (1024^6): 64k, 2G;
//   - a fraction with a suffix other than b, rounded to the nearest byte,
//     halves up (QEMU's code rounds so, though a comment there says the
//     fraction is truncated): 1.5k is 1536, .5M and 1.k are valid; a
//     fraction without a suffix is an error ("1.5") unless it is zero
//     ("1.0" is 1 byte);
//   - hexadecimal "0x" or "0X" and hex digits, with neither fraction nor
//     suffix: 0x1000 (so 0x1b is 27 and 0x1E is 30, not a suffix);
//   - no exponent: 1e3 reads as 1 exbibyte followed by garbage, an error.
//
// livemig differs from qemu_strtosz in three ways: it rejects the leading
// blanks and '+' sign that strtoull would skip, it computes fractions
// exactly where QEMU goes through a double (the results differ only beyond
// about 15 significant digits), and it rejects values above 2^63-1
// (math.MaxInt64, the largest file offset) where QEMU's limit is 2^64-1.
// Overflow is an *Error wrapping strconv.ErrRange. String writes the offset
// in plain decimal bytes and leaves out offset 0.
//
// # TLS options
//
// QEMU's migration URIs have no TLS options; QEMU sets tls-creds,
// tls-hostname and tls-authz as migration parameters. livemig accepts them
// in the URI too, on every transport that reaches a peer (tcp, unix, vsock,
// exec, fd) and rejects them on file:. They name objects in a
// crypto.Registry; a URI never holds secrets.
//
// tls-creds and tls-authz take object IDs, which follow QEMU's id_wellformed
// rule (util/id.c): a letter, then letters, digits, '-', '.' and '_'.
// tls-hostname takes a host name (letters, digits, '-', '.', '_') or an IP
// address without zone. tls-hostname or tls-authz without tls-creds is an
// error. Which name a TLS client checks, and when a missing one is an
// error, is decided by package migration, which also merges these options
// with its Config: this package only parses them.
//
// # Addresses
//
// An [Address] keeps each transport's fields in a place named after that
// transport: [Inet] for tcp, [UnixAddr] for unix, [VsockAddr] for vsock,
// Command (or, from JSON, an [Argv] in Args) for exec, FD for fd and
// [FileAddr] for file, with [TLS] beside
// them for the transports that reach a peer. Parse sets only the fields of
// the Address's Transport, so reading another transport's field, such as
// a.Inet.Port of a vsock address, is visibly a mistake and gives its zero
// value. An Address holds no pointers: == compares two Addresses,
// assignment copies one, and it can be a map key. The zero Address names
// no endpoint ([Address.IsZero]). Helpers answer what the layers above
// ask of a tcp address: [Inet.HostPort], [Inet.PortRange], [Inet.Families]
// and [Switch.Value].
//
// # JSON channels
//
// QEMU 8.2 and later take an address also as JSON: the channels argument
// of the QMP commands migrate and migrate-incoming is a list of
// MigrationChannel objects, and QEMU 10.0's -incoming takes one such
// object (or dotted keys, which livemig does not read). Parse reads input
// whose first byte after JSON white space is '[' (a list) or '{' (one
// channel) as JSON; no URI starts with either. The facts below come from
// QEMU's qapi/migration.json (MigrationChannel, MigrationAddress,
// MigrationExecCommand, FileMigrationArgs), qapi/sockets.json
// (SocketAddress and its InetSocketAddress, UnixSocketAddress,
// VsockSocketAddress, FdSocketAddress), migration/migration.c
// (qemu_start_incoming_migration, qmp_migrate, migrate_uri_parse) and
// system/vl.c (incoming_option_parse), checked against QEMU 10.0.2:
//
//	{"channel-type": "main",                 "main" (QEMU also has "cpr")
//	 "addr": {"transport": "socket", "type": "inet",
//	          "host": "::1", "port": "4444",          strings
//	          "numeric": B, "to": N, "ipv4": B, "ipv6": B, "keep-alive": B,
//	          "keep-alive-count": N, "keep-alive-idle": N,
//	          "keep-alive-interval": N, "mptcp": B}}  optional
//	 "addr": {"transport": "socket", "type": "unix",
//	          "path": "/run/m.sock", "abstract": B, "tight": B}
//	 "addr": {"transport": "socket", "type": "vsock", "cid": "3", "port": "4444"}
//	 "addr": {"transport": "socket", "type": "fd", "str": "3"}
//	 "addr": {"transport": "exec", "args": ["/usr/bin/nc", "-U", "/run/m.sock"]}
//	 "addr": {"transport": "file", "filename": "/var/vm.state", "offset": N}
//	 "tls-creds": "tls0", "tls-hostname": "dst", "tls-authz": "authz0"}  livemig only
//
// Types are QEMU's: host, port, path, cid, str and filename are strings,
// B is true or false, N an integer (to is a uint16, the keep-alive numbers
// uint32 and offset a uint64, which livemig caps at 2^63-1); the file
// offset is required, as in QEMU. Values follow the URI rules above: the
// inet, vsock and fd values, and the TLS keys, are checked by parsing the
// URI they spell, so JSON and URI accept the same hosts, ports, numbers
// and names (keep-alive-count 0, which QEMU 10.1 reads as the system
// default, is refused as in the URI), and a comma, which would end a
// URI value, is an error in them. unix paths are 1 to 107 bytes; exec
// args are a non-empty list whose first item, the program's path, is not
// empty; no string may hold a NUL character.
//
// What only JSON says, an Address holds too:
//
//   - exec args run without a shell (Args, an [Argv]; QEMU runs args[0]
//     by its path, without a PATH lookup, and so does package
//     migration). The argv ["/bin/sh", "-c", COMMAND], which is what QEMU
//     makes of exec:COMMAND, gives the Address of that URI (Command) when
//     the URI can say COMMAND. [ExecArgv] builds such an Address in Go;
//   - abstract and tight for unix sockets (Unix.Abstract, Unix.Tight):
//     tight false pads an abstract address to the full sun_path, a
//     different socket from the tight one. tight is kept as written, also
//     on a path socket, where QEMU and livemig ignore it;
//   - a unix path that starts with '@' but is not abstract, and paths,
//     commands and names that the URI grammar would cut, such as a file
//     path holding ",offset=".
//
// An Address stays comparable with ==: Args keeps the list in one string.
// [Address.String] gives the URI when one parses back to the same
// Address, else the JSON; [Address.JSON] always gives the JSON, one
// channel object in the order of QEMU's schema, and Parse of either gives
// the Address again.
//
// livemig refuses, with an *Error whose Path names the JSON value (such
// as channels[0].addr.transport) and whose Offset is where it starts:
// transport rdma and channel-type cpr ("not supported by livemig"); more
// than one channel (QEMU's migrate-incoming takes one, its migrate one
// main and one cpr, and livemig carries main only); an empty list;
// unknown keys and missing required ones; a value of the wrong JSON type
// (a number for a string, 2.0 or 1e3 for an integer); and anything that
// is not one JSON value (trailing text, a duplicate key, which QEMU also
// refuses, single-quoted strings, which QEMU accepts as an extension,
// invalid UTF-8 or escapes, a raw control character in a string). The
// input is bounded: at most [MaxJSONLength] bytes (JSON escapes make an
// address longer than its URI), nesting at most 8 deep and at most 32
// keys in an object; the values that the URI rules check must fit
// [MaxLength] as a URI.
//
// TLS: QEMU's JSON has no TLS keys (QEMU sets tls-creds, tls-hostname and
// tls-authz as migration parameters). livemig reads them as members of
// the channel object, beside channel-type and addr, with the rules of the
// URI's TLS options; this is a livemig extension, so a control plane
// removes them (or clears Address.TLS before calling JSON) for QEMU.
//
// # Errors
//
// These are errors on every transport: input longer than [MaxLength]
// bytes; a NUL byte anywhere; bytes that are not UTF-8 (QEMU's JSON
// cannot carry them, and livemig refuses them so that every Address has
// a JSON form); an unknown transport (including QEMU's rdma:,
// which livemig does not carry); an unknown option; an option given twice
// (ipv4 and noipv4 count as the same option); a bad switch value; a missing
// value; an empty option (",,", or a trailing comma where options are
// parsed). Every error is an [*Error].
package uri
