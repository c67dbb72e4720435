package migration

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

// TestSessionNoCopyMixed interleaves Write and PutBufferNoCopy pieces of
// every size class (copied small slices, pages, pieces spanning several
// frames, and a page split across a frame boundary) and reads them back
// with Read and ReadBuffer alternately: the bytes must come out in
// order, whichever path each piece took on either side.
func TestSessionNoCopyMixed(t *testing.T) {
	for _, kind := range []string{"", "x509"} {
		t.Run("tls="+kind, func(t *testing.T) {
			srcCfg, dstCfg := registries(t, kind)
			srcCfg.Channels = 2
			srv := startServer(t, "tcp:127.0.0.1:0", dstCfg)
			src, dst := sessionPair(t, srv, srcCfg)
			data := randomData(3*stripeSize+12345, 7)
			sizes := []int{4096, 100, 4096, 4096, 511, 512, stripeSize + 4096, 1, 70000, 4096 * 63, 3}
			errc := make(chan error, 1)
			go func() {
				p := data
				for i := 0; len(p) > 0; i++ {
					n := min(len(p), sizes[i%len(sizes)])
					var err error
					if i%3 == 1 {
						_, err = src.Write(p[:n])
					} else {
						src.PutBufferNoCopy(p[:n])
						err = src.Err()
					}
					if err != nil {
						errc <- err
						return
					}
					p = p[n:]
				}
				errc <- src.Close()
			}()
			var got []byte
			buf := make([]byte, 5000)
			for i := 0; ; i++ {
				var b []byte
				var err error
				if i%2 == 0 {
					b, err = dst.ReadBuffer()
				} else {
					var n int
					n, err = dst.Read(buf)
					b = buf[:n]
				}
				got = append(got, b...)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("destination after %d bytes: %v", len(got), err)
				}
			}
			if err := <-errc; err != nil {
				t.Fatalf("source: %v", err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("destination read %d bytes, want %d identical ones (first difference at %d)", len(got), len(data), firstDiff(got, data))
			}
		})
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestSessionNoCopyAllocs shows that a page costs no allocation on the
// source's no-copy path once the session's buffers exist: frames,
// their part lists and the channels' writes all reuse memory.
func TestSessionNoCopyAllocs(t *testing.T) {
	// Plain channels: AllocsPerRun counts the whole process, and the
	// destination's crypto/tls grows its record buffers as it reads.
	srcCfg, dstCfg := registries(t, "")
	srcCfg.Channels = 2
	srv := startServer(t, "tcp:127.0.0.1:0", dstCfg)
	src, dst := sessionPair(t, srv, srcCfg)
	go io.Copy(io.Discard, dst)
	page := randomData(4096, 3)
	batch := func() {
		for range 4 * stripeSize / 4096 { // 4 frames, 2 per channel
			src.PutBufferNoCopy(page)
		}
		if err := src.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	batch() // allocate the frame buffers and part lists
	batch()
	if a := testing.AllocsPerRun(20, batch); a >= 1 {
		t.Fatalf("%.1f allocations per %d pages, want 0", a, 4*stripeSize/4096)
	}
}

// TestSessionPagesWhole is the page guarantee: a page given to
// PutBufferNoCopy lies whole in one ReadBuffer result, and Next returns it
// in place, at every offset in a frame (a header of every length from 0
// to one page before it) and for several page sizes, also when pages are
// given in runs of many pages in one slice.
func TestSessionPagesWhole(t *testing.T) {
	for _, tc := range []struct {
		pageSize, run int // run: pages per PutBufferNoCopy call
	}{{4096, 1}, {4096, 9}, {512, 1}, {65536, 1}, {65536, 3}, {12288, 2}} {
		t.Run(fmt.Sprintf("page=%d/run=%d", tc.pageSize, tc.run), func(t *testing.T) {
			srv := startServer(t, "tcp:127.0.0.1:0", nil)
			src, dst := sessionPair(t, srv, &Config{Channels: 2, PageSize: tc.pageSize})
			pages := randomData(tc.pageSize*tc.run, uint64(tc.pageSize))
			// Header lengths from 0 up: every offset of a page within a
			// frame comes up, for 4 KiB pages, within the first frames.
			var hdrs []int
			for h := 0; h <= 4096 && h < 2*tc.pageSize; h += 1 + h/64 {
				hdrs = append(hdrs, h)
			}
			hdr := randomData(4097, 1)
			errc := sourceWriter(t, src, func() error {
				for _, h := range hdrs {
					src.Write(hdr[:h])
					src.PutBufferNoCopy(pages)
				}
				return src.Close()
			})
			// Read side 1: Next returns each page in place (a slice of
			// the frame, whose capacity ends at the page's end, since
			// Next caps it) with the right bytes.
			for _, h := range hdrs {
				if h > 0 {
					if b, err := dst.Next(h); err != nil || !bytes.Equal(b, hdr[:h]) {
						t.Fatalf("header of %d bytes: %v", h, err)
					}
				}
				for k := range tc.run {
					b, err := dst.Next(tc.pageSize)
					if err != nil {
						t.Fatalf("page %d after a header of %d bytes: %v", k, h, err)
					}
					if cap(dst.scratch) > 0 && &b[0] == &dst.scratch[:1][0] {
						t.Fatalf("page %d after a header of %d bytes was stitched from two frames", k, h)
					}
					if !bytes.Equal(b, pages[k*tc.pageSize:(k+1)*tc.pageSize]) {
						t.Fatalf("page %d after a header of %d bytes differs", k, h)
					}
				}
			}
			if _, err := dst.Next(1); !errors.Is(err, io.EOF) {
				t.Fatalf("after the last page: %v, want io.EOF", err)
			}
			if err := <-errc; err != nil {
				t.Fatalf("source: %v", err)
			}
		})
	}
}

// TestSessionPagesWholeReadBuffer checks the same guarantee through
// ReadBuffer: it tracks the stream offset of every ReadBuffer result and
// checks no page's range straddles two of them, with 4 KiB pages after
// headers of every length from 0 to 4095 bytes.
func TestSessionPagesWholeReadBuffer(t *testing.T) {
	srv := startServer(t, "unix:"+filepath.Join(t.TempDir(), "s"), nil)
	src, dst := sessionPair(t, srv, &Config{Channels: 3})
	page := randomData(4096, 5)
	hdr := randomData(4096, 6)
	var want []byte
	type span struct{ from, to int }
	var pageSpans []span
	for h := range 4096 {
		want = append(want, hdr[:h]...)
		pageSpans = append(pageSpans, span{len(want), len(want) + 4096})
		want = append(want, page...)
	}
	errc := sourceWriter(t, src, func() error {
		for h := range 4096 {
			src.Write(hdr[:h])
			src.PutBufferNoCopy(page)
		}
		return src.Close()
	})
	var got []byte
	var results []span
	for {
		b, err := dst.ReadBuffer()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes: %v", len(got), err)
		}
		results = append(results, span{len(got), len(got) + len(b)})
		got = append(got, b...)
	}
	if err := <-errc; err != nil {
		t.Fatalf("source: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, want %d identical ones (first difference at %d)", len(got), len(want), firstDiff(got, want))
	}
	r := 0
	for i, p := range pageSpans {
		for results[r].to <= p.from {
			r++
		}
		if p.to > results[r].to {
			t.Fatalf("page %d (after a %d-byte header, bytes %d..%d) spans ReadBuffer results ending at %d", i, i, p.from, p.to, results[r].to)
		}
	}
	// The test means something only if pages met frame ends: frames cut
	// short of full, so that a page starts the next one.
	short := 0
	for _, r := range results[:len(results)-1] {
		if r.to-r.from < stripeSize-stripeHeaderSize {
			short++
		}
	}
	if short == 0 {
		t.Fatalf("no frame of %d ended early: no page met a frame end", len(results))
	}
}

// TestSessionNextSpansFrames: Next copies bytes that span frames (here,
// written with Write, which fills frames to the brim), and refuses sizes
// beyond one frame.
func TestSessionNextSpansFrames(t *testing.T) {
	srv := startServer(t, "tcp:127.0.0.1:0", nil)
	src, dst := sessionPair(t, srv, &Config{Channels: 2})
	data := randomData(3*stripeSize, 8)
	errc := sourceWriter(t, src, func() error {
		_, err := src.Write(data)
		if cerr := src.Close(); err == nil {
			err = cerr
		}
		return err
	})
	if _, err := dst.Next(MaxPageSize + 1); err == nil || !strings.Contains(err.Error(), "Next(262129)") {
		t.Fatalf("Next(MaxPageSize+1): %v", err)
	}
	var got []byte
	for len(got) < len(data) {
		b, err := dst.Next(min(100000, len(data)-len(got)))
		if err != nil {
			t.Fatalf("after %d bytes: %v", len(got), err)
		}
		got = append(got, b...)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("first difference at %d", firstDiff(got, data))
	}
	if _, err := dst.Next(1); !errors.Is(err, io.EOF) {
		t.Fatalf("at the end: %v, want io.EOF", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("source: %v", err)
	}
}

// sourceWriter runs write, which writes to src, in a goroutine and returns
// its result. If the test fails first, its cleanup shuts src down, which
// ends write, and waits for it, before the session's own cleanups close
// it: a session's writes and Close belong to one goroutine.
func sourceWriter(t *testing.T, src *SourceSession, write func() error) <-chan error {
	errc := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		errc <- write()
	}()
	t.Cleanup(func() {
		src.Shutdown()
		<-done
	})
	return errc
}
