package channel

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/iovec"
)

var _ Channel = (*TLS)(nil)
var (
	_ Deadliner = (*TLS)(nil)
	_ NetConner = (*TLS)(nil)
)

// tlsMaxPlaintext is the largest plaintext of one TLS record (RFC 8446
// 5.1); WriteBuffers fills records to exactly this size.
const tlsMaxPlaintext = 16384

// TLSOptions tunes NewTLS. The zero value is usable; it must not be
// modified after NewTLS.
type TLSOptions struct {
	// TLSOptions is what the credentials need to build their TLS
	// configuration, passed to [crypto.Creds.TLSConfig] as is: on a
	// client the Hostname the server certificate must match, on a server
	// the Authz that checks the client's DN, and MinVersion. The zero
	// value (no host name, no authz, TLS 1.3) fits a server and an anon
	// client.
	crypto.TLSOptions
	// Raw is for QEMU peers, which end a TLS stream without close_notify
	// on their main channel (every QEMU version) and, before 10.0, on
	// their multifd channels too (QEMU 10.0 ends those with close_notify):
	// a clean EOF at a TLS record boundary ends the stream (io.EOF), as
	// close_notify does. Without Raw such an EOF is an error wrapping
	// io.ErrUnexpectedEOF, since it may be a truncation. A cut inside a
	// record is such an error in both modes. [TLS.CloseNotifyReceived]
	// tells the two clean ends apart.
	Raw bool
}

// TLS is a Channel encrypted with crypto/tls, using x509 or anon
// credentials from package crypto, which makes every trust decision (see
// [crypto.Creds.TLSConfig]): TLS is a thin wrapper.
//
// NewTLS does no I/O; [TLS.Handshake] runs the handshake, and Read and
// Write run it implicitly (without a deadline) if it has not run. TLS
// follows the Channel concurrency rule: one reader and one writer may run
// at once, and Close (or Shutdown) may be called from any goroutine; Close
// unblocks pending calls, which then return an error wrapping
// net.ErrClosed.
//
// WriteBuffers copies its slices into a reusable 16 KiB buffer and writes
// one full-size TLS record per 16 KiB, never one record per slice. Write
// and WriteBuffers hand the inner channel up to four records per write,
// so a 1 MiB write costs 16 system calls instead of 64.
type TLS struct {
	inner Channel
	creds *crypto.Creds
	role  crypto.Endpoint // creds.Endpoint()
	opts  TLSOptions
	raw   *tlsRawConn
	name  string

	hs   handshakeOnce
	conn *tls.Conn // set by the handshake before hs records its result

	wmu  sync.Mutex
	wbuf []byte // WriteBuffers' record buffer, tlsMaxPlaintext bytes

	readData bool                       // Read has returned data (reader only)
	alert    atomic.Pointer[AlertError] // the alert Read received, for Write's errors

	readShut      atomic.Bool
	closed        atomic.Bool
	closeNotified atomic.Bool // Read saw the peer's close_notify
}

// NewTLS wraps inner with creds (x509 or anon; PSK needs [NewDTLS]),
// as the TLS client or server that creds.Endpoint() names. It does no
// I/O until Handshake. opts may be nil. The TLS owns inner from then on:
// Close closes it.
func NewTLS(inner Channel, creds *crypto.Creds, opts *TLSOptions) *TLS {
	t := &TLS{inner: inner, creds: creds}
	if creds != nil {
		t.role = creds.Endpoint()
	}
	if opts != nil {
		t.opts = *opts
	}
	name := "?"
	if inner != nil {
		name = inner.Name()
	}
	t.name = "tls " + name
	t.raw = &tlsRawConn{ch: inner}
	return t
}

// Name returns "tls " followed by the inner channel's name.
func (t *TLS) Name() string { return t.name }

// Handshake runs the TLS handshake once; later calls return its result.
// It honours ctx: when ctx ends first, the inner channel is closed and
// Handshake returns an error wrapping ctx.Err(). Any failure closes the
// channel (fail closed) and says which side failed and why, e.g. that the
// authz object denied the client's DN. A Handshake called while another
// runs waits for that one's result, or returns when its own ctx ends
// (without closing the channel).
func (t *TLS) Handshake(ctx context.Context) error {
	return t.hs.do(ctx, func() error {
		err := t.handshake(ctx)
		if err == nil && t.closed.Load() {
			// Close ran while the handshake was finishing and only closed
			// the inner channel.
			err = t.handshakeErr(net.ErrClosed)
		}
		if err != nil {
			_ = t.raw.Close()
		}
		return err
	}, t.handshakeErr)
}

// handshakeErr wraps err as the handshake's *OpError.
func (t *TLS) handshakeErr(err error) error {
	return &OpError{Op: "tls handshake (" + t.role.String() + ")", Channel: t.name, Err: err}
}

// handshake runs the handshake for Handshake, which runs it once.
func (t *TLS) handshake(ctx context.Context) error {
	fail := t.handshakeErr
	if t.inner == nil || t.creds == nil {
		return fail(errors.New("channel: NewTLS needs an inner channel and credentials"))
	}
	if t.closed.Load() {
		return fail(net.ErrClosed)
	}
	cfg, err := t.creds.TLSConfig(t.opts.TLSOptions)
	if err != nil {
		return fail(err)
	}
	if t.role == crypto.Server {
		t.conn = tls.Server(t.raw, cfg)
	} else {
		t.conn = tls.Client(t.raw, cfg)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	stop := context.AfterFunc(ctx, func() { _ = t.raw.Close() })
	err = t.conn.Handshake()
	if !stop() {
		return fail(fmt.Errorf("%w (%v)", ctx.Err(), err))
	}
	if err != nil {
		return fail(t.handshakeCause(err))
	}
	return nil
}

// handshakeCause says why crypto/tls's handshake failed with err.
func (t *TLS) handshakeCause(err error) error {
	if t.closed.Load() {
		return fmt.Errorf("%w: %v", net.ErrClosed, err)
	}
	if code, ok := tlsRemoteAlert(err); ok {
		return &AlertError{Code: code, InHandshake: true, Err: err}
	}
	if t.raw.sawEOF.Load() {
		return fmt.Errorf("peer closed the connection during the handshake (%v): %w", err, io.ErrUnexpectedEOF)
	}
	return err
}

// implicitHandshake runs the handshake without a deadline for Read and
// Write called before Handshake.
func (t *TLS) implicitHandshake() error {
	if done, err := t.hs.completed(); done {
		return err
	}
	return t.Handshake(context.Background())
}

// session returns the *tls.Conn once a handshake has succeeded, else nil.
func (t *TLS) session() *tls.Conn {
	if done, err := t.hs.completed(); !done || err != nil {
		return nil
	}
	return t.conn
}

// ConnectionState returns the TLS state after the handshake (the zero
// value before).
func (t *TLS) ConnectionState() tls.ConnectionState {
	c := t.session()
	if c == nil {
		return tls.ConnectionState{}
	}
	return c.ConnectionState()
}

// PeerIdentity returns, after a successful handshake, the subject DN of
// the peer's certificate as [crypto.CertDN] prints it ("" if the peer
// sent none, as an anon server's client). On a server with verify-peer=on
// this is the verified client identity that authz checked.
func (t *TLS) PeerIdentity() string {
	cs := t.ConnectionState()
	if len(cs.PeerCertificates) == 0 {
		return ""
	}
	return crypto.CertDN(cs.PeerCertificates[0])
}

// NetConn returns the *tls.Conn once the handshake has succeeded (nil
// before, or after it failed). Reading or writing it directly bypasses the
// Raw EOF rules and the record coalescing.
func (t *TLS) NetConn() net.Conn {
	if c := t.session(); c != nil {
		return c
	}
	return nil
}

// Read implements [Channel]. It returns io.EOF when the peer sent
// close_notify, or, with Raw, when the stream ended at a record boundary;
// see [TLSOptions.Raw]. An alert from the peer is an [*AlertError]
// (wrapped in an *OpError); one that arrives before any data is the
// peer's refusal of the handshake (see AlertError). Once Read has
// received an alert, a failing Write or WriteBuffers reports it too.
func (t *TLS) Read(p []byte) (int, error) {
	if err := t.implicitHandshake(); err != nil {
		return 0, err
	}
	n, err := t.conn.Read(p)
	if n > 0 {
		t.readData = true
	}
	if err != nil {
		err = t.readErr(err)
	}
	return n, err
}

func (t *TLS) readErr(err error) error {
	if t.closed.Load() {
		return &OpError{Op: "read", Channel: t.name, Err: net.ErrClosed}
	}
	rawEOF := t.raw.sawEOF.Load()
	if err == io.EOF && !rawEOF {
		// crypto/tls returns io.EOF without the inner channel's EOF only
		// for the peer's close_notify alert.
		t.closeNotified.Store(true)
	}
	if t.readShut.Load() && (err == io.EOF || rawEOF) {
		return io.EOF
	}
	if rawEOF && !t.raw.eofAtBoundary.Load() {
		return &OpError{Op: "read", Channel: t.name, Err: fmt.Errorf("stream cut inside a TLS record: %w", io.ErrUnexpectedEOF)}
	}
	if err == io.EOF {
		if !rawEOF || t.opts.Raw {
			return io.EOF // close_notify, or a clean end in raw mode
		}
		return &OpError{Op: "read", Channel: t.name, Err: fmt.Errorf("peer ended the stream without TLS close_notify (a truncation, or a QEMU peer's main channel, or any channel of QEMU before 10.0, which need Raw): %w", io.ErrUnexpectedEOF)}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return &OpError{Op: "read", Channel: t.name, Err: fmt.Errorf("stream cut inside a TLS record: %w", err)}
	}
	if code, ok := tlsRemoteAlert(err); ok {
		a := &AlertError{Code: code, BeforeData: !t.readData, Err: err}
		t.alert.CompareAndSwap(nil, a)
		return &OpError{Op: "read", Channel: t.name, Err: a}
	}
	var oe *OpError
	if errors.As(err, &oe) {
		return err
	}
	return &OpError{Op: "read", Channel: t.name, Err: err}
}

func (t *TLS) writeErr(op string, err error) error {
	if t.closed.Load() {
		return &OpError{Op: op, Channel: t.name, Err: net.ErrClosed}
	}
	if a := t.alert.Load(); a != nil {
		// The peer's alert, which Read received, says why the write failed.
		return &OpError{Op: op, Channel: t.name, Err: &AlertError{Code: a.Code, BeforeData: a.BeforeData, Err: err}}
	}
	var oe *OpError
	if errors.As(err, &oe) {
		return err
	}
	return &OpError{Op: op, Channel: t.name, Err: err}
}

// Write implements [Channel]; each call produces records of up to 16 KiB.
func (t *TLS) Write(p []byte) (int, error) {
	if err := t.implicitHandshake(); err != nil {
		return 0, err
	}
	t.wmu.Lock()
	defer t.wmu.Unlock()
	t.raw.startBatch()
	n, err := t.conn.Write(p)
	if ferr := t.raw.endBatch(); err == nil && ferr != nil {
		n, err = 0, ferr
	}
	if err != nil {
		err = t.writeErr("write", err)
	}
	return n, err
}

// WriteBuffers implements [Channel]. It packs the slices into full 16 KiB
// records: runs of small slices are copied into one reusable buffer,
// whole records of a large slice go straight to crypto/tls. Slices that
// continue one another in memory (consecutive pages of one buffer, such
// as guest RAM) count as one large slice, so they are not copied. It consumes
// *bufs as net.Buffers.WriteTo does and does not allocate. On error the
// count is the bytes accepted by the TLS layer, and *bufs may have been
// consumed further.
func (t *TLS) WriteBuffers(bufs *net.Buffers) (int64, error) {
	if err := t.implicitHandshake(); err != nil {
		return 0, err
	}
	t.wmu.Lock()
	defer t.wmu.Unlock()
	if t.wbuf == nil {
		t.wbuf = make([]byte, 0, tlsMaxPlaintext)
	}
	t.raw.startBatch()
	var total int64
	flush := func() error {
		if len(t.wbuf) == 0 {
			return nil
		}
		n, err := t.conn.Write(t.wbuf)
		total += int64(n)
		t.wbuf = t.wbuf[:0]
		return err
	}
	for len(*bufs) > 0 {
		b := mergeAdjacent(bufs)
		for len(b) > 0 {
			if len(t.wbuf) == 0 && len(b) >= tlsMaxPlaintext {
				whole := len(b) - len(b)%tlsMaxPlaintext
				n, err := t.conn.Write(b[:whole])
				total += int64(n)
				if err != nil {
					(*bufs)[0] = b[n:]
					t.raw.endBatch()
					return total, t.writeErr("writev", err)
				}
				b = b[whole:]
				continue
			}
			c := copy(t.wbuf[len(t.wbuf):tlsMaxPlaintext], b)
			t.wbuf = t.wbuf[:len(t.wbuf)+c]
			b = b[c:]
			if len(t.wbuf) == tlsMaxPlaintext {
				if err := flush(); err != nil {
					(*bufs)[0] = b
					t.raw.endBatch()
					return total, t.writeErr("writev", err)
				}
			}
		}
		(*bufs)[0] = nil
		*bufs = (*bufs)[1:]
	}
	err := flush()
	if ferr := t.raw.endBatch(); err == nil && ferr != nil {
		err = ferr
	}
	if err != nil {
		return total, t.writeErr("writev", err)
	}
	return total, nil
}

// mergeAdjacent returns (*bufs)[0] extended over the slices after it that
// continue it in memory within its capacity (the same backing array), and
// consumes those slices from *bufs: (*bufs)[0] becomes the merged slice
// and the elements dropped are set to nil, as WriteBuffers promises.
func mergeAdjacent(bufs *net.Buffers) []byte {
	b := (*bufs)[0]
	j := 1
	for ; j < len(*bufs); j++ {
		next := (*bufs)[j]
		if !iovec.Continues(b, next) {
			break
		}
		b = b[:len(b)+len(next)]
	}
	if j > 1 {
		clear((*bufs)[:j-1])
		*bufs = (*bufs)[j-1:]
		(*bufs)[0] = b
	}
	return b
}

// Shutdown implements [Channel]. Shutting the write side sends
// close_notify and then shuts the inner channel's write side, so the peer
// reads io.EOF; if a Write is in flight, close_notify is skipped rather
// than waited for, and a close_notify that a peer which does not read
// leaves unsent for 5 s is given up. Shutting the read side makes Read
// return io.EOF.
func (t *TLS) Shutdown(how Direction) error {
	if how != Read && how != Write && how != Both {
		return &OpError{Op: "shutdown", Channel: t.name, Err: fmt.Errorf("invalid direction %d", int(how))}
	}
	if t.closed.Load() {
		return &OpError{Op: "shutdown", Channel: t.name, Err: net.ErrClosed}
	}
	var errs []error
	if how&Write != 0 {
		if err := t.closeNotify(); err != nil {
			errs = append(errs, err)
		}
	}
	if how&Read != 0 {
		t.readShut.Store(true)
	}
	if err := t.inner.Shutdown(how); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return &OpError{Op: "shutdown", Channel: t.name, Err: err}
	}
	return nil
}

// closeNotify sends close_notify for Shutdown(Write), unless there is no
// session or a Write is in flight. Shutdown must not block: with a Write
// in flight (perhaps stuck on a peer that does not read) the inner write
// side is shut without close_notify, and the peer sees the stream cut.
func (t *TLS) closeNotify() error {
	c := t.session()
	if c == nil || !t.wmu.TryLock() {
		return nil
	}
	defer t.wmu.Unlock()
	// close_notify itself may block on a full socket: crypto/tls bounds it
	// with a write deadline only when the inner channel has deadlines, so
	// bound it here for every channel by shutting the inner write side,
	// which fails the blocked write.
	var cut atomic.Bool
	timer := time.AfterFunc(tlsCloseNotifyWait, func() {
		cut.Store(true)
		_ = t.inner.Shutdown(Write)
	})
	err := c.CloseWrite()
	timer.Stop()
	if cut.Load() {
		return nil
	}
	return err
}

// tlsCloseNotifyWait bounds how long Close and Shutdown wait to send
// close_notify to a peer that does not read: crypto/tls's own bound, which
// it applies only when the inner channel has deadlines.
const tlsCloseNotifyWait = 5 * time.Second

// Close sends close_notify when the handshake completed and no Write is
// in flight (waiting at most 5 s for a peer that does not read), then
// closes the inner channel. Pending calls return an error
// wrapping net.ErrClosed; so do calls after the first Close. A peer that
// has already closed the connection (close_notify meets EPIPE or
// ECONNRESET) is not an error of Close.
func (t *TLS) Close() error {
	if t.closed.Swap(true) {
		return &OpError{Op: "close", Channel: t.name, Err: net.ErrClosed}
	}
	// stop keeps a handshake from starting; one running ends when the
	// inner channel is closed, and then reports net.ErrClosed (see
	// Handshake).
	var err error
	if phase, hsErr := t.hs.stop(t.handshakeErr(net.ErrClosed)); phase == hsDone && hsErr == nil {
		err = t.closeSession()
	} else {
		err = t.raw.Close()
	}
	if err != nil && !errors.Is(err, net.ErrClosed) && !peerGone(err) {
		return &OpError{Op: "close", Channel: t.name, Err: err}
	}
	return nil
}

// closeSession ends an established session for Close: close_notify when
// no Write is in flight, then the inner channel is closed.
func (t *TLS) closeSession() error {
	if !t.wmu.TryLock() {
		// A Write is in flight, perhaps stuck on a peer that does not
		// read. Its last batch goes to the inner channel after crypto/tls
		// considers the Write done, so tls.Conn.Close would queue
		// close_notify behind it; break it instead, without close_notify,
		// as tls.Conn.Close does for a Write in flight.
		return t.raw.Close()
	}
	defer t.wmu.Unlock()
	// Bound close_notify as in Shutdown, also when the inner channel has
	// no deadlines.
	timer := time.AfterFunc(tlsCloseNotifyWait, func() { _ = t.raw.Close() })
	defer timer.Stop()
	return t.conn.Close()
}

// peerGone reports whether err says that the peer has already closed the
// connection (EPIPE, ECONNRESET): close_notify could not be delivered,
// but the connection is closed all the same, so Close does not report it,
// as closing a plain socket would not. A reset can mean the peer dropped
// bytes it had not read: a caller that must know its data arrived needs
// the peer's acknowledgement (a migration's return path), not Close.
func peerGone(err error) bool {
	return errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

// CloseNotifyReceived reports whether the peer ended its side of the
// session with close_notify, as Read saw it: false until Read has
// returned io.EOF, and false after an io.EOF that was a clean end at a
// record boundary without close_notify (Raw). It tells the two ends that
// Raw reads alike apart: QEMU 10.0 sends close_notify when it ends a
// multifd channel, no QEMU does on its main channel, and QEMU before 10.0
// never does.
func (t *TLS) CloseNotifyReceived() bool { return t.closeNotified.Load() }

// SetDeadline implements [Deadliner] when the inner channel does;
// otherwise it returns an error wrapping errors.ErrUnsupported. A write
// that times out leaves the TLS session unusable, as with tls.Conn.
func (t *TLS) SetDeadline(tm time.Time) error { return t.raw.SetDeadline(tm) }

// SetReadDeadline implements [Deadliner] when the inner channel does.
func (t *TLS) SetReadDeadline(tm time.Time) error { return t.raw.SetReadDeadline(tm) }

// SetWriteDeadline implements [Deadliner] when the inner channel does.
func (t *TLS) SetWriteDeadline(tm time.Time) error { return t.raw.SetWriteDeadline(tm) }

// tlsRawConn presents a Channel to crypto/tls as a net.Conn and watches
// the TLS record framing (5-byte header: type, version, length) of what
// it reads, so the wrapper knows whether an EOF fell between records.
type tlsRawConn struct {
	ch Channel

	// Read side: only crypto/tls's reader touches these (it serializes
	// reads), except the atomics.
	hdr        [5]byte
	hdrN       int
	bodyLeft   int
	pendingEOF bool

	sawEOF        atomic.Bool // EOF was returned to crypto/tls
	eofAtBoundary atomic.Bool

	// Write side (see startBatch).
	wmu      sync.Mutex
	batching bool
	batch    []byte
	werr     error

	closeOnce sync.Once
	closeErr  error
}

// track advances the record parser over b.
func (c *tlsRawConn) track(b []byte) {
	for len(b) > 0 {
		if c.bodyLeft > 0 {
			n := min(c.bodyLeft, len(b))
			c.bodyLeft -= n
			b = b[n:]
			continue
		}
		n := copy(c.hdr[c.hdrN:], b)
		c.hdrN += n
		b = b[n:]
		if c.hdrN == len(c.hdr) {
			c.bodyLeft = int(c.hdr[3])<<8 | int(c.hdr[4])
			c.hdrN = 0
		}
	}
}

func (c *tlsRawConn) Read(p []byte) (int, error) {
	if c.pendingEOF {
		return 0, c.eof()
	}
	n, err := c.ch.Read(p)
	c.track(p[:n])
	if err == io.EOF {
		if n > 0 {
			// Deliver the data now and the EOF on the next call, so that
			// crypto/tls only sees EOF when it wants more bytes.
			c.pendingEOF = true
			return n, nil
		}
		return 0, c.eof()
	}
	return n, err
}

func (c *tlsRawConn) eof() error {
	c.eofAtBoundary.Store(c.hdrN == 0 && c.bodyLeft == 0)
	c.sawEOF.Store(true)
	return io.EOF
}

// tlsBatch is how much ciphertext a Write or WriteBuffers call gathers
// before writing it to the inner channel: four full records per system
// call instead of one.
const tlsBatch = 4 * (5 + tlsMaxPlaintext + 256)

// startBatch makes Write gather records until endBatch. The TLS wrapper
// brackets each of its Write and WriteBuffers calls with them.
func (c *tlsRawConn) startBatch() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.batching = true
	if c.batch == nil {
		c.batch = make([]byte, 0, tlsBatch)
	}
}

// endBatch writes what was gathered and stops gathering.
func (c *tlsRawConn) endBatch() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.batching = false
	return c.flushLocked()
}

func (c *tlsRawConn) flushLocked() error {
	if c.werr != nil {
		return c.werr
	}
	if len(c.batch) == 0 {
		return nil
	}
	_, err := c.ch.Write(c.batch)
	c.batch = c.batch[:0]
	if err != nil {
		// crypto/tls counted these records as sent: the session cannot
		// go on.
		c.werr = err
	}
	return err
}

// Write passes records to the inner channel, or gathers them while a
// batch is open. crypto/tls serializes its writes, but a reader may write
// an alert or key update while the writer's batch is open, so wmu guards
// the batch.
func (c *tlsRawConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	if !c.batching {
		return c.ch.Write(p)
	}
	if len(c.batch)+len(p) > cap(c.batch) {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	if len(p) > cap(c.batch) {
		n, err := c.ch.Write(p)
		if err != nil {
			c.werr = err
		}
		return n, err
	}
	c.batch = append(c.batch, p...)
	return len(p), nil
}

func (c *tlsRawConn) Close() error {
	c.closeOnce.Do(func() {
		if c.ch != nil {
			c.closeErr = c.ch.Close()
		}
	})
	return c.closeErr
}

func (c *tlsRawConn) LocalAddr() net.Addr {
	if nc, ok := c.ch.(NetConner); ok && nc.NetConn() != nil {
		return nc.NetConn().LocalAddr()
	}
	return channelAddr{c.ch}
}

func (c *tlsRawConn) RemoteAddr() net.Addr {
	if nc, ok := c.ch.(NetConner); ok && nc.NetConn() != nil {
		return nc.NetConn().RemoteAddr()
	}
	return channelAddr{c.ch}
}

func (c *tlsRawConn) SetDeadline(t time.Time) error {
	if d, ok := c.ch.(Deadliner); ok {
		return d.SetDeadline(t)
	}
	return errDeadlineUnsupported
}

func (c *tlsRawConn) SetReadDeadline(t time.Time) error {
	if d, ok := c.ch.(Deadliner); ok {
		return d.SetReadDeadline(t)
	}
	return errDeadlineUnsupported
}

func (c *tlsRawConn) SetWriteDeadline(t time.Time) error {
	if d, ok := c.ch.(Deadliner); ok {
		return d.SetWriteDeadline(t)
	}
	return errDeadlineUnsupported
}

var errDeadlineUnsupported = fmt.Errorf("channel: the inner channel has no deadlines: %w", errors.ErrUnsupported)

// channelAddr names a Channel that is not built on a net.Conn.
type channelAddr struct{ ch Channel }

func (a channelAddr) Network() string { return "channel" }
func (a channelAddr) String() string {
	if a.ch == nil {
		return "?"
	}
	return a.ch.Name()
}
