package channel

import (
	"net"
	"testing"
)

// TestMergeAdjacent checks which slices WriteBuffers treats as one: those
// that continue the previous one in memory within its capacity, and no
// others, consuming the merged ones from the list.
func TestMergeAdjacent(t *testing.T) {
	a := make([]byte, 4*4096)
	other := make([]byte, 4096)
	pages := func(b []byte, i, j int) []byte { return b[i*4096 : j*4096] }
	orig := net.Buffers{pages(a, 0, 1), pages(a, 1, 2), pages(a, 2, 3), other, pages(a, 3, 4)}
	bufs := append(net.Buffers(nil), orig...)
	backing := bufs
	b := mergeAdjacent(&bufs)
	if len(b) != 3*4096 || &b[0] != &a[0] {
		t.Fatalf("merged %d bytes, want the first 3 pages of a (%d bytes)", len(b), 3*4096)
	}
	if len(bufs) != 3 || &bufs[0][0] != &a[0] || len(bufs[0]) != 3*4096 || &bufs[1][0] != &other[0] {
		t.Fatalf("after merging: %d slices left, want 3 starting with the merged one and then other", len(bufs))
	}
	if backing[0] != nil || backing[1] != nil {
		t.Errorf("the consumed elements of the backing array are not nil")
	}

	// A slice whose capacity ends with it is not extended, even when the
	// next slice follows in memory: it may belong to another owner.
	bufs = net.Buffers{a[0:4096:4096], a[4096:8192]}
	if b := mergeAdjacent(&bufs); len(b) != 4096 || len(bufs) != 2 {
		t.Errorf("capacity-limited slice merged: %d bytes, %d slices left", len(b), len(bufs))
	}
	// Empty slices stop the merge and are left to the caller.
	bufs = net.Buffers{a[0:4096], a[4096:4096], a[4096:8192]}
	if b := mergeAdjacent(&bufs); len(b) != 4096 || len(bufs) != 3 {
		t.Errorf("merge over an empty slice: %d bytes, %d slices left", len(b), len(bufs))
	}
	// A single slice is returned as is.
	bufs = net.Buffers{a}
	if b := mergeAdjacent(&bufs); len(b) != len(a) || len(bufs) != 1 {
		t.Errorf("single slice: %d bytes, %d slices left", len(b), len(bufs))
	}
}
