package migration

import (
	"bytes"
	"testing"

	"github.com/livemig/livemig/channel"
)

// TestPutBufferNoCopyMerges checks how PutBufferNoCopy batches: adjacent
// pages of one buffer share an iovec and flush at 256 KiB, pages from
// scattered places flush at MaxIOV slices, a large slice flushes at once,
// and the bytes written are the bytes queued, in order.
func TestPutBufferNoCopyMerges(t *testing.T) {
	ram := randomData(512*4096, 5)
	page := func(i int) []byte { return ram[i*4096 : (i+1)*4096] }
	for _, tc := range []struct {
		name        string
		pages       []int // pages of ram queued, in order
		large       bool  // then one 1 MiB slice
		wantFlushes int64 // before the final Flush
		wantPending int
	}{
		{name: "adjacent", pages: seq(0, 63), wantFlushes: 0, wantPending: 63 * 4096},
		{name: "adjacent-256KiB", pages: seq(0, 64), wantFlushes: 1},
		{name: "adjacent-many", pages: seq(0, 200), wantFlushes: 3, wantPending: 8 * 4096},
		{name: "scattered", pages: every(3, 64), wantFlushes: 1},
		{name: "scattered-63", pages: every(3, 63), wantFlushes: 0, wantPending: 63 * 4096},
		{name: "large", large: true, wantFlushes: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			buf := channel.NewBuffer(nil)
			s := NewStream(buf)
			var want []byte
			for _, i := range tc.pages {
				s.PutBufferNoCopy(page(i))
				want = append(want, page(i)...)
			}
			if tc.large {
				s.PutBufferNoCopy(ram[:1<<20])
				want = append(want, ram[:1<<20]...)
			}
			if got := s.Stats().Flushes; got != tc.wantFlushes {
				t.Errorf("%d flushes before Flush, want %d", got, tc.wantFlushes)
			}
			if got := s.Buffered(); got != tc.wantPending {
				t.Errorf("%d bytes queued before Flush, want %d", got, tc.wantPending)
			}
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Fatalf("wrote %d bytes, want %d identical ones", len(buf.Bytes()), len(want))
			}
		})
	}
}

// seq returns from, from+1, ..., to-1.
func seq(from, to int) []int {
	var s []int
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

// every returns n page numbers step apart: no two adjacent.
func every(step, n int) []int {
	var s []int
	for i := range n {
		s = append(s, i*step)
	}
	return s
}
