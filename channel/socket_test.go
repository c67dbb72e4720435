//go:build linux

package channel_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-multierror"
	"golang.org/x/net/nettest"
	"golang.org/x/sys/unix"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/internal/testwait"
)

func TestOpErrorString(t *testing.T) {
	tests := []struct {
		name string
		err  *channel.OpError
		want string
	}{
		// Rendered as net.OpError renders "write tcp src->dst: ...".
		{"tcp", &channel.OpError{Op: "write", Channel: "tcp 127.0.0.1:1->127.0.0.1:2", Err: syscall.EPIPE},
			"write tcp 127.0.0.1:1->127.0.0.1:2: broken pipe"},
		{"no channel", &channel.OpError{Op: "listen", Err: syscall.EADDRINUSE},
			"listen: address already in use"},
		{"closed", &channel.OpError{Op: "read", Channel: "unix ->/run/s", Err: net.ErrClosed},
			"read unix ->/run/s: use of closed network connection"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
			if !errors.Is(tt.err, tt.err.Err) {
				t.Errorf("errors.Is(err, %v) = false", tt.err.Err)
			}
		})
	}
}

// TestWriteErrorFromKernel checks the error a real failed write gives.
func TestWriteErrorFromKernel(t *testing.T) {
	c, s := tcpPair("tcp4", "127.0.0.1")(t)
	s.Close()
	var err error
	testwait.Until(t, "a write to a closed peer failing", func() bool {
		_, err = c.Write(make([]byte, 64<<10))
		return err != nil
	})
	re := regexp.MustCompile(`^write tcp 127\.0\.0\.1:\d+->127\.0\.0\.1:\d+: (broken pipe|connection reset by peer)$`)
	if err == nil || !re.MatchString(err.Error()) {
		t.Fatalf("write to a closed peer: %v; want it to match %s", err, re)
	}
	var oe *channel.OpError
	if !errors.As(err, &oe) || oe.Op != "write" || oe.Channel != c.Name() {
		t.Errorf("error %#v: want *channel.OpError{Op: write, Channel: %q}", err, c.Name())
	}
	if !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("errors.Is(err, EPIPE or ECONNRESET) = false for %v", err)
	}
}

func TestReadTimeoutIsNetError(t *testing.T) {
	c, _ := unixPair(t)
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past deadline: %v; want a timeout", err)
	}
	if !strings.HasPrefix(err.Error(), "read unix ") {
		t.Errorf("error %q does not start with %q", err, "read unix ")
	}
}

func TestSocketName(t *testing.T) {
	c, s := tcpPair("tcp4", "127.0.0.1")(t)
	want := "tcp " + c.LocalAddr().String() + "->" + c.RemoteAddr().String()
	if c.Name() != want {
		t.Errorf("Name() = %q, want %q", c.Name(), want)
	}
	if s.Network() != "tcp" || c.Network() != "tcp" {
		t.Errorf("Network() = %q, %q; want tcp", c.Network(), s.Network())
	}
}

func TestDialAllAddressesFail(t *testing.T) {
	if !nettest.SupportsIPv6() {
		t.Skip("skipping: no IPv6 loopback")
	}
	port := freePort(t)
	r := testResolver(t, map[string][]netip.Addr{
		"twice.test": {netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")},
	})
	d := &channel.Dialer{NetDialer: &net.Dialer{Resolver: r}}
	_, err := d.Dial(testCtx(t), "tcp", net.JoinHostPort("twice.test", port))
	var merr *multierror.Error
	if !errors.As(err, &merr) {
		t.Fatalf("Dial = %v; want an error wrapping *multierror.Error", err)
	}
	if len(merr.Errors) != 2 {
		t.Fatalf("%d attempts reported, want 2: %v", len(merr.Errors), err)
	}
	// The resolver orders the addresses (RFC 6724), so compare sets.
	seen := map[string]bool{}
	for i, e := range merr.Errors {
		addr, _, _ := strings.Cut(e.Error(), ": ")
		seen[addr] = true
		if !errors.Is(e, syscall.ECONNREFUSED) {
			t.Errorf("attempt %d: %v; want connection refused", i, e)
		}
	}
	for _, want := range []string{"127.0.0.1:" + port, "[::1]:" + port} {
		if !seen[want] {
			t.Errorf("no attempt on %s: %v", want, err)
		}
	}
	if !strings.HasPrefix(err.Error(), "dial tcp twice.test:"+port+": 2 attempts failed: ") {
		t.Errorf("message %q", err)
	}
}

func TestDialTriesNextAddress(t *testing.T) {
	if !nettest.SupportsIPv6() {
		t.Skip("skipping: no IPv6 loopback")
	}
	r := testResolver(t, map[string][]netip.Addr{
		"second.test": {netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")},
	})
	// Listen only on the address the resolver gives second (it sorts
	// them, RFC 6724): the first attempt fails and the next must connect.
	ips, err := r.LookupNetIP(testCtx(t), "ip", "second.test")
	if err != nil || len(ips) != 2 {
		t.Fatalf("LookupNetIP = %v, %v", ips, err)
	}
	second := ips[1].Unmap()
	l := listen(t, "tcp", net.JoinHostPort(second.String(), "0"))
	port := itoa(l.Addrs()[0].(*net.TCPAddr).Port)
	d := &channel.Dialer{NetDialer: &net.Dialer{Resolver: r}}
	c, err := d.Dial(testCtx(t), "tcp", "second.test:"+port)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	if got, want := c.RemoteAddr().String(), net.JoinHostPort(second.String(), port); got != want {
		t.Errorf("connected to %s, want %s", got, want)
	}
}

func TestDialErrors(t *testing.T) {
	tests := []struct {
		name, network, address string
		dialer                 channel.Dialer
		want                   string
	}{
		{"numeric refuses names", "tcp", "localhost:1", channel.Dialer{Numeric: true}, `host "localhost" is not a numeric IP address`},
		{"unknown network", "udp", "127.0.0.1:1", channel.Dialer{}, "unknown network udp"},
		{"bad address", "tcp", "127.0.0.1", channel.Dialer{}, "missing port in address"},
		{"bad port", "tcp", "127.0.0.1:99999", channel.Dialer{}, "invalid port"},
		{"empty unix path", "unix", "", channel.Dialer{}, "empty unix socket path"},
		{"missing unix socket", "unix", "/nonexistent/s", channel.Dialer{}, "no such file or directory"},
		{"bad vsock address", "vsock", "1", channel.Dialer{}, "want CID:PORT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.dialer.Dial(testCtx(t), tt.network, tt.address)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Dial(%s, %q) = %v; want an error containing %q", tt.network, tt.address, err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "dial "+tt.network+" ") {
				t.Errorf("message %q does not start with %q", err, "dial "+tt.network)
			}
		})
	}
}

func TestDialContextCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := channel.Dial(ctx, "tcp", "127.0.0.1:1")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Dial with a cancelled context = %v; want context.Canceled", err)
	}
}

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	return port
}

func TestListenEveryAddress(t *testing.T) {
	if !nettest.SupportsIPv6() {
		t.Skip("skipping: no IPv6 loopback")
	}
	r := testResolver(t, map[string][]netip.Addr{
		"both.test": {netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")},
	})
	lc := &channel.ListenConfig{Resolver: r}
	l, err := lc.Listen(testCtx(t), "tcp", "both.test:0")
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	defer l.Close()
	addrs := l.Addrs()
	if len(addrs) != 2 {
		t.Fatalf("Addrs() = %v, want two", addrs)
	}
	p0, p1 := addrs[0].(*net.TCPAddr).Port, addrs[1].(*net.TCPAddr).Port
	if p0 != p1 {
		t.Errorf("ports %d and %d differ; want one port on every address", p0, p1)
	}
	for _, a := range addrs {
		c, s := socketPair(t, l, "tcp", a.String())
		if got, want := s.LocalAddr().String(), a.String(); got != want {
			t.Errorf("accepted on %s, want %s", got, want)
		}
		if _, err := c.Write([]byte("hi")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 2)
		if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "hi" {
			t.Fatalf("read %q, %v", buf, err)
		}
	}
}

func TestListenPortRange(t *testing.T) {
	busy := listen(t, "tcp", "127.0.0.1:0")
	port := busy.Addrs()[0].(*net.TCPAddr).Port
	if port > 65000 {
		t.Skipf("skipping: ephemeral port %d too close to the top", port)
	}
	t.Run("next free port", func(t *testing.T) {
		lc := &channel.ListenConfig{PortRangeEnd: uint16(port + 20)}
		l, err := lc.Listen(testCtx(t), "tcp", "127.0.0.1:"+itoa(port))
		if err != nil {
			t.Fatalf("Listen with a range: %v", err)
		}
		defer l.Close()
		got := l.Addrs()[0].(*net.TCPAddr).Port
		if got <= port || got > port+20 {
			t.Errorf("bound port %d, want one in %d..%d", got, port+1, port+20)
		}
	})
	t.Run("no range", func(t *testing.T) {
		_, err := channel.Listen(testCtx(t), "tcp", "127.0.0.1:"+itoa(port))
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("Listen on a busy port = %v; want EADDRINUSE", err)
		}
	})
	t.Run("range exhausted", func(t *testing.T) {
		next, err := net.Listen("tcp", "127.0.0.1:"+itoa(port+1))
		if err != nil {
			t.Skipf("skipping: port %d is taken: %v", port+1, err)
		}
		defer next.Close()
		lc := &channel.ListenConfig{PortRangeEnd: uint16(port + 1)}
		_, err = lc.Listen(testCtx(t), "tcp", "127.0.0.1:"+itoa(port))
		want := "no free port in " + itoa(port) + "-" + itoa(port+1)
		if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), want) {
			t.Fatalf("Listen = %v; want EADDRINUSE and %q", err, want)
		}
	})
}

func TestListenUnixStaleSocket(t *testing.T) {
	dir := t.TempDir()
	t.Run("stale file removed", func(t *testing.T) {
		path := filepath.Join(dir, "stale")
		ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		ul.SetUnlinkOnClose(false)
		ul.Close() // leaves the socket file behind, as a crashed process would
		if _, err := os.Lstat(path); err != nil {
			t.Fatalf("socket file not left behind: %v", err)
		}
		l := listen(t, "unix", path)
		socketPair(t, l, "unix", path)
		l.Close()
		if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket file still there after Close: %v", err)
		}
	})
	t.Run("live listener kept", func(t *testing.T) {
		path := filepath.Join(dir, "live")
		l := listen(t, "unix", path)
		_, err := channel.Listen(testCtx(t), "unix", path)
		if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), "in use by a running listener") {
			t.Fatalf("second Listen = %v; want EADDRINUSE, in use by a running listener", err)
		}
		socketPair(t, l, "unix", path) // the first still works
	})
	t.Run("not a socket", func(t *testing.T) {
		path := filepath.Join(dir, "file")
		if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := channel.Listen(testCtx(t), "unix", path)
		if err == nil || !strings.Contains(err.Error(), "not a socket") {
			t.Fatalf("Listen on a regular file = %v; want 'not a socket'", err)
		}
		if b, _ := os.ReadFile(path); string(b) != "keep me" {
			t.Errorf("the regular file was touched")
		}
	})
}

func TestAcceptContext(t *testing.T) {
	l := listen(t, "tcp", "127.0.0.1:0")
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		accept := testwait.Go(func() error { _, err := l.Accept(ctx); return err })
		accept.Blocked(t)
		cancel()
		if err := accept.Result(t, "Accept after cancel"); !errors.Is(err, context.Canceled) {
			t.Fatalf("Accept = %v, want context.Canceled", err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		_, err := l.Accept(ctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Accept = %v, want context.DeadlineExceeded", err)
		}
	})
	t.Run("still accepts afterwards", func(t *testing.T) {
		socketPair(t, l, "tcp", l.Addrs()[0].String())
	})
	t.Run("close", func(t *testing.T) {
		ctx := testCtx(t)
		accept := testwait.Go(func() error { _, err := l.Accept(ctx); return err })
		accept.Blocked(t)
		l.Close()
		if err := accept.Result(t, "Accept after Close"); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close = %v, want net.ErrClosed", err)
		}
		if err := l.Close(); err != nil {
			t.Errorf("second Close = %v", err)
		}
	})
}

func getsockopt(t testing.TB, s *channel.Socket, level, opt int) int {
	t.Helper()
	rc, err := s.NetConn().(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), level, opt) })
	if gerr != nil {
		t.Fatalf("getsockopt(%d, %d): %v", level, opt, gerr)
	}
	return v
}

func TestSocketOptions(t *testing.T) {
	c, _ := tcpPair("tcp4", "127.0.0.1")(t)
	if err := c.SetNoDelay(false); err != nil {
		t.Fatal(err)
	}
	if v := getsockopt(t, c, unix.IPPROTO_TCP, unix.TCP_NODELAY); v != 0 {
		t.Errorf("TCP_NODELAY = %d after SetNoDelay(false)", v)
	}
	if err := c.SetNoDelay(true); err != nil {
		t.Fatal(err)
	}
	if v := getsockopt(t, c, unix.IPPROTO_TCP, unix.TCP_NODELAY); v == 0 {
		t.Errorf("TCP_NODELAY = 0 after SetNoDelay(true)")
	}
	ka := net.KeepAliveConfig{Enable: true, Idle: 33 * time.Second, Interval: 7 * time.Second, Count: 4}
	if err := c.SetKeepAlive(ka); err != nil {
		t.Fatal(err)
	}
	for _, o := range []struct {
		name      string
		opt, want int
	}{
		{"SO_KEEPALIVE", unix.SO_KEEPALIVE, 1},
		{"TCP_KEEPIDLE", unix.TCP_KEEPIDLE, 33},
		{"TCP_KEEPINTVL", unix.TCP_KEEPINTVL, 7},
		{"TCP_KEEPCNT", unix.TCP_KEEPCNT, 4},
	} {
		level := unix.IPPROTO_TCP
		if o.opt == unix.SO_KEEPALIVE {
			level = unix.SOL_SOCKET
		}
		if v := getsockopt(t, c, level, o.opt); v != o.want {
			t.Errorf("%s = %d, want %d", o.name, v, o.want)
		}
	}
	if err := c.SetCork(true); err != nil {
		t.Fatal(err)
	}
	if v := getsockopt(t, c, unix.IPPROTO_TCP, unix.TCP_CORK); v != 1 {
		t.Errorf("TCP_CORK = %d after SetCork(true)", v)
	}
	if err := c.SetCork(false); err != nil {
		t.Fatal(err)
	}
	if v := getsockopt(t, c, unix.IPPROTO_TCP, unix.TCP_CORK); v != 0 {
		t.Errorf("TCP_CORK = %d after SetCork(false)", v)
	}

	u, _ := unixPair(t)
	for name, err := range map[string]error{
		"SetNoDelay":   u.SetNoDelay(true),
		"SetKeepAlive": u.SetKeepAlive(ka),
		"SetCork":      u.SetCork(true),
	} {
		if !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("%s on unix = %v, want errors.ErrUnsupported", name, err)
		}
	}
}

func TestListenKeepAlive(t *testing.T) {
	lc := &channel.ListenConfig{KeepAlive: net.KeepAliveConfig{Enable: true, Idle: 41 * time.Second, Interval: 9 * time.Second, Count: 3}}
	l, err := lc.Listen(testCtx(t), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, s := socketPair(t, l, "tcp", l.Addrs()[0].String())
	if v := getsockopt(t, s, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE); v != 41 {
		t.Errorf("accepted TCP_KEEPIDLE = %d, want 41", v)
	}
	if v := getsockopt(t, s, unix.IPPROTO_TCP, unix.TCP_KEEPCNT); v != 3 {
		t.Errorf("accepted TCP_KEEPCNT = %d, want 3", v)
	}
}

func mptcpEnabled() bool {
	b, err := os.ReadFile("/proc/sys/net/mptcp/enabled")
	return err == nil && strings.TrimSpace(string(b)) == "1"
}

func TestMultipathTCP(t *testing.T) {
	lc := &channel.ListenConfig{MultipathTCP: true}
	l, err := lc.Listen(testCtx(t), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	d := &channel.Dialer{MultipathTCP: true}
	c, err := d.Dial(testCtx(t), "tcp", l.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := l.Accept(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cm, err := c.NetConn().(*net.TCPConn).MultipathTCP()
	if err != nil {
		t.Fatal(err)
	}
	sm, err := s.NetConn().(*net.TCPConn).MultipathTCP()
	if err != nil {
		t.Fatal(err)
	}
	if mptcpEnabled() && (!cm || !sm) {
		t.Errorf("NetConn().MultipathTCP() = %v (client), %v (server); want true with net.mptcp.enabled=1", cm, sm)
	}
	t.Logf("multipath TCP: client %v, server %v", cm, sm)
	if _, err := c.Write([]byte("mp")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "mp" {
		t.Fatalf("read %q, %v", buf, err)
	}
}

func TestShutdownRead(t *testing.T) {
	c, s := tcpPair("tcp4", "127.0.0.1")(t)
	if err := s.Shutdown(channel.Read); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("Read after Shutdown(Read) = %d, %v; want 0, io.EOF", n, err)
	}
	// Writing still works.
	if _, err := s.Write([]byte("ok")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ok" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if err := s.Shutdown(channel.Direction(4)); err == nil {
		t.Errorf("Shutdown(4) succeeded")
	}
}

func TestNewSocketRefusesNonSockets(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, err := channel.NewSocket(a); err == nil || !strings.Contains(err.Error(), "net.pipe") {
		t.Errorf("NewSocket(net.Pipe) = %v; want an error naming the type", err)
	}
	if _, err := channel.NewSocket(nil); err == nil {
		t.Errorf("NewSocket(nil) succeeded")
	}
}
