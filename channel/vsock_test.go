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
	time.AfterFunc(50*time.Millisecond, cancel2)
	start := time.Now()
	c, err := channel.Dial(ctx2, "vsock", "1:"+itoa(int(a.Port)))
	switch {
	case err == nil:
		c.Close() // a loopback transport exists: nothing more to check here
	case errors.Is(err, context.Canceled):
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Dial returned %v after its context ended", d)
		}
	default:
		t.Logf("Dial failed before its context ended: %v", err)
	}

	time.AfterFunc(20*time.Millisecond, func() { l.Close() })
	if _, err := l.Accept(testCtx(t)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close = %v, want net.ErrClosed", err)
	}
	// The port is free again (the kernel may take a moment to release a
	// listener that had a connection request pending).
	deadline := time.Now().Add(5 * time.Second)
	for {
		l2, err := channel.Listen(testCtx(t), "vsock", ":"+itoa(int(a.Port)))
		if err == nil {
			l2.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("listening again on the closed port: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
