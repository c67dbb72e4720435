package migration

import (
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// connChannel adapts a *net.UnixConn or *net.TCPConn to channel.Channel,
// so the Stream tests need nothing from package channel but its interface.
type connChannel struct {
	net.Conn
	name string
}

var _ channel.Channel = (*connChannel)(nil)

func (c *connChannel) WriteBuffers(b *net.Buffers) (int64, error) { return b.WriteTo(c.Conn) }
func (c *connChannel) Name() string                               { return c.name }
func (c *connChannel) Shutdown(how channel.Direction) error {
	type halfCloser interface {
		CloseRead() error
		CloseWrite() error
	}
	hc, ok := c.Conn.(halfCloser)
	if !ok {
		return c.Conn.Close()
	}
	var err error
	if how&channel.Read != 0 {
		err = hc.CloseRead()
	}
	if how&channel.Write != 0 {
		if e := hc.CloseWrite(); err == nil {
			err = e
		}
	}
	return err
}

// socketPair returns the two ends of a unix stream socketpair as Channels,
// closed at cleanup.
func socketPair(t testing.TB) (a, b *connChannel) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	mk := func(fd int, name string) *connChannel {
		f := os.NewFile(uintptr(fd), name)
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return &connChannel{Conn: c, name: "socketpair:" + name}
	}
	return mk(fds[0], "a"), mk(fds[1], "b")
}

// tcpPair returns the two ends of a loopback tcp connection.
func tcpPair(t testing.TB) (a, b *connChannel) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	ca, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		ca.Close()
		t.Fatal(r.err)
	}
	t.Cleanup(func() { ca.Close(); r.c.Close() })
	return &connChannel{Conn: ca, name: "tcp:a"}, &connChannel{Conn: r.c, name: "tcp:b"}
}

var (
	syscallEPIPE      = syscall.EPIPE
	syscallECONNRESET = syscall.ECONNRESET
)
