//go:build linux

package channel_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/internal/testwait"
)

// TestVsockListener exercises what works without a loopback transport:
// binding, Accept's context and Close, and Dial's context.
func TestVsockListener(t *testing.T) {
	l, err := channel.Listen(testCtx(t), "vsock", ":0")
	if err != nil {
		t.Skipf("skipping: the kernel cannot listen on AF_VSOCK: %v", err)
	}
	defer l.Close()
	a, ok := l.Addrs()[0].(*channel.VsockAddr)
	if !ok || a.Port == 0 || a.Port == unix.VMADDR_PORT_ANY || a.Network() != "vsock" {
		t.Fatalf("Addrs() = %v; want a bound vsock port", l.Addrs())
	}
	if !strings.HasPrefix(l.Name(), "vsock ") {
		t.Errorf("Name() = %q", l.Name())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := l.Accept(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Accept = %v, want context.DeadlineExceeded", err)
	}

	// Dial honours its context while the kernel is still connecting (or
	// fails at once where no transport reaches the CID).
	ctx2, cancel2 := context.WithCancel(context.Background())
	type dialed struct {
		c   *channel.Socket
		err error
	}
	dial := testwait.Go(func() dialed {
		c, err := channel.Dial(ctx2, "vsock", "1:"+itoa(int(a.Port)))
		return dialed{c, err}
	})
	dial.Blocked(t) // connecting, or done
	cancel2()
	switch d := dial.Result(t, "Dial after its context ended"); {
	case d.err == nil:
		d.c.Close() // a loopback transport exists: nothing more to check here
	case errors.Is(d.err, context.Canceled):
	default:
		t.Logf("Dial failed before its context ended: %v", d.err)
	}

	ctx = testCtx(t)
	accept := testwait.Go(func() error { _, err := l.Accept(ctx); return err })
	accept.Blocked(t)
	l.Close()
	if err := accept.Result(t, "Accept after Close"); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close = %v, want net.ErrClosed", err)
	}
	// The port is free again (the kernel may take a moment to release a
	// listener that had a connection request pending).
	var lerr error
	testwait.Until(t, "listening again on the closed port", func() bool {
		var l2 *channel.Listener
		if l2, lerr = channel.Listen(ctx, "vsock", ":"+itoa(int(a.Port))); lerr == nil {
			l2.Close()
		}
		return lerr == nil
	})
}
