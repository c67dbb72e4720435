//go:build linux

package channel_test

import (
	"net"
	"testing"

	"github.com/livemig/livemig/channel"
)

// BenchmarkWriteBuffers sends batches of 64 guest pages of 4 KiB with one
// WriteBuffers each, against a plain net.Conn.Write loop of the same bytes
// on the same kind of connection, in the same run. A goroutine drains the
// peer in both cases.
//
//	go test -run '^$' -bench WriteBuffers -benchtime 2s -count 3 ./channel
func BenchmarkWriteBuffers(b *testing.B) {
	const pages, pageSize = 64, 4096
	transports := []struct {
		name string
		pair func(testing.TB) (*channel.Socket, *channel.Socket)
	}{
		{"tcp", tcpPair("tcp4", "127.0.0.1")},
		{"unix", unixPair},
	}
	for _, tr := range transports {
		for _, mode := range []string{"WriteBuffers", "ChannelInterface", "NetConnWriteLoop"} {
			b.Run(tr.name+"/"+mode, func(b *testing.B) {
				c, s := tr.pair(b)
				done := make(chan struct{})
				go func() {
					defer close(done)
					buf := make([]byte, 1<<20)
					for {
						if _, err := s.Read(buf); err != nil {
							return
						}
					}
				}()
				b.Cleanup(func() { s.Close(); c.Close(); <-done })

				// Distinct pages, touched before timing starts (first touch
				// of fresh memory is slow on this kind of machine).
				mem := make([]byte, pages*pageSize)
				for i := range mem {
					mem[i] = byte(i)
				}
				template := make(net.Buffers, pages)
				for i := range template {
					template[i] = mem[i*pageSize : (i+1)*pageSize]
				}
				// WriteBuffers consumes its argument (and clears the
				// elements it consumed), so each batch copies the template
				// into a reused working slice: no allocation per batch.
				work := make(net.Buffers, pages)
				conn := c.NetConn()

				b.SetBytes(pages * pageSize)
				b.ReportAllocs()
				b.ResetTimer()
				switch mode {
				case "WriteBuffers":
					for i := 0; i < b.N; i++ {
						bufs := work[:copy(work, template)]
						if _, err := c.WriteBuffers(&bufs); err != nil {
							b.Fatal(err)
						}
					}
				case "ChannelInterface":
					// As the migration stream calls it: through the
					// interface, with the header declared outside the loop
					// (a pointer passed to an interface method escapes, so
					// a loop-local header would cost an allocation per
					// batch).
					var ch channel.Channel = c
					var bufs net.Buffers
					for i := 0; i < b.N; i++ {
						bufs = work[:copy(work, template)]
						if _, err := ch.WriteBuffers(&bufs); err != nil {
							b.Fatal(err)
						}
					}
				case "NetConnWriteLoop":
					for i := 0; i < b.N; i++ {
						for _, p := range template {
							if _, err := conn.Write(p); err != nil {
								b.Fatal(err)
							}
						}
					}
				}
			})
		}
	}
}
