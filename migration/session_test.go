package migration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/livemig/livemig/internal/hello"
	"github.com/livemig/livemig/internal/testwait"
)

// randomData returns n deterministic pseudo-random bytes.
func randomData(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// sessionTransfer writes data through src in uneven pieces and checks
// that dst reads the same bytes and then io.EOF.
func sessionTransfer(t testing.TB, src *SourceSession, dst *DestinationSession, data []byte) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		p := data
		for i := 0; len(p) > 0; i++ {
			n := min(len(p), 1+(i*7919)%70000)
			if _, err := src.Write(p[:n]); err != nil {
				errc <- err
				return
			}
			p = p[n:]
		}
		errc <- src.Close()
	}()
	h := sha256.New()
	n, err := io.Copy(h, dst)
	if err != nil {
		t.Errorf("destination: %v after %d bytes", err, n)
	}
	if want := sha256.Sum256(data); n != int64(len(data)) || !bytes.Equal(h.Sum(nil), want[:]) {
		t.Errorf("destination read %d bytes, want %d identical ones", n, len(data))
	}
	if err := <-errc; err != nil {
		t.Errorf("source: %v", err)
	}
}

// serverSession starts a Server on dstAddr and returns it and its address.
func startServer(t testing.TB, dstAddr string, cfg *Config) *Server {
	t.Helper()
	ln, err := Listen(testCtx(t), mustParse(t, dstAddr), cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(ln)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// sessionPair dials a session of srv and accepts it; both close when the
// test ends.
func sessionPair(t testing.TB, srv *Server, cfg *Config) (src *SourceSession, dst *DestinationSession) {
	t.Helper()
	ctx := testCtx(t)
	src, err := DialSession(ctx, srv.Addr(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	dst, err = srv.AcceptSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dst.Close() })
	return src, dst
}

// TestSessionStripes migrates through sessions of 1 to 4 channels, each
// with its own TLS, and checks the bytes come out in order.
func TestSessionStripes(t *testing.T) {
	for _, n := range []int{1, 2, 4} {
		for _, kind := range []string{"", "x509"} {
			t.Run(fmt.Sprintf("channels=%d/tls=%s", n, kind), func(t *testing.T) {
				srcCfg, dstCfg := registries(t, kind)
				srcCfg.Channels = n
				srv := startServer(t, "tcp:127.0.0.1:0", dstCfg)
				ctx := testCtx(t)
				src, err := DialSession(ctx, srv.Addr(), srcCfg)
				if err != nil {
					t.Fatal(err)
				}
				defer src.Close()
				dst, err := srv.AcceptSession(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer dst.Close()
				if dst.ID() != src.ID() || dst.Channels() != n {
					t.Fatalf("destination session %s with %d channels; source %s with %d", dst.ID(), dst.Channels(), src.ID(), n)
				}
				sessionTransfer(t, src, dst, randomData(3*stripeSize*n+12345, uint64(n)))
				// Every channel carried stripes.
				for i := range n {
					if st := dst.s.streams[i].Stats(); st.Read < stripeSize {
						t.Errorf("channel %d read only %d bytes", i, st.Read)
					}
				}
			})
		}
	}
}

// TestSessionReturnPath: the destination answers on the main channel's
// reverse direction while pages flow.
func TestSessionReturnPath(t *testing.T) {
	srv := startServer(t, "unix:"+filepath.Join(t.TempDir(), "s"), nil)
	src, dst := sessionPair(t, srv, &Config{Channels: 2})
	rp := dst.ReturnPath()
	rp.PutBE16(2)
	rp.PutBE16(4)
	rp.PutBE32(42)
	if err := rp.Flush(); err != nil {
		t.Fatal(err)
	}
	srp := src.ReturnPath()
	if a, b, c := srp.GetBE16(), srp.GetBE16(), srp.GetBE32(); a != 2 || b != 4 || c != 42 {
		t.Fatalf("return path: %d %d %d (%v)", a, b, c, srp.Err())
	}
	sessionTransfer(t, src, dst, randomData(100000, 9))
}

// TestDialBack reverses the connections: the source listens and the
// destination dials, for a single channel and for a session, over tcp and
// unix; the same code then runs in the usual direction.
func TestDialBack(t *testing.T) {
	for _, tr := range []string{"tcp", "unix"} {
		for _, dialBack := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/dialback=%v", tr, dialBack), func(t *testing.T) {
				addr := "unix:" + filepath.Join(t.TempDir(), "src.sock")
				if tr == "tcp" {
					addr = "tcp:127.0.0.1:" + freePort(t)
				}
				ctx := testCtx(t)
				srcCfg, dstCfg := registries(t, "x509")
				srcCfg.DialBack, dstCfg.DialBack = dialBack, dialBack
				if dialBack {
					// TLS roles follow the connection: the source accepts.
					srcCfg, dstCfg = swapEndpoints(t, srcCfg, dstCfg)
				}
				ln, err := Listen(ctx, mustParse(t, addr), dstCfg)
				if err != nil {
					t.Fatal(err)
				}
				at := ln.AcceptTask(ctx)
				ct := Connect(ctx, ln.Addr(), srcCfg)
				src, serr := ct.Wait(ctx)
				dst, derr := at.Wait(ctx)
				ln.Close()
				if serr != nil || derr != nil {
					t.Fatalf("source: %v; destination: %v", serr, derr)
				}
				transfer(t, src, dst, 50)
				dst.Close()

				// A session of three channels.
				srcCfg.Channels, dstCfg.Channels = 3, 3
				var (
					srv   *Server
					sdone = make(chan struct{})
					ss    *SourceSession
					sserr error
				)
				if dialBack {
					ln, err := Listen(ctx, mustParse(t, addr), dstCfg)
					if err != nil {
						t.Fatal(err)
					}
					srv, _ = NewServer(ln)
				} else {
					srv = startServer(t, addr, dstCfg)
				}
				defer srv.Close()
				go func() {
					defer close(sdone)
					ss, sserr = DialSession(ctx, srv.Addr(), srcCfg)
				}()
				ds, err := srv.AcceptSession(ctx)
				<-sdone
				if err != nil || sserr != nil {
					t.Fatalf("source: %v; destination: %v", sserr, err)
				}
				defer ds.Close()
				if ss.ID() != ds.ID() {
					t.Fatalf("session IDs differ: %s, %s", ss.ID(), ds.ID())
				}
				sessionTransfer(t, ss, ds, randomData(2*stripeSize+7, 3))
			})
		}
	}
}

// TestDialBackStray: a stray connection to a dial-back source is dropped
// and the session still assembles from the destination's channels.
func TestDialBackStray(t *testing.T) {
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "src.sock")
	var logMu sync.Mutex
	var logs []string
	srcCfg := &Config{DialBack: true, Channels: 2, Logf: func(f string, a ...any) {
		logMu.Lock()
		logs = append(logs, fmt.Sprintf(f, a...))
		logMu.Unlock()
	}}
	type res struct {
		s   *SourceSession
		err error
	}
	done := make(chan res, 1)
	go func() {
		s, err := DialSession(ctx, mustParse(t, "unix:"+path), srcCfg)
		done <- res{s, err}
	}()
	// The stray: garbage instead of a hello.
	var c net.Conn
	testwait.Until(t, "the dial-back source listening on "+path, func() bool {
		var err error
		c, err = net.Dial("unix", path)
		return err == nil
	})
	c.Write(bytes.Repeat([]byte("garbage!"), 8))
	io.Copy(io.Discard, c) // until the source drops it
	c.Close()

	ln, err := Listen(ctx, mustParse(t, "unix:"+path), &Config{DialBack: true, Channels: 2})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(ln)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dst, err := srv.AcceptSession(ctx)
	r := <-done
	if err != nil || r.err != nil {
		t.Fatalf("destination %v; source %v", err, r.err)
	}
	defer dst.Close()
	sessionTransfer(t, r.s, dst, randomData(1000, 1))
	logMu.Lock()
	defer logMu.Unlock()
	if len(logs) != 1 || !strings.Contains(logs[0], "dropped a connection") || !strings.Contains(logs[0], "magic") {
		t.Fatalf("source log: %q", logs)
	}
	// The package prefix once, not once per wrapping layer.
	if n := strings.Count(logs[0], "migration:"); n != 1 {
		t.Errorf("source log line has %d \"migration:\", want 1: %q", n, logs[0])
	}
}

// swapEndpoints gives the source server credentials and the destination
// client credentials, for dial-back.
func swapEndpoints(t testing.TB, src, dst *Config) (*Config, *Config) {
	src.Registry, dst.Registry = dst.Registry, src.Registry
	src.TLSHostname, dst.TLSHostname = "", "localhost"
	return src, dst
}

// TestSessionRefusals: a multifd channel for an unknown session, a
// session whose multifd channel never comes, and a channel for the
// expired session.
func TestSessionRefusals(t *testing.T) {
	var logMu sync.Mutex
	var logs []string
	// The timeout is both how long the incomplete session waits and how
	// long its expiry is remembered: a late channel that comes after that
	// (a busy machine) is refused as unknown, and the test tries again
	// with another session.
	dstCfg := &Config{SessionTimeout: time.Second, Logf: func(f string, a ...any) {
		logMu.Lock()
		logs = append(logs, fmt.Sprintf(f, a...))
		logMu.Unlock()
	}}
	srv := startServer(t, "tcp:127.0.0.1:0", dstCfg)
	ctx := testCtx(t)
	addr := srv.Addr()
	id := SessionID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}

	// Unknown session.
	_, err := Dial(ctx, addr, &Config{SessionID: id, index: 1, Channels: 2})
	var re *RefusedError
	if !errors.As(err, &re) || re.status != hello.StatusUnknownSession || re.Session != id {
		t.Fatalf("multifd channel of an unknown session: %v, want a *RefusedError for unknown session %s", err, id)
	}
	var pe *PhaseError
	if !errors.As(err, &pe) || pe.Phase != PhaseHello || !strings.Contains(err.Error(), id.String()) {
		t.Fatalf("error %q: want phase hello naming the session", err)
	}

	for try := byte(1); ; try++ {
		id := SessionID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, try}
		// Main channel announcing 3 channels; only multifd 1 arrives.
		before := time.Now() // the session, its timer, and so its expiry, come later
		main, err := Dial(ctx, addr, &Config{SessionID: id, Channels: 3})
		if err != nil {
			t.Fatal(err)
		}
		defer main.Close()
		mf, err := Dial(ctx, addr, &Config{SessionID: id, index: 1, Channels: 3})
		if err != nil {
			t.Fatal(err)
		}
		defer mf.Close()
		_, err = srv.AcceptSession(ctx)
		var se *SessionError
		if !errors.As(err, &se) || se.Session != id || len(se.Missing) != 1 || se.Missing[0] != "channel 2" {
			t.Fatalf("incomplete session: %v, want a *SessionError missing channel 2", err)
		}
		// SessionTimeout, not the default, ended it.
		if !strings.Contains(err.Error(), "timed out after 1s") {
			t.Fatalf("incomplete session: %v, want it to say the 1s SessionTimeout passed", err)
		}
		// Its channels were closed.
		if main.ReturnPath().GetByte(); main.ReturnPath().Err() == nil {
			t.Fatal("main channel of the expired session still open")
		}

		// Late channel for the expired session.
		_, err = Dial(ctx, addr, &Config{SessionID: id, index: 2, Channels: 3})
		if errors.As(err, &re) && re.status == hello.StatusExpiredSession {
			break
		}
		// The expiry came at least SessionTimeout after before, and is
		// forgotten SessionTimeout after that: only then may the late
		// channel be refused as unknown.
		if d := time.Since(before); errors.As(err, &re) && re.status == hello.StatusUnknownSession && d > 2*dstCfg.SessionTimeout {
			t.Logf("the late channel came %v after the session began, when its expiry was no longer remembered: again", d)
			continue
		}
		t.Fatalf("channel of an expired session: %v", err)
	}
	// Duplicate main for a session being assembled.
	id2 := SessionID{2}
	m2, err := Dial(ctx, addr, &Config{SessionID: id2, Channels: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if _, err = Dial(ctx, addr, &Config{SessionID: id2, Channels: 2}); !errors.As(err, &re) || re.status != hello.StatusDuplicate {
		t.Fatalf("second main channel: %v", err)
	}
	testwait.Until(t, "the server logging the unknown session", func() bool {
		logMu.Lock()
		defer logMu.Unlock()
		return strings.Contains(strings.Join(logs, "\n"), "unknown session "+id.String())
	})
	logMu.Lock()
	joined := strings.Join(logs, "\n")
	lines := slices.Clone(logs)
	logMu.Unlock()
	if !strings.Contains(joined, "unknown session "+id.String()) {
		t.Errorf("server log does not name the unknown session:\n%s", joined)
	}
	// Each line carries the package prefix once, not once per wrapping
	// layer ("migration: channel from X: migration: hello: ...").
	for _, l := range lines {
		if n := strings.Count(l, "migration:"); n != 1 || !strings.HasPrefix(l, "migration: ") {
			t.Errorf("server log line has %d \"migration:\", want 1 at the start: %q", n, l)
		}
	}
}

// TestSessionRateLimit: a session's limit is its total over its channels.
func TestSessionRateLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("takes a second")
	}
	srv := startServer(t, "tcp:127.0.0.1:0", nil)
	const limit = 2 << 20
	src, dst := sessionPair(t, srv, &Config{Channels: 2, RateLimit: limit})
	for i := range 2 {
		if r := src.s.streams[i].RateLimit(); r != limit/2 {
			t.Fatalf("channel %d limit %d, want %d", i, r, limit/2)
		}
	}
	data := randomData(limit, 5) // one second at the limit
	start := time.Now()
	sessionTransfer(t, src, dst, data)
	if d := time.Since(start); d < 800*time.Millisecond {
		t.Fatalf("%d bytes at %d B/s took only %v", len(data), limit, d)
	}
}

// TestSessionBrokenChannel: when one channel of a session dies, the
// destination's Read fails promptly (it does not wait on the other
// channel) and the source's Write fails too.
func TestSessionBrokenChannel(t *testing.T) {
	srv := startServer(t, "tcp:127.0.0.1:0", nil)
	src, dst := sessionPair(t, srv, &Config{Channels: 2})
	data := randomData(stripeSize, 1)
	if _, err := src.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := src.Flush(); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, stripeSize)
	if _, err := io.ReadFull(dst, got); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("first frame: %v", err)
	}
	// Frame 1 would come on channel 1: kill channel 0 instead, so Read
	// waits on a healthy channel while another one broke.
	src.s.streams[0].Channel().Close()
	// A Read that waited on the healthy channel would hang, and fail at
	// the test binary's -timeout.
	read := testwait.Go(func() error { _, err := dst.Read(got); return err })
	if err := read.Result(t, "Read on a session with a dead channel"); !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "channel 0") {
		t.Fatalf("Read: %v, want an unexpected EOF on channel 0", err)
	} else if want := "migration: session " + dst.ID().String() + ", channel 0: malformed stripe frame: stream ended without an end frame: unexpected EOF"; err.Error() != want {
		t.Fatalf("Read:\n got %q\nwant %q", err, want)
	}
	var werr error
	for i := 0; i < 100 && werr == nil; i++ {
		_, werr = src.Write(data)
	}
	if werr == nil {
		werr = src.Flush()
	}
	if werr == nil {
		t.Fatal("source never failed")
	}
	if strings.Count(werr.Error(), "migration:") != 1 || !strings.HasPrefix(werr.Error(), "migration: session "+src.ID().String()+", channel ") {
		t.Fatalf("source error %q: want one prefix, naming the session and the channel", werr)
	}
}

func TestSessionOneChannelTransports(t *testing.T) {
	_, err := DialSession(testCtx(t), mustParse(t, "exec:cat"), &Config{Channels: 2})
	if err == nil || !strings.Contains(err.Error(), "carries one channel") {
		t.Fatalf("a 2-channel session over exec: %v", err)
	}
}

// TestServerClose: closing a Server ends AcceptSession and a session being
// assembled.
func TestServerClose(t *testing.T) {
	srv := startServer(t, "tcp:127.0.0.1:0", nil)
	ctx := testCtx(t)
	main, err := Dial(ctx, srv.Addr(), &Config{Channels: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer main.Close()
	accept := testwait.Go(func() error { _, err := srv.AcceptSession(ctx); return err })
	accept.Blocked(t)
	srv.Close()
	if err := accept.Result(t, "AcceptSession after Close"); err == nil {
		t.Fatal("AcceptSession after Close returned a session")
	}
	if main.ReturnPath().GetByte(); main.ReturnPath().Err() == nil {
		t.Fatal("channel of the pending session still open")
	}
	_ = context.Background
}

// TestServerBoundsUnacceptedSessions: sessions that are complete but not
// yet taken by AcceptSession hold channels, so they count against
// MaxPendingSessions too; a peer cannot pile up sessions without bound
// while the user does not accept. (MaxPendingPerPeer is raised to the
// total here: every unix peer is one identity; TestServerPerPeerQuota
// tests that bound.)
func TestServerBoundsUnacceptedSessions(t *testing.T) {
	srv := startServer(t, "unix:"+filepath.Join(t.TempDir(), "d"), &Config{MaxPendingPerPeer: DefaultMaxPendingSessions})
	ctx := testCtx(t)
	for i := range DefaultMaxPendingSessions {
		st, err := Dial(ctx, srv.Addr(), nil) // one channel: complete at once
		if err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		defer st.Close()
	}
	_, err := Dial(ctx, srv.Addr(), nil)
	var re *RefusedError
	if !errors.As(err, &re) || re.status != hello.StatusBusy {
		t.Fatalf("session %d while %d wait for AcceptSession: %v, want a refusal (busy)", DefaultMaxPendingSessions+1, DefaultMaxPendingSessions, err)
	}
	// Taking one makes room for one.
	s, err := srv.AcceptSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	st, err := Dial(ctx, srv.Addr(), nil)
	if err != nil {
		t.Fatalf("after AcceptSession: %v", err)
	}
	st.Close()
}

// TestSessionBuffersOnDemand: the stripe buffers (256 KiB each, two per
// channel and one more) are allocated as frames need them, not when the
// session forms: the channel count comes from the peer's hello, and a
// session of idle channels must not cost (2N+1) x 256 KiB up front.
func TestSessionBuffersOnDemand(t *testing.T) {
	srv := startServer(t, "unix:"+filepath.Join(t.TempDir(), "d"), nil)
	const n = 32
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	src, dst := sessionPair(t, srv, &Config{Channels: n})
	runtime.ReadMemStats(&after)
	// Each side would take (2n+1) x 256 KiB = 16.25 MiB eagerly.
	if d := after.TotalAlloc - before.TotalAlloc; d > 12<<20 {
		t.Fatalf("setting up two %d-channel sessions allocated %d MiB", n, d>>20)
	}
	sessionTransfer(t, src, dst, randomData(3*n*stripeSize/2, 9))
}

// TestServerClosesChannelFailingResolve: a channel the Server accepted is
// closed when its task fails before the connect phase (here: the
// tls-authz object was removed from the registry after Listen), not left
// open.
func TestServerClosesChannelFailingResolve(t *testing.T) {
	_, dstCfg := registries(t, "anon")
	if err := dstCfg.Registry.AddObject("authz-simple,id=nobody,identity=CN=nobody"); err != nil {
		t.Fatal(err)
	}
	dstCfg.TLSAuthz = "nobody"
	srv := startServer(t, "unix:"+filepath.Join(t.TempDir(), "d"), dstCfg)
	if err := dstCfg.Registry.Remove("nobody"); err != nil { // every task fails in resolve
		t.Fatal(err)
	}
	c, err := net.Dial("unix", srv.Addr().Unix.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(testwait.Deadline(t))
	if n, err := c.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read from the refused connection: %d, %v; want it closed", n, err)
	}
}

// TestSessionFramesFillRecords checks the size of the source's full data
// frames: header and payload make exactly stripeSize bytes, so over TLS a
// frame is 16 whole records and never leaves a 16-byte record behind.
func TestSessionFramesFillRecords(t *testing.T) {
	ctx := testCtx(t)
	ln, err := Listen(ctx, mustParse(t, "tcp:127.0.0.1:0"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	at := ln.AcceptTask(ctx)
	src, err := DialSession(ctx, ln.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := at.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	data := randomData(2*stripeSize, 5)
	go func() {
		src.Write(data)
		src.Close()
	}()
	var total int
	for seq := uint64(0); ; seq++ {
		n, end, err := readFrameHeader(dst, seq)
		if err != nil {
			t.Fatalf("frame %d: %v", seq, err)
		}
		if end {
			break
		}
		if want := min(stripeSize-stripeHeaderSize, len(data)-total); n != want {
			t.Errorf("frame %d carries %d bytes, want %d (header and payload filling %d bytes)", seq, n, want, stripeSize)
		}
		if _, err := dst.Skip(n); err != nil {
			t.Fatalf("frame %d: %v", seq, err)
		}
		total += n
	}
	if total != len(data) {
		t.Errorf("frames carried %d bytes, want %d", total, len(data))
	}
}
