package uri

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxJSONLength is the longest JSON input Parse accepts, in bytes. It is
// larger than MaxLength because JSON escapes what a URI writes raw (a
// control character takes six bytes, "\u0001"): the JSON form of every
// Address that Parse returns for a URI fits in it.
const MaxJSONLength = 8 * MaxLength

// JSON keys of QEMU's MigrationChannel and MigrationAddress
// (qapi/migration.json) and of SocketAddress (qapi/sockets.json), and the
// livemig extension keys for TLS.
const (
	jkChannelType = "channel-type"
	jkAddr        = "addr"
	jkTransport   = "transport"
	jkType        = "type"
	jkHost        = "host"
	jkPort        = "port"
	jkPath        = "path"
	jkAbstract    = "abstract"
	jkTight       = "tight"
	jkCID         = "cid"
	jkStr         = "str"
	jkArgs        = "args"
	jkFilename    = "filename"
	jkOffset      = "offset"
)

// isJSON reports whether s is to be read as QEMU's JSON channels rather
// than as a URI: like QEMU's -incoming, by its first byte, '{' or '[',
// after any JSON white space (which no URI starts with).
func isJSON(s string) bool {
	s = strings.TrimLeft(s, " \t\n\r")
	return s != "" && (s[0] == '{' || s[0] == '[')
}

// chanDecoder turns the JSON text in into an Address.
type chanDecoder struct {
	in string
}

// parseJSON parses QEMU's channels JSON: a list of channels, as the
// channels argument of the migrate and migrate-incoming commands, or one
// channel object, as QEMU 10's -incoming takes.
func parseJSON(s string) (Address, error) {
	d := &chanDecoder{in: s}
	a, err := d.decode()
	if err != nil {
		return Address{}, err
	}
	return a, nil
}

// fail returns an *Error at off for the value at path.
func (d *chanDecoder) fail(off int, path, format string, args ...any) *Error {
	return &Error{Input: d.in, Offset: off, Path: path, Reason: fmt.Sprintf(format, args...)}
}

func (d *chanDecoder) decode() (Address, *Error) {
	if len(d.in) > MaxJSONLength {
		return Address{}, d.fail(MaxJSONLength, "", "input is %d bytes long: expected at most %d for JSON (uri.MaxJSONLength)", len(d.in), MaxJSONLength)
	}
	root, jerr := readJSON(d.in)
	if jerr != nil {
		return Address{}, d.fail(jerr.off, "", "%s", jerr.reason)
	}
	if root.kind == jsonObject {
		return d.channel(root, "channel")
	}
	// root is an array: isJSON saw '[' or '{'.
	switch len(root.elems) {
	case 0:
		return Address{}, d.fail(root.off, "channels", "empty list: expected one channel, of type main")
	case 1:
		return d.channel(root.elems[0], "channels[0]")
	}
	return Address{}, d.fail(root.elems[1].off, "channels[1]", "a second channel: livemig takes exactly one channel, of type main")
}

// object is an object being decoded: its members by key, and its path.
type object struct {
	d    *chanDecoder
	v    jsonValue
	path string
	m    map[string]*jsonValue
}

// object checks that v is an object whose keys are all in keys, and
// returns it for the getters.
func (d *chanDecoder) object(v jsonValue, path string, keys ...string) (*object, *Error) {
	if v.kind != jsonObject {
		return nil, d.fail(v.off, path, "expected an object, not %s", v.kind)
	}
	o := &object{d: d, v: v, path: path, m: make(map[string]*jsonValue, len(v.members))}
	for i := range v.members {
		mb := &v.members[i]
		known := false
		for _, k := range keys {
			known = known || k == mb.key
		}
		if !known {
			return nil, d.fail(mb.keyOff, path, "unknown key %q: expected %s", mb.key, oneOf(keys))
		}
		o.m[mb.key] = &mb.val
	}
	return o, nil
}

// oneOf lists keys for a message: "a", "a or b", "one of a, b, c".
func oneOf(keys []string) string {
	switch len(keys) {
	case 1:
		return keys[0]
	case 2:
		return keys[0] + " or " + keys[1]
	}
	return "one of " + strings.Join(keys, ", ")
}

// peek returns the member key, or nil; it checks nothing.
func peek(v jsonValue, key string) *jsonValue {
	for i := range v.members {
		if v.members[i].key == key {
			return &v.members[i].val
		}
	}
	return nil
}

func (o *object) sub(key string) string { return o.path + "." + key }

// missing returns the error for a required key that is absent.
func (o *object) missing(key, what string) *Error {
	return o.d.fail(o.v.off, o.sub(key), "missing: expected %s", what)
}

// str returns the string at key; ok is false when the key is absent and
// not required.
func (o *object) str(key string, required bool) (s string, off int, ok bool, err *Error) {
	v := o.m[key]
	if v == nil {
		if required {
			return "", 0, false, o.missing(key, "a string")
		}
		return "", 0, false, nil
	}
	if v.kind != jsonString {
		return "", 0, false, o.d.fail(v.off, o.sub(key), "expected a string, not %s", v.kind)
	}
	if i := strings.IndexByte(v.str, 0); i >= 0 {
		return "", 0, false, o.d.fail(v.off, o.sub(key), "NUL character: expected none")
	}
	return v.str, v.off, true, nil
}

// boolean returns the switch at key: Unset when absent.
func (o *object) boolean(key string) (Switch, *Error) {
	v := o.m[key]
	if v == nil {
		return Unset, nil
	}
	if v.kind != jsonBool {
		return Unset, o.d.fail(v.off, o.sub(key), "expected true or false, not %s", v.kind)
	}
	if v.b {
		return On, nil
	}
	return Off, nil
}

// integer returns the integer at key, from 0 to max; ok is false when the
// key is absent.
func (o *object) integer(key string, max uint64, required bool) (n uint64, off int, ok bool, err *Error) {
	v := o.m[key]
	if v == nil {
		if required {
			return 0, 0, false, o.missing(key, fmt.Sprintf("an integer from 0 to %d", max))
		}
		return 0, 0, false, nil
	}
	if v.kind != jsonNumber {
		return 0, 0, false, o.d.fail(v.off, o.sub(key), "expected an integer from 0 to %d, not %s", max, v.kind)
	}
	if strings.ContainsAny(v.str, ".eE") {
		return 0, 0, false, o.d.fail(v.off, o.sub(key), "%s is not an integer: expected an integer from 0 to %d", v.str, max)
	}
	n, perr := strconv.ParseUint(v.str, 10, 64)
	if perr != nil || n > max {
		e := o.d.fail(v.off, o.sub(key), "%s out of range: expected an integer from 0 to %d", v.str, max)
		e.Err = strconv.ErrRange
		return 0, 0, false, e
	}
	return n, v.off, true, nil
}

// channel decodes one MigrationChannel at path.
func (d *chanDecoder) channel(v jsonValue, path string) (Address, *Error) {
	o, err := d.object(v, path, jkChannelType, jkAddr, keyTLSCreds, keyTLSHostname, keyTLSAuthz)
	if err != nil {
		return Address{}, err
	}
	typ, off, _, err := o.str(jkChannelType, true)
	if err != nil {
		return Address{}, err
	}
	switch typ {
	case "main":
	case "cpr":
		return Address{}, d.fail(off, o.sub(jkChannelType), "cpr is not supported by livemig: expected main")
	default:
		return Address{}, d.fail(off, o.sub(jkChannelType), "unknown channel type %q: expected main", typ)
	}
	addrV := o.m[jkAddr]
	if addrV == nil {
		return Address{}, o.missing(jkAddr, "an object")
	}
	a, err := d.address(*addrV, o.sub(jkAddr))
	if err != nil {
		return Address{}, err
	}
	if err := d.tls(o, &a); err != nil {
		return Address{}, err
	}
	return a, nil
}

// tag returns the string member key of object v, the tag of a QAPI union
// that chooses its variant; expected lists the variants for the error
// when it is missing or not a string.
func (d *chanDecoder) tag(v jsonValue, path, key, expected string) (*jsonValue, *Error) {
	t := peek(v, key)
	if t == nil {
		return nil, d.fail(v.off, path+"."+key, "missing: expected %s", expected)
	}
	if t.kind != jsonString {
		return nil, d.fail(t.off, path+"."+key, "expected a string, not %s", t.kind)
	}
	return t, nil
}

// address decodes a MigrationAddress at path.
func (d *chanDecoder) address(v jsonValue, path string) (Address, *Error) {
	if v.kind != jsonObject {
		return Address{}, d.fail(v.off, path, "expected an object, not %s", v.kind)
	}
	const transports = "socket, exec or file"
	t, err := d.tag(v, path, jkTransport, transports)
	if err != nil {
		return Address{}, err
	}
	switch t.str {
	case "socket":
		return d.socket(v, path)
	case "exec":
		return d.exec(v, path)
	case "file":
		return d.file(v, path)
	case "rdma":
		return Address{}, d.fail(t.off, path+"."+jkTransport, "rdma is not supported by livemig: expected %s", transports)
	}
	return Address{}, d.fail(t.off, path+"."+jkTransport, "unknown transport %q: expected %s", t.str, transports)
}

// socket decodes the SocketAddress variant of a MigrationAddress.
func (d *chanDecoder) socket(v jsonValue, path string) (Address, *Error) {
	const types = "inet, unix, vsock or fd"
	t, err := d.tag(v, path, jkType, types)
	if err != nil {
		return Address{}, err
	}
	switch t.str {
	case "inet":
		return d.inet(v, path)
	case "unix":
		return d.unix(v, path)
	case "vsock":
		return d.vsock(v, path)
	case "fd":
		return d.fd(v, path)
	}
	return Address{}, d.fail(t.off, path+"."+jkType, "unknown socket type %q: expected %s", t.str, types)
}

// inet decodes an InetSocketAddress. Its values are checked by the URI
// parser itself, on the tcp: URI they spell, so that JSON and URI accept
// the same hosts, ports and options and each rule lives in one place.
func (d *chanDecoder) inet(v jsonValue, path string) (Address, *Error) {
	o, err := d.object(v, path, jkTransport, jkType, jkHost, jkPort, keyNumeric, keyTo, keyIPv4, keyIPv6,
		keyKeepAlive, keyKeepAliveCount, keyKeepAliveIdle, keyKeepAliveInterval, keyMPTCP)
	if err != nil {
		return Address{}, err
	}
	host, hostOff, _, err := o.str(jkHost, true)
	if err != nil {
		return Address{}, err
	}
	port, portOff, _, err := o.str(jkPort, true)
	if err != nil {
		return Address{}, err
	}
	// '=' too: the URI it is checked through would take "addr=H" as H.
	if i := strings.IndexAny(host, ",[]="); i >= 0 {
		return Address{}, d.fail(hostOff, o.sub(jkHost), "invalid character %q in host: expected a host name, an IPv4 address or an IPv6 address", host[i])
	}
	if i := strings.IndexAny(port, ",:"); i >= 0 {
		return Address{}, d.fail(portOff, o.sub(jkPort), "invalid character %q in port: expected a port number or service name", port[i])
	}
	var u synthURI
	u.text("tcp:")
	if strings.IndexByte(host, ':') >= 0 {
		u.value("["+host+"]", o.sub(jkHost), hostOff)
	} else {
		u.value(host, o.sub(jkHost), hostOff)
	}
	u.text(":")
	u.value(port, o.sub(jkPort), portOff)
	for _, key := range []string{keyNumeric, keyIPv4, keyIPv6, keyKeepAlive, keyMPTCP} {
		sw, err := o.boolean(key)
		if err != nil {
			return Address{}, err
		}
		if sw != Unset {
			u.option(key, sw.word(), o.sub(key), o.m[key].off)
		}
	}
	for _, k := range []struct {
		key string
		max uint64
	}{{keyTo, math.MaxUint16}, {keyKeepAliveCount, math.MaxUint32}, {keyKeepAliveIdle, math.MaxUint32}, {keyKeepAliveInterval, math.MaxUint32}} {
		n, off, ok, err := o.integer(k.key, k.max, false)
		if err != nil {
			return Address{}, err
		}
		if ok {
			u.option(k.key, strconv.FormatUint(n, 10), o.sub(k.key), off)
		}
	}
	return d.viaURI(&u, o)
}

// unix decodes a UnixSocketAddress.
func (d *chanDecoder) unix(v jsonValue, path string) (Address, *Error) {
	o, err := d.object(v, path, jkTransport, jkType, jkPath, jkAbstract, jkTight)
	if err != nil {
		return Address{}, err
	}
	p, off, _, err := o.str(jkPath, true)
	if err != nil {
		return Address{}, err
	}
	abstract, err := o.boolean(jkAbstract)
	if err != nil {
		return Address{}, err
	}
	tight, err := o.boolean(jkTight)
	if err != nil {
		return Address{}, err
	}
	switch {
	case p == "" && abstract == On:
		return Address{}, d.fail(off, o.sub(jkPath), "empty abstract socket name: expected a name")
	case p == "":
		return Address{}, d.fail(off, o.sub(jkPath), "empty path: expected a socket path")
	case abstract == On && len(p) > maxUnixAbstract-1:
		return Address{}, d.fail(off, o.sub(jkPath), "abstract socket name is %d bytes long: expected at most %d", len(p), maxUnixAbstract-1)
	case abstract != On && len(p) > maxUnixPath:
		return Address{}, d.fail(off, o.sub(jkPath), "path is %d bytes long: expected at most %d for a unix socket", len(p), maxUnixPath)
	}
	return Address{Transport: Unix, Unix: UnixAddr{Path: p, Abstract: abstract == On, Tight: tight}}, nil
}

// vsock decodes a VsockSocketAddress: cid and port are decimal strings,
// checked by the URI parser on the vsock: URI they spell.
func (d *chanDecoder) vsock(v jsonValue, path string) (Address, *Error) {
	o, err := d.object(v, path, jkTransport, jkType, jkCID, jkPort)
	if err != nil {
		return Address{}, err
	}
	var u synthURI
	u.text("vsock:")
	for n, key := range []string{jkCID, jkPort} {
		s, off, _, err := o.str(key, true)
		if err != nil {
			return Address{}, err
		}
		if i := strings.IndexAny(s, ",:"); i >= 0 {
			return Address{}, d.fail(off, o.sub(key), "invalid character %q in %s: expected a decimal number", s[i], key)
		}
		if n == 1 {
			u.text(":")
		}
		u.value(s, o.sub(key), off)
	}
	return d.viaURI(&u, o)
}

// fd decodes a FdSocketAddress, checked by the URI parser on the fd: URI
// it spells.
func (d *chanDecoder) fd(v jsonValue, path string) (Address, *Error) {
	o, err := d.object(v, path, jkTransport, jkType, jkStr)
	if err != nil {
		return Address{}, err
	}
	s, off, _, err := o.str(jkStr, true)
	if err != nil {
		return Address{}, err
	}
	if strings.IndexByte(s, ',') >= 0 {
		return Address{}, d.fail(off, o.sub(jkStr), "',' in a file descriptor name: expected a number or a name without commas")
	}
	var u synthURI
	u.text("fd:")
	u.value(s, o.sub(jkStr), off)
	return d.viaURI(&u, o)
}

// exec decodes a MigrationExecCommand. The argv ["/bin/sh", "-c", CMD],
// which is what QEMU makes of the URI exec:CMD, gives the Address of that
// URI (Command, not Args) when the URI can say it.
func (d *chanDecoder) exec(v jsonValue, path string) (Address, *Error) {
	o, err := d.object(v, path, jkTransport, jkArgs)
	if err != nil {
		return Address{}, err
	}
	av := o.m[jkArgs]
	if av == nil {
		return Address{}, o.missing(jkArgs, "a list of strings, the program and its arguments")
	}
	if av.kind != jsonArray {
		return Address{}, d.fail(av.off, o.sub(jkArgs), "expected a list of strings, not %s", av.kind)
	}
	if len(av.elems) == 0 {
		return Address{}, d.fail(av.off, o.sub(jkArgs), "empty list: expected the program and its arguments")
	}
	args := make([]string, len(av.elems))
	for i, e := range av.elems {
		p := o.sub(jkArgs) + "[" + strconv.Itoa(i) + "]"
		switch {
		case e.kind != jsonString:
			return Address{}, d.fail(e.off, p, "expected a string, not %s", e.kind)
		case strings.IndexByte(e.str, 0) >= 0:
			return Address{}, d.fail(e.off, p, "NUL character: expected none (no argument of a program can hold one)")
		case i == 0 && e.str == "":
			return Address{}, d.fail(e.off, p, "empty program: expected the path of the program to run")
		}
		args[i] = e.str
	}
	if len(args) == 3 && args[0] == "/bin/sh" && args[1] == "-c" {
		if a, err := Parse("exec:" + args[2]); err == nil && a.Command == args[2] && a.TLS == (TLS{}) {
			return a, nil
		}
	}
	return Address{Transport: Exec, Args: makeArgv(args)}, nil
}

// file decodes a FileMigrationArgs. QEMU requires offset.
func (d *chanDecoder) file(v jsonValue, path string) (Address, *Error) {
	o, err := d.object(v, path, jkTransport, jkFilename, jkOffset)
	if err != nil {
		return Address{}, err
	}
	name, off, _, err := o.str(jkFilename, true)
	if err != nil {
		return Address{}, err
	}
	if name == "" {
		return Address{}, d.fail(off, o.sub(jkFilename), "empty path: expected a file name")
	}
	n, _, _, err := o.integer(jkOffset, math.MaxInt64, true)
	if err != nil {
		return Address{}, err
	}
	return Address{Transport: File, File: FileAddr{Path: name, Offset: int64(n)}}, nil
}

// tls applies the livemig extension keys tls-creds, tls-hostname and
// tls-authz of the channel object o to a, checked by the URI parser as
// options of an fd: URI.
func (d *chanDecoder) tls(o *object, a *Address) *Error {
	var u synthURI
	u.text("fd:0")
	var first string
	for _, key := range []string{keyTLSCreds, keyTLSHostname, keyTLSAuthz} {
		s, off, ok, err := o.str(key, false)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if first == "" {
			first = key
		}
		if i := strings.IndexByte(s, ','); i >= 0 {
			return d.fail(off, o.sub(key), "invalid character ',' in %s", key)
		}
		u.option(key, s, o.sub(key), off)
	}
	if first == "" {
		return nil
	}
	if a.Transport == File {
		return d.fail(o.m[first].off, o.sub(first), "%s with transport file: a file is no peer: expected no TLS keys", first)
	}
	t, err := d.viaURI(&u, o)
	if err != nil {
		return err
	}
	a.TLS = t.TLS
	return nil
}

// viaURI parses the URI that u spells and maps an error back to the JSON
// value it came from; an error that no value caused (such as ipv4 and
// ipv6 both off) is placed at the object o.
func (d *chanDecoder) viaURI(u *synthURI, o *object) (Address, *Error) {
	s := u.b.String()
	if len(s) > MaxLength {
		return Address{}, d.fail(o.v.off, o.path, "the address is %d bytes long as a URI: expected at most %d (uri.MaxLength)", len(s), MaxLength)
	}
	a, err := Parse(s)
	if err == nil {
		return a, nil
	}
	e := err.(*Error)
	out := d.fail(o.v.off, o.path, "%s", e.Reason)
	out.Err = e.Err
	for _, sp := range u.spans {
		if sp.start <= e.Offset && e.Offset < sp.end || e.Offset == sp.start {
			out.Offset, out.Path = sp.off, sp.path
			break
		}
	}
	return Address{}, out
}

// synthURI builds a URI from JSON values and remembers which bytes of it
// came from which value.
type synthURI struct {
	b     strings.Builder
	spans []synthSpan
}

// synthSpan ties bytes [start, end) of a synthURI to a JSON value.
type synthSpan struct {
	start, end int
	path       string
	off        int
}

func (u *synthURI) text(s string) { u.b.WriteString(s) }

func (u *synthURI) value(s, path string, off int) {
	u.spans = append(u.spans, synthSpan{start: u.b.Len(), end: u.b.Len() + len(s), path: path, off: off})
	u.b.WriteString(s)
}

// option appends ",key=value", the whole item tied to the value.
func (u *synthURI) option(key, value, path string, off int) {
	u.b.WriteByte(',')
	u.value(key+"="+value, path, off)
}

// invalidUTF8 returns the offset of the first byte of s that is not part
// of valid UTF-8, or -1.
func invalidUTF8(s string) int {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}
