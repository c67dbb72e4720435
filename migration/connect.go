package migration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/internal/hello"
	"github.com/livemig/livemig/uri"
)

// Connect starts a Task that sets up the source's channel to addr: it
// connects (dials tcp, unix or vsock, starts the exec command, uses the fd,
// or creates the file), runs the TLS handshake when tls-creds is set, and
// sends the hello, announcing the main channel of a session of
// cfg.Channels channels, with cfg.SessionID (random if zero). With cfg.DialBack it listens on addr instead and accepts
// the destination's connection.
//
// The context bounds the Task, as for net.Dialer.DialContext: "The
// provided Context must be non-nil. If the context expires before the
// connection is complete, an error is returned. Once successfully
// connected, any expiration of the context will not affect the
// connection."
func Connect(ctx context.Context, addr uri.Address, cfg *Config) *Task {
	p, err := sourcePlan(addr, cfg, cfg.Clone().SessionID)
	if err != nil {
		return failedTask(cfg, err)
	}
	return p.start(ctx)
}

// Dial is the blocking form of Connect: it waits for the Task and returns
// its Stream.
func Dial(ctx context.Context, addr uri.Address, cfg *Config) (*Stream, error) {
	return Connect(ctx, addr, cfg).Wait(context.Background())
}

// Relay is Dial for a proxy: it connects to addr as the next hop of the
// channel in arrived on, and its hello announces what in's peer announced
// (the session, the channel's index and the session's channel count), so
// that a session's channels travel through the proxy unchanged and the
// far side groups them as the source did. cfg.SessionID and cfg.Channels
// are not used. in must have come with a hello from its peer: a Stream
// that a Listener without Config.Raw accepted has one.
func Relay(ctx context.Context, addr uri.Address, cfg *Config, in *Stream) (*Stream, error) {
	h := in.peer
	if h == nil {
		return nil, errors.New("migration: relay: the incoming channel had no hello from its peer (Config.Raw, or a one-way hello this side sent)")
	}
	c := cfg.Clone()
	c.SessionID, c.Channels, c.index, c.caps = h.Session, int(h.Channels), int(h.Index), h.Caps
	return Dial(ctx, addr, c)
}

// sourcePlan prepares a source channel's task with session ID id (zero
// means random).
func sourcePlan(addr uri.Address, cfg *Config, id SessionID) (*plan, error) {
	if addr.IsZero() {
		return nil, errZeroAddress
	}
	c := cfg.populate()
	if err := c.validate(); err != nil {
		return nil, err
	}
	if id.IsZero() {
		id = newSessionID()
	}
	p := &plan{
		addr:   addr,
		cfg:    c,
		dial:   !c.DialBack,
		source: true,
		hello: hello.Hello{
			Role:     roleOf(c.index),
			Source:   true,
			Session:  id,
			Index:    uint16(c.index),
			Channels: uint16(c.Channels),
			Caps:     c.caps,
		},
	}
	if c.DialBack {
		if !isSocket(addr.Transport) {
			return nil, fmt.Errorf("migration: DialBack needs a tcp, unix or vsock address, not %s", addr.Transport)
		}
		p.open = func(ctx context.Context) (channel.Channel, error) { return acceptOne(ctx, addr, c) }
		p.place = func(req *hello.Hello, _ string, reply *hello.Hello) (hello.Status, error) {
			if rid := SessionID(req.Session); !rid.IsZero() && rid != id {
				return hello.StatusUnknownSession, &HelloMismatchError{Field: "session", Local: id.String(), Remote: rid.String()}
			}
			if req.Role != roleOf(c.index) || int(req.Index) != c.index || int(req.Channels) != c.Channels {
				return hello.StatusMismatch, &HelloMismatchError{Field: "role",
					Local:  fmt.Sprintf("%s %d of %d", roleOf(c.index), c.index, c.Channels),
					Remote: fmt.Sprintf("%s %d of %d", req.Role, req.Index, req.Channels)}
			}
			reply.Session = id
			return hello.StatusOK, nil
		}
	} else {
		p.open = func(ctx context.Context) (channel.Channel, error) { return dialChannel(ctx, addr, c, false, true) }
	}
	return p, nil
}

func isSocket(t uri.Transport) bool { return t == uri.TCP || t == uri.Unix || t == uri.Vsock }

// tcpNetwork maps the ipv4/ipv6 options to "tcp", "tcp4" or "tcp6".
func tcpNetwork(in *uri.Inet) (string, error) {
	v4 := in.IPv4 != uri.Off && !(in.IPv6 == uri.On && in.IPv4 == uri.Unset)
	v6 := in.IPv6 != uri.Off && !(in.IPv4 == uri.On && in.IPv6 == uri.Unset)
	switch {
	case v4 && v6:
		return "tcp", nil
	case v4:
		return "tcp4", nil
	case v6:
		return "tcp6", nil
	}
	return "", errors.New("migration: tcp address with ipv4=off and ipv6=off")
}

// keepAlive maps the keep-alive options to a net.KeepAliveConfig; ok is
// false when they are absent.
func keepAlive(in *uri.Inet) (net.KeepAliveConfig, bool) {
	if in.KeepAlive == uri.Unset && in.KeepAliveCount == 0 && in.KeepAliveIdle == 0 && in.KeepAliveInterval == 0 {
		return net.KeepAliveConfig{}, false
	}
	kc := net.KeepAliveConfig{Enable: in.KeepAlive != uri.Off, Idle: -1, Interval: -1, Count: -1}
	if in.KeepAliveIdle > 0 {
		kc.Idle = time.Duration(in.KeepAliveIdle) * time.Second
	}
	if in.KeepAliveInterval > 0 {
		kc.Interval = time.Duration(in.KeepAliveInterval) * time.Second
	}
	if in.KeepAliveCount > 0 {
		kc.Count = int(in.KeepAliveCount)
	}
	return kc, true
}

// socketTarget returns the network and address that package channel dials
// or listens on for a tcp, unix or vsock Address.
func socketTarget(addr uri.Address) (network, address string, err error) {
	switch addr.Transport {
	case uri.TCP:
		network, err = tcpNetwork(&addr.Inet)
		return network, net.JoinHostPort(addr.Inet.Host, addr.Inet.Port), err
	case uri.Unix:
		address, err = unixSockaddr(addr.Unix)
		return "unix", address, err
	case uri.Vsock:
		return "vsock", fmt.Sprintf("%d:%d", addr.Vsock.CID, addr.Vsock.Port), nil
	}
	return "", "", fmt.Errorf("migration: %s is not a socket transport", addr.Transport)
}

// dialChannel opens the channel of an outgoing address. With retry, a
// refused socket connection is retried until ctx ends (dial-back, where the
// source may not listen yet). write selects the direction of file: (true:
// create and write at the offset; false: read from it).
func dialChannel(ctx context.Context, addr uri.Address, cfg *Config, retry, write bool) (channel.Channel, error) {
	switch addr.Transport {
	case uri.TCP, uri.Unix, uri.Vsock:
		network, address, err := socketTarget(addr)
		if err != nil {
			return nil, err
		}
		d := &channel.Dialer{NetDialer: &net.Dialer{}}
		if addr.Transport == uri.TCP {
			d.Numeric = addr.Inet.Numeric == uri.On
			if kc, ok := keepAlive(&addr.Inet); ok {
				d.NetDialer.KeepAliveConfig = kc
			}
			if addr.Inet.MPTCP == uri.On {
				d.NetDialer.SetMultipathTCP(true)
			}
		}
		for {
			s, err := d.Dial(ctx, network, address)
			if err == nil {
				return asChannel(s)
			}
			if !retry || ctx.Err() != nil || !retryable(err) {
				return nil, err
			}
			select {
			case <-ctx.Done():
				return nil, err
			case <-time.After(50 * time.Millisecond):
			}
		}
	case uri.Exec:
		var c *channel.Command
		var err error
		if argv := addr.Args.Strings(); argv != nil {
			c, err = channel.StartArgv(argv)
		} else {
			c, err = channel.StartCommand(addr.Command)
		}
		if err != nil {
			return nil, err
		}
		return asChannel(c)
	case uri.FD:
		f, err := lookupFD(addr.FD, cfg)
		if err != nil {
			return nil, err
		}
		c, err := channel.FromFile(f)
		if err != nil {
			return nil, fmt.Errorf("migration: fd:%s: %w", addr.FD, err)
		}
		return c, nil
	case uri.File:
		if !write {
			f, err := channel.OpenFile(addr.File.Path, os.O_RDONLY, 0, addr.File.Offset)
			if err != nil {
				return nil, err
			}
			return asChannel(f)
		}
		// As QEMU: create, truncate at the offset (the descriptor, as
		// QEMU's ftruncate: the path may name another file by now),
		// write from there.
		f, err := channel.OpenFile(addr.File.Path, os.O_CREATE|os.O_WRONLY, 0o600, addr.File.Offset)
		if err != nil {
			return nil, err
		}
		c, err := asChannel(f)
		if err != nil {
			return nil, err
		}
		if testHookFileOpened != nil {
			testHookFileOpened(addr.File.Path)
		}
		if err := f.OSFile().Truncate(addr.File.Offset); err != nil {
			c.Close()
			return nil, fmt.Errorf("migration: file:%s: %w", addr.File.Path, err)
		}
		return c, nil
	}
	return nil, fmt.Errorf("migration: unknown transport %q", addr.Transport)
}

// testHookFileOpened, if set by a test, runs between opening a file:
// source's file and truncating it.
var testHookFileOpened func(path string)

// retryable reports whether a dial error means "nobody listens yet".
func retryable(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNRESET)
}

// lookupFD finds a named descriptor in cfg.FDs, or an inherited one by
// number.
func lookupFD(name string, cfg *Config) (*os.File, error) {
	if f, ok := cfg.FDs[name]; ok && f != nil {
		return f, nil
	}
	n, err := strconv.Atoi(name)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("migration: fd:%s: no descriptor of that name in Config.FDs", name)
	}
	f := os.NewFile(uintptr(n), "fd:"+name)
	if f == nil {
		return nil, fmt.Errorf("migration: fd:%s: invalid descriptor", name)
	}
	return f, nil
}

// acceptOne listens on addr, accepts one connection and stops listening
// (dial-back source).
func acceptOne(ctx context.Context, addr uri.Address, cfg *Config) (channel.Channel, error) {
	ln, err := listenSocket(ctx, addr)
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	s, err := ln.Accept(ctx)
	if err != nil {
		return nil, err
	}
	return asChannel(s)
}

// listenSocket listens on a tcp, unix or vsock address with its options.
func listenSocket(ctx context.Context, addr uri.Address) (*channel.Listener, error) {
	network, address, err := socketTarget(addr)
	if err != nil {
		return nil, err
	}
	lc := &channel.ListenConfig{}
	if addr.Transport == uri.TCP {
		lc.PortRangeEnd = addr.Inet.To
		lc.MultipathTCP = addr.Inet.MPTCP == uri.On
		lc.Numeric = addr.Inet.Numeric == uri.On
		if kc, ok := keepAlive(&addr.Inet); ok {
			lc.KeepAlive = kc
		}
	}
	return lc.Listen(ctx, network, address)
}
