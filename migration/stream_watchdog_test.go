package migration

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/channel/channeltest"
	"github.com/livemig/livemig/crypto"
)

// testStall is the stall timeout of the tests whose peer is stopped: no
// byte can move, so a slow machine only makes them take longer.
const testStall = 100 * time.Millisecond

// fillUntilError writes pages to s until it fails, or until safety has
// passed (then it shuts s down, so a watchdog that never fires fails the
// test with ErrStreamShutdown instead of hanging it).
func fillUntilError(t testing.TB, s *Stream, safety time.Duration) error {
	t.Helper()
	stop := time.AfterFunc(safety, func() { s.Shutdown() })
	defer stop.Stop()
	buf := make([]byte, 1<<20)
	for s.Err() == nil {
		s.PutBufferNoCopy(buf)
		s.Flush()
	}
	return s.Err()
}

// checkStall checks that err is the stall of s's writes: of a write, or
// with zeroCopy of a write or of the wait for zero-copy completions.
func checkStall(t testing.TB, s *Stream, err error, zeroCopy bool, timeout time.Duration) {
	t.Helper()
	var se *StallError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T), want a *StallError", err, err)
	}
	op := "write"
	if zeroCopy && se.Op == "zero-copy flush" {
		op = se.Op
	}
	var ne net.Error
	switch {
	case se.Op != op:
		t.Errorf("Op %q, want %q", se.Op, op)
	case se.Channel != s.Channel().Name():
		t.Errorf("Channel %q, want %q", se.Channel, s.Channel().Name())
	case se.StallTimeout != timeout || se.Stalled < timeout:
		t.Errorf("StallTimeout %v, Stalled %v; want %v and at least as long", se.StallTimeout, se.Stalled, timeout)
	case !errors.As(err, &ne) || !ne.Timeout():
		t.Errorf("%v is not a net.Error with Timeout true", err)
	case !errors.Is(err, os.ErrDeadlineExceeded):
		t.Errorf("%v does not match os.ErrDeadlineExceeded", err)
	case !strings.Contains(err.Error(), op+" on "+s.Channel().Name()+" stalled: no progress for "):
		t.Errorf("message %q does not name the stall", err)
	}
	if ferr := s.Flush(); ferr != err {
		t.Errorf("Flush after the stall = %v, want the sticky %v", ferr, err)
	}
}

// TestStallStoppedReader: a peer that accepts the channel and then never
// reads fails the writer with a *StallError naming the write, the channel
// and the time, over tcp, unix, TLS, DTLS, a command's pipe and with zero
// copy.
func TestStallStoppedReader(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, addr, kind string
		zeroCopy         bool
	}{
		{"tcp", "tcp:127.0.0.1:0", "", false},
		{"unix", "unix:" + filepath.Join(dir, "u.sock"), "", false},
		{"tcp-x509", "tcp:127.0.0.1:0", "x509", false},
		{"unix-psk", "unix:" + filepath.Join(dir, "p.sock"), "psk", false},
		{"tcp-zerocopy", "tcp:127.0.0.1:0", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srcCfg, dstCfg := registries(t, tc.kind)
			srcCfg.StallTimeout = testStall
			src, _ := connectPair(t, tc.addr, srcCfg, dstCfg) // the destination never reads
			if tc.zeroCopy {
				if err := src.SetZeroCopy(true); err != nil {
					t.Skipf("no zero copy here: %v", err)
				}
			}
			err := fillUntilError(t, src, 20*time.Second)
			checkStall(t, src, err, tc.zeroCopy, testStall)
			t.Logf("%v", err)
		})
	}
	t.Run("exec", func(t *testing.T) {
		// The command never reads its stdin: the pipe fills.
		src, err := Dial(testCtx(t), mustParse(t, "exec:exec sleep 60"), &Config{StallTimeout: testStall})
		if err != nil {
			t.Fatal(err)
		}
		src.Channel().(*channel.Command).SetGracePeriod(10 * time.Millisecond)
		defer src.Close()
		err = fillUntilError(t, src, 20*time.Second)
		checkStall(t, src, err, false, testStall)
	})
	t.Run("no deadlines", func(t *testing.T) {
		// An in-memory pipe has no deadlines: the watchdog shuts the
		// channel down to end the blocked write.
		a, b := channeltest.Pipe()
		defer b.Close()
		src := NewStream(a)
		defer src.Close()
		src.SetStallTimeout(testStall)
		err := fillUntilError(t, src, 20*time.Second)
		checkStall(t, src, err, false, testStall)
	})
}

// TestStallStoppedProcess is the case: the destination, a real
// process, is stopped with SIGSTOP in the middle of a TLS migration. The
// source fails with a *StallError instead of waiting forever.
func TestStallStoppedProcess(t *testing.T) {
	clientSpec, serverSpec := credSpecs(t, "x509")
	srcCfg := &Config{Registry: crypto.NewRegistry(), TLSCreds: "tls0", TLSHostname: "localhost", StallTimeout: testStall}
	if err := srcCfg.Registry.AddObject(clientSpec); err != nil {
		t.Fatal(err)
	}
	addr := "unix:" + filepath.Join(t.TempDir(), "d.sock")
	cmd := startHelper(t, "dest", addr, serverSpec)
	ctx := testCtx(t)
	var src *Stream
	var err error
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(20 * time.Millisecond) {
		if src, err = Dial(ctx, mustParse(t, addr), srcCfg); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	page := make([]byte, 4096)
	for range 1000 {
		src.PutBufferNoCopy(page)
	}
	if err := src.Flush(); err != nil {
		t.Fatalf("before SIGSTOP: %v", err)
	}
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	err = fillUntilError(t, src, 20*time.Second)
	kill(t, cmd) // SIGKILL ends a stopped process too
	checkStall(t, src, err, false, testStall)
	t.Logf("%v", err)
}

// TestStallSlowReader: a reader that takes the bytes slowly, but steadily,
// never trips the watchdog, though one flush (4 MiB through 16 KiB socket
// buffers) stays blocked several stall timeouts long. The reader moves
// bytes every few milliseconds against a timeout of half a second.
func TestStallSlowReader(t *testing.T) {
	const timeout = 500 * time.Millisecond
	dir := t.TempDir()
	for _, tc := range []struct{ name, addr, kind string }{
		{"tcp", "tcp:127.0.0.1:0", ""},
		{"unix", "unix:" + filepath.Join(dir, "s.sock"), ""},
		{"unix-x509", "unix:" + filepath.Join(dir, "x.sock"), "x509"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srcCfg, dstCfg := registries(t, tc.kind)
			srcCfg.StallTimeout = timeout
			src, dst := connectPair(t, tc.addr, srcCfg, dstCfg)
			type bufferer interface{ SetWriteBuffer(int) error }
			raw := src.raw.(*channel.Socket).NetConn()
			if err := raw.(bufferer).SetWriteBuffer(16 << 10); err != nil {
				t.Fatal(err)
			}
			if tc, ok := dst.raw.(*channel.Socket).NetConn().(*net.TCPConn); ok {
				if err := tc.SetReadBuffer(16 << 10); err != nil {
					t.Fatal(err)
				}
			}
			data := randomData(4<<20, 1)
			got := make(chan error, 1)
			go func() {
				tick := time.NewTicker(2 * time.Millisecond)
				defer tick.Stop()
				buf := make([]byte, 4096)
				for n := 0; n < len(data); {
					<-tick.C
					m, err := dst.Read(buf)
					if err != nil {
						got <- err
						return
					}
					if string(buf[:m]) != string(data[n:n+m]) {
						got <- errors.New("bytes differ")
						return
					}
					n += m
				}
				got <- nil
			}()
			start := time.Now()
			src.PutBufferNoCopy(data)
			err := src.Flush()
			el := time.Since(start)
			if err != nil {
				dst.Shutdown()
			}
			if rerr := <-got; rerr != nil && err == nil {
				t.Fatalf("reader: %v", rerr)
			}
			if err != nil {
				t.Fatalf("slow but moving reader: %v", err)
			}
			t.Logf("one flush of 4 MiB took %v (stall timeout %v)", el, timeout)
		})
	}
}

// stalledControl returns a Stream over unix whose peer never reads, with
// the stall timeout testStall. A test that waits for it to stall has seen
// at least testStall pass, without sleeping.
func stalledControl(t testing.TB) *Stream {
	src, _ := connectPair(t, "unix:"+filepath.Join(t.TempDir(), "c.sock"), &Config{StallTimeout: testStall}, nil)
	return src
}

// TestStallOff: with the watchdog off, a write to a peer that never reads
// stays blocked: while a control Stream with the watchdog on stalls on the
// same kind of peer, it does not; Shutdown then ends it with
// ErrStreamShutdown, not a stall.
func TestStallOff(t *testing.T) {
	src, _ := connectPair(t, "unix:"+filepath.Join(t.TempDir(), "o.sock"), &Config{StallTimeout: StallTimeoutOff}, nil)
	if d := src.StallTimeout(); d != 0 {
		t.Fatalf("StallTimeout() = %v with StallTimeoutOff, want 0", d)
	}
	blocked := make(chan error, 1)
	go func() { blocked <- fillUntilError(t, src, time.Hour) }()
	control := stalledControl(t)
	if err := fillUntilError(t, control, 20*time.Second); !errors.As(err, new(*StallError)) {
		t.Fatalf("control: %v, want a stall", err)
	}
	select {
	case err := <-blocked:
		t.Fatalf("write with the watchdog off failed: %v", err)
	default:
	}
	src.Shutdown()
	if err := <-blocked; !errors.Is(err, ErrStreamShutdown) {
		t.Fatalf("after Shutdown: %v, want ErrStreamShutdown", err)
	}
	src.watch.mu.Lock()
	armed := src.watch.timer != nil
	src.watch.mu.Unlock()
	if armed {
		t.Error("the watchdog's timer was set with the watchdog off")
	}
}

// TestStallIdleAndReads: a Stream that waits for nothing, and a read that
// waits for a silent peer, are not stalls: both sides stay healthy while a
// control Stream stalls, then carry data.
func TestStallIdleAndReads(t *testing.T) {
	cfg := &Config{StallTimeout: testStall}
	src, dst := connectPair(t, "unix:"+filepath.Join(t.TempDir(), "i.sock"), cfg, cfg)
	src.PutBE64(1)
	if err := src.Flush(); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		a, b := dst.GetBE64(), dst.GetBE64() // the second waits for the source
		if a != 1 || b != 2 {
			got <- errors.New("wrong values")
			return
		}
		got <- dst.Err()
	}()
	control := stalledControl(t)
	if err := fillUntilError(t, control, 20*time.Second); !errors.As(err, new(*StallError)) {
		t.Fatalf("control: %v, want a stall", err)
	}
	src.PutBE64(2)
	if err := src.Flush(); err != nil {
		t.Fatalf("write after idling: %v", err)
	}
	if err := <-got; err != nil {
		t.Fatalf("reader that waited: %v", err)
	}
}

// TestStallNotDuringRateLimit: a flush that waits for the rate limiter
// (here 0.4 s, four stall timeouts) is not a stall.
func TestStallNotDuringRateLimit(t *testing.T) {
	src, dst := connectPair(t, "unix:"+filepath.Join(t.TempDir(), "r.sock"), &Config{StallTimeout: testStall, RateLimit: 256 << 10}, nil)
	data := randomData(128<<10, 2)
	got := make(chan error, 1)
	go func() {
		buf := make([]byte, len(data))
		_, err := dst.GetBuffer(buf)
		got <- err
	}()
	src.PutBufferNoCopy(data)
	if err := src.Flush(); err != nil {
		t.Fatalf("rate-limited flush: %v", err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

// TestStallTimeoutConfig: a task's Stream takes Config.StallTimeout (0 is
// the default, StallTimeoutOff is off), NewStream the default, and a
// ReturnPath its Stream's value.
func TestStallTimeoutConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  time.Duration
		want time.Duration
	}{
		{0, DefaultStallTimeout},
		{StallTimeoutOff, 0},
		{-5 * time.Second, 0},
		{3 * time.Second, 3 * time.Second},
	} {
		src, dst := connectPair(t, "unix:"+filepath.Join(t.TempDir(), "t.sock"), &Config{StallTimeout: tc.cfg}, &Config{StallTimeout: tc.cfg})
		if src.StallTimeout() != tc.want || dst.StallTimeout() != tc.want || src.ReturnPath().StallTimeout() != tc.want {
			t.Errorf("Config.StallTimeout %v: streams have %v, %v, return path %v; want %v",
				tc.cfg, src.StallTimeout(), dst.StallTimeout(), src.ReturnPath().StallTimeout(), tc.want)
		}
	}
	a, _ := socketPair(t)
	s := NewStream(a)
	if s.StallTimeout() != DefaultStallTimeout {
		t.Errorf("NewStream: %v, want %v", s.StallTimeout(), DefaultStallTimeout)
	}
	s.SetStallTimeout(0)
	if s.StallTimeout() != 0 {
		t.Errorf("SetStallTimeout(0) left %v", s.StallTimeout())
	}
}

// TestSessionStall: a Session whose destination stops reading fails with
// the *StallError of one of its channels from Write, Flush and Close,
// over plain tcp and over TLS.
func TestSessionStall(t *testing.T) {
	for _, kind := range []string{"", "x509"} {
		t.Run("tls="+kind, func(t *testing.T) {
			srcCfg, dstCfg := registries(t, kind)
			srcCfg.Channels = 2
			srcCfg.StallTimeout = testStall
			srv := startServer(t, "tcp:127.0.0.1:0", dstCfg)
			src, _ := sessionPair(t, srv, srcCfg) // the destination never reads
			stop := time.AfterFunc(20*time.Second, func() { src.Shutdown() })
			defer stop.Stop()
			buf := make([]byte, 1<<20)
			var werr error
			for werr == nil {
				_, werr = src.Write(buf)
			}
			for name, err := range map[string]error{"Write": werr, "Flush": src.Flush(), "Close": src.Close()} {
				var se *StallError
				if !errors.As(err, &se) || se.Op != "write" || se.StallTimeout != testStall {
					t.Errorf("%s: %v, want the stall of a channel", name, err)
				}
			}
			t.Logf("%v", werr)
		})
	}
}
