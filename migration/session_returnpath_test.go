package migration

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"testing"
)

// TestSessionReturnPathWhilePagesFlow runs QEMU's postcopy conversation
// over a session: while the source streams pages, the destination asks
// on the return path for pages it wants now, and the source, reading the
// return path in another goroutine, sends each requested page at once in
// the middle of its stream. The destination checks every page, plain and
// requested, and finally tells the source it has all it needs.
func TestSessionReturnPathWhilePagesFlow(t *testing.T) {
	for _, kind := range []string{"", "x509"} {
		t.Run("tls="+kind, func(t *testing.T) {
			srcCfg, dstCfg := registries(t, kind)
			srcCfg.Channels = 3
			srv := startServer(t, "tcp:127.0.0.1:0", dstCfg)
			src, dst := sessionPair(t, srv, srcCfg)
			const pages, every = 2048, 128
			ram := randomData(pages*4096, 11)
			page := func(i uint64) []byte { return ram[i*4096 : (i+1)*4096] }
			const allDone = ^uint64(0)

			errc := sourceWriter(t, src, func() error {
				reqs := make(chan uint64, pages)
				go func() { // the return path, read while pages flow
					defer close(reqs)
					rp := src.ReturnPath()
					for {
						v := rp.GetBE64()
						if rp.Err() != nil {
							return
						}
						reqs <- v
					}
				}()
				var hdr [9]byte
				send := func(kind byte, i uint64) {
					hdr[0] = kind
					binary.BigEndian.PutUint64(hdr[1:], i)
					src.Write(hdr[:])
					src.PutBufferNoCopy(page(i))
				}
				for i := range uint64(pages) {
					select {
					case r := <-reqs:
						send('R', r)
					default:
					}
					send('P', i)
				}
				if err := src.Flush(); err != nil {
					return err
				}
				for r := range reqs {
					if r == allDone {
						return src.Close()
					}
					send('R', r)
					if err := src.Flush(); err != nil {
						return err
					}
				}
				return fmt.Errorf("return path ended before the destination was done: %v", src.ReturnPath().Err())
			})

			rp := dst.ReturnPath()
			outstanding := map[uint64]bool{}
			plain, requested := 0, 0
			for plain < pages || len(outstanding) > 0 {
				hdr, err := dst.Next(9)
				if err != nil {
					t.Fatalf("after %d pages and %d requested ones: %v", plain, requested, err)
				}
				kind, i := hdr[0], binary.BigEndian.Uint64(hdr[1:])
				b, err := dst.Next(4096)
				if err != nil {
					t.Fatal(err)
				}
				if i >= pages || !bytes.Equal(b, page(i)) {
					t.Fatalf("%c page %d differs", kind, i)
				}
				switch kind {
				case 'P':
					if i != uint64(plain) {
						t.Fatalf("page %d, want %d", i, plain)
					}
					if plain++; plain%every == 0 {
						r := uint64(plain / 2)
						outstanding[r] = true
						rp.PutBE64(r)
						if err := rp.Flush(); err != nil {
							t.Fatal(err)
						}
					}
				case 'R':
					if !outstanding[i] {
						t.Fatalf("page %d came as requested, but was not", i)
					}
					delete(outstanding, i)
					requested++
				default:
					t.Fatalf("record kind %q", kind)
				}
			}
			rp.PutBE64(allDone)
			if err := rp.Flush(); err != nil {
				t.Fatal(err)
			}
			if _, err := dst.Next(1); !errors.Is(err, io.EOF) {
				t.Fatalf("after the last page: %v, want io.EOF", err)
			}
			if err := <-errc; err != nil {
				t.Fatalf("source: %v", err)
			}
			if requested != pages/every {
				t.Fatalf("%d requested pages arrived, want %d", requested, pages/every)
			}
		})
	}
}
