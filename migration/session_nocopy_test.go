package migration

import (
	"bytes"
	"errors"
	"io"
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
			data := randomData(3*StripeSize+12345, 7)
			sizes := []int{4096, 100, 4096, 4096, 511, 512, StripeSize + 4096, 1, 70000, 4096 * 63, 3}
			errc := make(chan error, 1)
			go func() {
				p := data
				for i := 0; len(p) > 0; i++ {
					n := min(len(p), sizes[i%len(sizes)])
					var err error
					if i%3 == 1 {
						_, err = src.Write(p[:n])
					} else {
						err = src.PutBufferNoCopy(p[:n])
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
		for range 4 * StripeSize / 4096 { // 4 frames, 2 per channel
			if err := src.PutBufferNoCopy(page); err != nil {
				t.Fatal(err)
			}
		}
		if err := src.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	batch() // allocate the frame buffers and part lists
	batch()
	if a := testing.AllocsPerRun(20, batch); a >= 1 {
		t.Fatalf("%.1f allocations per %d pages, want 0", a, 4*StripeSize/4096)
	}
}

// TestSessionNoCopyWrongSide checks that each side refuses the other
// side's calls with an error naming the call.
func TestSessionNoCopyWrongSide(t *testing.T) {
	srv := startServer(t, "tcp:127.0.0.1:0", &Config{})
	src, dst := sessionPair(t, srv, &Config{})
	if err := dst.PutBufferNoCopy(make([]byte, 4096)); err == nil || !strings.Contains(err.Error(), "PutBufferNoCopy on the destination") {
		t.Errorf("destination PutBufferNoCopy: %v", err)
	}
	if _, err := src.ReadBuffer(); err == nil || !strings.Contains(err.Error(), "ReadBuffer on the source") {
		t.Errorf("source ReadBuffer: %v", err)
	}
}
