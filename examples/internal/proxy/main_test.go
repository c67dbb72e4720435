package proxy

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/leakcheck"
	"github.com/livemig/livemig/internal/testpki"
	"github.com/livemig/livemig/internal/testwait"
	"github.com/livemig/livemig/migration"
	"github.com/livemig/livemig/uri"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	leakcheck.Main(m)
}

// testCtx is a test's safety bound, not a timing assertion: it ends a
// tenth of -timeout before the test binary's deadline.
func testCtx(t testing.TB) context.Context { return testwait.Context(t) }

func mustParse(t testing.TB, s string) uri.Address {
	t.Helper()
	a, err := uri.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// logLines records the messages a proxy logs, one entry per Logf call,
// and lets a test wait for one.
type logLines struct {
	mu      sync.Mutex
	lines   []string
	changed chan struct{}
}

func newLogLines() *logLines { return &logLines{changed: make(chan struct{})} }

func (l *logLines) logf(format string, args ...any) {
	l.add(fmt.Sprintf(format, args...))
}

func (l *logLines) add(s string) {
	l.mu.Lock()
	l.lines = append(l.lines, s)
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

// all returns the lines logged so far.
func (l *logLines) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// count returns how many lines contain sub.
func (l *logLines) count(sub string) int {
	n := 0
	for _, s := range l.all() {
		if strings.Contains(s, sub) {
			n++
		}
	}
	return n
}

// waitFor waits until a line containing sub has been logged and returns
// it; it fails t when ctx ends first.
func (l *logLines) waitFor(ctx context.Context, t testing.TB, sub string) string {
	t.Helper()
	for {
		l.mu.Lock()
		for _, s := range l.lines {
			if strings.Contains(s, sub) {
				l.mu.Unlock()
				return s
			}
		}
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("no log line with %q; the proxy logged:\n%s", sub, strings.Join(l.all(), "\n"))
		}
	}
}

// runProxy starts Run with o (its Logf and Listening replaced) and returns
// the address it listens on. Cleanup stops it and checks that Run
// returned nil.
func runProxy(t testing.TB, o *Options) (uri.Address, *logLines) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := newLogLines()
	o.Logf = logs.logf
	listening := make(chan string, 1)
	o.Listening = func(a string) { listening <- a }
	done := make(chan error, 1)
	go func() { done <- Run(ctx, o) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case a := <-listening:
		return mustParse(t, a), logs
	case err := <-done:
		done <- err
		t.Fatalf("Run returned before listening: %v\n%s", err, strings.Join(logs.all(), "\n"))
	}
	return uri.Address{}, nil
}

// pki is a test PKI with the proxy's and the peers' credentials.
type pki struct {
	*testpki.PKI
	// Server and Client are -object specs of x509 credentials "srv"
	// (endpoint=server, verify-peer=on) and "cli" (endpoint=client).
	Server, Client string
}

func newPKI(t testing.TB) pki {
	t.Helper()
	p := testpki.New(t, nil)
	return pki{
		PKI:    p,
		Server: "tls-creds-x509,id=srv,endpoint=server,verify-peer=on,dir=" + p.ServerDir,
		Client: "tls-creds-x509,id=cli,endpoint=client,dir=" + p.ClientDir,
	}
}

// registry returns a registry holding both of p's objects.
func (p pki) registry(t testing.TB) *crypto.Registry {
	t.Helper()
	r := crypto.NewRegistry()
	for _, spec := range []string{p.Server, p.Client} {
		if err := r.AddObject(spec); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// listenPeer listens on addr as the proxy's next hop; it is closed at
// cleanup.
func listenPeer(t testing.TB, addr string, cfg *migration.Config) *migration.Listener {
	t.Helper()
	ln, err := migration.Listen(context.Background(), mustParse(t, addr), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// withTLS returns addr with the tls-creds (and, with a hostname, the
// tls-hostname) option.
func withTLS(a uri.Address, creds, hostname string) string {
	a.TLS.Creds, a.TLS.Hostname = creds, hostname
	return a.String()
}
