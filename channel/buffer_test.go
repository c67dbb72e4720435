package channel_test

import (
	"bytes"
	"errors"
	"io"
	"math"
	"net"
	"sync"
	"syscall"
	"testing"

	"github.com/livemig/livemig/channel"
)

// A Buffer is not a pipe (what it writes it reads back itself, after a
// Seek), so it cannot run channeltest.TestChannel. TestBufferConformance
// checks the parts of the Channel contract that apply: WriteBuffers with
// thousands of pages writes all and consumes its argument, half-close
// (Shutdown(Write) stops writes while reads go on), errors wrapping
// net.ErrClosed after Close, and a harmless second Close.
func TestBufferConformance(t *testing.T) {
	b := channel.NewBuffer(nil)
	const pages = 2048
	want := make([]byte, 0, pages*4096)
	bufs := make(net.Buffers, pages)
	for i := range bufs {
		bufs[i] = bytes.Repeat([]byte{byte(i), byte(i >> 8)}, 2048)
		want = append(want, bufs[i]...)
	}
	if n, err := b.WriteBuffers(&bufs); n != int64(len(want)) || err != nil || len(bufs) != 0 {
		t.Fatalf("WriteBuffers = %d, %v, %d slices left", n, err, len(bufs))
	}
	if _, err := b.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if err := b.Shutdown(channel.Write); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) {
		t.Errorf("Write after Shutdown(Write) = %v, want EPIPE", err)
	}
	got, err := io.ReadAll(b)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read back %d bytes, %v; want %d", len(got), err, len(want))
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	one := net.Buffers{[]byte("x")}
	for name, err := range map[string]error{
		"Read":         third2(b.Read(make([]byte, 1))),
		"Write":        third2(b.Write([]byte("x"))),
		"WriteBuffers": third64(b.WriteBuffers(&one)),
		"second Close": b.Close(),
	} {
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("%s after Close = %v, want net.ErrClosed", name, err)
		}
	}
}

func third2(_ int, err error) error { return err }

func third64(_ int64, err error) error { return err }

func TestBufferSeekable(t *testing.T) {
	tests := []struct {
		name string
		do   func(b *channel.Buffer) error
		want string
	}{
		{"write at the position", func(b *channel.Buffer) error {
			b.Seek(2, io.SeekStart)
			_, err := b.Write([]byte("XY"))
			return err
		}, "abXYef"},
		{"write past the end zero-fills", func(b *channel.Buffer) error {
			b.Seek(2, io.SeekEnd)
			_, err := b.Write([]byte("Z"))
			return err
		}, "abcdef\x00\x00Z"},
		{"WriteAt does not move the position", func(b *channel.Buffer) error {
			if _, err := b.WriteAt([]byte("QQ"), 7); err != nil {
				return err
			}
			_, err := b.Write([]byte("A"))
			return err
		}, "Abcdef\x00QQ"},
		{"seek relative", func(b *channel.Buffer) error {
			b.Seek(3, io.SeekStart)
			b.Seek(-1, io.SeekCurrent)
			_, err := b.Write([]byte("-"))
			return err
		}, "ab-def"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := channel.NewBuffer([]byte("abcdef"))
			if err := tt.do(b); err != nil {
				t.Fatal(err)
			}
			if got := string(b.Bytes()); got != tt.want || b.Len() != len(tt.want) {
				t.Errorf("contents %q (Len %d), want %q", got, b.Len(), tt.want)
			}
		})
	}
}

func TestBufferReads(t *testing.T) {
	b := channel.NewBuffer([]byte("hello"))
	p := make([]byte, 3)
	if n, err := b.ReadAt(p, 3); n != 2 || err != io.EOF || string(p[:n]) != "lo" {
		t.Errorf("ReadAt past the end = %q, %v; want \"lo\", io.EOF", p[:n], err)
	}
	if n, err := b.Read(p); n != 3 || err != nil || string(p) != "hel" {
		t.Errorf("Read = %q, %v", p[:n], err)
	}
	if n, err := b.Read(p); n != 2 || err != nil {
		t.Errorf("Read = %d, %v", n, err)
	}
	if n, err := b.Read(p); n != 0 || err != io.EOF {
		t.Errorf("Read at the end = %d, %v; want io.EOF", n, err)
	}
	if err := b.Shutdown(channel.Read); err != nil {
		t.Fatal(err)
	}
	b.Seek(0, io.SeekStart)
	if _, err := b.Read(p); err != io.EOF {
		t.Errorf("Read after Shutdown(Read) = %v, want io.EOF", err)
	}
}

func TestBufferBadInput(t *testing.T) {
	b := channel.NewBuffer(nil)
	if _, err := b.Seek(-1, io.SeekStart); err == nil {
		t.Errorf("Seek(-1) succeeded")
	}
	if _, err := b.Seek(0, 42); err == nil {
		t.Errorf("Seek with whence 42 succeeded")
	}
	if _, err := b.ReadAt(make([]byte, 1), -1); err == nil {
		t.Errorf("ReadAt(-1) succeeded")
	}
	if _, err := b.WriteAt([]byte("x"), -1); err == nil {
		t.Errorf("WriteAt(-1) succeeded")
	}
	// A wild position fails cleanly instead of allocating.
	if _, err := b.Seek(math.MaxInt64-1, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Write([]byte("xy")); err == nil {
		t.Errorf("Write at a huge position succeeded")
	}
	if _, err := b.WriteAt([]byte("x"), 1<<50); err == nil {
		t.Errorf("WriteAt(1<<50) succeeded")
	}
	if err := b.Shutdown(channel.Direction(0)); err == nil {
		t.Errorf("Shutdown(0) succeeded")
	}
}

// TestBufferConcurrent runs a writer and readers at once; the race
// detector checks the locking.
func TestBufferConcurrent(t *testing.T) {
	b := channel.NewBuffer(nil)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; i < 1000; i++ {
			b.Write([]byte("0123456789"))
		}
	}()
	go func() {
		defer wg.Done()
		p := make([]byte, 10)
		for i := 0; i < 1000; i++ {
			b.ReadAt(p, int64(i))
			b.Len()
		}
	}()
	wg.Wait()
	if b.Len() != 10000 {
		t.Errorf("Len = %d, want 10000", b.Len())
	}
}
