package channel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ListenConfig holds options for listening. The zero value is usable. A
// ListenConfig must not be modified after use; it is safe for concurrent
// use.
type ListenConfig struct {
	// PortRangeEnd, when above the requested tcp port, makes Listen try
	// ports upward from it to PortRangeEnd inclusive until one binds on
	// every address, as QEMU's "to=" option does. Default 0: only the
	// requested port.
	PortRangeEnd uint16
	// KeepAlive applies to accepted tcp connections, as
	// net.ListenConfig.KeepAliveConfig does. The zero value enables
	// keep-alive with the system's default idle time, interval and count.
	KeepAlive net.KeepAliveConfig
	// MultipathTCP listens with multipath TCP where the kernel has it
	// (plain TCP clients are still accepted). Default false.
	MultipathTCP bool
	// Numeric refuses host names: the host must be an IP literal or empty.
	// Default false.
	Numeric bool
	// Resolver resolves tcp host names; nil means net.DefaultResolver.
	Resolver *net.Resolver
}

// Listen listens on network "tcp", "tcp4" or "tcp6" (address
// "host:port"), "unix" (a path, or "@name" abstract) or "vsock"
// ("cid:port"; empty cid means any, port 0 any free port).
//
// For tcp it listens on every address the host resolves to, all with the
// same port, and one Listener accepts from all of them; an empty host
// listens on every local address (one dual-stack socket for "tcp"). Port 0
// picks a free port (the same one on every address). With PortRangeEnd
// the first port of the range that binds on every address wins.
//
// For unix, a socket file left behind by a dead listener is removed; a
// path where something is still listening, or that is not a socket, is
// refused. The Listener removes its socket file on Close.
//
// ctx bounds name resolution and the stale-socket check; once Listen
// returns, ctx's end does not affect the Listener. Errors are *[OpError]
// with Op "listen".
func (lc *ListenConfig) Listen(ctx context.Context, network, address string) (*Listener, error) {
	lns, err := lc.listen(ctx, network, address)
	if err != nil {
		return nil, &OpError{Op: "listen", Channel: network + " " + displayAddress(address), Err: err}
	}
	return newListener(network, lns), nil
}

// Listen is (&ListenConfig{}).Listen.
func Listen(ctx context.Context, network, address string) (*Listener, error) {
	var lc ListenConfig
	return lc.Listen(ctx, network, address)
}

func (lc *ListenConfig) netListenConfig() *net.ListenConfig {
	nlc := &net.ListenConfig{KeepAliveConfig: lc.KeepAlive}
	if lc.MultipathTCP {
		nlc.SetMultipathTCP(true)
	}
	return nlc
}

func (lc *ListenConfig) listen(ctx context.Context, network, address string) ([]net.Listener, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
		return lc.listenTCP(ctx, network, address)
	case "unix":
		l, err := lc.listenUnix(ctx, address)
		if err != nil {
			return nil, err
		}
		return []net.Listener{l}, nil
	case "vsock":
		l, err := listenVsock(ctx, address)
		if err != nil {
			return nil, err
		}
		return []net.Listener{l}, nil
	}
	return nil, net.UnknownNetworkError(network)
}

func (lc *ListenConfig) listenTCP(ctx context.Context, network, address string) ([]net.Listener, error) {
	addrs, err := resolveTCP(ctx, lc.Resolver, network, address, lc.Numeric, true)
	if err != nil {
		return nil, err
	}
	nlc := lc.netListenConfig()
	first := addrs[0].Port()
	last := first
	if first != 0 && lc.PortRangeEnd > first {
		last = lc.PortRangeEnd
	}
	var lastErr error
	for port := int(first); port <= int(last); port++ {
		lns, err := listenAll(ctx, nlc, network, addrs, uint16(port))
		if err == nil {
			return lns, nil
		}
		lastErr = err
		if !errors.Is(err, syscall.EADDRINUSE) || ctx.Err() != nil {
			break
		}
	}
	if first != last {
		return nil, fmt.Errorf("no free port in %d-%d: %w", first, last, lastErr)
	}
	return nil, lastErr
}

// listenAll binds port on every address, or none. Port 0 takes the port
// the first bind picked for the others, retrying a few times if that port
// is taken on another address.
func listenAll(ctx context.Context, nlc *net.ListenConfig, network string, addrs []netip.AddrPort, port uint16) ([]net.Listener, error) {
	attempts := 1
	if port == 0 && len(addrs) > 1 {
		attempts = 8
	}
	var err error
	for ; attempts > 0; attempts-- {
		var lns []net.Listener
		p := port
		for _, ap := range addrs {
			host := ""
			if ap.Addr().IsValid() {
				host = ap.Addr().String()
			}
			var l net.Listener
			l, err = nlc.Listen(ctx, network, net.JoinHostPort(host, strconv.Itoa(int(p))))
			if err != nil {
				err = cause(err)
				break
			}
			lns = append(lns, l)
			if p == 0 {
				p = uint16(l.Addr().(*net.TCPAddr).Port)
			}
		}
		if err == nil {
			return lns, nil
		}
		for _, l := range lns {
			l.Close()
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	return nil, err
}

func (lc *ListenConfig) listenUnix(ctx context.Context, path string) (net.Listener, error) {
	if path == "" {
		return nil, errors.New("empty unix socket path")
	}
	nlc := lc.netListenConfig()
	l, err := nlc.Listen(ctx, "unix", path)
	if err == nil || !errors.Is(err, syscall.EADDRINUSE) || strings.HasPrefix(path, "@") {
		return l, cause(err)
	}
	fi, serr := os.Lstat(path)
	if serr != nil {
		return nil, cause(err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return nil, fmt.Errorf("%s exists and is not a socket", path)
	}
	// Something left a socket file: remove it only if nobody listens.
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	c, derr := d.DialContext(dctx, "unix", path)
	cancel()
	if derr == nil {
		c.Close()
		return nil, fmt.Errorf("%s is in use by a running listener: %w", path, syscall.EADDRINUSE)
	}
	if !errors.Is(derr, syscall.ECONNREFUSED) {
		return nil, fmt.Errorf("%s exists and checking whether it is in use failed: %w", path, cause(derr))
	}
	if rerr := os.Remove(path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		return nil, fmt.Errorf("removing stale socket: %w", cause(rerr))
	}
	l, err = nlc.Listen(ctx, "unix", path)
	return l, cause(err)
}

// Listener accepts [Socket]s from one or more listening sockets: every
// address of a tcp host, or one unix or vsock socket.
//
// Accept may be called from several goroutines at once; Close may be
// called from any goroutine and more than once. Each listening socket has
// one goroutine that accepts into a hand-off point; Close stops and waits
// for them, and closes a connection accepted but not yet handed out.
type Listener struct {
	network string
	name    string
	lns     []net.Listener
	results chan acceptResult
	done    chan struct{}
	wg      sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

type acceptResult struct {
	c   net.Conn
	err error
}

func newListener(network string, lns []net.Listener) *Listener {
	l := &Listener{
		network: network,
		lns:     lns,
		results: make(chan acceptResult),
		done:    make(chan struct{}),
	}
	addrs := make([]string, len(lns))
	for i, ln := range lns {
		addrs[i] = ln.Addr().String()
	}
	l.name = network + " " + strings.Join(addrs, ",")
	for _, ln := range lns {
		l.wg.Add(1)
		go l.acceptLoop(ln)
	}
	return l
}

func (l *Listener) acceptLoop(ln net.Listener) {
	defer l.wg.Done()
	backoff := 5 * time.Millisecond
	for {
		c, err := ln.Accept()
		if err != nil {
			select {
			case <-l.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case l.results <- acceptResult{err: err}:
			case <-l.done:
				return
			}
			// Temporary failures such as EMFILE: back off, as net/http does.
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-l.done:
				t.Stop()
				return
			}
			if backoff < time.Second {
				backoff *= 2
			}
			continue
		}
		backoff = 5 * time.Millisecond
		select {
		case l.results <- acceptResult{c: c}:
		case <-l.done:
			c.Close()
			return
		}
	}
}

// Accept waits for a connection, ctx's end or Close. On ctx's end it
// returns ctx.Err(); after Close it returns an *[OpError] wrapping
// net.ErrClosed.
func (l *Listener) Accept(ctx context.Context) (*Socket, error) {
	for {
		select {
		case r := <-l.results:
			if r.err != nil {
				return nil, opError("accept", l.name, r.err)
			}
			s, err := NewSocket(r.c)
			if err != nil {
				r.c.Close()
				continue
			}
			return s, nil
		case <-l.done:
			return nil, errClosed("accept", l.name)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Addrs returns the bound addresses, one per listening socket.
func (l *Listener) Addrs() []net.Addr {
	out := make([]net.Addr, len(l.lns))
	for i, ln := range l.lns {
		out[i] = ln.Addr()
	}
	return out
}

// Name returns the network and the bound addresses, as in
// "tcp 127.0.0.1:4444,[::1]:4444".
func (l *Listener) Name() string { return l.name }

// Close stops listening, unblocks Accept, waits for the accepting
// goroutines and removes a unix socket file. Calls after the first return
// nil.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		close(l.done)
		var errs []error
		for _, ln := range l.lns {
			if err := ln.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		l.wg.Wait()
		if len(errs) > 0 {
			l.closeErr = opError("close", l.name, errors.Join(errs...))
		}
	})
	return l.closeErr
}
