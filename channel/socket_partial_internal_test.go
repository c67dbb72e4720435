package channel

import (
	"net"
	"testing"
	"time"

	"github.com/livemig/livemig/internal/testwait"
)

// TestSocketWriteBuffersPartialConsumes writes adjacent pages to a real
// unix socket whose peer does not read; once the write is seen blocked
// (the socket buffers full, some bytes written), a write deadline in the
// past ends it. It checks that *bufs is consumed as net.Buffers.WriteTo consumes it:
// what is left is the caller's own slices not written (the first one cut),
// unchanged and in place, whatever was merged into one iovec.
func TestSocketWriteBuffersPartialConsumes(t *testing.T) {
	s, _ := unixSocketPair(t) // the peer never reads: the write blocks
	const pages = 4096        // 16 MiB, more than the socket buffers hold
	ram := make([]byte, pages*4096)
	orig := make(net.Buffers, pages)
	for i := range orig {
		orig[i] = ram[i*4096 : (i+1)*4096]
	}
	bufs := append(net.Buffers(nil), orig...)
	arr := bufs
	type result struct {
		n   int64
		err error
	}
	w := testwait.Go(func() result { n, err := s.WriteBuffers(&bufs); return result{n, err} })
	// A deadline set before the first writev could pass before it (on a
	// busy machine), which then writes nothing.
	w.Blocked(t)
	if err := s.SetWriteDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	r := w.Result(t, "WriteBuffers past its deadline")
	n, err := r.n, r.err
	if err == nil || n <= 0 || n >= int64(len(ram)) {
		t.Fatalf("WriteBuffers = %d, %v; want a part of %d bytes and a timeout", n, err, len(ram))
	}
	want := append(net.Buffers(nil), orig...)
	consume(&want, n)
	if len(bufs) != len(want) {
		t.Fatalf("after writing %d bytes, %d slices left in *bufs, want %d as net.Buffers.WriteTo leaves", n, len(bufs), len(want))
	}
	for i := range want {
		if len(bufs[i]) != len(want[i]) || &bufs[i][0] != &want[i][0] {
			t.Fatalf("slice %d left: %d bytes at %p, want %d at %p", i, len(bufs[i]), &bufs[i][0], len(want[i]), &want[i][0])
		}
	}
	first := pages - len(want)
	for i := range first {
		if arr[i] != nil {
			t.Fatalf("consumed element %d not set to nil", i)
		}
	}
}

// TestSocketWriteBuffersMergedNoAllocs checks that writing adjacent pages,
// merged in the Socket's own list, allocates nothing once that list has
// grown.
func TestSocketWriteBuffersMergedNoAllocs(t *testing.T) {
	s, peer := unixSocketPair(t)
	go func() {
		b := make([]byte, 1<<20)
		for {
			if _, err := peer.Read(b); err != nil {
				return
			}
		}
	}()
	ram := make([]byte, 16*4096)
	other := make([]byte, 4096)
	var tmpl net.Buffers
	for i := range 16 {
		tmpl = append(tmpl, ram[i*4096:(i+1)*4096])
	}
	tmpl = append(tmpl, other)
	arr := make(net.Buffers, len(tmpl))
	write := func() {
		work := append(arr[:0], tmpl...)
		if _, err := s.WriteBuffers(&work); err != nil {
			t.Fatal(err)
		}
	}
	write()
	if a := testing.AllocsPerRun(50, write); a != 0 {
		t.Fatalf("%.1f allocations per WriteBuffers of adjacent pages, want 0", a)
	}
}
