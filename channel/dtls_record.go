package channel

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// DTLS record framing (RFC 6347 4.1): type(1) version(2) epoch(2)
// sequence(6) length(2).
const (
	dtlsHeaderLen = 13
	// dtlsMaxRecord is the largest record a pion/dtls v2.2.12 peer can
	// receive: it reads each datagram into an 8192-byte buffer
	// (conn.go inboundBufferSize), so a longer record can never be sent.
	dtlsMaxRecord = 8192
	// dtlsMaxPlaintext is the application data that fits one record with
	// TLS_PSK_WITH_AES_128_GCM_SHA256: header, 8-byte explicit nonce and
	// 16-byte tag (pion pkg/crypto/ciphersuite/gcm.go).
	dtlsMaxPlaintext = dtlsMaxRecord - dtlsHeaderLen - 8 - 16
	// dtlsQueue is how many records the reader keeps ahead of pion.
	dtlsQueue = 4
)

// dtlsRecord is one complete record read off the stream.
type dtlsRecord struct {
	b [dtlsMaxRecord]byte
	n int
}

// dtlsStreamConn presents a stream Channel to pion/dtls as a datagram
// net.Conn: each Read returns exactly one DTLS record, found by its own
// header; writes pass pion's datagrams (whole records) through unchanged.
// A reader goroutine parses records so that read deadlines, which pion
// uses to cancel reads, work over any Channel. It passes on only the next
// record in sequence (dtlsSequence), and makes sure that pion drops none
// of them unnoticed (see dtls_discard.go).
type dtlsStreamConn struct {
	ch Channel

	full chan *dtlsRecord // parsed records; closed after rerr is set
	free chan *dtlsRecord
	rerr error
	seq  dtlsSequence  // owned by pump
	done chan struct{} // closed by Close
	wg   sync.WaitGroup

	// The discard check. Read, which only pion's reader goroutine calls,
	// owns owed and probeDue.
	owed     uint64          // records handed to pion that owe Read a result
	results  dtlsResultCount // DTLS.Read's count of pion's results
	probeDue bool            // the last record handed owes a result: probe next
	armed    chan struct{}   // closed by arm
	armOnce  sync.Once
	rejMu    sync.Mutex
	last     dtlsRecordID  // the record handed to pion last
	rejected chan struct{} // closed by reject, which sets rejErr
	rejErr   error

	rdl deadline

	wmu sync.Mutex

	closeOnce sync.Once
	closeErr  error
}

func newDTLSStreamConn(ch Channel) *dtlsStreamConn {
	c := &dtlsStreamConn{
		ch:       ch,
		full:     make(chan *dtlsRecord, dtlsQueue),
		free:     make(chan *dtlsRecord, dtlsQueue),
		done:     make(chan struct{}),
		rdl:      makeDeadline(),
		armed:    make(chan struct{}),
		rejected: make(chan struct{}),
	}
	for range dtlsQueue {
		c.free <- new(dtlsRecord)
	}
	c.wg.Add(1)
	go c.pump()
	return c
}

// pump reads records until an error, checking each header, bounding its
// length and checking that it is the next record in sequence.
func (c *dtlsStreamConn) pump() {
	defer c.wg.Done()
	br := bufio.NewReaderSize(c.ch, 64<<10)
	for {
		var r *dtlsRecord
		select {
		case r = <-c.free:
		case <-c.done:
			c.finish(net.ErrClosed)
			return
		}
		if err := readDTLSRecord(br, r); err != nil {
			c.finish(err)
			return
		}
		if err := c.seq.check(r.b[:dtlsHeaderLen]); err != nil {
			c.finish(err)
			return
		}
		select {
		case c.full <- r:
		case <-c.done:
			c.finish(net.ErrClosed)
			return
		}
	}
}

func (c *dtlsStreamConn) finish(err error) {
	c.rerr = err
	close(c.full)
}

// readDTLSRecord reads one record into r. EOF before the first byte is
// io.EOF; EOF inside a record is an error wrapping io.ErrUnexpectedEOF.
func readDTLSRecord(br io.Reader, r *dtlsRecord) error {
	h := r.b[:dtlsHeaderLen]
	if n, err := io.ReadFull(br, h); err != nil {
		if err == io.EOF {
			return io.EOF
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("channel: dtls: stream cut inside a record header (%d of %d bytes): %w", n, dtlsHeaderLen, io.ErrUnexpectedEOF)
		}
		return err
	}
	if err := checkDTLSHeader(h); err != nil {
		return err
	}
	length := int(binary.BigEndian.Uint16(h[11:13]))
	body := r.b[dtlsHeaderLen : dtlsHeaderLen+length]
	if n, err := io.ReadFull(br, body); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || err == io.EOF {
			return fmt.Errorf("channel: dtls: stream cut inside a record (%d of %d bytes): %w", n, length, io.ErrUnexpectedEOF)
		}
		return err
	}
	r.n = dtlsHeaderLen + length
	return nil
}

// checkDTLSHeader accepts the four record types of DTLS 1.0/1.2 and a
// length that fits pion's receive buffer.
func checkDTLSHeader(h []byte) error {
	switch h[0] {
	case dtlsChangeCipherSpec, dtlsAlert, dtlsHandshake, dtlsApplicationData:
	default:
		return fmt.Errorf("channel: dtls: not a DTLS record (content type %d)", h[0])
	}
	if h[1] != 0xfe || (h[2] != 0xff && h[2] != 0xfd) {
		return fmt.Errorf("channel: dtls: not a DTLS record (version %#02x%02x)", h[1], h[2])
	}
	if length := int(binary.BigEndian.Uint16(h[11:13])); dtlsHeaderLen+length > dtlsMaxRecord {
		return fmt.Errorf("channel: dtls: record length %d exceeds the %d-byte limit", length, dtlsMaxRecord-dtlsHeaderLen)
	}
	return nil
}

// Read returns the next record, or, after a record that owes pion's
// Read a result, a *dtlsProbe (see dtls_discard.go). Once a record has
// failed authentication it returns that error.
func (c *dtlsStreamConn) Read(p []byte) (int, error) {
	select {
	case <-c.done:
		return 0, net.ErrClosed
	case <-c.rdl.wait():
		return 0, os.ErrDeadlineExceeded
	default:
	}
	if err := c.rejection(); err != nil {
		return 0, err
	}
	if c.probeDue {
		if err := c.probe(); err != nil {
			return 0, err
		}
	}
	select {
	case r, ok := <-c.full:
		if !ok {
			return 0, c.rerr
		}
		if len(p) < r.n {
			c.free <- r
			return 0, io.ErrShortBuffer
		}
		n := copy(p, r.b[:r.n])
		c.handed(parseDTLSRecordID(r.b[:dtlsHeaderLen]))
		c.free <- r
		return n, nil
	case <-c.rejected:
		return 0, c.rejection()
	case <-c.rdl.wait():
		return 0, os.ErrDeadlineExceeded
	case <-c.done:
		return 0, net.ErrClosed
	}
}

func (c *dtlsStreamConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	select {
	case <-c.done:
		return 0, net.ErrClosed
	default:
	}
	return c.ch.Write(p)
}

func (c *dtlsStreamConn) Close() error {
	c.closeOnce.Do(func() {
		close(c.done)
		c.closeErr = c.ch.Close()
		c.wg.Wait()
		c.rdl.stop()
	})
	return c.closeErr
}

func (c *dtlsStreamConn) LocalAddr() net.Addr {
	if nc, ok := c.ch.(NetConner); ok && nc.NetConn() != nil {
		return nc.NetConn().LocalAddr()
	}
	return channelAddr{c.ch}
}

func (c *dtlsStreamConn) RemoteAddr() net.Addr {
	if nc, ok := c.ch.(NetConner); ok && nc.NetConn() != nil {
		return nc.NetConn().RemoteAddr()
	}
	return channelAddr{c.ch}
}

func (c *dtlsStreamConn) SetDeadline(t time.Time) error {
	c.rdl.set(t)
	return c.SetWriteDeadline(t)
}

func (c *dtlsStreamConn) SetReadDeadline(t time.Time) error {
	c.rdl.set(t)
	return nil
}

// SetWriteDeadline forwards to the inner channel when it has deadlines;
// otherwise writes are bounded only by Close.
func (c *dtlsStreamConn) SetWriteDeadline(t time.Time) error {
	if d, ok := c.ch.(Deadliner); ok {
		return d.SetWriteDeadline(t)
	}
	return nil
}

// deadline is a resettable timer whose wait channel is closed while the
// deadline is in the past (the scheme of net.Pipe).
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	cancel chan struct{}
}

func makeDeadline() deadline { return deadline{cancel: make(chan struct{})} }

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired and closed cancel
	}
	d.timer = nil
	closed := isClosedChan(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		cancel := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(cancel) })
		return
	}
	if !closed {
		close(d.cancel)
	}
}

func (d *deadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	// Forget a timer that will now never fire, or a later set would wait
	// for it to close cancel. One that already fired closes cancel itself.
	if d.timer != nil && d.timer.Stop() {
		d.timer = nil
	}
}

func isClosedChan(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// dtlsPacketConn presents one peer of a net.PacketConn as a net.Conn. A
// nil remote (a server) adopts the sender of the first datagram; datagrams
// from other addresses are dropped.
type dtlsPacketConn struct {
	pc     net.PacketConn
	mu     sync.Mutex
	remote net.Addr
}

func (c *dtlsPacketConn) peer() net.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.remote
}

func (c *dtlsPacketConn) Read(p []byte) (int, error) {
	for {
		n, addr, err := c.pc.ReadFrom(p)
		if err != nil {
			return n, err
		}
		c.mu.Lock()
		if c.remote == nil {
			c.remote = addr
		}
		ok := c.remote.String() == addr.String()
		c.mu.Unlock()
		if ok {
			return n, nil
		}
	}
}

func (c *dtlsPacketConn) Write(p []byte) (int, error) {
	r := c.peer()
	if r == nil {
		return 0, errors.New("channel: dtls: no peer address yet")
	}
	return c.pc.WriteTo(p, r)
}

func (c *dtlsPacketConn) Close() error                       { return c.pc.Close() }
func (c *dtlsPacketConn) LocalAddr() net.Addr                { return c.pc.LocalAddr() }
func (c *dtlsPacketConn) RemoteAddr() net.Addr               { return c.peer() }
func (c *dtlsPacketConn) SetDeadline(t time.Time) error      { return c.pc.SetDeadline(t) }
func (c *dtlsPacketConn) SetReadDeadline(t time.Time) error  { return c.pc.SetReadDeadline(t) }
func (c *dtlsPacketConn) SetWriteDeadline(t time.Time) error { return c.pc.SetWriteDeadline(t) }
