//go:build linux

package channel_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/internal/testwait"
)

func TestZeroCopy(t *testing.T) {
	tests := []struct {
		name string
		pair func(testing.TB) (*channel.Socket, *channel.Socket)
	}{
		{"tcp4", tcpPair("tcp4", "127.0.0.1")},
		{"tcp6", tcpPair("tcp6", "::1")},
		{"unix (falls back)", unixPair},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, s := tt.pair(t)
			const pages, batches = 256, 8
			data := make([]byte, pages*4096)
			for i := range data {
				data[i] = byte(i*7 + i>>12)
			}
			got := make(chan []byte, 1)
			go func() {
				b := make([]byte, len(data)*batches)
				s.SetReadDeadline(testwait.Deadline(t))
				n, _ := io.ReadFull(s, b)
				got <- b[:n]
			}()
			var zw channel.ZeroCopyWriter = c
			for range batches {
				bufs := make(net.Buffers, pages)
				for i := range bufs {
					bufs[i] = data[i*4096 : (i+1)*4096]
				}
				n, err := zw.WriteBuffersZeroCopy(&bufs)
				if err != nil || n != int64(len(data)) || len(bufs) != 0 {
					t.Fatalf("WriteBuffersZeroCopy = %d, %v (%d slices left); want %d", n, err, len(bufs), len(data))
				}
			}
			c.SetWriteDeadline(testwait.Deadline(t))
			if err := zw.Flush(); err != nil {
				t.Fatalf("Flush: %v", err)
			}
			if err := zw.Flush(); err != nil {
				t.Fatalf("second Flush: %v", err)
			}
			b := <-got
			want := bytes.Repeat(data, batches)
			if !bytes.Equal(b, want) {
				t.Fatalf("received %d bytes, want %d, differing", len(b), len(want))
			}
			completed, copied := c.ZeroCopyStats()
			if c.Network() == "tcp" && getsockopt(t, c, unix.SOL_SOCKET, unix.SO_ZEROCOPY) == 1 {
				if completed == 0 {
					t.Errorf("SO_ZEROCOPY is on but no completion was counted")
				}
				t.Logf("zero-copy: %d sends completed, %d of them copied by the kernel (loopback copies)", completed, copied)
			} else {
				if completed != 0 {
					t.Errorf("completions counted without SO_ZEROCOPY")
				}
				t.Logf("zero-copy unavailable here: the fallback wrote everything")
			}
		})
	}
}

// TestEnableZeroCopy checks that EnableZeroCopy says why zero copy is off:
// a unix socket is refused with errors.ErrUnsupported, and on tcp either
// SO_ZEROCOPY is really on afterwards or the error names the kernel's
// refusal.
func TestEnableZeroCopy(t *testing.T) {
	u, _ := unixPair(t)
	err := u.EnableZeroCopy()
	if !errors.Is(err, errors.ErrUnsupported) || !strings.Contains(err.Error(), "needs tcp") {
		t.Errorf("EnableZeroCopy on unix = %v, want an error wrapping errors.ErrUnsupported saying it needs tcp", err)
	}
	if err2 := u.EnableZeroCopy(); err2 == nil || err2.Error() != err.Error() {
		t.Errorf("second EnableZeroCopy on unix = %v, want the first result %v", err2, err)
	}
	c, _ := tcpPair("tcp4", "127.0.0.1")(t)
	if err := c.EnableZeroCopy(); err != nil {
		if !strings.Contains(err.Error(), "the kernel refused") {
			t.Fatalf("EnableZeroCopy on tcp = %v, want nil or the kernel's refusal", err)
		}
		t.Skipf("this kernel refuses SO_ZEROCOPY: %v", err)
	}
	if v := getsockopt(t, c, unix.SOL_SOCKET, unix.SO_ZEROCOPY); v != 1 {
		t.Errorf("after EnableZeroCopy, SO_ZEROCOPY = %d, want 1", v)
	}
}
