// Package proxy is migrate-proxy: for every connection accepted on one
// migration address it opens one to another and copies bytes both ways,
// so a migration (QEMU's main channel, its multifd channels and its return
// path) crosses a hop where TLS is added or removed.
//
// # Starting
//
// Before it serves, Run looks up the objects that the tls-creds and
// tls-authz options of --listen and --to name and checks that they fit
// (server credentials on --listen, client credentials on --to, and a
// tls-hostname for x509 credentials on a transport without a host name),
// and for --listen file:, exec: or fd: it opens the channel. A mistake
// ends it at once, in one line. Each connection still looks its
// credentials up, so a reloaded object applies to the next one. An accept
// that fails (EMFILE, say, which leaves the connection queued) is retried
// after a wait that doubles from 5 ms to 1 s, and logged once per run of
// failures.
//
// # Accepting and order
//
// The proxy accepts without pause. Each accepted connection runs its TLS
// handshake and (without --raw) its hello in a goroutine of its own, each
// step within --handshake-timeout, so a peer that connects and then says
// nothing, or sends garbage, holds up its own connection only. At most
// --max-handshakes connections are between accept and hand-on at once;
// while that many are pending the proxy accepts nothing more, and new
// connections wait in the kernel's listen queue until one of them is
// handed on, refused or timed out.
//
// Connections are handed on (the outgoing connection opened, its TLS
// handshake and hello included) one at a time, in the order of accept,
// as each finishes its handshake and hello, with one exception: a tcp
// connection whose peer had sent nothing at all (the kernel's count of
// received bytes, TCP_INFO, is still 0) when a later connection became
// ready loses its place and goes on whenever it is ready. So an idle
// connection holds up no one, while a connection whose handshake is under
// way keeps those behind it waiting until it is ready or refused.
//
// That is the order QEMU depends on. QEMU 7.2's destination takes the
// first channel that reaches it, after its TLS handshake when TLS is on,
// for the main channel and later ones for multifd channels
// (migration_ioc_process_incoming in migration/migration.c); from 8.0 it
// tells them apart by their first bytes, but only on plain sockets, never
// over TLS. QEMU's source opens its multifd channels once its main
// channel's TLS handshake is done on its side (migration_channel_connect
// in migration/channel.c); with TLS 1.3 the client finishes before the
// server has read its last flight, so a multifd channel's handshake can
// finish at the proxy before the main channel's does, on a busy machine.
// The order of finished handshakes would then hand QEMU a multifd channel
// first; accept order keeps the main channel first, as its ClientHello
// reached the proxy before the multifd channel was even opened. livemig's
// source (migration.DialSession) waits for its main channel's hello reply
// before it opens the others, and a migration.Server refuses a multifd
// channel of a session whose main channel it has not seen.
//
// What the exception leaves: a peer that can reach the listening port and
// sends a few bytes and then stalls holds up the connections accepted
// after it for up to --handshake-timeout. Over unix sockets, which have no
// such count, accept order is strict: an idle local client holds up the
// others for as long (who may connect is the socket file's permissions).
//
// # Ends and cuts
//
// Each direction of a connection is copied on its own. A clean end of one
// direction is passed on as an end: a FIN, after close_notify over TLS.
// Without --raw a TLS peer must end with close_notify; with --raw (QEMU
// sends no close_notify on its main channel, nor on multifd channels
// before 10.0) an end at a TLS record boundary is clean. The proxy itself
// always ends a TLS direction with close_notify, which a QEMU 10.0
// destination requires on multifd channels. Any
// other end is a cut: a read or write error, a TLS stream truncated, the
// proxy stopping. A cut is never passed on as a clean end: both
// connections are aborted ([migration.Stream.Abort]), which resets a tcp
// connection, plain or beneath TLS and without close_notify, so each peer
// reads ECONNRESET. unix sockets, commands and files have no reset: their
// peer sees the end of its input (QEMU's loader still fails on a stream
// that ends before its EOF section), and the proxy logs the cut as
// "connection N: cut after ...".
//
// One reset is QEMU's normal way of ending, not a cut: a QEMU destination
// closes its socket once it has loaded what it needs, and when bytes it
// has not read are still queued there (the close_notify the proxy sends
// after the end of the stream, for one) the kernel answers them with a
// reset. So a reset read from a peer after the proxy has read the clean
// end of the other side's stream and passed it on towards that peer is
// logged as "connection N: closed: peer reset after the end of the stream
// (QEMU's normal way of ending): ...". The other side is still aborted,
// not ended cleanly, since the reset may have dropped bytes the peer had
// sent. A reset at any other time, while the stream towards that peer is
// still being copied, is a cut. QEMU 7.2's destination does this on its
// main channel (and may on multifd channels); the rule does not depend on
// the QEMU version.
//
// Goroutines: Run accepts in its own; it starts one per connection in its
// handshake and hello, one that hands connections on, and two per proxied
// connection (one per direction), and waits for all of them before it
// returns.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/examples/internal/cli"
	"github.com/livemig/livemig/migration"
	"github.com/livemig/livemig/uri"
)

// Options are migrate-proxy's flags.
type Options struct {
	Listen  string
	To      string
	Objects cli.Objects
	// Raw: the peers are QEMU, which speaks no livemig hello. Without it
	// the proxy takes each connection's hello and repeats it onwards.
	Raw bool
	// Logf receives one message per event, always a single line: Run
	// turns line breaks in a message (an error's text may hold them, or a
	// peer's) into "; " and escapes other control characters. nil is
	// silent.
	Logf func(format string, args ...any)
	// Listening, if set, is called with the address listened on, once
	// the credentials are checked and, for file:, exec: and fd:, the
	// channel is open.
	Listening func(addr string)
	// MaxHandshakes bounds the connections accepted and not yet handed on:
	// in their TLS handshake or hello, or waiting for their turn to be
	// handed on. 0 means DefaultMaxHandshakes. While that many are
	// pending the proxy accepts nothing more, and new connections wait in
	// the kernel's listen queue.
	MaxHandshakes int
	// HandshakeTimeout bounds each TLS handshake and, separately, each
	// hello, of accepted and of opened connections. 0 means
	// migration.DefaultHandshakeTimeout (10 s).
	HandshakeTimeout time.Duration
}

// DefaultMaxHandshakes is the default of Options.MaxHandshakes.
// Connections beyond the bound are not refused but wait to be accepted, so
// a QEMU that opens many multifd channels at once (up to 255) is slowed,
// not broken; connections that never finish their handshake hold at most
// that many sockets, each for at most the handshake timeout.
const DefaultMaxHandshakes = 64

// Main is migrate-proxy's main: it returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	const name = "migrate-proxy"
	var o Options
	fs := cli.NewFlagSet(name, cli.Usage{
		Synopsis: "migrate-proxy --listen URI --to URI [--object SPEC]... [--raw] [--max-handshakes N] [--handshake-timeout D]",
		Description: `For every connection accepted on --listen, opens one on --to and copies
both ways, so QEMU's multifd channels and return path pass through. TLS on
either side comes from the URI's tls-creds option (server credentials on
--listen, client credentials on --to). --to file:PATH saves an incoming
stream. Use it to put TLS between two QEMUs that cannot reach each other
directly, or to terminate TLS in front of a unix socket. Runs until
interrupted (SIGINT or SIGTERM); with --listen file:, exec: or fd: (one
channel) it exits after that channel, non-zero if it failed.

Connections are accepted without pause and their TLS handshakes and hellos
run side by side, so an idle or broken connection holds up only itself;
they are passed on one at a time in the order they became ready, which
keeps QEMU's main channel ahead of its multifd channels. A connection cut
on one side (an error, a TLS stream truncated) is reset on the other, never
ended cleanly. The credentials that tls-creds and tls-authz name are checked,
and a file:, exec: or fd: source opened, before it reports listening: a
mistake ends it at once with one line.`,
		Examples: []string{
			"# source host: QEMU migrates to unix:/run/mig.sock, the proxy adds TLS",
			"migrate-proxy --raw --listen unix:/run/mig.sock --to tcp:dest.example.com:4444,tls-creds=tls0 --object tls-creds-x509,id=tls0,dir=/etc/pki/qemu,endpoint=client",
			"# destination host: the proxy removes TLS in front of QEMU's -incoming unix:/run/mig-in.sock",
			"migrate-proxy --raw --listen tcp:0.0.0.0:4444,tls-creds=tls0 --to unix:/run/mig-in.sock --object tls-creds-x509,id=tls0,dir=/etc/pki/qemu,endpoint=server",
			"# save a QEMU stream to a file",
			"migrate-proxy --raw --listen unix:/run/mig.sock --to file:/var/tmp/vm.state",
			"# restore it into a QEMU started with -incoming defer and TLS credentials",
			"migrate-proxy --raw --listen file:/var/tmp/vm.state --to tcp:dest.example.com:4444,tls-creds=tls0 --object tls-creds-x509,id=tls0,dir=/etc/pki/qemu,endpoint=client",
		},
	}, stderr)
	fs.StringVar(&o.Listen, "listen", "", "migration URI or QEMU channels JSON to accept connections on\n(e.g. tcp:0.0.0.0:4444,tls-creds=tls0; required)")
	fs.StringVar(&o.To, "to", "", "migration URI or QEMU channels JSON to open one connection on per accepted one\n(e.g. unix:/run/mig-in.sock; required)")
	fs.Var(&o.Objects, "object", "a credentials or authz object in QEMU -object syntax, repeatable\n(e.g. tls-creds-x509,id=tls0,dir=/etc/pki/qemu,endpoint=server)")
	fs.BoolVar(&o.Raw, "raw", false, "the peers are QEMU: no livemig hello on either side")
	fs.IntVar(&o.MaxHandshakes, "max-handshakes", DefaultMaxHandshakes, "connections accepted and not yet passed on (in their TLS handshake or hello,\nor waiting for their turn) at once; beyond it new ones wait to be accepted")
	fs.DurationVar(&o.HandshakeTimeout, "handshake-timeout", migration.DefaultHandshakeTimeout, "bound of each TLS handshake and of each hello, on both sides")
	if ok, code := cli.Parse(fs, args, stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return cli.Fail(stderr, name, fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0)))
	}
	o.Logf = newLogf(name, stderr)
	o.Listening = func(addr string) { o.Logf("listening on %s", addr) }
	ctx, cancel := cli.SignalContext()
	defer cancel()
	if err := Run(ctx, &o); err != nil {
		return cli.Fail(stderr, name, err)
	}
	return 0
}

// newLogf returns a Logf that writes each message to w as one line,
// "name: message" (see flatten). It may be called from any goroutine.
func newLogf(name string, w io.Writer) func(format string, args ...any) {
	var mu sync.Mutex
	return func(format string, args ...any) {
		msg := flatten(fmt.Sprintf(format, args...))
		mu.Lock()
		fmt.Fprintf(w, "%s: %s\n", name, msg)
		mu.Unlock()
	}
}

// Run proxies until ctx ends; it returns nil then, or the setup error.
func Run(ctx context.Context, o *Options) error {
	logf := oneLine(o.Logf)
	if o.Listen == "" || o.To == "" {
		return errors.New("--listen and --to are required (see --help)")
	}
	if o.MaxHandshakes < 0 || o.HandshakeTimeout < 0 {
		return errors.New("--max-handshakes and --handshake-timeout must not be negative")
	}
	in, err := uri.Parse(o.Listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	out, err := uri.Parse(o.To)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	reg, err := o.Objects.RegistryLog(logf)
	if err != nil {
		return err
	}
	// Each connection looks its credentials up again (so a reloaded
	// object applies to the next one), but a missing or unfit object would
	// fail every connection: refuse to start instead.
	if err := checkTLS("--listen", reg, in, crypto.Server); err != nil {
		return err
	}
	if err := checkTLS("--to", reg, out, crypto.Client); err != nil {
		return err
	}
	ln, err := migration.Listen(ctx, in, o.config(reg))
	if err != nil {
		return err
	}
	defer ln.Close()
	s := &server{o: o, reg: reg, ln: ln, in: in, out: out, logf: logf}
	// file:, exec: and fd: carry a single channel: proxy it and return.
	if in.Transport == uri.File || in.Transport == uri.Exec || in.Transport == uri.FD {
		return s.single(ctx)
	}
	if o.Listening != nil {
		o.Listening(ln.Addr().String())
	}
	return s.serve(ctx)
}

// checkTLS looks up the objects that a's tls-* options name, for the
// TLS endpoint the proxy is on a (the server on --listen, the client on
// --to), and checks what each connection would check, so that a mistake
// ends the proxy before it serves, in one line naming the flag and the
// object.
func checkTLS(flag string, reg *crypto.Registry, a uri.Address, side crypto.Endpoint) error {
	t := a.TLS
	if t.Creds == "" {
		return nil
	}
	c, err := reg.Creds(t.Creds)
	if err != nil {
		return fmt.Errorf("%s: tls-creds=%s: %w (define it with --object)", flag, t.Creds, err)
	}
	if c.Endpoint() != side {
		return fmt.Errorf("%s: tls-creds=%s has endpoint=%s; the proxy is the TLS %s there and needs endpoint=%s credentials", flag, t.Creds, c.Endpoint(), side, side)
	}
	if side == crypto.Server && t.Authz != "" {
		if _, err := reg.Authz(t.Authz); err != nil {
			return fmt.Errorf("%s: tls-authz=%s: %w (define it with --object)", flag, t.Authz, err)
		}
	}
	// As package migration decides when it dials: the client checks the
	// server certificate against tls-hostname, else the host of a tcp
	// address, and x509 credentials without such a name fail.
	if side == crypto.Client && c.Kind() == crypto.X509 && t.Hostname == "" && (a.Transport != uri.TCP || a.Inet.Host == "") {
		return fmt.Errorf("%s: tls-creds=%s: x509 credentials on %s: need tls-hostname, the name the server certificate must match", flag, t.Creds, a.Transport)
	}
	return nil
}

// config returns the migration.Config of the proxy's connections on both
// sides: reg's credentials, Raw, and the handshake and hello timeouts.
func (o *Options) config(reg *crypto.Registry) *migration.Config {
	return &migration.Config{Registry: reg, Raw: o.Raw, HandshakeTimeout: o.HandshakeTimeout, HelloTimeout: o.HandshakeTimeout}
}

// copyBuffer is the size of each direction's copy buffer.
const copyBuffer = 256 << 10

// newChannelReader returns the reader copyHalf reads ch with: a
// recordGatherer for TLS, else ch itself, hiding any WriterTo.
func newChannelReader(ch channel.Channel) io.Reader {
	if t, ok := ch.(*channel.TLS); ok {
		return &recordGatherer{t: t}
	}
	return readerOnly{ch}
}

// tlsRecord is the largest plaintext of one TLS record.
const tlsRecord = 16 << 10

// gatherWait is the read deadline, from now, of the reads that gather
// records after the first: long enough for a read to take what crypto/tls
// or the socket already holds, far too short to wait for more.
const gatherWait = time.Microsecond

// recordGatherer reads a TLS channel several records at a time. A TLS
// Read returns one record (16 KiB at most), so a plain copy writes the
// other side 16 KiB at a time and a QEMU reading there wakes up, drains
// its socket and waits in its main loop once per record. After a
// blocking Read, the gatherer goes on reading with a read deadline
// already about to pass, taking the records that have already arrived,
// until the buffer is full or nothing more is there. crypto/tls keeps a
// partly received record across a timeout (net.Error with Temporary), and
// channel.TLS passes its inner socket's deadlines through, so nothing is
// lost; an error other than the timeout is returned by the next Read,
// after the bytes gathered before it.
type recordGatherer struct {
	t   *channel.TLS
	err error // returned by the next Read
}

// Read implements io.Reader.
func (g *recordGatherer) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.t.Read(p)
	if err != nil || n == 0 {
		return n, err
	}
	gathered := false
	for len(p)-n >= tlsRecord {
		if g.t.SetReadDeadline(time.Now().Add(gatherWait)) != nil {
			break // no deadlines on the inner channel: one record per Read
		}
		gathered = true
		m, err := g.t.Read(p[n:])
		n += m
		if err != nil {
			if ne, ok := errors.AsType[net.Error](err); !ok || !ne.Timeout() {
				g.err = err
			}
			break
		}
	}
	if gathered {
		if err := g.t.SetReadDeadline(time.Time{}); err != nil && g.err == nil {
			g.err = err
		}
	}
	return n, nil
}

// unixSendBuffer is the send buffer asked for on a unix socket the proxy
// writes to (the kernel caps it at net.core.wmem_max) instead of the
// default of about 208 KiB, so the proxy can run further ahead of a QEMU
// reading at the other end: fewer wakeups on both sides of a busy machine.
const unixSendBuffer = 4 << 20

// growSendBuffer enlarges the send buffer of st's channel when it is a
// plain unix socket. TCP is left alone: a fixed SO_SNDBUF would turn off
// the kernel's autotuning. A failure only costs speed, so it is ignored.
func growSendBuffer(st *migration.Stream) {
	s, ok := st.Channel().(*channel.Socket)
	if !ok || s.Network() != "unix" {
		return
	}
	if c, ok := s.NetConn().(interface{ SetWriteBuffer(int) error }); ok {
		_ = c.SetWriteBuffer(unixSendBuffer)
	}
}

type writerOnly struct{ io.Writer }
type readerOnly struct{ io.Reader }
