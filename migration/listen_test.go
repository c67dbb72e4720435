package migration

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/livemig/livemig/crypto"
)

// TestListenFailsAtOnce: what a destination cannot serve fails Listen
// itself, naming the problem, instead of the first AcceptTask (which a
// Server logs and waits on for ever): a missing file, a descriptor that
// is not open, credentials that do not exist or are the wrong endpoint.
func TestListenFailsAtOnce(t *testing.T) {
	reg := crypto.NewRegistry()
	for _, spec := range []string{"tls-creds-anon,id=cli,endpoint=client", "tls-creds-anon,id=srv,endpoint=server"} {
		if err := reg.AddObject(spec); err != nil {
			t.Fatal(err)
		}
	}
	missing := filepath.Join(t.TempDir(), "missing.state")
	for _, tc := range []struct {
		name, addr string
		cfg        *Config
		want       string
	}{
		{"missing file", "file:" + missing, nil, missing},
		{"closed descriptor", "fd:999", nil, "bad file descriptor"},
		{"unknown fd name", "fd:incoming", nil, `fd:incoming: no descriptor of that name`},
		{"unknown credentials", "tcp:127.0.0.1:0,tls-creds=nope", &Config{Registry: reg}, `tls-creds "nope"`},
		{"client credentials", "tcp:127.0.0.1:0,tls-creds=cli", &Config{Registry: reg}, "needs endpoint=server"},
		{"no registry", "unix:/nonexistent/x.sock,tls-creds=srv", nil, "Config.Registry is nil"},
		{"unknown authz", "tcp:127.0.0.1:0,tls-creds=srv,tls-authz=az", &Config{Registry: reg}, `tls-authz "az"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := Listen(context.Background(), mustParse(t, tc.addr), tc.cfg)
			if err == nil {
				ln.Close()
				t.Fatalf("Listen(%s) succeeded", tc.addr)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Listen(%s): %v; want it to name %q", tc.addr, err, tc.want)
			}
		})
	}
}

// TestSingleChannelSpent: an exec: Listener's one channel fails (the
// command exits without a stream); a later AcceptTask fails at once with
// an error wrapping net.ErrClosed instead of waiting for its context. Its
// context here would end only after 30 s: without the fix the test sees
// context.DeadlineExceeded then.
func TestSingleChannelSpent(t *testing.T) {
	ctx := testCtx(t)
	ln, err := Listen(ctx, mustParse(t, "exec:false"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := ln.Accept(ctx); err == nil {
		t.Fatal("Accept from exec:false succeeded")
	}
	_, err = ln.Accept(ctx)
	if !errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
		t.Fatalf("second Accept: %v; want at once an error wrapping net.ErrClosed", err)
	}
	t.Logf("%v", err)
}

// TestServerSingleChannelFails: a Server over exec:false returns the
// failure of its one channel from AcceptSession, naming the command,
// instead of logging it and waiting for ever; nothing is logged.
func TestServerSingleChannelFails(t *testing.T) {
	var mu sync.Mutex
	var logged []string
	srv := startServer(t, "exec:false", &Config{Logf: func(f string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		logged = append(logged, f)
	}})
	ctx := testCtx(t)
	_, err := srv.AcceptSession(ctx)
	var pe *PhaseError
	if !errors.As(err, &pe) || ctx.Err() != nil || !strings.Contains(err.Error(), "exec false") {
		t.Fatalf("AcceptSession: %v; want at once the channel's failure naming the command", err)
	}
	srv.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(logged) != 0 {
		t.Errorf("logged %q as well", logged)
	}
	t.Logf("%v", err)
}

// TestListenerClosesUntakenChannel: a file: or fd: Listener closed
// before any AcceptTask closes what Listen opened.
func TestListenerClosesUntakenChannel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vm.state")
	if err := os.WriteFile(path, []byte("state"), 0o600); err != nil {
		t.Fatal(err)
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fds[0])
	for _, addr := range []string{"file:" + path, "fd:incoming"} {
		cfg := &Config{}
		if addr == "fd:incoming" {
			// Only here: an *os.File left unused would close the
			// number, by then another test's, when collected.
			cfg.FDs = map[string]*os.File{"incoming": os.NewFile(uintptr(fds[1]), "incoming")}
		}
		ln, err := Listen(context.Background(), mustParse(t, addr), cfg)
		if err != nil {
			t.Fatal(err)
		}
		before := openFDs(t)
		if err := ln.Close(); err != nil {
			t.Fatalf("%s: Close: %v", addr, err)
		}
		if after := openFDs(t); after != before-1 {
			t.Errorf("%s: %d descriptors open before Close, %d after; want one fewer", addr, before, after)
		}
	}
	// The fd: Listener took the descriptor and closed it: the peer reads
	// EOF.
	syscall.SetNonblock(fds[0], false)
	tv := syscall.Timeval{Sec: 10}
	syscall.SetsockoptTimeval(fds[0], syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
	if n, err := syscall.Read(fds[0], make([]byte, 1)); n != 0 || err != nil {
		t.Errorf("peer of the closed descriptor read %d, %v; want EOF", n, err)
	}
}

// openFDs counts the process's open descriptors.
func openFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}
