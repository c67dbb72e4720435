//go:build linux

package channel_test

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/livemig/livemig/channel"
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
				s.SetReadDeadline(time.Now().Add(30 * time.Second))
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
			c.SetWriteDeadline(time.Now().Add(30 * time.Second))
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
