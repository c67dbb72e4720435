package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/migration"
	"github.com/livemig/livemig/uri"
)

// wireResult is the line each wire child prints at the end. The source
// fills StartNS, the destination Bytes and EndNS.
type wireResult struct {
	Bytes   int64         `json:"bytes,omitempty"`    // bytes received and verified
	StartNS int64         `json:"start_ns,omitempty"` // wall clock just before the first byte
	EndNS   int64         `json:"end_ns,omitempty"`   // wall clock of the last verified byte
	CPU     time.Duration `json:"cpu_ns"`             // CPU of the data phase, with reaped children
	MaxRSS  int64         `json:"max_rss_bytes"`      // peak RSS of the process and its children
	Note    string        `json:"note,omitempty"`
}

// ioTimeout bounds every wait for the peer: a read or write that makes no
// progress for this long fails the child.
const ioTimeout = 30 * time.Second

// profileEnv names a directory: when set, each wire child writes a CPU
// profile of its data phase there (ROLE-CASE.pprof), for `go tool pprof`.
const profileEnv = "MIGRATE_BENCH_CPUPROFILE"

// wireOpts are a wire child's arguments.
type wireOpts struct {
	w         *wireKind
	addr      string // source: the destination's address
	size      int64
	listen    string // destination: unix path, tcp address or FIFO
	serverDir string
	clientDir string
	pskDir    string
	corrupt   int64 // source: page to corrupt on the wire, -1 for none
	delta     int64 // source: pages sent beyond --size (negative: fewer)
}

// parseWire parses "CASE [ADDRESS] --flag ..." for role.
func parseWire(role string, args []string, source bool) (*wireOpts, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("%s: missing case", role)
	}
	o := &wireOpts{w: wireKindByName(args[0])}
	if o.w == nil {
		return nil, fmt.Errorf("%s: unknown case %q", role, args[0])
	}
	args = args[1:]
	if source {
		if len(args) == 0 {
			return nil, fmt.Errorf("%s %s: missing address", role, o.w.name)
		}
		o.addr, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet(role, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Int64Var(&o.size, "size", 0, "bytes to move")
	fs.StringVar(&o.listen, "listen", "", "where to listen")
	fs.StringVar(&o.serverDir, "server-dir", "", "x509 server credentials")
	fs.StringVar(&o.clientDir, "client-dir", "", "x509 client credentials")
	fs.StringVar(&o.pskDir, "psk-dir", "", "keys.psk directory")
	fs.Int64Var(&o.corrupt, "corrupt-page", -1, "flip a byte of this page on the wire (tests only)")
	fs.Int64Var(&o.delta, "page-delta", 0, "send this many pages more than --size, or fewer when negative (tests only)")
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("%s %s: %w", role, o.w.name, err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%s %s: unexpected argument %q", role, o.w.name, fs.Arg(0))
	}
	if o.size <= 0 || o.size%pageSize != 0 {
		return nil, fmt.Errorf("%s %s: --size %d is not a positive multiple of %d", role, o.w.name, o.size, pageSize)
	}
	return o, nil
}

// startProfile starts a CPU profile when profileEnv is set and returns
// the function that stops it.
func startProfile(role, name string) (func(), error) {
	dir := os.Getenv(profileEnv)
	if dir == "" {
		return func() {}, nil
	}
	f, err := os.Create(filepath.Join(dir, role+"-"+name+".pprof"))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", profileEnv, err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", profileEnv, err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// heapAllocated returns the bytes this process has allocated on the Go
// heap so far.
func heapAllocated() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.TotalAlloc
}

// garbageNote reports a side that allocated more than 16 MiB per GiB
// moved during its data phase: its garbage, more than its buffers, then
// sets its peak RSS and costs it GC time. "" otherwise.
func garbageNote(side string, allocated uint64, moved int64) string {
	perGiB := float64(allocated) / (float64(moved) / (1 << 30)) / (1 << 20)
	if moved <= 0 || perGiB <= 16 {
		return ""
	}
	return fmt.Sprintf("%s allocated %.0f MiB per GiB moved", side, perGiB)
}

// newBuffer returns n bytes with every page touched, so page faults
// happen before the timed phase.
func newBuffer(n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += pageSize {
		b[i] = 1
	}
	return b
}

// printResult prints r as the child's last line.
func printResult(stdout io.Writer, r *wireResult) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", b)
	return err
}

// registry returns a registry with credentials object "tls0" for the
// case's security on the given endpoint, or nil without TLS.
func (o *wireOpts) registry(endpoint string) (*crypto.Registry, error) {
	var spec string
	switch {
	case o.w.security == "tls" && endpoint == "server":
		spec = "tls-creds-x509,id=tls0,dir=" + o.serverDir + ",endpoint=server,verify-peer=on"
	case o.w.security == "tls":
		spec = "tls-creds-x509,id=tls0,dir=" + o.clientDir + ",endpoint=client"
	case o.w.security == "psk":
		spec = "tls-creds-psk,id=tls0,dir=" + o.pskDir + ",endpoint=" + endpoint
	default:
		return nil, nil
	}
	reg := crypto.NewRegistry()
	if err := reg.AddObject(spec); err != nil {
		return nil, fmt.Errorf("%s: %w", o.w.name, err)
	}
	return reg, nil
}

// rawTLSConfig returns the crypto/tls configuration of the tls-raw
// baseline from the QEMU-layout directories, the same as the handshake
// baseline's (see rawTLSConfig in rawtls.go).
func (o *wireOpts) rawTLSConfig(server bool) (*tls.Config, error) {
	dir := o.clientDir
	if server {
		dir = o.serverDir
	}
	c, err := rawTLSConfig(dir, server, "") // the client sets ServerName when it dials
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.w.name, err)
	}
	return c, nil
}

// tlsNote describes a negotiated TLS connection for the table.
func tlsNote(cs tls.ConnectionState) string {
	return fmt.Sprintf("%s %s", tls.VersionName(cs.Version), tls.CipherSuiteName(cs.CipherSuite))
}

// deadliner sets the read and write deadlines of whatever carries a case.
type deadliner interface {
	SetDeadline(time.Time) error
}

// checkEOF reads once more after the last page: the stream must end there.
func checkEOF(name string, pages int64, read func([]byte) (int, error)) error {
	var one [1]byte
	n, err := read(one[:])
	switch {
	case n > 0:
		return fmt.Errorf("%s: extra bytes after the last page (page %d): the stream is longer than expected", name, pages-1)
	case errors.Is(err, io.EOF):
		return nil
	case err == nil:
		return fmt.Errorf("%s: after the last page (page %d): a read returned nothing and no end of stream", name, pages-1)
	}
	return fmt.Errorf("%s: after the last page (page %d), waiting for the end of the stream: %w", name, pages-1, err)
}

// receiver is the destination's side of one case once connected.
type receiver struct {
	readFull  func([]byte) (int, error) // fills p, or returns fewer bytes and an error
	next      func() ([]byte, error)    // if set, used instead of readFull: the next bytes, lent without a copy
	read      func([]byte) (int, error) // one read, for the end-of-stream check
	deadlines []deadliner               // refreshed before each read
	close     func() error
	abort     func() // from another goroutine, when ctx ends
	note      string
}

// wireDst is the destination child: it listens, prints "ready ADDRESS",
// receives SIZE bytes, verifies every page and prints its wireResult.
func wireDst(ctx context.Context, args []string, stdout io.Writer) error {
	o, err := parseWire("wire-dst", args, false)
	if err != nil {
		return err
	}
	v := newVerifier(o.w.name)
	buf := newBuffer(chunkSize)
	addr, accept, stop, err := listenWire(ctx, o)
	if err != nil {
		return err
	}
	defer stop()
	if _, err := fmt.Fprintf(stdout, "ready %s\n", addr); err != nil {
		return err
	}
	r, err := accept(ctx)
	if err != nil {
		return fmt.Errorf("%s: accepting the source: %w", o.w.name, err)
	}
	defer r.close()
	defer context.AfterFunc(ctx, r.abort)()
	stopProf, err := startProfile("wire-dst", o.w.name)
	if err != nil {
		return err
	}
	defer stopProf()

	a0 := heapAllocated()
	u0 := selfUsage()
	var got int64
	for got < o.size {
		for _, d := range r.deadlines {
			d.SetDeadline(time.Now().Add(ioTimeout))
		}
		if r.next != nil {
			b, err := r.next()
			if err != nil {
				return v.short(got, o.size, err)
			}
			if int64(len(b)) > o.size-got {
				return fmt.Errorf("%s: extra bytes after the last page (page %d): the stream is longer than expected", o.w.name, o.size/pageSize-1)
			}
			if err := v.feed(b); err != nil {
				return err
			}
			got += int64(len(b))
			continue
		}
		n := min(int64(chunkSize), o.size-got)
		m, err := r.readFull(buf[:n])
		if verr := v.check(buf[:m-m%pageSize]); verr != nil {
			return verr
		}
		got += int64(m)
		if err != nil {
			return v.short(got, o.size, err)
		}
	}
	end := time.Now().UnixNano()
	if err := checkEOF(o.w.name, o.size/pageSize, r.read); err != nil {
		return err
	}
	if err := r.close(); err != nil {
		return fmt.Errorf("%s: closing: %w", o.w.name, err)
	}
	u1 := selfUsage()
	note := joinNotes(r.note, garbageNote("destination", heapAllocated()-a0, got))
	return printResult(stdout, &wireResult{Bytes: got, EndNS: end, CPU: u1.CPU - u0.CPU, MaxRSS: u1.MaxRSS, Note: note})
}

// listenWire listens as the case says and returns the address the source
// dials, the function that accepts it and the one that stops listening.
func listenWire(ctx context.Context, o *wireOpts) (string, func(context.Context) (*receiver, error), func(), error) {
	if o.w.api == "raw" {
		return listenRaw(o)
	}
	reg, err := o.registry("server")
	if err != nil {
		return "", nil, nil, err
	}
	var spec, srcAddr string
	switch o.w.transport {
	case "unix":
		spec = "unix:" + o.listen
	case "tcp":
		spec = "tcp:" + o.listen
	case "exec":
		spec = "exec:cat '" + o.listen + "'"
		srcAddr = "exec:cat > '" + o.listen + "'"
	}
	if reg != nil {
		spec += ",tls-creds=tls0"
	}
	addr, err := uri.Parse(spec)
	if err != nil {
		return "", nil, nil, fmt.Errorf("%s: %w", o.w.name, err)
	}
	ln, err := migration.Listen(ctx, addr, &migration.Config{Registry: reg})
	if err != nil {
		return "", nil, nil, fmt.Errorf("%s: %w", o.w.name, err)
	}
	if srcAddr == "" {
		srcAddr = ln.Addr().String()
	}
	stop := func() { ln.Close() }
	if o.w.api == "session" {
		srv, err := migration.NewServer(ln)
		if err != nil {
			ln.Close()
			return "", nil, nil, fmt.Errorf("%s: %w", o.w.name, err)
		}
		stop = func() { srv.Close(); ln.Close() }
		return srcAddr, func(ctx context.Context) (*receiver, error) {
			sess, err := srv.AcceptSession(ctx)
			if err != nil {
				return nil, err
			}
			r := &receiver{
				// ReadBuffer lends each frame's payload: no copy
				// out of the session.
				next:  sess.ReadBuffer,
				read:  sess.Read,
				close: sess.Close,
				abort: func() { sess.Shutdown() },
				// The return path is the main channel's reverse
				// direction: its channel is the main channel. The
				// others are bounded by abort, when ctx ends.
				note: streamNote(sess.ReturnPath()),
			}
			if d, ok := sess.ReturnPath().Channel().(deadliner); ok {
				r.deadlines = []deadliner{d}
			}
			return r, nil
		}, stop, nil
	}
	return srcAddr, func(ctx context.Context) (*receiver, error) {
		s, err := ln.Accept(ctx)
		if err != nil {
			return nil, err
		}
		// GetBuffer with a 256 KiB buffer reads the channel straight into
		// it (no copy through the Stream's 32 KiB buffer).
		r := &receiver{readFull: s.GetBuffer, read: s.Read, close: s.Close, abort: func() { s.Shutdown() }, note: streamNote(s)}
		if d, ok := s.Channel().(deadliner); ok {
			r.deadlines = []deadliner{d}
		}
		return r, nil
	}, stop, nil
}

// streamNote describes the security of a Stream's channel.
func streamNote(s *migration.Stream) string {
	switch ch := s.Channel().(type) {
	case *channel.TLS:
		return tlsNote(ch.ConnectionState())
	case *channel.DTLS:
		return "DTLS 1.2 PSK (pion/dtls)"
	}
	return ""
}

// listenRaw listens with the standard library for the raw baselines.
func listenRaw(o *wireOpts) (string, func(context.Context) (*receiver, error), func(), error) {
	network := o.w.transport
	ln, err := net.Listen(network, o.listen)
	if err != nil {
		return "", nil, nil, fmt.Errorf("%s: %w", o.w.name, err)
	}
	var cfg *tls.Config
	if o.w.security == "tls" {
		if cfg, err = o.rawTLSConfig(true); err != nil {
			ln.Close()
			return "", nil, nil, err
		}
	}
	addr := network + ":" + ln.Addr().String()
	return addr, func(ctx context.Context) (*receiver, error) {
		defer context.AfterFunc(ctx, func() { ln.Close() })()
		c, err := ln.Accept()
		if err != nil {
			return nil, err
		}
		var conn net.Conn = c
		note := ""
		if cfg != nil {
			tc := tls.Server(c, cfg)
			hctx, cancel := context.WithTimeout(ctx, ioTimeout)
			err := tc.HandshakeContext(hctx)
			cancel()
			if err != nil {
				c.Close()
				return nil, fmt.Errorf("tls handshake: %w", err)
			}
			conn, note = tc, tlsNote(tc.ConnectionState())
		}
		return &receiver{
			readFull:  func(p []byte) (int, error) { return io.ReadFull(conn, p) },
			read:      conn.Read,
			deadlines: []deadliner{conn},
			close:     conn.Close,
			abort:     func() { c.Close() },
			note:      note,
		}, nil
	}, func() { ln.Close() }, nil
}

// sender is the source's side of one case once connected: either chunk
// (raw: a write of up to 256 KiB of contiguous pages) or page (one page
// through the livemig API) is set.
type sender struct {
	chunk     func([]byte) error
	page      func([]byte) error
	deadlines []deadliner  // refreshed every 64 pages
	finish    func() error // flush and close; the stream's end
	abort     func()       // from another goroutine, when ctx ends
	note      func() string
}

// wireSrc is the source child: it connects to the destination, sends
// SIZE bytes of pattern pages and prints its wireResult.
func wireSrc(ctx context.Context, args []string, stdout io.Writer) error {
	o, err := parseWire("wire-src", args, true)
	if err != nil {
		return err
	}
	pattern, unmap, err := newPattern()
	if err != nil {
		return fmt.Errorf("%s: %w", o.w.name, err)
	}
	defer unmap()
	spare := newBuffer(chunkSize) // the corrupted copy, never the pattern
	s, err := dialWire(ctx, o)
	if err != nil {
		return fmt.Errorf("%s: connecting to %s: %w", o.w.name, o.addr, err)
	}
	finished := false
	defer func() {
		if !finished {
			s.abort()
			s.finish()
		}
	}()
	defer context.AfterFunc(ctx, s.abort)()
	stopProf, err := startProfile("wire-src", o.w.name)
	if err != nil {
		return err
	}
	defer stopProf()

	a0 := heapAllocated()
	u0 := selfUsage()
	start := time.Now().UnixNano()
	pages := o.size/pageSize + o.delta
	for first := int64(0); first < pages; first += 64 {
		n := min(64, pages-first)
		for _, d := range s.deadlines {
			d.SetDeadline(time.Now().Add(ioTimeout))
		}
		base := (first % patternPages) * pageSize // 64 divides patternPages: no wrap
		chunk := pattern[base : base+n*pageSize]
		if o.corrupt >= first && o.corrupt < first+n {
			copy(spare, chunk)
			spare[(o.corrupt-first)*pageSize+100] ^= 0xff
			chunk = spare[:len(chunk)]
		}
		if s.chunk != nil {
			err = s.chunk(chunk)
		} else {
			for off := 0; off < len(chunk) && err == nil; off += pageSize {
				err = s.page(chunk[off : off+pageSize])
			}
		}
		if err != nil {
			return fmt.Errorf("%s: sending pages %d..%d: %w", o.w.name, first, first+n-1, err)
		}
	}
	finished = true
	if err := s.finish(); err != nil {
		return fmt.Errorf("%s: finishing the stream: %w", o.w.name, err)
	}
	u1 := selfUsage()
	note := ""
	if s.note != nil {
		note = s.note()
	}
	note = joinNotes(note, garbageNote("source", heapAllocated()-a0, o.size))
	return printResult(stdout, &wireResult{StartNS: start, CPU: u1.CPU - u0.CPU, MaxRSS: u1.MaxRSS, Note: note})
}

// dialWire connects to the destination as the case says.
func dialWire(ctx context.Context, o *wireOpts) (*sender, error) {
	if o.w.api == "raw" {
		return dialRaw(ctx, o)
	}
	reg, err := o.registry("client")
	if err != nil {
		return nil, err
	}
	addr, err := uri.Parse(o.addr)
	if err != nil {
		return nil, err
	}
	cfg := &migration.Config{Registry: reg}
	if o.w.api == "session" {
		cfg.Channels = 2
		sess, err := migration.DialSession(ctx, addr, cfg)
		if err != nil {
			return nil, err
		}
		s := &sender{
			page: func(p []byte) error {
				sess.PutBufferNoCopy(p)
				return sess.Err()
			},
			finish: sess.Close,
			abort:  func() { sess.Shutdown() },
			// The return path's channel is the main channel; a stall
			// of any channel fails the session by its watchdog.
			note: func() string { return streamNote(sess.ReturnPath()) },
		}
		return s, nil
	}
	st, err := migration.Dial(ctx, addr, cfg)
	if err != nil {
		return nil, err
	}
	s := &sender{
		page: func(p []byte) error {
			st.PutBufferNoCopy(p)
			return st.Err()
		},
		finish: st.Close,
		abort:  func() { st.Shutdown() },
		note:   func() string { return streamNote(st) },
	}
	if d, ok := st.Channel().(deadliner); ok {
		s.deadlines = []deadliner{d}
	}
	if o.w.api == "zerocopy" {
		if err := st.SetZeroCopy(true); err != nil {
			st.Close()
			return nil, err
		}
		s.finish = func() error {
			// Flush waits for the kernel's completions, so the stats are
			// final before Close.
			if err := st.Flush(); err != nil {
				st.Close()
				return err
			}
			s.note = zeroCopyNote(st)
			return st.Close()
		}
	}
	return s, nil
}

// zeroCopyNote reports what the kernel did with the MSG_ZEROCOPY sends.
func zeroCopyNote(st *migration.Stream) func() string {
	zs, ok := st.Channel().(interface{ ZeroCopyStats() (uint64, uint64) })
	if !ok {
		return func() string { return "" }
	}
	completed, copied := zs.ZeroCopyStats()
	note := fmt.Sprintf("MSG_ZEROCOPY: the kernel completed %d sends and copied %d of them", completed, copied)
	if completed > 0 && copied == completed {
		note += " (on loopback the kernel always copies: no zero-copy gain is possible here)"
	}
	return func() string { return note }
}

// dialRaw connects with the standard library for the raw baselines.
func dialRaw(ctx context.Context, o *wireOpts) (*sender, error) {
	network, address, ok := strings.Cut(o.addr, ":")
	if !ok || (network != "tcp" && network != "unix") {
		return nil, fmt.Errorf("address %q is not tcp:HOST:PORT or unix:PATH", o.addr)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	var conn net.Conn = c
	var note func() string
	if o.w.security == "tls" {
		cfg, err := o.rawTLSConfig(false)
		if err != nil {
			c.Close()
			return nil, err
		}
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			c.Close()
			return nil, err
		}
		cfg.ServerName = host
		tc := tls.Client(c, cfg)
		hctx, cancel := context.WithTimeout(ctx, ioTimeout)
		err = tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("tls handshake: %w", err)
		}
		conn = tc
		note = func() string { return tlsNote(tc.ConnectionState()) }
	}
	return &sender{
		chunk:     func(p []byte) error { _, err := conn.Write(p); return err },
		deadlines: []deadliner{conn},
		finish:    conn.Close,
		abort:     func() { c.Close() },
		note:      note,
	}, nil
}
