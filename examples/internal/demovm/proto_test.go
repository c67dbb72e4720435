package demovm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/livemig/livemig/internal/leakcheck"
	"github.com/livemig/livemig/internal/testwait"
)

// stream builds a demo stream for a RAM of pages pages.
func stream(pages int, recs ...[]byte) []byte {
	b := appendHeader(nil, int64(pages)*PageSize)
	for _, r := range recs {
		b = append(b, r...)
	}
	return b
}

func pageRec(idx uint64, fill byte) []byte {
	b := binary.BigEndian.AppendUint64([]byte{RecPage}, idx)
	return append(b, bytes.Repeat([]byte{fill}, PageSize)...)
}

func sumRec(sum byte) []byte { return append([]byte{RecSum}, bytes.Repeat([]byte{sum}, 32)...) }

func TestDecoder(t *testing.T) {
	good := stream(2, pageRec(1, 7), []byte{RecStop}, []byte{RecEnd, 0, 0, 0, 2, 1}, sumRec(9))
	ram := make([]byte, 2*PageSize)
	d := NewDecoder(bytes.NewReader(good))
	if n, err := d.ReadHeader(0); err != nil || n != 2*PageSize {
		t.Fatalf("ReadHeader = %d, %v", n, err)
	}
	var types []byte
	for {
		r, err := d.Next(ram)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, r.Type)
	}
	if string(types) != string([]byte{RecPage, RecStop, RecEnd, RecSum}) || ram[PageSize] != 7 || ram[0] != 0 {
		t.Fatalf("types %v, ram[4096] %d", types, ram[PageSize])
	}

	for _, tc := range []struct {
		name    string
		in      []byte
		maxRAM  int64
		wantOff int64
		want    string
	}{
		{"bad magic", append([]byte("XXXX"), good[4:]...), 0, 0, "not migrate-source"},
		{"bad version", append(append(bytes.Clone(good[:4]), 0, 0, 0, 9), good[8:]...), 0, 4, "version 9"},
		{"ram too large for the limit", stream(4), 2 * PageSize, 12, "RAM size"},
		{"zero RAM", stream(0), 0, 12, "RAM size"},
		{"page outside RAM", stream(2, pageRec(2, 1)), 0, 21, "page index 2 outside"},
		{"unknown record", stream(2, []byte{0x77}), 0, 20, "unknown record type 0x77"},
		{"pass larger than RAM", stream(2, []byte{RecPass, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 3}), 0, 25, "exceeds RAM"},
		{"truncated page", stream(2, pageRec(0, 1)[:100]), 0, 120, "stream ends inside page"},
		{"no checksum", stream(2, pageRec(0, 1)), 0, 20 + 9 + PageSize, "before the checksum"},
		{"bad converged flag", stream(2, []byte{RecEnd, 0, 0, 0, 1, 2}), 0, 25, "converged flag 2"},
		{"data after checksum", stream(2, sumRec(1), []byte{RecStop}), 0, 53, "after the checksum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecoder(bytes.NewReader(tc.in))
			size, err := d.ReadHeader(tc.maxRAM)
			for err == nil {
				_, err = d.Next(make([]byte, size))
			}
			var pe *ProtoError
			if !errors.As(err, &pe) || pe.Offset != tc.wantOff || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ProtoError at %d with %q", err, tc.wantOff, tc.want)
			}
		})
	}
}

// FuzzDecoder: the network-facing decoder never panics, never writes
// outside the RAM it was given, and reports errors inside the input.
func FuzzDecoder(f *testing.F) {
	f.Add(stream(1, pageRec(0, 1), []byte{RecStop}, []byte{RecEnd, 0, 0, 0, 1, 0}, sumRec(2))) // a whole migration
	f.Add(stream(1, []byte{RecZero, 0, 0, 0, 0, 0, 0, 0, 0}))                                  // zero page
	f.Add(stream(1, []byte{RecZero, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}))          // index overflow
	f.Add(stream(1, []byte{RecPass, 0, 0, 0, 1, 0xff, 0, 0, 0, 0, 0, 0, 0}))                   // huge pass
	f.Add(appendHeader(nil, MaxRAMSize+PageSize))                                              // RAM too large
	f.Add([]byte{0x4c, 0x4d})                                                                  // cut header
	f.Fuzz(func(t *testing.T, b []byte) {
		d := NewDecoder(bytes.NewReader(b))
		size, err := d.ReadHeader(16 * PageSize)
		if err != nil {
			return
		}
		ram := make([]byte, size+PageSize) // a guard page after the RAM
		for i := 0; ; i++ {
			_, err := d.Next(ram[:size])
			if err != nil {
				var pe *ProtoError
				if !errors.Is(err, io.EOF) && (!errors.As(err, &pe) || pe.Offset > int64(len(b))) {
					t.Fatalf("error %v", err)
				}
				break
			}
		}
		for _, c := range ram[size:] {
			if c != 0 {
				t.Fatal("decoder wrote past the RAM")
			}
		}
	})
}

func TestVMDirtyTracking(t *testing.T) {
	vm, err := NewVM(130 * PageSize) // not a multiple of 64 pages
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	vm.MarkAllDirty()
	if n := vm.DirtyCount(); n != 130 {
		t.Fatalf("%d dirty after MarkAllDirty, want 130", n)
	}
	var got []int
	vm.TakeDirty(func(p int) bool { got = append(got, p); return len(got) < 70 })
	if len(got) != 70 || got[69] != 69 || vm.DirtyCount() != 60 {
		t.Fatalf("took %d pages (last %d), %d left", len(got), got[len(got)-1], vm.DirtyCount())
	}
	vm.TakeDirty(func(int) bool { return true }) // clean
	vm.StartWorkload(10000)
	testwait.Until(t, "the workload dirtying a page", func() bool { return vm.DirtyCount() != 0 })
	vm.StopWorkload()
	vm.StopWorkload() // idempotent
	n := vm.DirtyCount()
	time.Sleep(30 * time.Millisecond)
	if vm.DirtyCount() != n {
		t.Fatal("pages dirtied after StopWorkload")
	}
	vm.TakeDirty(func(p int) bool {
		if isZero(vm.RAM[p*PageSize : (p+1)*PageSize]) {
			t.Errorf("page %d is dirty but unchanged", p)
		}
		return true
	})
}

// TestMain runs the tests, or plays migrate-dest when a test runs the test
// binary as one (see startDest).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "migrate-dest" {
		os.Exit(DestMain(os.Args[2:], os.Stdout, os.Stderr))
	}
	leakcheck.Main(m)
}

// TestIdleWatch: the watch fires once progress stands still for its limit,
// and never while progress moves. It runs in a synctest bubble: on real
// time, a busy machine could hold the goroutine that moves progress for
// 300 ms and fire the watch; on fake time, progress moves every 5 ms as
// written.
func TestIdleWatch(t *testing.T) { synctest.Test(t, testIdleWatch) }

func testIdleWatch(t *testing.T) {
	var n atomic.Int64
	fired := make(chan struct{})
	w := watchIdle(300*time.Millisecond, n.Load, func() { close(fired) })
	stopMoving := make(chan struct{})
	go func() {
		for {
			select {
			case <-stopMoving:
				return
			case <-time.After(5 * time.Millisecond):
				n.Add(1)
			}
		}
	}()
	select {
	case <-fired:
		t.Fatal("fired while progress moved")
	case <-time.After(600 * time.Millisecond):
	}
	close(stopMoving)
	select {
	case <-fired:
	case <-time.After(10 * time.Second):
		t.Fatal("did not fire after progress stopped")
	}
	if !w.stop() {
		t.Fatal("stop reports the watch did not fire")
	}
	w2 := watchIdle(time.Hour, n.Load, func() { t.Error("fired") })
	if w2.stop() {
		t.Fatal("a stopped watch reports it fired")
	}
}
