// Package proxy is migrate-proxy: for every connection accepted on one
// migration address it opens one to another and copies bytes both ways,
// so a migration (QEMU's main channel, its multifd channels and its return
// path) crosses a hop where TLS is added or removed.
//
// Connections are handled strictly in the order they are accepted: the
// outgoing connection of the k-th accepted one is set up (TLS handshake
// included) before the (k+1)-th is accepted. QEMU 7.2's destination tells
// its main channel from multifd channels by arrival order alone, so a
// proxy that reordered them would break multifd migrations.
//
// # Ends and cuts
//
// Each direction of a connection is copied on its own. A clean end of one
// direction is passed on as an end: a FIN, after close_notify over TLS.
// Without --raw a TLS peer must end with close_notify; with --raw (QEMU
// sends no close_notify) an end at a TLS record boundary is clean. Any
// other end is a cut: a read or write error, a TLS stream truncated, the
// proxy stopping. A cut is never passed on as a clean end: both
// connections are aborted ([migration.Stream.Abort]), which resets a tcp
// connection, plain or beneath TLS and without close_notify, so each peer
// reads ECONNRESET. unix sockets, commands and files have no reset: their
// peer sees the end of its input (QEMU's loader still fails on a stream
// that ends before its EOF section), and the proxy logs the cut.
//
// Goroutines: two per proxied connection (one per direction); Run waits
// for all of them before it returns.
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
	// Logf receives one line per event; nil is silent.
	Logf func(format string, args ...any)
	// Listening, if set, is called with the address listened on.
	Listening func(addr string)
}

// Main is migrate-proxy's main: it returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	const name = "migrate-proxy"
	var o Options
	fs := cli.NewFlagSet(name, cli.Usage{
		Synopsis: "migrate-proxy --listen URI --to URI [--object SPEC]... [--raw]",
		Description: `For every connection accepted on --listen, opens one on --to and copies
both ways, so QEMU's multifd channels and return path pass through. TLS on
either side comes from the URI's tls-creds option (server credentials on
--listen, client credentials on --to). --to file:PATH saves an incoming
stream. Use it to put TLS between two QEMUs that cannot reach each other
directly, or to terminate TLS in front of a unix socket. Runs until
interrupted (SIGINT or SIGTERM); with --listen file:, exec: or fd: (one
channel) it exits after that channel, non-zero if it failed.`,
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
	fs.StringVar(&o.Listen, "listen", "", "migration URI to accept connections on (e.g. tcp:0.0.0.0:4444,tls-creds=tls0; required)")
	fs.StringVar(&o.To, "to", "", "migration URI to open one connection on per accepted one (e.g. unix:/run/mig-in.sock; required)")
	fs.Var(&o.Objects, "object", "a credentials or authz object in QEMU -object syntax, repeatable\n(e.g. tls-creds-x509,id=tls0,dir=/etc/pki/qemu,endpoint=server)")
	fs.BoolVar(&o.Raw, "raw", false, "the peers are QEMU: no livemig hello on either side")
	if ok, code := cli.Parse(fs, args, stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return cli.Fail(stderr, name, fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0)))
	}
	var mu sync.Mutex
	o.Logf = func(format string, args ...any) {
		mu.Lock()
		fmt.Fprintf(stderr, name+": "+format+"\n", args...)
		mu.Unlock()
	}
	o.Listening = func(addr string) { o.Logf("listening on %s", addr) }
	ctx, cancel := cli.SignalContext()
	defer cancel()
	if err := Run(ctx, &o); err != nil {
		return cli.Fail(stderr, name, err)
	}
	return 0
}

// Run proxies until ctx ends; it returns nil then, or the setup error.
func Run(ctx context.Context, o *Options) error {
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if o.Listen == "" || o.To == "" {
		return errors.New("--listen and --to are required (see --help)")
	}
	in, err := uri.Parse(o.Listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	out, err := uri.Parse(o.To)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	reg, err := o.Objects.RegistryLog(o.Logf)
	if err != nil {
		return err
	}
	// A proxy waits for its peer as long as it runs: the connect phase of
	// an accepting task (Config.ConnectTimeout, 30 s by default) would end
	// every idle Accept with a timeout, logged as a refused connection.
	ln, err := migration.Listen(ctx, in, &migration.Config{Registry: reg, Raw: o.Raw, ConnectTimeout: acceptForever})
	if err != nil {
		return err
	}
	defer ln.Close()
	if o.Listening != nil {
		o.Listening(ln.Addr().String())
	}
	// file:, exec: and fd: carry a single channel: proxy it and return.
	single := in.Transport == uri.File || in.Transport == uri.Exec || in.Transport == uri.FD
	var wg sync.WaitGroup
	defer wg.Wait()
	for n := 1; ; n++ {
		a, err := ln.Accept(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if single {
				return err
			}
			logf("connection %d: refused: %v", n, err)
			continue
		}
		cfg := &migration.Config{Registry: reg, Raw: o.Raw}
		if h := a.Peer(); h != nil && !o.Raw {
			cfg.SessionID, cfg.Role, cfg.Index, cfg.Channels, cfg.Capabilities = h.Session, h.Role, int(h.Index), int(h.Channels), h.Capabilities
		}
		b, err := migration.Dial(ctx, out, cfg)
		if err != nil {
			// Not a clean end for the source either.
			a.Abort()
			if single {
				return err
			}
			logf("connection %d: %s: %v", n, out, err)
			if ctx.Err() != nil {
				return nil
			}
			continue
		}
		logf("connection %d: %s -> %s", n, a.Channel().Name(), b.Channel().Name())
		// A file is written or read, never both: nothing flows back.
		oneWay := in.Transport == uri.File || out.Transport == uri.File
		if single {
			return pipe(ctx, n, a, b, oneWay, logf)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := pipe(ctx, n, a, b, oneWay, logf); err != nil {
				logf("%v", err)
			}
		}()
	}
}

// pipe copies a to b and b to a until both directions end, then closes
// both. A direction that ends cleanly passes the end on (a FIN, and
// close_notify over TLS) and leaves the other direction running. A cut
// (a read or write error, a stream that ends in a way its transport calls
// truncated, or ctx's end) is never passed on as a clean end: both
// streams are aborted (migration.Stream.Abort resets tcp connections,
// without close_notify) and the cut is returned.
func pipe(ctx context.Context, n int, a, b *migration.Stream, oneWay bool, logf func(string, ...any)) error {
	start := time.Now()
	var (
		once  sync.Once
		cause error // the first cut, set in once
	)
	cut := func(err error) {
		once.Do(func() {
			cause = err
			a.Abort()
			b.Abort()
		})
	}
	stop := context.AfterFunc(ctx, func() { cut(fmt.Errorf("proxy stopping: %w", ctx.Err())) })
	var wg sync.WaitGroup
	var fwd, back int64
	wg.Add(2)
	go func() {
		defer wg.Done()
		var err error
		if fwd, err = copyHalf(b, a); err != nil {
			cut(fmt.Errorf("forward: %w", err))
		}
	}()
	go func() {
		defer wg.Done()
		if oneWay {
			return
		}
		var err error
		if back, err = copyHalf(a, b); err != nil {
			cut(fmt.Errorf("back: %w", err))
		}
	}()
	wg.Wait()
	stop()
	// Both directions are done: a cut that ctx starts from now on is too
	// late to matter, and one already running is waited for.
	once.Do(func() {})
	a.Close()
	b.Close()
	el := time.Since(start).Seconds()
	if cause != nil {
		return fmt.Errorf("connection %d: cut after %s forward, %s back: %w", n, cli.FormatBytes(float64(fwd)), cli.FormatBytes(float64(back)), cause)
	}
	logf("connection %d: closed: %s forward, %s back in %.2f s (%s/s)", n, cli.FormatBytes(float64(fwd)),
		cli.FormatBytes(float64(back)), el, cli.FormatBytes(float64(fwd+back)/max(el, 1e-3)))
	return nil
}

// copyHalf copies src's reading side into dst's channel. At a clean end
// it shuts dst's writing side, so the peer sees the end; it returns any
// other end as an error, which pipe turns into a cut of both streams.
func copyHalf(dst, src *migration.Stream) (int64, error) {
	buf := make([]byte, copyBuffer)
	growSendBuffer(dst)
	// src's channel is read directly: a read then takes up to the whole
	// buffer, instead of the Stream's 32 KiB read buffer, and nothing is
	// copied twice (for TLS, see recordGatherer). The Stream has read nothing
	// (Accept and Dial read the hello from the channel itself), and its
	// Abort closes the channel, which still unblocks these reads.
	n, err := io.CopyBuffer(writerOnly{dst.Channel()}, newChannelReader(src.Channel()), buf)
	if err == nil {
		// The channel is read directly, not through the Stream: an abort
		// by the other direction shows in the Stream's sticky error even
		// where the closed channel read as an end.
		err = src.Err()
	}
	if err != nil {
		return n, err
	}
	// A peer that already closed, or a file, may refuse the shutdown; the
	// copy itself succeeded, and Close follows.
	_ = dst.Channel().Shutdown(channel.Write)
	return n, nil
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

// acceptForever bounds an Accept of the proxy: a century, as long as a
// time.Duration can safely be added to the current time.
const acceptForever = 100 * 365 * 24 * time.Hour

type writerOnly struct{ io.Writer }
type readerOnly struct{ io.Reader }
