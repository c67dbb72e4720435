package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/livemig/livemig/examples/internal/cli"
	"github.com/livemig/livemig/migration"
	"github.com/livemig/livemig/uri"
)

// The handshake group measures how long a source waits before it can
// send its first stream byte: connect + TLS 1.3 with mutual x509
// authentication (+ the 64-byte hello both ways for livemig), repeated
// handshakeCount times in sequence against a server in another process,
// each timed on the dialing side. Both sides use the same throwaway
// certificates (an ECDSA or RSA leaf as testpki makes them), no session
// resumption, and TLS 1.3 only, so the ratio is livemig's cost over the
// bare handshake.

// handshakeCount is the number of handshakes of one run. Tests lower it
// to keep race-built children quick; the tool always uses 200.
var handshakeCount = 200

// handshakeServerDir returns the server credentials directory the
// handshake servers load. Tests replace it with another CA's directory to
// check that a failed handshake fails the case.
var handshakeServerDir = func(e *env) string { return e.serverDir }

// handshakeRunTimeout bounds one run of a handshake case, both children
// included; handshakeIOTimeout bounds a single handshake on either side.
const (
	handshakeRunTimeout = 2 * time.Minute
	handshakeIOTimeout  = 10 * time.Second
)

// handshakeCases returns handshake-tls-raw (the baseline) and handshake.
func handshakeCases() []*benchCase {
	return []*benchCase{
		{
			name: "handshake-tls-raw", group: "handshake", metric: latency,
			about: fmt.Sprintf("connect + plain crypto/tls 1.3 handshake, mutual x509 auth, + 1-byte exchange; p50/p99 of %d", handshakeCount),
			run: func(ctx context.Context, e *env) (*sample, error) {
				return runHandshakes(ctx, e, "handshake-raw")
			},
		},
		{
			name: "handshake", group: "handshake", baseline: "handshake-tls-raw", metric: latency,
			about: fmt.Sprintf("migration.Dial tcp with tls-creds: connect + TLS 1.3 + 64-byte hello both ways; p50/p99 of %d", handshakeCount),
			run: func(ctx context.Context, e *env) (*sample, error) {
				return runHandshakes(ctx, e, "handshake-livemig")
			},
		},
	}
}

// handshakeRoles returns the servers and clients of both cases.
func handshakeRoles() map[string]childFunc {
	return map[string]childFunc{
		"handshake-raw-server": func(ctx context.Context, args []string, w io.Writer) error {
			return handshakeServer(ctx, args, w, listenRawTLS)
		},
		"handshake-raw-client": func(ctx context.Context, args []string, w io.Writer) error {
			return handshakeClient(ctx, args, w, rawTLSDialer)
		},
		"handshake-livemig-server": func(ctx context.Context, args []string, w io.Writer) error {
			return handshakeServer(ctx, args, w, listenLivemig)
		},
		"handshake-livemig-client": func(ctx context.Context, args []string, w io.Writer) error {
			return handshakeClient(ctx, args, w, livemigDialer)
		},
	}
}

// hsServerResult is the last line a handshake server prints.
type hsServerResult struct {
	Served int   `json:"served"`
	Usage  usage `json:"usage"` // CPU over the handshakes; peak RSS of the process
}

// hsClientResult is the last line a handshake client prints.
type hsClientResult struct {
	Count   int           `json:"count"`
	P50     time.Duration `json:"p50_ns"`
	P99     time.Duration `json:"p99_ns"`
	Elapsed time.Duration `json:"elapsed_ns"` // the whole sequence
	Usage   usage         `json:"usage"`      // CPU over the handshakes; peak RSS of the process
}

// runHandshakes runs one measurement: kind-server in one child, then
// kind-client in another dialing it handshakeCount times.
func runHandshakes(ctx context.Context, e *env, kind string) (*sample, error) {
	ctx, cancel := context.WithTimeout(ctx, handshakeRunTimeout)
	defer cancel()
	n := strconv.Itoa(handshakeCount)
	srv, err := e.start(ctx, kind+"-server", "--dir", handshakeServerDir(e), "--count", n)
	if err != nil {
		return nil, err
	}
	defer srv.kill()
	addr, err := srv.expect(ctx, "ready")
	if err != nil {
		return nil, err
	}
	cl, err := e.start(ctx, kind+"-client", "--addr", addr, "--dir", e.clientDir, "--count", n)
	if err != nil {
		return nil, err
	}
	defer cl.kill()
	var cr hsClientResult
	var sr hsServerResult
	if err := pairResults(ctx, cl, &cr, srv, &sr); err != nil {
		return nil, err
	}
	if cr.Count != handshakeCount || sr.Served != handshakeCount {
		return nil, fmt.Errorf("%s: client completed %d and server %d handshakes, want %d each", kind, cr.Count, sr.Served, handshakeCount)
	}
	if cr.P50 <= 0 || cr.P99 < cr.P50 {
		return nil, fmt.Errorf("%s: client measured p50 %v and p99 %v: not a valid latency", kind, cr.P50, cr.P99)
	}
	cpu := cr.Usage.CPU + sr.Usage.CPU
	return &sample{
		Elapsed: cr.Elapsed,
		CPU:     cpu,
		RSSSrc:  cr.Usage.MaxRSS,
		RSSDst:  sr.Usage.MaxRSS,
		P50:     cr.P50,
		P99:     cr.P99,
		Note: fmt.Sprintf("%d handshakes; CPU %.2f ms per handshake (client %.2f + server %.2f)", handshakeCount,
			ms(cpu/time.Duration(handshakeCount)), ms(cr.Usage.CPU/time.Duration(handshakeCount)), ms(sr.Usage.CPU/time.Duration(handshakeCount))),
	}, nil
}

// hsListener is the server side of a handshake case.
type hsListener interface {
	// addr is what the client dials: host:port for raw TLS, a migration
	// URI for livemig.
	addr() string
	// serve accepts one connection and completes the handshake.
	serve(ctx context.Context) error
	close()
}

// hsDial dials addr once and returns the connection when it is ready for
// stream bytes; closing it is outside the timing.
type hsDial func(ctx context.Context) (io.Closer, error)

// handshakeServer is the server role: "--dir DIR --count N". It prints
// "ready ADDR", completes N handshakes in sequence, then prints an
// hsServerResult.
func handshakeServer(ctx context.Context, args []string, stdout io.Writer, listen func(ctx context.Context, dir string) (hsListener, error)) error {
	fs := flag.NewFlagSet("handshake server", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dir := fs.String("dir", "", "server credentials directory")
	count := fs.Int("count", 0, "handshakes to serve")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || *count < 1 {
		return fmt.Errorf("want --dir DIR --count N, got %q", args)
	}
	ctx, cancel := context.WithTimeout(ctx, handshakeRunTimeout)
	defer cancel()
	ln, err := listen(ctx, *dir)
	if err != nil {
		return err
	}
	defer ln.close()
	if _, err := fmt.Fprintf(stdout, "ready %s\n", ln.addr()); err != nil {
		return err
	}
	u0 := selfUsage()
	served := 0
	for ; served < *count; served++ {
		if err := ln.serve(ctx); err != nil {
			return fmt.Errorf("handshake %d of %d: %w", served+1, *count, err)
		}
	}
	u := selfUsage()
	u.CPU -= u0.CPU
	return json.NewEncoder(stdout).Encode(hsServerResult{Served: served, Usage: u})
}

// handshakeClient is the client role: "--addr ADDR --dir DIR --count N".
// It completes N handshakes in sequence, timing each from before the
// connect to the connection being ready, then prints an hsClientResult.
func handshakeClient(ctx context.Context, args []string, stdout io.Writer, dialer func(addr, dir string) (hsDial, error)) error {
	fs := flag.NewFlagSet("handshake client", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addr := fs.String("addr", "", "server address")
	dir := fs.String("dir", "", "client credentials directory")
	count := fs.Int("count", 0, "handshakes to make")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *addr == "" || *dir == "" || *count < 1 {
		return fmt.Errorf("want --addr ADDR --dir DIR --count N, got %q", args)
	}
	dial, err := dialer(*addr, *dir)
	if err != nil {
		return err
	}
	lat := make([]time.Duration, 0, *count)
	u0 := selfUsage()
	start := time.Now()
	for i := range *count {
		hctx, cancel := context.WithTimeout(ctx, handshakeIOTimeout)
		t0 := time.Now()
		c, err := dial(hctx)
		d := time.Since(t0)
		cancel()
		if err != nil {
			return fmt.Errorf("handshake %d of %d with %s: %w", i+1, *count, *addr, err)
		}
		lat = append(lat, d)
		if err := c.Close(); err != nil {
			return fmt.Errorf("handshake %d of %d with %s: closing: %w", i+1, *count, *addr, err)
		}
	}
	elapsed := time.Since(start)
	u := selfUsage()
	u.CPU -= u0.CPU
	return json.NewEncoder(stdout).Encode(hsClientResult{Count: len(lat), P50: percentile(lat, 50), P99: percentile(lat, 99), Elapsed: elapsed, Usage: u})
}

// percentile returns the p-th percentile of d by the nearest-rank method
// (the smallest value with at least p% of the values at or below it).
func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	k := (p*len(s) + 99) / 100 // ceil(p/100 * n)
	return s[max(k, 1)-1]
}

// rawTLSListener is the baseline's server: a TCP listener on loopback
// and crypto/tls.
type rawTLSListener struct {
	ln  net.Listener
	cfg *tls.Config
}

// listenRawTLS listens on a free loopback port with dir's server
// credentials.
func listenRawTLS(ctx context.Context, dir string) (hsListener, error) {
	cfg, err := rawTLSConfig(dir, true, "")
	if err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("raw TLS server: %w", err)
	}
	return &rawTLSListener{ln: ln, cfg: cfg}, nil
}

// addr returns the host:port the client dials.
func (l *rawTLSListener) addr() string { return l.ln.Addr().String() }

// close stops listening.
func (l *rawTLSListener) close() { l.ln.Close() }

// serve accepts one connection (waiting until ctx ends), runs the TLS
// handshake, which verifies the client's certificate, and answers the
// client's byte with one byte, all within handshakeIOTimeout.
func (l *rawTLSListener) serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { l.ln.Close() })
	c, err := l.ln.Accept()
	stop()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("accepting on %s: %w", l.addr(), ctx.Err())
		}
		return fmt.Errorf("accepting on %s: %w", l.addr(), err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(handshakeIOTimeout)); err != nil {
		return err
	}
	tc := tls.Server(c, l.cfg)
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("raw TLS server handshake with %s: %w", c.RemoteAddr(), err)
	}
	var b [1]byte
	if _, err := io.ReadFull(tc, b[:]); err != nil {
		return fmt.Errorf("raw TLS server reading the client's byte: %w", err)
	}
	if _, err := tc.Write(b[:]); err != nil {
		return fmt.Errorf("raw TLS server answering the client's byte: %w", err)
	}
	return tc.Close()
}

// rawTLSDialer returns the baseline's dial: TCP connect, TLS handshake,
// then one byte each way, so that the server has verified the client's
// certificate when the connection counts as ready (in TLS 1.3 the client
// finishes its handshake first).
func rawTLSDialer(addr, dir string) (hsDial, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--addr: %w", err)
	}
	cfg, err := rawTLSConfig(dir, false, host)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (io.Closer, error) {
		d := tls.Dialer{Config: cfg}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("raw TLS connect and handshake: %w", err)
		}
		if dl, ok := ctx.Deadline(); ok {
			c.SetDeadline(dl)
		}
		b := [1]byte{1}
		if _, err := c.Write(b[:]); err != nil {
			c.Close()
			return nil, fmt.Errorf("raw TLS: sending the byte: %w", err)
		}
		if _, err := io.ReadFull(c, b[:]); err != nil {
			c.Close()
			return nil, fmt.Errorf("raw TLS: reading the server's byte (the server verifies the client certificate after the client's handshake ends): %w", err)
		}
		return c, nil
	}, nil
}

// livemigListener is the livemig server: migration.Listen with x509
// server credentials, verify-peer=on.
type livemigListener struct {
	ln *migration.Listener
}

// listenLivemig listens on tcp:127.0.0.1:0,tls-creds=tls0 with dir's
// server credentials.
func listenLivemig(ctx context.Context, dir string) (hsListener, error) {
	reg, err := cli.Objects{"tls-creds-x509,id=tls0,dir=" + dir + ",endpoint=server,verify-peer=on"}.Registry()
	if err != nil {
		return nil, err
	}
	a, err := uri.Parse("tcp:127.0.0.1:0,tls-creds=tls0")
	if err != nil {
		return nil, err
	}
	ln, err := migration.Listen(ctx, a, &migration.Config{Registry: reg, HandshakeTimeout: handshakeIOTimeout, HelloTimeout: handshakeIOTimeout})
	if err != nil {
		return nil, err
	}
	return &livemigListener{ln: ln}, nil
}

// addr returns the migration URI the client dials.
func (l *livemigListener) addr() string { return l.ln.Addr().String() }

// close stops listening.
func (l *livemigListener) close() { l.ln.Close() }

// serve accepts one channel (connect, TLS, hello) and closes its Stream.
func (l *livemigListener) serve(ctx context.Context) error {
	s, err := l.ln.Accept(ctx)
	if err != nil {
		return fmt.Errorf("livemig accept on %s: %w", l.addr(), err)
	}
	return s.Close()
}

// livemigDialer returns livemig's dial: migration.Dial on addr with
// tls-creds=tls0, an x509 client registry, and the default hello.
func livemigDialer(addr, dir string) (hsDial, error) {
	reg, err := cli.Objects{"tls-creds-x509,id=tls0,dir=" + dir + ",endpoint=client"}.Registry()
	if err != nil {
		return nil, err
	}
	a, err := uri.Parse(addr)
	if err != nil {
		return nil, fmt.Errorf("--addr: %w", err)
	}
	if a.Transport != uri.TCP {
		return nil, fmt.Errorf("--addr %s: want a tcp address", addr)
	}
	a.TLS = uri.TLS{Creds: "tls0"}
	cfg := &migration.Config{Registry: reg}
	return func(ctx context.Context) (io.Closer, error) {
		s, err := migration.Dial(ctx, a, cfg)
		if err != nil {
			return nil, err
		}
		return s, nil
	}, nil
}
