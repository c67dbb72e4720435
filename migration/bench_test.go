package migration

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/livemig/livemig/crypto"
)

// Benchmarks compare the Stream with raw net.Conn and raw crypto/tls in the
// same run. Figures, not assertions: run
//
//	go test -run '^$' -bench . -benchtime 2s ./migration
//
// and compare each sub-benchmark's MB/s with its raw sibling.

const benchPageSize = 4096

// benchPages returns n pages, allocated and touched before the timer runs
// (first-touch page faults are slow on this machine).
func benchPages(n int) [][]byte {
	pages := make([][]byte, n)
	for i := range pages {
		pages[i] = make([]byte, benchPageSize)
		for j := range pages[i] {
			pages[i][j] = byte(i + j)
		}
	}
	return pages
}

// drain reads r to the end in a goroutine; the returned func waits for it.
func drain(r io.Reader) func() {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 256<<10)
		for {
			if _, err := r.Read(buf); err != nil {
				return
			}
		}
	}()
	return wg.Wait
}

func benchAddr(b *testing.B, network string) string {
	if network == "unix" {
		return "unix:" + filepath.Join(b.TempDir(), "b.sock")
	}
	return "tcp:127.0.0.1:0"
}

// rawConnPair returns a connected pair of plain net.Conns.
func rawConnPair(b *testing.B, network string) (net.Conn, net.Conn) {
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(b.TempDir(), "raw.sock")
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		ch <- c
	}()
	c, err := net.Dial(network, l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	s := <-ch
	if s == nil {
		b.Fatal("accept failed")
	}
	return c, s
}

// BenchmarkStreamPages sends 4 KiB pages: through a Stream with
// PutBufferNoCopy (64 pages per writev), and through a raw net.Conn with
// one Write per page and with net.Buffers of 64 pages.
func BenchmarkStreamPages(b *testing.B) { streamPagesCases(b, runSub(b)) }

// runSub runs each case as a sub-benchmark of b.
func runSub(b *testing.B) func(string, func(*testing.B)) {
	return func(name string, f func(*testing.B)) { b.Run(name, f) }
}

func streamPagesCases(tb testing.TB, run func(string, func(*testing.B))) {
	for _, network := range []string{"unix", "tcp"} {
		run(network+"/stream", func(b *testing.B) {
			src, dst := connectPair(b, benchAddr(b, network), nil, nil)
			wait := drain(dst.Channel())
			pages := benchPages(64)
			b.SetBytes(benchPageSize)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				src.PutBufferNoCopy(pages[i&63])
			}
			if err := src.Flush(); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			src.Close()
			wait()
		})
		run(network+"/raw-write", func(b *testing.B) {
			c, s := rawConnPair(b, network)
			wait := drain(s)
			pages := benchPages(64)
			b.SetBytes(benchPageSize)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := c.Write(pages[i&63]); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			c.Close()
			wait()
			s.Close()
		})
		run(network+"/raw-writev", func(b *testing.B) {
			c, s := rawConnPair(b, network)
			wait := drain(s)
			pages := benchPages(64)
			bufs := make(net.Buffers, 0, 64)
			b.SetBytes(benchPageSize)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				bufs = append(bufs, pages[i&63])
				if len(bufs) == 64 || i == b.N-1 {
					v := bufs
					if _, err := v.WriteTo(c); err != nil {
						b.Fatal(err)
					}
					bufs = bufs[:0]
				}
			}
			b.StopTimer()
			c.Close()
			wait()
			s.Close()
		})
	}
}

// cpuTime returns the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds CPU seconds per GiB moved to the benchmark's metrics.
func reportCPU(b *testing.B, start time.Duration, bytes int64) {
	cpu := cpuTime() - start
	b.ReportMetric(cpu.Seconds()/(float64(bytes)/(1<<30)), "cpu-s/GiB")
}

// BenchmarkTLS sends 4 KiB pages over TLS on unix sockets: raw crypto/tls
// with the same credentials (256 KiB writes), a Stream, and Sessions of one
// and two channels (each its own TLS state and goroutine).
func BenchmarkTLS(b *testing.B) { tlsCases(b, runSub(b)) }

func tlsCases(tb testing.TB, run func(string, func(*testing.B))) {
	srcCfg, dstCfg := registries(tb, "x509")
	rawTLS := func(b *testing.B, contiguous bool) {
		cc, err := srcCfg.Registry.Creds("tls0")
		if err != nil {
			b.Fatal(err)
		}
		sc, err := dstCfg.Registry.Creds("tls0")
		if err != nil {
			b.Fatal(err)
		}
		ccfg, err := cc.TLSConfig(crypto.TLSOptions{Hostname: "localhost"})
		if err != nil {
			b.Fatal(err)
		}
		scfg, err := sc.TLSConfig(crypto.TLSOptions{})
		if err != nil {
			b.Fatal(err)
		}
		c, s := rawConnPair(b, "unix")
		tc, ts := tls.Client(c, ccfg), tls.Server(s, scfg)
		errc := make(chan error, 1)
		go func() { errc <- ts.Handshake() }()
		if err := tc.Handshake(); err != nil {
			b.Fatal(err)
		}
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
		wait := drain(ts)
		chunk := make([]byte, 256<<10)
		for i := range chunk {
			chunk[i] = byte(i)
		}
		pages := benchPages(64)
		rec := make([]byte, 0, 16<<10)
		b.SetBytes(benchPageSize)
		b.ResetTimer()
		cpu := cpuTime()
		if contiguous {
			// The best case: the data is already one 256 KiB slice.
			for i := 0; i < b.N; i += 64 {
				n := min(64, b.N-i) * benchPageSize
				if _, err := tc.Write(chunk[:n]); err != nil {
					b.Fatal(err)
				}
			}
		} else {
			// Scattered pages, packed by hand into full 16 KiB records
			// (what any user of crypto/tls must do to avoid a record per
			// page).
			for i := 0; i < b.N; i++ {
				rec = append(rec, pages[i&63]...)
				if len(rec) == cap(rec) || i == b.N-1 {
					if _, err := tc.Write(rec); err != nil {
						b.Fatal(err)
					}
					rec = rec[:0]
				}
			}
		}
		reportCPU(b, cpu, int64(b.N)*benchPageSize)
		b.StopTimer()
		tc.Close()
		wait()
		ts.Close()
	}
	run("raw-crypto-tls-contiguous", func(b *testing.B) { rawTLS(b, true) })
	run("raw-crypto-tls-pages", func(b *testing.B) { rawTLS(b, false) })
	run("stream", func(b *testing.B) {
		src, dst := connectPair(b, benchAddr(b, "unix"), srcCfg, dstCfg)
		wait := drain(dst.Channel())
		pages := benchPages(64)
		b.SetBytes(benchPageSize)
		b.ReportAllocs()
		b.ResetTimer()
		cpu := cpuTime()
		for i := 0; i < b.N; i++ {
			src.PutBufferNoCopy(pages[i&63])
		}
		if err := src.Flush(); err != nil {
			b.Fatal(err)
		}
		reportCPU(b, cpu, int64(b.N)*benchPageSize)
		b.StopTimer()
		src.Close()
		wait()
	})
	run("channel-tls-write", func(b *testing.B) {
		// The TLS channel alone, 256 KiB per Write: what the Stream adds
		// is the difference with "stream".
		src, dst := connectPair(b, benchAddr(b, "unix"), srcCfg, dstCfg)
		wait := drain(dst.Channel())
		chunk := make([]byte, 256<<10)
		for i := range chunk {
			chunk[i] = byte(i)
		}
		b.SetBytes(benchPageSize)
		b.ResetTimer()
		cpu := cpuTime()
		for i := 0; i < b.N; i += 64 {
			n := min(64, b.N-i) * benchPageSize
			if _, err := src.Channel().Write(chunk[:n]); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, cpu, int64(b.N)*benchPageSize)
		b.StopTimer()
		src.Close()
		wait()
	})
	for _, n := range []int{1, 2} {
		run("session-"+string(rune('0'+n))+"ch", func(b *testing.B) {
			sc := srcCfg.Clone()
			sc.Channels = n
			srv := startServer(b, benchAddr(b, "unix"), dstCfg)
			ctx := context.Background()
			src, err := DialSession(ctx, srv.Addr(), sc)
			if err != nil {
				b.Fatal(err)
			}
			dst, err := srv.AcceptSession(ctx)
			if err != nil {
				b.Fatal(err)
			}
			wait := drain(dst)
			pages := benchPages(64)
			b.SetBytes(benchPageSize)
			b.ReportAllocs()
			b.ResetTimer()
			cpu := cpuTime()
			for i := 0; i < b.N; i++ {
				src.Write(pages[i&63])
			}
			if err := src.Flush(); err != nil {
				b.Fatal(err)
			}
			reportCPU(b, cpu, int64(b.N)*benchPageSize)
			b.StopTimer()
			src.Close()
			wait()
			dst.Close()
		})
	}
}

// BenchmarkHandshake measures the latency of a whole channel setup over
// tcp loopback: connect, TLS handshake (x509) and hello on both sides.
func BenchmarkHandshake(b *testing.B) {
	for _, kind := range []string{"", "x509", "psk"} {
		name := kind
		if name == "" {
			name = "plain"
		}
		b.Run(name, func(b *testing.B) {
			srcCfg, dstCfg := registries(b, kind)
			ctx := context.Background()
			ln, err := Listen(ctx, mustParse(b, "tcp:127.0.0.1:0"), dstCfg)
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			addr := ln.Addr()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				at := ln.AcceptTask(ctx)
				src, err := Dial(ctx, addr, srcCfg)
				if err != nil {
					b.Fatal(err)
				}
				dst, err := at.Wait(ctx)
				if err != nil {
					b.Fatal(err)
				}
				src.Close()
				dst.Close()
			}
		})
	}
}

var ratios = flag.Bool("ratios", false, "TestBenchRatios: run the benchmarks and print ratios")

// TestBenchRatios runs the throughput benchmarks in one process and prints
// each against its raw baseline. It is a tool, not a test:
//
//	go test ./migration -run TestBenchRatios -v -args -ratios
func TestBenchRatios(t *testing.T) {
	if !*ratios {
		t.Skip("run with -args -ratios")
	}
	res := map[string]testing.BenchmarkResult{}
	var names []string
	collect := func(name string, f func(*testing.B)) {
		res[name] = testing.Benchmark(f)
		names = append(names, name)
	}
	streamPagesCases(t, collect)
	tlsCases(t, collect)
	mbps := func(n string) float64 {
		r := res[n]
		return float64(r.Bytes) * float64(r.N) / r.T.Seconds() / 1e6
	}
	for _, n := range names {
		r := res[n]
		t.Logf("%-28s %8.0f MB/s %6.2f cpu-s/GiB %4d allocs/op", n, mbps(n), r.Extra["cpu-s/GiB"], r.AllocsPerOp())
	}
	for _, p := range [][2]string{
		{"unix/stream", "unix/raw-writev"}, {"unix/stream", "unix/raw-write"},
		{"tcp/stream", "tcp/raw-writev"}, {"tcp/stream", "tcp/raw-write"},
		{"stream", "raw-crypto-tls-pages"}, {"stream", "raw-crypto-tls-contiguous"},
		{"session-1ch", "raw-crypto-tls-pages"}, {"session-2ch", "session-1ch"},
	} {
		line := fmt.Sprintf("%-12s / %-26s %5.2fx", p[0], p[1], mbps(p[0])/mbps(p[1]))
		if c0, c1 := res[p[0]].Extra["cpu-s/GiB"], res[p[1]].Extra["cpu-s/GiB"]; c0 > 0 && c1 > 0 {
			line += fmt.Sprintf("   cpu-s/GiB %5.2fx", c0/c1)
		}
		t.Log(line)
	}
}
