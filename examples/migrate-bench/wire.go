package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/livemig/livemig/internal/testpki"
)

// The "wire" group: SIZE bytes of pages from one process to another over
// a socket, TLS, DTLS or a pipe through cat, with livemig's Stream or
// Session and with the plain write loops they are measured against. The
// destination child ("child wire-dst CASE ...") listens and prints
// "ready ADDRESS"; the source child ("child wire-src CASE ADDRESS ...")
// connects and sends; each prints one wireResult line (see wire_child.go).

// wireKind describes a wire case: how its two children connect and send.
type wireKind struct {
	name, baseline, about string
	target                func(e *env) float64
	transport             string // "unix", "tcp" or "exec"
	security              string // "", "tls" (x509) or "psk" (DTLS)
	api                   string // "raw", "stream", "session" or "zerocopy"
}

// wireKinds lists the wire cases in table order, baselines first.
func wireKinds() []*wireKind {
	fixed := func(v float64) func(*env) float64 { return func(*env) float64 { return v } }
	return []*wireKind{
		{name: "unix-raw", about: "baseline: plain net.Conn writes of 256 KiB over a unix socket", transport: "unix", api: "raw"},
		{name: "unix-stream", baseline: "unix-raw", target: fixed(0.95), about: "Stream, PutBufferNoCopy per page, over migration.Dial unix: (hello on)", transport: "unix", api: "stream"},
		{name: "tcp-raw", about: "baseline: plain net.Conn writes of 256 KiB over tcp loopback", transport: "tcp", api: "raw"},
		{name: "tcp-stream", baseline: "tcp-raw", target: fixed(0.95), about: "Stream, PutBufferNoCopy per page, over migration.Dial tcp: (hello on)", transport: "tcp", api: "stream"},
		{name: "tls-raw", about: "baseline: plain crypto/tls 1.3 writes of 256 KiB over tcp loopback, mutual x509", transport: "tcp", security: "tls", api: "raw"},
		{name: "tls-stream", baseline: "tls-raw", target: fixed(0.90), about: "Stream over tcp: with tls-creds-x509 (verify-peer=on)", transport: "tcp", security: "tls", api: "stream"},
		{name: "tls-stream-2ch", baseline: "tls-stream", target: func(e *env) float64 {
			if e.nproc >= 4 {
				return 1.6
			}
			return 0.95
		}, about: "Session of 2 TLS channels (DialSession, AcceptSession), PutBufferNoCopy per page, ReadBuffer", transport: "tcp", security: "tls", api: "session"},
		{name: "dtls-psk", baseline: "tls-raw", about: "Stream over the DTLS PSK channel (tls-creds-psk) on tcp", transport: "tcp", security: "psk", api: "stream"},
		{name: "zerocopy", baseline: "tcp-stream", about: "tcp-stream with Stream.SetZeroCopy (MSG_ZEROCOPY) where the kernel allows it", transport: "tcp", api: "zerocopy"},
		{name: "exec", baseline: "unix-raw", about: "Stream over exec: through cat and a FIFO (one-way hello)", transport: "exec", api: "stream"},
	}
}

// wireCases returns the wire group's cases.
func wireCases() []*benchCase {
	var cs []*benchCase
	for _, w := range wireKinds() {
		c := &benchCase{name: w.name, group: "wire", baseline: w.baseline, about: w.about, metric: throughput, target: w.target}
		c.run = func(ctx context.Context, e *env) (*sample, error) { return runWire(ctx, e, w) }
		switch {
		case w.api == "zerocopy":
			c.skip = func(*env) string { return zeroCopySkip() }
		case w.transport == "exec":
			c.skip = func(*env) string { return execSkip() }
		}
		cs = append(cs, c)
	}
	return cs
}

// wireRoles returns the children of the wire cases.
func wireRoles() map[string]childFunc {
	return map[string]childFunc{"wire-dst": wireDst, "wire-src": wireSrc}
}

// wireKindByName returns the named wire case, or nil.
func wireKindByName(name string) *wireKind {
	for _, w := range wireKinds() {
		if w.name == name {
			return w
		}
	}
	return nil
}

// testCorruptPage, when not negative, makes every wire source flip a byte
// of that page on the wire, and testPageDelta makes it send that many
// pages more (or fewer) than --size: the tests use them to prove that
// verification fails a run.
var testCorruptPage, testPageDelta atomic.Int64

func init() { testCorruptPage.Store(-1) }

// wireSeq numbers the runs, for unique socket and FIFO names.
var wireSeq atomic.Int64

// wireRunTimeout bounds one run of a wire case.
const wireRunTimeout = childTimeout

// failGrace is how long, after one child of a run failed, the other has
// to report its own error before both are killed.
const failGrace = 3 * time.Second

// runWire runs one case once: it starts the destination, then the source,
// and forms the sample from both results. On any failure both children are
// killed.
func runWire(ctx context.Context, e *env, w *wireKind) (*sample, error) {
	ctx, cancel := context.WithTimeout(ctx, wireRunTimeout)
	defer cancel()
	n := wireSeq.Add(1)
	listen := "127.0.0.1:0"
	switch w.transport {
	case "unix":
		listen = filepath.Join(e.dir, fmt.Sprintf("wire-%d.sock", n))
	case "exec":
		listen = filepath.Join(e.dir, fmt.Sprintf("wire-%d.fifo", n))
		if err := syscall.Mkfifo(listen, 0o600); err != nil {
			return nil, fmt.Errorf("%s: mkfifo %s: %w", w.name, listen, err)
		}
	}
	switch w.transport {
	case "unix":
		defer os.Remove(listen)
	case "exec":
		defer removeFIFO(listen)
	}
	pskDir, err := wirePSK(e)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", w.name, err)
	}
	size := strconv.FormatInt(e.size, 10)
	dst, err := e.start(ctx, "wire-dst", w.name, "--size", size, "--listen", listen, "--server-dir", e.serverDir, "--psk-dir", pskDir)
	if err != nil {
		return nil, err
	}
	defer dst.kill()
	addr, err := dst.expect(ctx, "ready")
	if err != nil {
		return nil, fmt.Errorf("%s: destination: %w", w.name, err)
	}
	srcArgs := []string{w.name, addr, "--size", size, "--client-dir", e.clientDir, "--psk-dir", pskDir}
	if p := testCorruptPage.Load(); p >= 0 {
		srcArgs = append(srcArgs, "--corrupt-page", strconv.FormatInt(p, 10))
	}
	if d := testPageDelta.Load(); d != 0 {
		srcArgs = append(srcArgs, "--page-delta", strconv.FormatInt(d, 10))
	}
	src, err := e.start(ctx, "wire-src", srcArgs...)
	if err != nil {
		return nil, err
	}
	defer src.kill()

	// Wait for both. After the first failure the other child has
	// failGrace to report its own error (a source's broken pipe is
	// explained by the destination's verification error) before both are
	// killed, so neither waits for a peer that is gone. Both errors are
	// reported.
	waitCtx, stopWait := context.WithCancel(ctx)
	defer stopWait()
	var failOnce sync.Once
	failed := func() { failOnce.Do(func() { time.AfterFunc(failGrace, stopWait) }) }
	var sr, dr wireResult
	var serr, derr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if serr = src.result(waitCtx, &sr); serr != nil {
			failed()
		}
	}()
	go func() {
		defer wg.Done()
		if derr = dst.result(waitCtx, &dr); derr != nil {
			failed()
		}
	}()
	wg.Wait()
	switch {
	case derr != nil && serr != nil:
		return nil, fmt.Errorf("%s: destination: %v; source: %v", w.name, derr, serr)
	case derr != nil:
		return nil, fmt.Errorf("%s: destination: %w", w.name, derr)
	case serr != nil:
		return nil, fmt.Errorf("%s: source: %w", w.name, serr)
	}
	if dr.Bytes != e.size {
		return nil, fmt.Errorf("%s: destination verified %d bytes, want %d", w.name, dr.Bytes, e.size)
	}
	el := time.Duration(dr.EndNS - sr.StartNS)
	if el <= 0 {
		return nil, fmt.Errorf("%s: destination's last byte (%d) is not after the source's first (%d)", w.name, dr.EndNS, sr.StartNS)
	}
	s := &sample{Bytes: dr.Bytes, Elapsed: el, CPU: sr.CPU + dr.CPU, RSSSrc: sr.MaxRSS, RSSDst: dr.MaxRSS}
	s.Note = joinNotes(sr.Note, dr.Note)
	return s, nil
}

// removeFIFO removes the exec case's FIFO after both children are gone.
// A destination killed before any source opened the FIFO leaves its cat
// (in its own process group, out of reach of our kill) blocked in
// open(2) for reading, for ever: opening the FIFO read-write here lets
// that open return, and closing it after the unlink gives that cat its
// end of file, so it exits.
func removeFIFO(path string) {
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NONBLOCK, 0)
	os.Remove(path)
	if err == nil {
		f.Close()
	}
}

// joinNotes joins the non-empty parts of notes (each itself a list
// joined with "; ") with "; ", dropping repeated parts: both sides name
// the negotiated TLS suite.
func joinNotes(notes ...string) string {
	var parts []string
	for _, n := range notes {
		for _, p := range strings.Split(n, "; ") {
			if p != "" && !slices.Contains(parts, p) {
				parts = append(parts, p)
			}
		}
	}
	return strings.Join(parts, "; ")
}

// wirePSK writes the PSK directory of dtls-psk once per tool run and
// returns it.
func wirePSK(e *env) (string, error) {
	dir := filepath.Join(e.dir, "psk")
	if _, err := os.Stat(filepath.Join(dir, "keys.psk")); err == nil {
		return dir, nil
	}
	if err := testpki.WritePSK(dir, map[string][]byte{"qemu": testpki.NewPSK()}); err != nil {
		return "", fmt.Errorf("writing the PSK keys file: %w", err)
	}
	return dir, nil
}

// zeroCopySkip says why MSG_ZEROCOPY cannot run here: it asks the kernel
// for SO_ZEROCOPY on a loopback tcp socket. "" when it can.
func zeroCopySkip() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "no tcp loopback: " + err.Error()
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return "no tcp loopback: " + err.Error()
	}
	defer c.Close()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return err.Error()
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ZEROCOPY, 1)
	}); err != nil {
		return err.Error()
	}
	if serr != nil {
		return "the kernel refuses SO_ZEROCOPY (MSG_ZEROCOPY needs Linux 4.14): setsockopt: " + serr.Error()
	}
	return ""
}

// execSkip says why the exec case cannot run: it needs sh and cat.
func execSkip() string {
	for _, p := range []string{"sh", "cat"} {
		if _, err := exec.LookPath(p); err != nil {
			return fmt.Sprintf("the exec: case needs %s: %v", p, err)
		}
	}
	return ""
}
