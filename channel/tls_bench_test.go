package channel_test

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"testing"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/testpki"
)

// Benchmarks compare the TLS channel with raw crypto/tls over the same
// kind of socket in the same run, and measure DTLS-PSK throughput and
// handshake latency. Each op moves 1 MiB: as one Write, or as 256 guest
// pages of 4 KiB through WriteBuffers. Run
//
//	go test -run TestTLSBenchRatios -args -tlsratios ./channel
//
// to print throughput ratios against raw crypto/tls.

var secRatios = flag.Bool("tlsratios", false, "TestTLSBenchRatios: print TLS channel throughput relative to raw crypto/tls")

const (
	secBenchOp   = 1 << 20
	secBenchPage = 4096
)

// secBenchSetup holds credentials shared by the benchmarks.
type secBenchSetup struct {
	cc, sc   *crypto.Creds
	pcc, psc *crypto.Creds
}

var (
	secBenchOnce sync.Once
	secBench     secBenchSetup
)

func secBenchCreds(b testing.TB) *secBenchSetup {
	secBenchOnce.Do(func() {
		// Credentials outlive the first benchmark, so not b.TempDir: the
		// files are read into memory when the credentials are made, and
		// the directory is removed right after.
		dir, err := os.MkdirTemp("", "livemig-bench-pki-")
		if err != nil {
			b.Fatal(err)
		}
		defer os.RemoveAll(dir)
		p, err := testpki.Write(dir, nil)
		if err != nil {
			b.Fatal(err)
		}
		secBench.cc, err = crypto.NewX509Creds(crypto.X509Options{ID: "c", Dir: p.ClientDir, Endpoint: crypto.Client})
		if err != nil {
			b.Fatal(err)
		}
		secBench.sc, err = crypto.NewX509Creds(crypto.X509Options{ID: "s", Dir: p.ServerDir, Endpoint: crypto.Server})
		if err != nil {
			b.Fatal(err)
		}
		key := testpki.NewPSK()
		if err := testpki.WritePSK(dir+"/psk", map[string][]byte{"qemu": key}); err != nil {
			b.Fatal(err)
		}
		secBench.pcc, err = crypto.NewPSKCreds(crypto.PSKOptions{ID: "pc", Dir: dir + "/psk", Endpoint: crypto.Client})
		if err != nil {
			b.Fatal(err)
		}
		secBench.psc, err = crypto.NewPSKCreds(crypto.PSKOptions{ID: "ps", Dir: dir + "/psk", Endpoint: crypto.Server})
		if err != nil {
			b.Fatal(err)
		}
	})
	if secBench.cc == nil {
		b.Fatal("benchmark credentials failed to load")
	}
	return &secBench
}

// secDrain reads r until an error, counting bytes.
func secDrain(r io.Reader, done chan<- int64) {
	buf := make([]byte, 256<<10)
	var n int64
	for {
		m, err := r.Read(buf)
		n += int64(m)
		if err != nil {
			done <- n
			return
		}
	}
}

// secBenchWriter is what a throughput benchmark drives.
type secBenchWriter struct {
	write   func(p []byte) error
	writev  func(bufs *net.Buffers) error
	closeW  func()
	drained chan int64
}

func secRawTLS(b *testing.B, network string) secBenchWriter {
	s := secBenchCreds(b)
	ci, si := secSocketPair(b, network)
	ccfg, err := s.cc.TLSConfig(crypto.TLSOptions{Hostname: "localhost"})
	if err != nil {
		b.Fatal(err)
	}
	scfg, err := s.sc.TLSConfig(crypto.TLSOptions{})
	if err != nil {
		b.Fatal(err)
	}
	c := tls.Client(ci.NetConn(), ccfg)
	sv := tls.Server(si.NetConn(), scfg)
	errc := make(chan error, 1)
	go func() { errc <- sv.Handshake() }()
	if err := c.Handshake(); err != nil {
		b.Fatal(err)
	}
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	w := secBenchWriter{drained: make(chan int64, 1)}
	go secDrain(sv, w.drained)
	w.write = func(p []byte) error { _, err := c.Write(p); return err }
	w.writev = func(bufs *net.Buffers) error { _, err := bufs.WriteTo(c); return err }
	w.closeW = func() { c.Close() }
	return w
}

// secChannelWriter writes to c through the Channel interface while sv is
// drained.
func secChannelWriter(c, sv channel.Channel) secBenchWriter {
	w := secBenchWriter{drained: make(chan int64, 1)}
	go secDrain(sv, w.drained)
	w.write = func(p []byte) error { _, err := c.Write(p); return err }
	w.writev = func(bufs *net.Buffers) error { _, err := c.WriteBuffers(bufs); return err }
	w.closeW = func() { c.Close() }
	return w
}

func secChannelTLS(b *testing.B, network string) secBenchWriter {
	s := secBenchCreds(b)
	ci, si := secSocketPair(b, network)
	c := channel.NewTLS(ci, s.cc, localhost)
	sv := channel.NewTLS(si, s.sc, nil)
	secHandshakeBoth(b, c, sv)
	return secChannelWriter(c, sv)
}

func secChannelDTLS(b *testing.B, network string) secBenchWriter {
	s := secBenchCreds(b)
	ci, si := secSocketPair(b, network)
	c := channel.NewDTLS(ci, s.pcc, nil)
	sv := channel.NewDTLS(si, s.psc, nil)
	secHandshakeBoth(b, c, sv)
	return secChannelWriter(c, sv)
}

// secThroughput moves b.N MiB through w, as one Write per op or as pages.
func secThroughput(b *testing.B, w secBenchWriter, pages bool) {
	// First-touch memory is slow here: allocate and touch before timing.
	op := make([]byte, secBenchOp)
	for i := range op {
		op[i] = byte(i)
	}
	slices := make(net.Buffers, 0, secBenchOp/secBenchPage)
	var bufs net.Buffers
	// Warm up the connection and the buffers.
	if err := w.write(op); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(secBenchOp)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if pages {
			slices = slices[:0]
			for off := 0; off < secBenchOp; off += secBenchPage {
				slices = append(slices, op[off:off+secBenchPage])
			}
			bufs = slices
			if err := w.writev(&bufs); err != nil {
				b.Fatal(err)
			}
		} else if err := w.write(op); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	w.closeW()
	<-w.drained
}

// BenchmarkTLSThroughput: raw crypto/tls vs the TLS channel, tcp and
// unix, whole 1 MiB writes and 4 KiB pages. raw/pages is net.Buffers on a
// tls.Conn: one record per page, the QEMU 7.2 pattern.
func BenchmarkTLSThroughput(b *testing.B) {
	for _, network := range []string{"tcp", "unix"} {
		for _, impl := range []struct {
			name string
			mk   func(*testing.B, string) secBenchWriter
		}{{"raw", secRawTLS}, {"channel", secChannelTLS}} {
			for _, pages := range []bool{false, true} {
				mode := "write"
				if pages {
					mode = "pages"
				}
				b.Run(network+"/"+impl.name+"/"+mode, func(b *testing.B) {
					secThroughput(b, impl.mk(b, network), pages)
				})
			}
		}
	}
}

// BenchmarkDTLSThroughput: DTLS-PSK over tcp and unix.
func BenchmarkDTLSThroughput(b *testing.B) {
	for _, network := range []string{"tcp", "unix"} {
		for _, pages := range []bool{false, true} {
			mode := "write"
			if pages {
				mode = "pages"
			}
			b.Run(network+"/"+mode, func(b *testing.B) {
				secThroughput(b, secChannelDTLS(b, network), pages)
			})
		}
	}
}

// BenchmarkHandshake: full handshake latency over tcp, including the
// socket pair setup.
func BenchmarkHandshake(b *testing.B) {
	s := secBenchCreds(b)
	b.Run("tls-x509-ecdsa", func(b *testing.B) {
		for range b.N {
			ci, si := secSocketPair(b, "tcp")
			c := channel.NewTLS(ci, s.cc, localhost)
			sv := channel.NewTLS(si, s.sc, nil)
			secHandshakeBoth(b, c, sv)
			c.Close()
			sv.Close()
		}
	})
	b.Run("dtls-psk", func(b *testing.B) {
		for range b.N {
			ci, si := secSocketPair(b, "tcp")
			c := channel.NewDTLS(ci, s.pcc, nil)
			sv := channel.NewDTLS(si, s.psc, nil)
			secHandshakeBoth(b, c, sv)
			c.Close()
			sv.Close()
		}
	})
}

// TestTLSBenchRatios prints, with -args -tlsratios, the TLS channel's
// throughput as a ratio of raw crypto/tls measured in the same run. The
// machine is shared and noisy, so each figure is the best of three rounds
// run interleaved.
func TestTLSBenchRatios(t *testing.T) {
	if !*secRatios {
		t.Skip("run with -args -tlsratios")
	}
	type variant struct {
		name  string
		mk    func(*testing.B, string) secBenchWriter
		pages bool
	}
	variants := []variant{
		{"raw crypto/tls Write", secRawTLS, false},
		{"channel.TLS Write", secChannelTLS, false},
		{"channel.TLS WriteBuffers(4 KiB pages)", secChannelTLS, true},
		{"raw crypto/tls net.Buffers(4 KiB pages)", secRawTLS, true},
		{"channel.DTLS WriteBuffers(4 KiB pages)", secChannelDTLS, true},
	}
	for _, network := range []string{"tcp", "unix"} {
		best := make([]float64, len(variants))
		for range 3 {
			for i, v := range variants {
				r := testing.Benchmark(func(b *testing.B) { secThroughput(b, v.mk(b, network), v.pages) })
				best[i] = max(best[i], float64(r.Bytes)*float64(r.N)/r.T.Seconds()/1e6)
			}
		}
		for i, v := range variants {
			fmt.Printf("%s %-42s %6.0f MB/s  %.2fx raw\n", network, v.name, best[i], best[i]/best[0])
		}
	}
}

var _ = context.Background
