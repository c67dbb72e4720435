package migration

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/livemig/livemig/internal/testwait"
)

// TestStreamRoundTrip writes every kind of value, mixing copied and queued
// buffers across many flushes, and reads it back on the other end.
func TestStreamRoundTrip(t *testing.T) {
	a, b := socketPair(t)
	w, r := NewStream(a), NewStream(b)
	rng := rand.New(rand.NewPCG(1, 2))
	page := make([]byte, 4096)
	for i := range page {
		page[i] = byte(rng.Uint32())
	}
	const rounds = 3000
	errc := make(chan error, 1)
	go func() {
		for i := range rounds {
			w.PutByte(byte(i))
			w.PutBE16(uint16(i))
			w.PutBE32(uint32(i) * 77)
			w.PutBE64(uint64(i) << 33)
			w.PutCountedString("ram")
			if i%3 == 0 {
				w.PutBuffer(page[:100+i%1000])
			}
			w.PutBufferNoCopy(page)
			if i%500 == 0 {
				w.Flush()
			}
		}
		errc <- w.Close()
	}()
	got := make([]byte, 4096)
	for i := range rounds {
		if v := r.GetByte(); v != byte(i) {
			t.Fatalf("round %d: GetByte = %d", i, v)
		}
		if v := r.GetBE16(); v != uint16(i) {
			t.Fatalf("round %d: GetBE16 = %d", i, v)
		}
		if v := r.GetBE32(); v != uint32(i)*77 {
			t.Fatalf("round %d: GetBE32 = %d", i, v)
		}
		if v := r.GetBE64(); v != uint64(i)<<33 {
			t.Fatalf("round %d: GetBE64 = %d", i, v)
		}
		if s, err := r.GetCountedString(); s != "ram" || err != nil {
			t.Fatalf("round %d: GetCountedString = %q, %v", i, s, err)
		}
		if i%3 == 0 {
			n := 100 + i%1000
			if _, err := r.GetBuffer(got[:n]); err != nil || !bytes.Equal(got[:n], page[:n]) {
				t.Fatalf("round %d: copied buffer differs (%v)", i, err)
			}
		}
		if _, err := r.GetBuffer(got); err != nil || !bytes.Equal(got, page) {
			t.Fatalf("round %d: page differs (%v)", i, err)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if v := r.GetByte(); v != 0 || !errors.Is(r.Err(), io.EOF) {
		t.Fatalf("after the end: GetByte = %d, Err = %v; want 0, io.EOF", v, r.Err())
	}
	ws, rs := w.Stats(), r.Stats()
	if ws.Written != rs.Read || ws.Written == 0 {
		t.Errorf("written %d, read %d", ws.Written, rs.Read)
	}
	if ws.Flushes < rounds/MaxIOV {
		t.Errorf("%d flushes for %d queued pages; want at least one per %d", ws.Flushes, rounds, MaxIOV)
	}
	r.Close()
}

// TestStreamFlushBatching checks that 64 queued pages go out in one
// WriteBuffers, as QEMU's MAX_IOV_SIZE, and that copies coalesce.
func TestStreamFlushBatching(t *testing.T) {
	a, b := socketPair(t)
	go io.Copy(io.Discard, b)
	w := NewStream(a)
	page := make([]byte, 4096)
	for range MaxIOV - 1 {
		w.PutBufferNoCopy(page)
	}
	if st := w.Stats(); st.Flushes != 0 || w.Buffered() != (MaxIOV-1)*4096 {
		t.Fatalf("after 63 pages: %+v, Buffered %d", st, w.Buffered())
	}
	w.PutBufferNoCopy(page)
	if st := w.Stats(); st.Flushes != 1 || st.Written != MaxIOV*4096 || w.Buffered() != 0 {
		t.Fatalf("after 64 pages: %+v, Buffered %d; want one flush of everything", st, w.Buffered())
	}
	// 1000 small puts coalesce into one region of the buffer.
	for i := range 1000 {
		w.PutBE32(uint32(i))
	}
	if w.Available() != BufferSize-4000 {
		t.Fatalf("Available = %d, want %d", w.Available(), BufferSize-4000)
	}
	if len(w.iov) != 1 {
		t.Fatalf("%d iovecs for contiguous copies, want 1", len(w.iov))
	}
	// Filling the buffer flushes it.
	w.PutBuffer(make([]byte, BufferSize))
	if st := w.Stats(); st.Flushes != 2 {
		t.Fatalf("flushes = %d after overfilling the buffer, want 2", st.Flushes)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestStreamNoAllocs checks the per-page path: queueing pages and flushing
// them allocates nothing.
func TestStreamNoAllocs(t *testing.T) {
	a, b := socketPair(t)
	go io.Copy(io.Discard, b)
	w := NewStream(a)
	defer w.Close()
	page := make([]byte, 4096)
	w.PutBufferNoCopy(page)
	w.PutBE64(1)
	w.Flush()
	allocs := testing.AllocsPerRun(200, func() {
		for range 16 {
			w.PutBE64(0x1234)
			w.PutBufferNoCopy(page)
		}
		w.Flush()
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per 16 pages, want 0", allocs)
	}
}

// TestStreamStickyWriteError: once the peer is gone, the first error
// sticks and later puts do nothing.
func TestStreamStickyWriteError(t *testing.T) {
	a, b := socketPair(t)
	b.Close()
	w := NewStream(a)
	page := make([]byte, 4096)
	var first error
	for i := 0; i < 1000 && first == nil; i++ {
		w.PutBufferNoCopy(page)
		first = w.Flush()
	}
	if first == nil {
		t.Fatal("writing to a closed peer never failed")
	}
	if !errors.Is(first, syscallEPIPE) && !errors.Is(first, syscallECONNRESET) {
		t.Logf("error: %v", first)
	}
	before := w.Stats()
	w.PutBufferNoCopy(page)
	w.PutByte(1)
	if err := w.Flush(); err != first {
		t.Fatalf("second Flush = %v, want the first error %v", err, first)
	}
	if w.Stats().Written != before.Written || w.Buffered() != 0 {
		t.Fatal("puts after an error queued data")
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close after a sticky error = %v, want nil (the flush is skipped)", err)
	}
}

// TestStreamFlushAfterErrorWritesNothing: bytes queued before an error set
// from elsewhere (SetErr from the reading goroutine, as
// qemu_file_set_error) are dropped, not written: "no more data will be
// accepted", and the peer must not get half a record after the error.
func TestStreamFlushAfterErrorWritesNothing(t *testing.T) {
	a, b := socketPair(t)
	w := NewStream(a)
	w.PutBE32(0x5145564D)
	w.PutBufferNoCopy(make([]byte, 4096))
	errAbort := errors.New("device state failed to save")
	w.SetErr(errAbort)
	if err := w.Flush(); err != errAbort {
		t.Fatalf("Flush = %v, want the sticky error", err)
	}
	if st := w.Stats(); st.Written != 0 || st.Flushes != 0 || w.Buffered() != 0 {
		t.Fatalf("after the error: %+v, %d buffered; want nothing written or queued", st, w.Buffered())
	}
	w.Close()
	if got, err := io.ReadAll(b); len(got) != 0 || err != nil {
		t.Fatalf("peer read %d bytes (%v) after the error, want none", len(got), err)
	}
}

// TestStreamTruncated: a stream cut inside a value reads as
// io.ErrUnexpectedEOF, at a value boundary as io.EOF.
func TestStreamTruncated(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		read func(s *Stream)
		want error
	}{
		{"empty", nil, func(s *Stream) { s.GetBE32() }, io.EOF},
		{"cut inside be64", []byte{1, 2, 3}, func(s *Stream) { s.GetBE64() }, io.ErrUnexpectedEOF},
		{"cut inside buffer", make([]byte, 100), func(s *Stream) { s.GetBuffer(make([]byte, 200)) }, io.ErrUnexpectedEOF},
		{"cut inside large buffer", make([]byte, 40000), func(s *Stream) { s.GetBuffer(make([]byte, 90000)) }, io.ErrUnexpectedEOF},
		{"cut inside counted string", []byte{5, 'a'}, func(s *Stream) { s.GetCountedString() }, io.ErrUnexpectedEOF},
		{"boundary", []byte{1, 2}, func(s *Stream) { s.GetBE16(); s.GetByte() }, io.EOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := socketPair(t)
			go func() { a.Write(tc.in); a.Close() }()
			s := NewStream(b)
			tc.read(s)
			if !errors.Is(s.Err(), tc.want) {
				t.Fatalf("Err = %v, want %v", s.Err(), tc.want)
			}
			if s.GetBE32() != 0 {
				t.Fatal("get after an error returned data")
			}
		})
	}
}

// TestStreamPeek checks Peek's bound and that it consumes nothing.
func TestStreamPeek(t *testing.T) {
	a, b := socketPair(t)
	data := make([]byte, BufferSize+10)
	for i := range data {
		data[i] = byte(i * 7)
	}
	go func() { a.Write(data); a.Close() }()
	s := NewStream(b)
	if _, err := s.Peek(BufferSize + 1); !errors.Is(err, ErrPeekTooLarge) {
		t.Fatalf("Peek(BufferSize+1) = %v, want ErrPeekTooLarge", err)
	}
	p, err := s.Peek(BufferSize)
	if err != nil || !bytes.Equal(p, data[:BufferSize]) {
		t.Fatalf("Peek(BufferSize): %v", err)
	}
	if s.GetByte() != data[0] {
		t.Fatal("Peek consumed data")
	}
	if n, err := s.Skip(BufferSize - 1); n != BufferSize-1 || err != nil {
		t.Fatalf("Skip = %d, %v", n, err)
	}
	p, err = s.Peek(20)
	if !errors.Is(err, io.ErrUnexpectedEOF) || !bytes.Equal(p, data[BufferSize:]) {
		t.Fatalf("Peek past the end = %d bytes, %v; want the 10 left and io.ErrUnexpectedEOF", len(p), err)
	}
}

// TestStreamShutdownUnblocks: Shutdown from another goroutine ends a
// blocked read and a blocked rate-limit wait promptly.
func TestStreamShutdownUnblocks(t *testing.T) {
	a, _ := socketPair(t)
	s := NewStream(a)
	read := testwait.Go(func() error { s.GetBE32(); return s.Err() })
	read.Blocked(t)
	s.Shutdown()
	if err := read.Result(t, "a read after Shutdown"); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Err after Shutdown = %v, want one wrapping net.ErrClosed", err)
	}
	s.Close()

	c, d := socketPair(t)
	go io.Copy(io.Discard, d)
	w := NewStream(c)
	w.SetRateLimit(1000) // 1 KB/s: a 1 MB flush would wait 1000 s
	flush := testwait.Go(func() error { w.PutBuffer(make([]byte, 1<<20)); return w.Flush() })
	flush.Blocked(t) // in the rate-limit wait
	w.Shutdown()
	if err := flush.Result(t, "a rate-limit wait after Shutdown"); !errors.Is(err, ErrStreamShutdown) {
		t.Fatalf("Flush = %v, want ErrStreamShutdown", err)
	}
}

// TestStreamRateLimit measures the rate on the wire over two seconds; the
// issue asks for the limit within 10%.
func TestStreamRateLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 2 s")
	}
	const limit = 4 << 20 // bytes per second
	// A slower rate than the limit only means the writer did not get the
	// CPU (two shared cores); a faster one is a bug. So measure up to three
	// times, fail at once above 1.1x, and fail if no run reaches 0.9x.
	var ratios []float64
	for range 3 {
		ratio := measureRate(t, limit)
		if ratio > 1.1 {
			t.Fatalf("rate %.3fx the limit, want at most 1.1x", ratio)
		}
		ratios = append(ratios, ratio)
		if ratio >= 0.9 {
			return
		}
	}
	t.Fatalf("rates %.3v of the limit, want one within 0.9..1.1", ratios)
}

// measureRate sends pages through a rate-limited Stream over tcp for two
// seconds and returns the measured rate divided by limit.
func measureRate(t *testing.T, limit int64) float64 {
	a, b := tcpPair(t)
	var received int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		received, _ = io.Copy(io.Discard, b)
	}()
	w := NewStream(a)
	w.SetRateLimit(limit)
	if w.RateLimit() != limit {
		t.Fatalf("RateLimit = %d", w.RateLimit())
	}
	page := make([]byte, 4096)
	start := time.Now()
	for time.Since(start) < 2*time.Second {
		w.PutBufferNoCopy(page)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	w.Close()
	wg.Wait()
	rate := float64(received) / elapsed.Seconds()
	t.Logf("%d bytes in %v: %.0f B/s (limit %d, ratio %.3f)", received, elapsed, rate, limit, rate/float64(limit))
	return rate / float64(limit)
}

// TestReturnPath: each side gets a Stream for the opposite direction over
// the same channel.
func TestReturnPath(t *testing.T) {
	a, b := socketPair(t)
	src, dst := NewStream(a), NewStream(b)
	if src.ReturnPath() != src.ReturnPath() {
		t.Fatal("ReturnPath returns different Streams")
	}
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		src.PutBE32(0x5145564D)
		src.Flush()
	}()
	if v := dst.GetBE32(); v != 0x5145564D {
		t.Fatalf("main stream got %#x", v)
	}
	rp := dst.ReturnPath()
	rp.PutBE16(2) // PONG
	rp.PutBE16(4)
	rp.PutBE32(7)
	if err := rp.Close(); err != nil { // flushes, keeps the channel
		t.Fatal(err)
	}
	srp := src.ReturnPath()
	if typ, n, v := srp.GetBE16(), srp.GetBE16(), srp.GetBE32(); typ != 2 || n != 4 || v != 7 || srp.Err() != nil {
		t.Fatalf("return path got %d %d %d (%v)", typ, n, v, srp.Err())
	}
	dst.Close()
	<-wrote
	src.Close()
	if srp.GetByte(); !errors.Is(srp.Err(), net.ErrClosed) {
		t.Fatalf("return path after Close: %v", srp.Err())
	}
}
