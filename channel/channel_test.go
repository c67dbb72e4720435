//go:build linux

package channel_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/nettest"
	"golang.org/x/sys/unix"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/channel/channeltest"
	"github.com/livemig/livemig/internal/leakcheck"
	"github.com/livemig/livemig/internal/testwait"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// testCtx returns a context that ends with the test, or a tenth of the
// test binary's -timeout before it expires.
func testCtx(t testing.TB) context.Context {
	t.Helper()
	return testwait.Context(t)
}

// listen listens and closes the listener when the test ends.
func listen(t testing.TB, network, address string) *channel.Listener {
	t.Helper()
	l, err := channel.Listen(testCtx(t), network, address)
	if err != nil {
		t.Fatalf("Listen(%s, %s): %v", network, address, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// socketPair dials l and accepts; both sockets close when the test ends.
func socketPair(t testing.TB, l *channel.Listener, network, address string) (client, server *channel.Socket) {
	t.Helper()
	ctx := testCtx(t)
	type result struct {
		s   *channel.Socket
		err error
	}
	ch := make(chan result, 1)
	go func() {
		s, err := l.Accept(ctx)
		ch <- result{s, err}
	}()
	c, err := channel.Dial(ctx, network, address)
	if err != nil {
		t.Fatalf("Dial(%s, %s): %v", network, address, err)
	}
	t.Cleanup(func() { c.Close() })
	r := <-ch
	if r.err != nil {
		t.Fatalf("Accept: %v", r.err)
	}
	t.Cleanup(func() { r.s.Close() })
	return c, r.s
}

func tcpPair(network, host string) func(t testing.TB) (*channel.Socket, *channel.Socket) {
	return func(t testing.TB) (*channel.Socket, *channel.Socket) {
		t.Helper()
		if network == "tcp6" && !nettest.SupportsIPv6() {
			t.Skip("skipping: this host has no IPv6 loopback")
		}
		l := listen(t, network, net.JoinHostPort(host, "0"))
		return socketPair(t, l, network, l.Addrs()[0].String())
	}
}

func unixPair(t testing.TB) (*channel.Socket, *channel.Socket) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s")
	l := listen(t, "unix", path)
	return socketPair(t, l, "unix", path)
}

var vsockProbe struct {
	once   sync.Once
	reason string
}

// requireVsock skips the test, saying why, when the kernel has no AF_VSOCK
// loopback transport (CID 1, the vsock_loopback module). It probes once.
func requireVsock(t testing.TB) {
	t.Helper()
	vsockProbe.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		l, err := channel.Listen(ctx, "vsock", ":0")
		if err != nil {
			vsockProbe.reason = "the kernel cannot listen on AF_VSOCK: " + err.Error()
			return
		}
		defer l.Close()
		port := l.Addrs()[0].(*channel.VsockAddr).Port
		c, err := channel.Dial(ctx, "vsock", "1:"+itoa(int(port)))
		if err != nil {
			vsockProbe.reason = "no vsock loopback (is the vsock_loopback module loaded?): " + err.Error()
			return
		}
		c.Close()
	})
	if vsockProbe.reason != "" {
		t.Skip("skipping: " + vsockProbe.reason)
	}
}

// vsockPair connects over AF_VSOCK loopback (CID 1).
func vsockPair(t testing.TB) (*channel.Socket, *channel.Socket) {
	t.Helper()
	requireVsock(t)
	l := listen(t, "vsock", ":0")
	port := l.Addrs()[0].(*channel.VsockAddr).Port
	return socketPair(t, l, "vsock", "1:"+itoa(int(port)))
}

// socketpairPair makes a socketpair(2) and turns its ends into Sockets
// with FromFile, as an inherited fd: descriptor would be.
func socketpairPair(t testing.TB) (channel.Channel, channel.Channel) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socketpair: %v", err)
	}
	var out [2]channel.Channel
	for i, fd := range fds {
		c, err := channel.FromFile(os.NewFile(uintptr(fd), "socketpair"))
		if err != nil {
			t.Fatalf("FromFile(socketpair): %v", err)
		}
		if _, ok := c.(*channel.Socket); !ok {
			t.Fatalf("FromFile(socketpair) = %T, want *channel.Socket", c)
		}
		t.Cleanup(func() { c.Close() })
		out[i] = c
	}
	return out[0], out[1]
}

// osPipePair joins two os.Pipes into a pair of channel.Pipes.
func osPipePair(t testing.TB) (channel.Channel, channel.Channel) {
	t.Helper()
	r1, w1, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r2, w2, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	a, b := channel.NewFilePair(r2, w1), channel.NewFilePair(r1, w2)
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// commandPair joins two child processes through two fifos: a's stdin
// reaches b's stdout and b's stdin reaches a's stdout, each through two
// cats, so the pair exercises Command in both directions.
func commandPair(t testing.TB) (channel.Channel, channel.Channel) {
	t.Helper()
	dir := t.TempDir()
	ab, ba := filepath.Join(dir, "ab"), filepath.Join(dir, "ba")
	for _, p := range []string{ab, ba} {
		if err := unix.Mkfifo(p, 0o600); err != nil {
			t.Fatalf("mkfifo: %v", err)
		}
	}
	start := func(out, in string) *channel.Command {
		// sh gives a background job /dev/null for stdin, so the cats get
		// stdin and stdout through descriptors 3 and 4, and the shell
		// itself keeps neither open: each direction ends with its cat.
		c, err := channel.StartCommand("exec 3<&0 4>&1 </dev/null >/dev/null; " +
			"cat <&3 4>&- >'" + out + "' & cat 3<&- <'" + in + "' >&4 4>&- & exec 3<&- 4>&-; wait")
		if err != nil {
			t.Fatalf("StartCommand: %v", err)
		}
		c.SetGracePeriod(500 * time.Millisecond)
		t.Cleanup(func() { c.Close() })
		return c
	}
	return start(ab, ba), start(ba, ab)
}

func asChannels[T channel.Channel](f func(testing.TB) (T, T)) channeltest.MakePipe {
	return func(t testing.TB) (channel.Channel, channel.Channel) {
		a, b := f(t)
		return a, b
	}
}

func TestConformance(t *testing.T) {
	tests := []struct {
		name string
		mp   channeltest.MakePipe
	}{
		{"tcp4", asChannels(tcpPair("tcp4", "127.0.0.1"))},
		{"tcp6", asChannels(tcpPair("tcp6", "::1"))},
		{"unix", asChannels(unixPair)},
		{"vsock", asChannels(vsockPair)},
		{"socketpair", socketpairPair},
		{"os-pipe", osPipePair},
		{"command", commandPair},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			channeltest.TestChannel(t, tt.mp)
		})
	}
}

// TestNetConn runs nettest.TestConn on Sockets, which are net.Conns.
func TestNetConn(t *testing.T) {
	tests := []struct {
		name string
		pair func(testing.TB) (*channel.Socket, *channel.Socket)
	}{
		{"tcp", tcpPair("tcp4", "127.0.0.1")},
		{"unix", unixPair},
		{"vsock", vsockPair},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "vsock" {
				requireVsock(t)
			}
			nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
				a, b := tt.pair(t)
				return a, b, func() { a.Close(); b.Close() }, nil
			})
		})
	}
}

func itoa(i int) string { return strconvItoa(i) }

var errNetClosed = net.ErrClosed

var _ = errors.Is
var _ = syscall.EPIPE
