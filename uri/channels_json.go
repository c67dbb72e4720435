package uri

import (
	"strconv"
	"strings"
)

// JSON returns a as one QEMU MigrationChannel object, the form QEMU 10's
// -incoming takes:
//
//	{"channel-type":"main","addr":{"transport":"socket","type":"inet","host":"::1","port":"4444"}}
//
// Put it in brackets for the channels argument of QMP's migrate and
// migrate-incoming. Keys come in the order of QEMU's schema, absent
// options are left out, and strings escape only what JSON requires. An
// exec Command is written as QEMU runs it, ["/bin/sh","-c",COMMAND], and
// a file always has its offset, which QEMU requires.
//
// TLS options become the livemig keys tls-creds, tls-hostname and
// tls-authz of the channel object; QEMU refuses them, so clear a.TLS
// before handing the JSON to QEMU, which takes TLS as migration
// parameters. For every a that Parse returns, Parse(a.JSON()) == a. An
// unknown Transport, or the zero Address, gives "".
func (a Address) JSON() string {
	var w jsonWriter
	w.b.WriteString(`{"channel-type":"main","addr":{"transport":`)
	switch a.Transport {
	case TCP:
		w.b.WriteString(`"socket","type":"inet"`)
		w.str(jkHost, a.Inet.Host)
		w.str(jkPort, a.Inet.Port)
		w.sw(keyNumeric, a.Inet.Numeric)
		if a.Inet.To != 0 {
			w.num(keyTo, uint64(a.Inet.To))
		}
		w.sw(keyIPv4, a.Inet.IPv4)
		w.sw(keyIPv6, a.Inet.IPv6)
		w.sw(keyKeepAlive, a.Inet.KeepAlive)
		for _, k := range []struct {
			key string
			n   uint32
		}{{keyKeepAliveCount, a.Inet.KeepAliveCount}, {keyKeepAliveIdle, a.Inet.KeepAliveIdle}, {keyKeepAliveInterval, a.Inet.KeepAliveInterval}} {
			if k.n != 0 {
				w.num(k.key, uint64(k.n))
			}
		}
		w.sw(keyMPTCP, a.Inet.MPTCP)
	case Unix:
		w.b.WriteString(`"socket","type":"unix"`)
		w.str(jkPath, a.Unix.Path)
		if a.Unix.Abstract {
			w.sw(jkAbstract, On)
		}
		w.sw(jkTight, a.Unix.Tight)
	case Vsock:
		w.b.WriteString(`"socket","type":"vsock"`)
		w.str(jkCID, strconv.FormatUint(uint64(a.Vsock.CID), 10))
		w.str(jkPort, strconv.FormatUint(uint64(a.Vsock.Port), 10))
	case FD:
		w.b.WriteString(`"socket","type":"fd"`)
		w.str(jkStr, a.FD)
	case Exec:
		w.b.WriteString(`"exec","args":[`)
		args := a.Args.Strings()
		if args == nil {
			args = []string{"/bin/sh", "-c", a.Command}
		}
		for i, s := range args {
			if i > 0 {
				w.b.WriteByte(',')
			}
			w.quote(s)
		}
		w.b.WriteByte(']')
	case File:
		w.b.WriteString(`"file"`)
		w.str(jkFilename, a.File.Path)
		w.num(jkOffset, uint64(a.File.Offset))
	default:
		return ""
	}
	w.b.WriteByte('}')
	w.str(keyTLSCreds, a.TLS.Creds)
	w.str(keyTLSHostname, a.TLS.Hostname)
	w.str(keyTLSAuthz, a.TLS.Authz)
	w.b.WriteByte('}')
	return w.b.String()
}

// jsonWriter writes the members of an object after its first one.
type jsonWriter struct {
	b strings.Builder
}

// str writes ,"key":"s", except for the TLS keys, which it leaves out
// when s is empty; every other string key is always written.
func (w *jsonWriter) str(key, s string) {
	if s == "" && (key == keyTLSCreds || key == keyTLSHostname || key == keyTLSAuthz) {
		return
	}
	w.key(key)
	w.quote(s)
}

// sw writes ,"key":true or false, or nothing for Unset.
func (w *jsonWriter) sw(key string, s Switch) {
	switch s {
	case On:
		w.key(key)
		w.b.WriteString("true")
	case Off:
		w.key(key)
		w.b.WriteString("false")
	}
}

// num writes ,"key":n.
func (w *jsonWriter) num(key string, n uint64) {
	w.key(key)
	w.b.WriteString(strconv.FormatUint(n, 10))
}

func (w *jsonWriter) key(key string) {
	w.b.WriteString(`,"`)
	w.b.WriteString(key)
	w.b.WriteString(`":`)
}

// quote writes s as a JSON string. It escapes only '"', '\' and the
// control characters below U+0020, the short forms where JSON has them,
// and writes everything else as it is (Parse refuses input that is not
// UTF-8, so s is valid JSON text). No escape it writes is longer than
// what JSON input must use for the same character, so the JSON of an
// Address read from JSON is never longer than that input.
func (w *jsonWriter) quote(s string) {
	const hex = "0123456789abcdef"
	w.b.WriteByte('"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		w.b.WriteString(s[start:i])
		switch c {
		case '"', '\\':
			w.b.WriteByte('\\')
			w.b.WriteByte(c)
		case '\b':
			w.b.WriteString(`\b`)
		case '\f':
			w.b.WriteString(`\f`)
		case '\n':
			w.b.WriteString(`\n`)
		case '\r':
			w.b.WriteString(`\r`)
		case '\t':
			w.b.WriteString(`\t`)
		default:
			w.b.WriteString(`\u00`)
			w.b.WriteByte(hex[c>>4])
			w.b.WriteByte(hex[c&0xf])
		}
		start = i + 1
	}
	w.b.WriteString(s[start:])
	w.b.WriteByte('"')
}
