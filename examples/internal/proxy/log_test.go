package proxy

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/testpki"
	"github.com/livemig/livemig/migration"
)

// lineWriter is migrate-proxy's stderr in a test: it hands each complete
// line to logs.
type lineWriter struct {
	mu      sync.Mutex
	partial string
	logs    *logLines
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.partial + string(p)
	for {
		line, rest, ok := strings.Cut(s, "\n")
		if !ok {
			break
		}
		w.logs.add(line)
		s = rest
	}
	w.partial = s
	return len(p), nil
}

// TestLogLines: every message of migrate-proxy is one line of its stderr,
// whatever the text of the error it reports. The next hop's certificate
// names a host with a line break in it, as a hostile or broken server
// may: the proxy's error quotes it, and must neither split the line nor
// let the name forge a line of its own. A connection cut by the proxy's
// end is logged on one line too (its two directions failed together and
// their errors were once joined by a line break).
func TestLogLines(t *testing.T) {
	ctx := testCtx(t)
	const evil = "mig.example\nmigrate-proxy: connection 99: closed: forged"
	bad := testpki.New(t, &testpki.Options{Server: testpki.LeafOptions{DNSNames: []string{evil}}})
	nextReg := crypto.NewRegistry()
	for _, spec := range []string{
		"tls-creds-x509,id=bad,endpoint=server,verify-peer=off,dir=" + bad.ServerDir,
	} {
		if err := nextReg.AddObject(spec); err != nil {
			t.Fatal(err)
		}
	}
	badNext := listenPeer(t, "tcp:127.0.0.1:0,tls-creds=bad", &migration.Config{Raw: true, Registry: nextReg})
	plainNext := listenPeer(t, "tcp:127.0.0.1:0", &migration.Config{Raw: true})

	logs := newLogLines()
	stderr := &lineWriter{logs: logs}
	run := func(o *Options) (stop func()) {
		t.Helper()
		o.Logf = newLogf("migrate-proxy", stderr)
		listening := make(chan string, 1)
		o.Listening = func(a string) { o.Logf("listening on %s", a); listening <- a }
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- Run(rctx, o) }()
		select {
		case <-listening:
		case err := <-done:
			t.Fatalf("Run: %v", err)
		}
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}

	// The next hop's certificate does not match: one line.
	stop := run(&Options{Raw: true, Listen: "tcp:127.0.0.1:0", To: withTLS(badNext.Addr(), "cli", "localhost"),
		Objects: []string{"tls-creds-x509,id=cli,endpoint=client,dir=" + bad.ClientDir}})
	addr := lastListening(t, logs)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The next hop runs its side of the handshake, which the proxy ends.
	if st, err := badNext.Accept(ctx); err == nil {
		st.Close()
		t.Fatal("the next hop's handshake with a certificate for another host succeeded")
	}
	logs.waitFor(ctx, t, "not localhost")
	stop()

	// A connection cut when the proxy stops: one line.
	stop = run(&Options{Raw: true, Listen: "tcp:127.0.0.1:0", To: plainNext.Addr().String()})
	addr = lastListening(t, logs)
	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	down, err := plainNext.AcceptChannel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	logs.waitFor(ctx, t, "connection 1: tcp ")
	stop()
	logs.waitFor(ctx, t, "cut after")

	for _, l := range logs.all() {
		if !strings.HasPrefix(l, "migrate-proxy: listening on ") && !strings.HasPrefix(l, "migrate-proxy: connection ") {
			t.Errorf("a message spans more than one line; this line is not one of migrate-proxy's own: %q", l)
		}
		if strings.Contains(l, "connection 99") && strings.HasPrefix(l, "migrate-proxy: connection 99") {
			t.Errorf("a peer's text forged a log line: %q", l)
		}
	}
	if t.Failed() {
		t.Logf("stderr:\n%s", strings.Join(logs.all(), "\n"))
	}
}

// lastListening returns the host:port of the last "listening on" line.
func lastListening(t testing.TB, logs *logLines) string {
	t.Helper()
	var addr string
	for _, l := range logs.all() {
		if _, a, ok := strings.Cut(l, "listening on "); ok {
			addr = a
		}
	}
	a := mustParse(t, addr)
	return a.Inet.Host + ":" + a.Inet.Port
}

// TestFlatten: what flatten makes of messages that would span lines or
// carry terminal control sequences.
func TestFlatten(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain message", "plain message"},
		// errors.Join of two errors.
		{"forward: read: reset\nback: write: broken pipe", "forward: read: reset; back: write: broken pipe"},
		// go-multierror's list format.
		{"2 errors occurred:\n\t* a\n\t* b\n\n", "2 errors occurred:; * a; * b"},
		{"a\r\nb", "a; b"},
		{"name\u2028forged", "name; forged"},
		{"tab\there", "tab here"},
		{"esc \x1b[31mred", `esc \x1b[31mred`},
		{"nul \x00", `nul \x00`},
	} {
		if got := flatten(tc.in); got != tc.want {
			t.Errorf("flatten(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
