package channel

// API STUB (removed by the channel helper as it implements each piece).

import (
	"context"
	"net"
	"os"
	"time"
)

// Socket is a Channel over a tcp, unix or vsock socket.
type Socket struct{ conn net.Conn }

// NewSocket wraps an established net.Conn (*net.TCPConn, *net.UnixConn, or a vsock conn).
func NewSocket(c net.Conn) (*Socket, error) { panic("todo") }

// Dialer holds options for dialing. The zero value is usable.
type Dialer struct {
	// NetDialer supplies Timeout, LocalAddr, KeepAliveConfig and
	// SetMultipathTCP for tcp; nil means a zero net.Dialer.
	NetDialer *net.Dialer
	// Numeric refuses host names: the host must be an IP literal.
	Numeric bool
}

// Dial connects on network "tcp", "tcp4", "tcp6" (address "host:port"),
// "unix" (address path, "@name" abstract) or "vsock" (address "cid:port").
// For tcp it tries every resolved address in turn and aggregates every
// attempt's error when all fail.
func (d *Dialer) Dial(ctx context.Context, network, address string) (*Socket, error) { panic("todo") }

// Dial is (&Dialer{}).Dial.
func Dial(ctx context.Context, network, address string) (*Socket, error) { panic("todo") }

// ListenConfig holds options for listening. The zero value is usable.
type ListenConfig struct {
	// PortRangeEnd, when above the port, tries ports upward to it until one
	// binds (QEMU's to=).
	PortRangeEnd uint16
	// KeepAlive applies to accepted tcp connections.
	KeepAlive net.KeepAliveConfig
	// MultipathTCP listens with MPTCP.
	MultipathTCP bool
	Numeric      bool
}

// Listen listens on every address the host resolves to (tcp), a unix path
// or a vsock cid:port.
func (lc *ListenConfig) Listen(ctx context.Context, network, address string) (*Listener, error) {
	panic("todo")
}

// Listen is (&ListenConfig{}).Listen.
func Listen(ctx context.Context, network, address string) (*Listener, error) { panic("todo") }

// Listener accepts Sockets.
type Listener struct{}

// Accept waits for a connection or ctx's end.
func (l *Listener) Accept(ctx context.Context) (*Socket, error) { panic("todo") }

// Addrs returns the bound addresses.
func (l *Listener) Addrs() []net.Addr { panic("todo") }

// Close stops listening and unblocks Accept.
func (l *Listener) Close() error { panic("todo") }

// File is a Channel over a regular file from an offset.
type File struct{}

// OpenFile opens name with flag and perm and positions it at offset.
func OpenFile(name string, flag int, perm os.FileMode, offset int64) (*File, error) { panic("todo") }

// FromFile turns an inherited descriptor (fd: URIs) into a Channel: a
// *Socket for sockets, otherwise a stream over the pipe/char device.
func FromFile(f *os.File) (Channel, error) { panic("todo") }

// Command is a Channel over a child's stdin and stdout.
type Command struct{}

// StartCommand runs /bin/sh -c cmdline.
func StartCommand(cmdline string) (*Command, error) { panic("todo") }

// GracePeriod is how long Close waits for a child after closing its stdin.
var _ = time.Second

// Buffer is an in-memory seekable Channel.
type Buffer struct{}

// NewBuffer returns a Buffer holding b.
func NewBuffer(b []byte) *Buffer { panic("todo") }
