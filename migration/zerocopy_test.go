package migration

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/internal/testwait"
)

// zeroCopyStats is what the tests need of a channel.Socket.
type zeroCopyStats interface {
	ZeroCopyStats() (completed, copied uint64)
}

// TestStreamZeroCopy sends pages, each after a copied 8-byte header, over
// a real loopback tcp Stream with zero copy on, and checks that every byte
// arrives intact and that the kernel really completed MSG_ZEROCOPY sends:
// with zero copy silently off, no completion is counted and the test
// fails. The headers make batches that mix copied bytes and pages, so the
// write buffers the kernel still holds are rotated and waited for.
func TestStreamZeroCopy(t *testing.T) {
	src, dst := connectPair(t, "tcp:127.0.0.1:0", nil, nil)
	if err := src.SetZeroCopy(true); err != nil {
		if strings.Contains(err.Error(), "the kernel refused") {
			t.Skipf("kernel refuses SO_ZEROCOPY: %v", err)
		}
		t.Fatal(err)
	}
	if !src.ZeroCopy() {
		t.Fatal("ZeroCopy() = false after SetZeroCopy(true)")
	}
	const pages, rounds = 256, 8 // 8 MiB in all
	data := make([]byte, pages*4096)
	for i := range data {
		data[i] = byte(i*13 + i>>12)
	}
	type result struct {
		n   int
		err error
	}
	got := make(chan result, 1)
	go func() {
		dst.Channel().(channel.Deadliner).SetReadDeadline(testwait.Deadline(t))
		page := make([]byte, 4096)
		for k := range pages * rounds {
			idx := dst.GetBE64()
			if _, err := dst.GetBuffer(page); err != nil {
				got <- result{k, err}
				return
			}
			i := k % pages
			if idx != uint64(k) || !bytes.Equal(page, data[i*4096:(i+1)*4096]) {
				got <- result{k, fmt.Errorf("page %d: header %d or content differs", k, idx)}
				return
			}
		}
		var one [1]byte
		if n, err := dst.Read(one[:]); err != io.EOF {
			got <- result{pages * rounds, fmt.Errorf("after the last page: Read = %d, %v; want io.EOF", n, err)}
			return
		}
		got <- result{pages * rounds, nil}
	}()
	src.Channel().(channel.Deadliner).SetWriteDeadline(testwait.Deadline(t))
	for k := range pages * rounds {
		i := k % pages
		src.PutBE64(uint64(k))
		src.PutBufferNoCopy(data[i*4096 : (i+1)*4096])
	}
	if err := src.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	completed, copied := src.Channel().(zeroCopyStats).ZeroCopyStats()
	if completed == 0 {
		t.Errorf("zero copy is on but the kernel completed no MSG_ZEROCOPY send")
	}
	t.Logf("%d zero-copy sends completed, %d copied by the kernel (loopback copies)", completed, copied)
	if err := src.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if r := <-got; r.err != nil || r.n != pages*rounds {
		t.Fatalf("destination: %d pages, %v", r.n, r.err)
	}
}

// TestStreamZeroCopyOff checks that SetZeroCopy(false) turns it off, and
// that a Stream over a channel that cannot send without copying refuses
// zero copy with an error saying why: a unix socket, and TLS.
func TestStreamZeroCopyOff(t *testing.T) {
	t.Run("off again", func(t *testing.T) {
		src, _ := connectPair(t, "tcp:127.0.0.1:0", nil, nil)
		if err := src.SetZeroCopy(true); err != nil {
			t.Skipf("no zero copy here: %v", err)
		}
		if err := src.SetZeroCopy(false); err != nil || src.ZeroCopy() {
			t.Fatalf("SetZeroCopy(false) = %v, ZeroCopy() = %v", err, src.ZeroCopy())
		}
	})
	t.Run("unix", func(t *testing.T) {
		src, _ := connectPair(t, "unix:"+filepath.Join(t.TempDir(), "zc.sock"), nil, nil)
		err := src.SetZeroCopy(true)
		if !errors.Is(err, errors.ErrUnsupported) || !strings.Contains(err.Error(), "needs tcp") {
			t.Fatalf("SetZeroCopy(true) on unix = %v, want an error wrapping errors.ErrUnsupported saying it needs tcp", err)
		}
		if src.ZeroCopy() {
			t.Fatal("ZeroCopy() = true after a refusal")
		}
	})
	t.Run("tls", func(t *testing.T) {
		sc, dc := registries(t, "x509")
		src, _ := connectPair(t, "tcp:127.0.0.1:0", sc, dc)
		err := src.SetZeroCopy(true)
		if !errors.Is(err, errors.ErrUnsupported) || !strings.Contains(err.Error(), "not a channel.ZeroCopyWriter") {
			t.Fatalf("SetZeroCopy(true) over TLS = %v, want an error wrapping errors.ErrUnsupported naming the channel", err)
		}
	})
}

// TestStreamZeroCopyNoAllocs checks that queuing pages with zero copy on
// allocates nothing, batches included (the explicit Flush, which reads
// the kernel's completions, is outside the measured loop).
func TestStreamZeroCopyNoAllocs(t *testing.T) {
	src, dst := connectPair(t, "tcp:127.0.0.1:0", nil, nil)
	if err := src.SetZeroCopy(true); err != nil {
		t.Skipf("no zero copy here: %v", err)
	}
	wait := drain(dst.Channel())
	pages := make([]byte, 64*4096)
	send := func() {
		for i := range 64 {
			src.PutBufferNoCopy(pages[i*4096 : (i+1)*4096])
		}
	}
	send()
	if n := testing.AllocsPerRun(50, send); n != 0 {
		t.Errorf("%.1f allocations per 64 zero-copy pages, want 0", n)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	wait()
}
