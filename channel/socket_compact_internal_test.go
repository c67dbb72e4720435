package channel

import (
	"bytes"
	"io"
	"net"
	"testing"

	"github.com/livemig/livemig/internal/testwait"
)

// TestCompactAdjacent checks that slices continuing one another in memory
// within their capacity are merged in place, others kept, and the freed
// elements set to nil.
func TestCompactAdjacent(t *testing.T) {
	a := make([]byte, 4*4096)
	other := make([]byte, 4096)
	bufs := net.Buffers{a[0:4096], a[4096:8192], other, a[8192:12288], a[12288:16384], a[0:0], a[0:4096:4096], a[4096:8192]}
	backing := bufs
	got := compactAdjacent(bufs)
	want := []struct {
		first *byte
		n     int
	}{{&a[0], 8192}, {&other[0], 4096}, {&a[8192], 8192}, {nil, 0}, {&a[0], 4096}, {&a[4096], 4096}}
	if len(got) != len(want) {
		t.Fatalf("compacted to %d slices, want %d", len(got), len(want))
	}
	for i, w := range want {
		if len(got[i]) != w.n || (w.n > 0 && &got[i][0] != w.first) {
			t.Errorf("slice %d: %d bytes, want %d at the expected address", i, len(got[i]), w.n)
		}
	}
	for i := len(got); i < len(backing); i++ {
		if backing[i] != nil {
			t.Errorf("freed element %d is not nil", i)
		}
	}
}

// TestSocketWriteBuffersAdjacent sends adjacent and separate pages through
// a real unix socket and checks the bytes and the consumption of *bufs.
func TestSocketWriteBuffersAdjacent(t *testing.T) {
	s, peer := unixSocketPair(t)
	ram := make([]byte, 64*4096)
	for i := range ram {
		ram[i] = byte(i*7 + i>>12)
	}
	var bufs, want net.Buffers
	for i := range 64 {
		if i == 20 {
			x := []byte("not adjacent")
			bufs, want = append(bufs, x), append(want, x)
		}
		p := ram[i*4096 : (i+1)*4096]
		bufs, want = append(bufs, p), append(want, p)
	}
	flat := bytes.Join(want, nil)
	got := make(chan []byte, 1)
	go func() {
		b := make([]byte, len(flat))
		peer.SetReadDeadline(testwait.Deadline(t))
		n, _ := io.ReadFull(peer, b)
		got <- b[:n]
	}()
	n, err := s.WriteBuffers(&bufs)
	if err != nil || n != int64(len(flat)) || len(bufs) != 0 {
		t.Fatalf("WriteBuffers = %d, %v, %d slices left; want %d, nil, 0", n, err, len(bufs), len(flat))
	}
	if b := <-got; !bytes.Equal(b, flat) {
		t.Fatalf("received %d bytes, want %d, differing", len(b), len(flat))
	}
}
