package channel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v2"
	"github.com/pion/logging"

	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/pskkeys"
)

var _ Channel = (*DTLS)(nil)
var _ Deadliner = (*DTLS)(nil)

// DTLSOptions tunes NewDTLS and NewDTLSPacket. The zero value is usable;
// it must not be modified after use.
type DTLSOptions struct {
	// Authz, on a server, checks the client's PSK identity (its username);
	// nil allows every user of keys.psk.
	Authz crypto.Authz
	// Logf receives pion/dtls's warnings and errors; nil is silent.
	Logf func(format string, args ...any)
}

// DTLS is a Channel encrypted with DTLS 1.2 (github.com/pion/dtls/v2) and
// PSK credentials, which crypto/tls lacks. The cipher suite is
// TLS_PSK_WITH_AES_128_GCM_SHA256 with the extended master secret
// required (interoperable with GnuTLS's DTLS 1.2 PSK over UDP and its
// psktool keys.psk files, see the interop tests). Plain PSK has no forward
// secrecy: pion's only ECDHE-PSK suite is CBC-based.
//
// Over a stream Channel ([NewDTLS]) records are delimited by their own
// 13-byte header (type, version, epoch, sequence, length), so pion sees one
// record per read and nothing is added to the wire; a record longer than
// pion's 8192-byte receive buffer, or bytes that are not a DTLS record
// header, end the stream with an error. Application data is cut into
// pieces of at most 8155 bytes so that each record, with its header and
// AEAD overhead, fits that buffer. Over a net.PacketConn ([NewDTLSPacket])
// each record is one datagram: delivery and order are then UDP's.
//
// A stream loses and reorders nothing, so over one DTLS accepts only the
// next record the peer sent, though pion, written for datagrams, would
// put up with gaps and silently drop records that repeat or fail
// authentication. In each direction, every record's sequence number must
// be the previous one's plus one; the epoch moves from 0 to 1 only where
// the handshake moves it, right after the peer's change_cipher_spec, and
// epoch 1 opens with the Finished message and then carries only
// application data and alerts (pion never renegotiates, and over a stream
// it never resends a flight). A record missing, repeated, reordered,
// replayed, in another epoch, or failing authentication (altered, or
// taken from another connection) ends the channel: the inner channel is
// closed, and Read, and every later Read and Write, returns an *OpError
// whose message says what was wrong and names the epoch and sequence
// number expected and received. Before that error, Read has returned
// exactly a prefix of what the peer wrote: no byte of a bad record, nor
// of any record after it, reaches the caller. (A cut at a record boundary
// still reads as io.EOF, see below.)
//
// Ending a stream: Close sends close_notify, which makes pion close the
// peer's whole connection. Shutdown(Write) ends the inner stream at a
// record boundary without close_notify (pion has no half-close), so the
// peer reads io.EOF; that end is not authenticated. A cut inside a record
// is an error wrapping io.ErrUnexpectedEOF.
//
// DTLS follows the Channel concurrency rule: one reader and one writer at
// once; Close may be called from any goroutine and unblocks pending calls,
// which return an error wrapping net.ErrClosed. Deadlines ([Deadliner])
// are pion's and work over any inner channel.
type DTLS struct {
	raw    net.Conn        // *dtlsStreamConn or *dtlsPacketConn
	sc     *dtlsStreamConn // raw over a stream, else nil
	inner  Channel         // nil for a packet conn
	creds  *crypto.Creds
	role   crypto.Endpoint
	opts   DTLSOptions
	name   string
	stream bool

	hs handshakeOnce
	dc *dtls.Conn // set by the handshake before hs records its result

	rbuf       []byte // one record's plaintext, for short reads
	rpos, rend int
	readData   bool // Read has returned data

	wmu  sync.Mutex
	wbuf []byte

	closed   atomic.Bool
	readShut atomic.Bool
	rawClose sync.Once

	decryptMu  sync.Mutex
	decryptErr string // pion's "decrypt failed" report, streams only
	noReject   bool   // tests: the report does not fail the stream (see decryptFailed)
	failMu     sync.Mutex
	failErr    error // the *dtlsStreamError that ended the channel

	dlMu     sync.Mutex
	rdl, wdl time.Time  // deadlines set before the handshake completed
	dlConn   *dtls.Conn // set once the handshake succeeded
}

// SetDeadline implements [Deadliner]: both deadlines, as net.Conn.
func (d *DTLS) SetDeadline(t time.Time) error {
	return errors.Join(d.SetReadDeadline(t), d.SetWriteDeadline(t))
}

// SetReadDeadline implements [Deadliner]. A Read past the deadline
// returns an error wrapping os.ErrDeadlineExceeded; the channel stays
// usable. Deadlines set before the handshake apply once it completes
// (the handshake itself is bounded by its context).
func (d *DTLS) SetReadDeadline(t time.Time) error {
	d.dlMu.Lock()
	defer d.dlMu.Unlock()
	d.rdl = t
	if d.dlConn != nil {
		return d.dlConn.SetReadDeadline(t)
	}
	return nil
}

// SetWriteDeadline implements [Deadliner]. Over a stream the inner
// channel's own write deadline is used to interrupt a blocked write when
// it has one.
func (d *DTLS) SetWriteDeadline(t time.Time) error {
	d.dlMu.Lock()
	defer d.dlMu.Unlock()
	d.wdl = t
	if d.dlConn != nil {
		return d.dlConn.SetWriteDeadline(t)
	}
	return nil
}

// decryptFailed records pion's report of an undecryptable record and
// makes the stream conn fail pion's next read with it (see
// handshake and dtls_discard.go).
func (d *DTLS) decryptFailed(msg string) {
	d.decryptMu.Lock()
	if d.decryptErr == "" {
		d.decryptErr = msg
	}
	d.decryptMu.Unlock()
	if d.sc != nil && !d.noReject {
		d.sc.reject(msg)
	}
}

// fail ends the channel for good with err, a *dtlsStreamError: the inner
// channel is closed (without close_notify, so the peer sees the
// connection cut), and every later Read, Write and WriteBuffers returns
// err wrapped in an *OpError for op.
func (d *DTLS) fail(op string, err error) error {
	d.failMu.Lock()
	if d.failErr == nil {
		d.failErr = err
	}
	err = d.failErr
	d.failMu.Unlock()
	d.closeRaw()
	return &OpError{Op: op, Channel: d.name, Err: err}
}

// failure returns fail's error for op, or nil.
func (d *DTLS) failure(op string) error {
	d.failMu.Lock()
	defer d.failMu.Unlock()
	if d.failErr == nil {
		return nil
	}
	return &OpError{Op: op, Channel: d.name, Err: d.failErr}
}

func (d *DTLS) decryptMsg() string {
	d.decryptMu.Lock()
	defer d.decryptMu.Unlock()
	return d.decryptErr
}

// NewDTLS wraps a stream Channel (tcp, unix, command, ...) with PSK
// credentials, as the DTLS client or server that creds.Endpoint() names.
// It does no I/O until Handshake, except that it starts the goroutine that
// reads records; Close ends it. opts may be nil. The DTLS owns inner from
// then on.
func NewDTLS(inner Channel, creds *crypto.Creds, opts *DTLSOptions) *DTLS {
	d := newDTLS(creds, opts)
	d.inner, d.stream = inner, true
	if inner == nil {
		d.name = "dtls ?"
		return d
	}
	d.name = "dtls " + inner.Name()
	d.sc = newDTLSStreamConn(inner)
	d.raw = d.sc
	return d
}

// NewDTLSPacket runs DTLS over a datagram socket such as a *net.UDPConn.
// remote is the peer; a server may pass nil to adopt the sender of the
// first datagram. The role is creds.Endpoint(), as for NewDTLS. The DTLS
// owns pc: Close closes it.
func NewDTLSPacket(pc net.PacketConn, remote net.Addr, creds *crypto.Creds, opts *DTLSOptions) *DTLS {
	d := newDTLS(creds, opts)
	if pc == nil {
		d.name = "dtls ?"
		return d
	}
	d.raw = &dtlsPacketConn{pc: pc, remote: remote}
	r := "*"
	if remote != nil {
		r = remote.String()
	}
	d.name = "dtls udp " + pc.LocalAddr().String() + "<->" + r
	return d
}

func newDTLS(creds *crypto.Creds, opts *DTLSOptions) *DTLS {
	d := &DTLS{creds: creds}
	if creds != nil {
		d.role = creds.Endpoint()
	}
	if opts != nil {
		d.opts = *opts
	}
	return d
}

// Name returns "dtls " followed by the inner channel's name.
func (d *DTLS) Name() string { return d.name }

func (d *DTLS) closeRaw() {
	d.rawClose.Do(func() {
		if d.raw != nil {
			_ = d.raw.Close()
		}
	})
}

// Handshake runs the DTLS handshake once; later calls return its result.
// It honours ctx: when ctx ends first the channel is closed and the error
// wraps ctx.Err(). Any failure (wrong key, unknown user, authz denial)
// closes the channel. A Handshake called while another runs waits for that
// one's result, or returns when its own ctx ends (without closing the
// channel).
func (d *DTLS) Handshake(ctx context.Context) error {
	return d.hs.do(ctx, func() error {
		err := d.handshake(ctx)
		if err == nil && d.closed.Load() {
			// Close ran while the handshake was finishing and only closed
			// the inner channel: close pion's conn too, which ends its
			// goroutines.
			_ = d.dc.Close()
			err = d.handshakeErr(net.ErrClosed)
		}
		if err != nil {
			d.closeRaw()
		}
		return err
	}, d.handshakeErr)
}

// handshakeErr wraps err as the handshake's *OpError.
func (d *DTLS) handshakeErr(err error) error {
	return &OpError{Op: "dtls handshake (" + d.role.String() + ")", Channel: d.name, Err: err}
}

// handshake runs the handshake for Handshake, which runs it once.
func (d *DTLS) handshake(ctx context.Context) error {
	fail := d.handshakeErr
	if d.raw == nil || d.creds == nil {
		return fail(errors.New("channel: NewDTLS needs an inner channel and credentials"))
	}
	if d.creds.Kind() != crypto.PSK {
		return fail(fmt.Errorf("channel: credentials %q are %s; DTLS uses %s", d.creds.ID(), d.creds.Kind(), crypto.PSK))
	}
	if d.closed.Load() {
		return fail(net.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	cfg := &dtls.Config{
		CipherSuites:         []dtls.CipherSuiteID{dtls.TLS_PSK_WITH_AES_128_GCM_SHA256},
		ExtendedMasterSecret: dtls.RequireExtendedMasterSecret,
		LoggerFactory:        pionLogger{logf: d.opts.Logf},
	}
	if d.stream {
		// A reliable stream loses no records, so a record that fails to
		// decrypt is a wrong key or tampering, never loss: fail now
		// instead of letting pion discard it and wait for a
		// retransmission that cannot help.
		cfg.LoggerFactory = pionLogger{logf: d.opts.Logf, decryptFailed: d.decryptFailed}
		// For the same reason no flight ever needs retransmitting. pion
		// resends a flight that got no answer within FlightInterval (1 s
		// by default, easily passed on a loaded machine), epoch-0 records
		// after epoch-1 ones included, and dtlsSequence refuses such
		// records as injected: never resend. (A finished pion server
		// would also wait this long before answering a resent flight,
		// but dtlsSequence lets no handshake record through after the
		// Finished, so that wait never starts.)
		cfg.FlightInterval = dtlsNoRetransmit
	}
	creds, authz := d.creds, d.opts.Authz
	var deniedMu sync.Mutex
	var denied error
	identity := creds.PSKIdentity() // the server learns it from the client
	if d.role == crypto.Client {
		id := creds.PSKIdentity()
		cfg.PSKIdentityHint = []byte(id)
		cfg.PSK = func([]byte) ([]byte, error) { return pskkeys.Key(creds, id) }
	} else {
		cfg.PSK = func(hint []byte) ([]byte, error) {
			id := string(hint)
			deniedMu.Lock()
			identity = id
			deniedMu.Unlock()
			k, err := pskkeys.Key(creds, id)
			if err == nil && authz != nil && !authz.IsAllowed(id) {
				err = fmt.Errorf("crypto: %s: authz %q denies PSK identity %q", creds.ID(), authz.ID(), id)
			}
			if err != nil {
				deniedMu.Lock()
				denied = err
				deniedMu.Unlock()
			}
			return k, err
		}
	}
	stop := context.AfterFunc(ctx, d.closeRaw)
	var dc *dtls.Conn
	var err error
	if d.role == crypto.Client {
		dc, err = dtls.ClientWithContext(ctx, d.raw, cfg)
	} else {
		dc, err = dtls.ServerWithContext(ctx, d.raw, cfg)
	}
	if !stop() {
		if dc != nil {
			_ = dc.Close()
		}
		return fail(fmt.Errorf("%w (%v)", ctx.Err(), err))
	}
	if err != nil {
		deniedMu.Lock()
		why, id := denied, identity
		deniedMu.Unlock()
		if why != nil {
			return fail(fmt.Errorf("%w (%v)", why, err))
		}
		if msg := d.decryptMsg(); msg != "" {
			return fail(fmt.Errorf("a handshake record from the peer failed to decrypt (wrong PSK key for identity %q?): %s", id, msg))
		}
		if code, ok := dtlsRemoteAlert(err); ok {
			return fail(&AlertError{Code: code, InHandshake: true, Err: err})
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fail(fmt.Errorf("peer closed the connection during the handshake (%v): %w", err, io.ErrUnexpectedEOF))
		}
		return fail(err)
	}
	d.dc = dc
	if d.sc != nil {
		d.sc.arm()
	}
	d.dlMu.Lock()
	d.dlConn = dc
	dc.SetReadDeadline(d.rdl)
	dc.SetWriteDeadline(d.wdl)
	d.dlMu.Unlock()
	return nil
}

func (d *DTLS) implicitHandshake() error {
	if done, err := d.hs.completed(); done {
		return err
	}
	return d.Handshake(context.Background())
}

// PeerIdentity returns, on a server after the handshake, the client's PSK
// identity (its username); "" on a client or before the handshake.
func (d *DTLS) PeerIdentity() string {
	if done, err := d.hs.completed(); !done || err != nil || d.role != crypto.Server {
		return ""
	}
	return string(d.dc.ConnectionState().IdentityHint)
}

func (d *DTLS) opErr(op string, err error) error {
	if fe := d.failure(op); fe != nil {
		return fe
	}
	if d.closed.Load() {
		return &OpError{Op: op, Channel: d.name, Err: net.ErrClosed}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return &OpError{Op: op, Channel: d.name, Err: fmt.Errorf("stream cut inside a DTLS record: %w", err)}
	}
	if code, ok := dtlsRemoteAlert(err); ok {
		return &OpError{Op: op, Channel: d.name, Err: &AlertError{Code: code, BeforeData: !d.readData, Err: err}}
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() && !errors.Is(err, os.ErrDeadlineExceeded) {
		// pion's own deadline error: report it as the standard library's.
		return &OpError{Op: op, Channel: d.name, Err: os.ErrDeadlineExceeded}
	}
	var oe *OpError
	if errors.As(err, &oe) {
		return err
	}
	return &OpError{Op: op, Channel: d.name, Err: err}
}

// Read implements [Channel]. It returns io.EOF when the peer closed (with
// close_notify, or at a record boundary). Over a stream, a record out of
// sequence or one that fails authentication ends the channel with an
// error that says which (see the type doc); the bytes returned before are
// exactly what the peer sent.
func (d *DTLS) Read(p []byte) (int, error) {
	if err := d.implicitHandshake(); err != nil {
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if d.rpos < d.rend {
		n := copy(p, d.rbuf[d.rpos:d.rend])
		d.rpos += n
		return n, nil
	}
	if err := d.failure("read"); err != nil {
		return 0, err
	}
	for {
		buf := p
		if len(p) < dtlsMaxRecord {
			if d.rbuf == nil {
				d.rbuf = make([]byte, dtlsMaxRecord)
			}
			buf = d.rbuf
		}
		n, err := d.dc.Read(buf)
		if d.sc != nil {
			probe, bad := d.sc.results.see(err)
			var se *dtlsStreamError
			if bad == nil && errors.As(err, &se) {
				bad = se
			}
			if bad != nil {
				return 0, d.fail("read", bad)
			}
			if probe {
				continue
			}
		}
		if n > 0 {
			d.readData = true
		}
		if n > 0 && len(p) < dtlsMaxRecord {
			c := copy(p, d.rbuf[:n])
			d.rpos, d.rend = c, n
			n = c
		}
		if err != nil {
			if d.readShut.Load() || (err == io.EOF && !d.closed.Load()) {
				return n, io.EOF
			}
			return n, d.opErr("read", err)
		}
		if n > 0 {
			return n, nil
		}
	}
}

// Write implements [Channel]: p is sent as records of at most 8155 bytes.
func (d *DTLS) Write(p []byte) (int, error) {
	if err := d.implicitHandshake(); err != nil {
		return 0, err
	}
	if err := d.failure("write"); err != nil {
		return 0, err
	}
	d.wmu.Lock()
	defer d.wmu.Unlock()
	return d.writeLocked(p)
}

func (d *DTLS) writeLocked(p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), dtlsMaxPlaintext)]
		n, err := d.dc.Write(chunk)
		total += n
		if err != nil {
			return total, d.opErr("write", err)
		}
		p = p[len(chunk):]
	}
	return total, nil
}

// WriteBuffers implements [Channel]: the slices are packed into full
// records through one reusable buffer. It consumes *bufs as
// net.Buffers.WriteTo does.
func (d *DTLS) WriteBuffers(bufs *net.Buffers) (int64, error) {
	if err := d.implicitHandshake(); err != nil {
		return 0, err
	}
	if err := d.failure("write"); err != nil {
		return 0, err
	}
	d.wmu.Lock()
	defer d.wmu.Unlock()
	if d.wbuf == nil {
		d.wbuf = make([]byte, 0, dtlsMaxPlaintext)
	}
	var total int64
	flush := func() error {
		if len(d.wbuf) == 0 {
			return nil
		}
		n, err := d.writeLocked(d.wbuf)
		total += int64(n)
		d.wbuf = d.wbuf[:0]
		return err
	}
	for len(*bufs) > 0 {
		b := (*bufs)[0]
		for len(b) > 0 {
			if len(d.wbuf) == 0 && len(b) >= dtlsMaxPlaintext {
				whole := len(b) - len(b)%dtlsMaxPlaintext
				n, err := d.writeLocked(b[:whole])
				total += int64(n)
				if err != nil {
					(*bufs)[0] = b[n:]
					return total, err
				}
				b = b[whole:]
				continue
			}
			c := copy(d.wbuf[len(d.wbuf):dtlsMaxPlaintext], b)
			d.wbuf = d.wbuf[:len(d.wbuf)+c]
			b = b[c:]
			if len(d.wbuf) == dtlsMaxPlaintext {
				if err := flush(); err != nil {
					(*bufs)[0] = b
					return total, err
				}
			}
		}
		(*bufs)[0] = nil
		*bufs = (*bufs)[1:]
	}
	return total, flush()
}

// Shutdown implements [Channel] for stream channels: the write side ends
// the inner stream at a record boundary (see the type doc), the read side
// makes Read return io.EOF. Over a PacketConn it returns an error wrapping
// errors.ErrUnsupported.
func (d *DTLS) Shutdown(how Direction) error {
	if how != Read && how != Write && how != Both {
		return &OpError{Op: "shutdown", Channel: d.name, Err: fmt.Errorf("invalid direction %d", int(how))}
	}
	if d.closed.Load() {
		return &OpError{Op: "shutdown", Channel: d.name, Err: net.ErrClosed}
	}
	if !d.stream {
		return &OpError{Op: "shutdown", Channel: d.name, Err: fmt.Errorf("datagram DTLS has no half-close: %w", errors.ErrUnsupported)}
	}
	if how&Read != 0 {
		d.readShut.Store(true)
	}
	if how&Write != 0 && d.wmu.TryLock() {
		// No Write in flight: the stream ends between records. (With
		// one in flight, Shutdown does not wait; the peer sees a cut.)
		defer d.wmu.Unlock()
	}
	if err := d.inner.Shutdown(how); err != nil {
		return &OpError{Op: "shutdown", Channel: d.name, Err: err}
	}
	return nil
}

// dtlsNoRetransmit is the FlightInterval of DTLS over a stream: pion never
// resends a flight (see handshake).
const dtlsNoRetransmit = time.Duration(math.MaxInt64)

// dtlsCloseNotifyTimeout bounds how long Close waits to send close_notify.
const dtlsCloseNotifyTimeout = 5 * time.Second

// Close sends close_notify when the handshake completed and no Write is
// in flight, then closes the inner channel. Calls after the first return
// an error wrapping net.ErrClosed.
func (d *DTLS) Close() error {
	if d.closed.Swap(true) {
		return &OpError{Op: "close", Channel: d.name, Err: net.ErrClosed}
	}
	// stop keeps a handshake from starting; one running ends when the
	// inner channel is closed (see Handshake).
	phase, hsErr := d.hs.stop(d.handshakeErr(net.ErrClosed))
	if phase != hsDone || hsErr != nil {
		d.closeRaw()
		return nil
	}
	d.closeSession(d.dc)
	return nil
}

// closeSession ends an established session for Close: close_notify when
// no Write is in flight (bounded by dtlsCloseNotifyTimeout), then the
// inner channel is closed.
func (d *DTLS) closeSession(dc *dtls.Conn) {
	if d.wmu.TryLock() {
		t := time.AfterFunc(dtlsCloseNotifyTimeout, d.closeRaw)
		_ = dc.Close()
		t.Stop()
		d.wmu.Unlock()
	} else {
		d.closeRaw() // unblocks the Write in flight
		_ = dc.Close()
	}
	d.closeRaw()
	// pion keeps a goroutine per deadline still ahead, until it passes;
	// clearing them ends those goroutines.
	_ = dc.SetDeadline(time.Time{})
}

// pionLogger routes pion's warnings and errors to Logf, and its report of
// a record that failed to decrypt to decryptFailed.
type pionLogger struct {
	logf          func(format string, args ...any)
	decryptFailed func(msg string)
}

func (l pionLogger) NewLogger(string) logging.LeveledLogger { return l }
func (l pionLogger) Trace(string)                           {}
func (l pionLogger) Tracef(string, ...any)                  {}
func (l pionLogger) Debug(string)                           {}

// Debugf watches for pion conn.go's "%s: decrypt failed: %s".
func (l pionLogger) Debugf(format string, args ...any) {
	if l.decryptFailed != nil && strings.Contains(format, "decrypt failed") {
		l.decryptFailed(fmt.Sprintf(format, args...))
	}
}
func (l pionLogger) Info(string)          {}
func (l pionLogger) Infof(string, ...any) {}
func (l pionLogger) Warn(msg string)      { l.Warnf("%s", msg) }
func (l pionLogger) Error(msg string)     { l.Errorf("%s", msg) }
func (l pionLogger) Warnf(format string, args ...any) {
	if l.logf != nil {
		l.logf("dtls: warning: "+format, args...)
	}
}
func (l pionLogger) Errorf(format string, args ...any) {
	if l.logf != nil {
		l.logf("dtls: error: "+format, args...)
	}
}
