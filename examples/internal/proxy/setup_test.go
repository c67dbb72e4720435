package proxy

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// TestSetupErrors: a mistake in the credentials of --listen or --to, or a
// single-channel source that cannot be opened, ends migrate-proxy at once
// with exit code 1 and one line that names the problem, before it reports
// listening. (A --listen tls-creds naming no object used to fail every
// accept at once, in a loop: 100k log lines in 3 s and a busy core.)
func TestSetupErrors(t *testing.T) {
	p := newPKI(t)
	dir := t.TempDir()
	// A unix socket of its own for each case.
	sock := func() string { return "unix:" + filepath.Join(t.TempDir(), "s") }
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"listen creds missing", []string{"--listen", "tcp:127.0.0.1:0,tls-creds=nope", "--to", sock()}, `--listen: tls-creds=nope: crypto: no object with id "nope"`},
		{"listen creds of a client", []string{"--listen", "tcp:127.0.0.1:0,tls-creds=cli", "--to", sock(), "--object", p.Client}, "--listen: tls-creds=cli has endpoint=client"},
		{"listen authz missing", []string{"--listen", "tcp:127.0.0.1:0,tls-creds=srv,tls-authz=nobody", "--to", sock(), "--object", p.Server}, "--listen: tls-authz=nobody"},
		{"to creds missing", []string{"--listen", sock(), "--to", "tcp:127.0.0.1:1,tls-creds=nope"}, `--to: tls-creds=nope: crypto: no object with id "nope"`},
		{"to creds of a server", []string{"--listen", sock(), "--to", "tcp:127.0.0.1:1,tls-creds=srv", "--object", p.Server}, "--to: tls-creds=srv has endpoint=server"},
		{"to x509 without hostname", []string{"--listen", sock(), "--to", "unix:" + filepath.Join(dir, "d") + ",tls-creds=cli", "--object", p.Client}, "need tls-hostname"},
		{"to x509 tcp without host", []string{"--listen", sock(), "--to", "tcp::1,tls-creds=cli", "--object", p.Client}, "need tls-hostname"},
		{"listen file missing", []string{"--raw", "--listen", "file:" + filepath.Join(dir, "missing"), "--to", sock()}, filepath.Join(dir, "missing") + ": no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			var stdout, stderr syncBuffer
			code := make(chan int, 1)
			go func() { code <- Main(tc.args, &stdout, &stderr) }()
			select {
			case c := <-code:
				if c != 1 {
					t.Errorf("exit code %d, want 1", c)
				}
			case <-ctx.Done():
				t.Fatalf("migrate-proxy did not exit; it logged %d lines, the last: %q", strings.Count(stderr.String(), "\n"), lastLine(stderr.String()))
			}
			out := stderr.String()
			if strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "migrate-proxy: ") || !strings.Contains(out, tc.want) {
				t.Fatalf("stderr:\n%s\nwant one line with %q", out, tc.want)
			}
		})
	}
}

func lastLine(s string) string {
	s = strings.TrimSuffix(s, "\n")
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// syncBuffer is a bytes.Buffer for a writer and a reader in different
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestAcceptBackoff runs migrate-proxy (this test binary, as a child) with
// a limit on its open files, and more idle connections than the limit
// lets it accept: accept fails with EMFILE while the connections it took
// wait for their TLS handshakes, until those time out (after 1 s) and free
// their descriptors. The failures are logged once for the whole run of
// them, not once per attempt, and the proxy accepts again afterwards.
func TestAcceptBackoff(t *testing.T) {
	ctx := testCtx(t)
	p := newPKI(t)
	cmd := exec.Command(os.Args[0], "--listen", "tcp:127.0.0.1:0,tls-creds=srv", "--to", "tcp:127.0.0.1:1",
		"--object", p.Server, "--handshake-timeout", "1s")
	cmd.Env = append(os.Environ(), childEnv+"=1", childNofileEnv+"=8")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	se, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs := newLogLines()
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(se)
		for sc.Scan() {
			logs.add(strings.TrimPrefix(sc.Text(), "migrate-proxy: "))
		}
	}()
	exited := false
	t.Cleanup(func() {
		if !exited {
			cmd.Process.Kill()
			<-scanned
			cmd.Wait()
		}
	})
	_, addr, _ := strings.Cut(logs.waitFor(ctx, t, "listening on "), "listening on ")
	a := mustParse(t, addr)
	for range 32 {
		c, err := net.Dial("tcp", a.Inet.Host+":"+a.Inet.Port)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	logs.waitFor(ctx, t, "too many open files")
	again := logs.waitFor(ctx, t, "again after")
	lines := logs.all()
	failed := 0
	for _, l := range lines {
		if l == again {
			break
		}
		if strings.HasPrefix(l, "accepting on ") {
			failed++
		}
	}
	if failed != 1 {
		t.Fatalf("%d lines for one run of failed accepts, want 1:\n%s", failed, strings.Join(lines, "\n"))
	}
	cmd.Process.Signal(syscall.SIGTERM)
	<-scanned
	err = cmd.Wait()
	exited = true
	if err != nil {
		t.Fatalf("migrate-proxy after SIGTERM: %v", err)
	}
}

// childEnv makes this test binary run migrate-proxy's Main with its
// arguments instead of the tests; childNofileEnv, if set, first limits
// its open files to those it has plus that many.
const (
	childEnv       = "LIVEMIG_PROXY_TEST_MAIN"
	childNofileEnv = "LIVEMIG_PROXY_TEST_NOFILE"
)

// childMain is TestMain's part for a child started with childEnv.
func childMain() int {
	if s := os.Getenv(childNofileEnv); s != "" {
		extra, err := strconv.Atoi(s)
		if err != nil {
			return 2
		}
		open, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			return 2
		}
		n := uint64(len(open) + extra)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: n, Max: n}); err != nil {
			return 2
		}
	}
	return Main(os.Args[1:], os.Stdout, os.Stderr)
}
