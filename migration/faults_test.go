package migration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/hello"
	"github.com/livemig/livemig/internal/testwait"
	"github.com/livemig/livemig/uri"
)

// TestHelperProcess is not a test: the fault tests run the test binary
// again as a migration peer, and kill it.
func TestHelperProcess(t *testing.T) {
	role := os.Getenv("LIVEMIG_HELPER")
	if role == "" {
		t.Skip("helper process only")
	}
	if strings.HasPrefix(role, "relay-") {
		relay(role, os.Getenv("LIVEMIG_ADDR"))
	}
	ctx := context.Background()
	cfg := &Config{TLSCreds: "tls0", Registry: crypto.NewRegistry(), TLSHostname: "localhost"}
	if err := cfg.Registry.AddObject(os.Getenv("LIVEMIG_CREDS")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	addr, err := uri.Parse(os.Getenv("LIVEMIG_ADDR"))
	if err != nil {
		os.Exit(2)
	}
	switch role {
	case "source": // dial and send pages forever
		s, err := Dial(ctx, addr, cfg)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		page := make([]byte, 4096)
		for s.Err() == nil {
			s.PutBufferNoCopy(page)
		}
	case "dest": // listen, accept and read forever
		ln, err := Listen(ctx, addr, cfg)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		s, err := ln.Accept(ctx)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		io.Copy(io.Discard, s)
	}
	os.Exit(0)
}

// relay connects to (relay-connect) or accepts one connection on
// (relay-listen) the unix socket path and copies stdin to it and it to
// stdout, like socat: an exec: command that reaches a socket.
func relay(mode, path string) {
	var c net.Conn
	var err error
	if mode == "relay-listen" {
		var l net.Listener
		if l, err = net.Listen("unix", path); err == nil {
			c, err = l.Accept()
			l.Close()
		}
	} else {
		c, err = net.Dial("unix", path)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "relay:", err)
		os.Exit(2)
	}
	done := make(chan struct{})
	go func() {
		io.Copy(c, os.Stdin)
		c.(*net.UnixConn).CloseWrite()
		close(done)
	}()
	io.Copy(os.Stdout, c)
	os.Stdout.Close()
	<-done
	os.Exit(0)
}

// relayCommand returns an exec: address running the test binary as a
// relay to path.
func relayCommand(mode, path string) string {
	return fmt.Sprintf("exec:GORACE=atexit_sleep_ms=0 LIVEMIG_HELPER=%s LIVEMIG_ADDR='%s' exec '%s' -test.run='^TestHelperProcess$'", mode, path, os.Args[0])
}

// startHelper runs the test binary as a migration peer; it is killed at
// cleanup if the test has not killed it.
func startHelper(t *testing.T, role, addr, creds string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0", "LIVEMIG_HELPER="+role, "LIVEMIG_ADDR="+addr, "LIVEMIG_CREDS="+creds)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

func kill(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
}

// TestPeerKilled kills a peer process in the middle of a TLS migration:
// the surviving side fails promptly, whichever it is.
func TestPeerKilled(t *testing.T) {
	clientSpec, serverSpec := credSpecs(t, "x509")
	srcCfg := &Config{Registry: crypto.NewRegistry(), TLSCreds: "tls0", TLSHostname: "localhost"}
	dstCfg := &Config{Registry: crypto.NewRegistry(), TLSCreds: "tls0"}
	if err := srcCfg.Registry.AddObject(clientSpec); err != nil {
		t.Fatal(err)
	}
	if err := dstCfg.Registry.AddObject(serverSpec); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()

	t.Run("source killed", func(t *testing.T) {
		ctx := testCtx(t)
		ln, err := Listen(ctx, mustParse(t, "unix:"+filepath.Join(dir, "d.sock")), dstCfg)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		cmd := startHelper(t, "source", ln.Addr().String(), clientSpec)
		dst, err := ln.Accept(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer dst.Close()
		page := make([]byte, 4096)
		for range 100 {
			if _, err := dst.GetBuffer(page); err != nil {
				t.Fatal(err)
			}
		}
		kill(t, cmd)
		// Each read after the death fails or returns what the socket
		// held; one that blocked would fail at the test's deadline.
		read := testwait.Go(func() error {
			for dst.Err() == nil {
				dst.GetBuffer(page)
			}
			return dst.Err()
		})
		if err := read.Result(t, "the destination noticing that the source died"); err == nil {
			t.Fatalf("destination after the source died: %v", err)
		}
		t.Logf("destination: %v", dst.Err())
	})

	t.Run("destination killed", func(t *testing.T) {
		ctx := testCtx(t)
		addr := "unix:" + filepath.Join(dir, "s.sock")
		cmd := startHelper(t, "dest", addr, serverSpec)
		var src *Stream
		var err error
		for { // until the helper listens (or ctx, bounded by the test binary's -timeout, ends)
			if src, err = Dial(ctx, mustParse(t, addr), srcCfg); err == nil || ctx.Err() != nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		page := make([]byte, 4096)
		for range 100 {
			src.PutBufferNoCopy(page)
		}
		if err := src.Flush(); err != nil {
			t.Fatal(err)
		}
		kill(t, cmd)
		write := testwait.Go(func() error {
			for src.Err() == nil {
				src.PutBufferNoCopy(page)
			}
			return src.Err()
		})
		if write.Result(t, "the source noticing that the destination died") == nil {
			t.Fatal("source never failed")
		}
		t.Logf("source: %v", src.Err())
	})

	t.Run("exec child killed", func(t *testing.T) {
		ctx := testCtx(t)
		src, err := Dial(ctx, mustParse(t, "exec:exec cat > /dev/null"), nil)
		if err != nil {
			t.Fatal(err)
		}
		cmd := src.Channel().(*channel.Command)
		page := make([]byte, 4096)
		src.PutBufferNoCopy(page)
		src.Flush()
		syscall.Kill(cmd.Pid(), syscall.SIGKILL)
		write := testwait.Go(func() error {
			for src.Err() == nil {
				src.PutBufferNoCopy(page)
			}
			return src.Err()
		})
		if err := write.Result(t, "the source noticing that its exec child died"); err == nil {
			t.Fatal("source never failed")
		}
		if err := src.Close(); err == nil {
			t.Fatal("Close of a killed command reported no exit error")
		}

		// Incoming exec whose child dies in the middle of a page.
		hb, _ := testRequest.MarshalBinary()
		hf := filepath.Join(t.TempDir(), "hello")
		os.WriteFile(hf, hb, 0o600)
		ln, err := Listen(ctx, mustParse(t, "exec:cat '"+hf+"'; head -c 100 /dev/zero; exec sleep 30"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		dst, err := ln.Accept(ctx)
		if err != nil {
			t.Fatal(err)
		}
		read := testwait.Go(func() error { _, err := dst.GetBuffer(page); return err })
		// In the middle of the page: the 100 bytes the child sent are in,
		// and the read waits for the rest.
		testwait.Until(t, "the child's 100 bytes read", func() bool { return dst.Stats().Read >= 100 })
		read.Blocked(t)
		syscall.Kill(dst.Channel().(*channel.Command).Pid(), syscall.SIGKILL)
		if err := read.Result(t, "the destination noticing the child's death"); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("destination: %v, want io.ErrUnexpectedEOF", err)
		}
		dst.Close()
	})
}

// rawPeer listens on a fresh unix socket and hands each accepted
// connection to fn; it returns the address.
func rawPeer(t *testing.T, fn func(c net.Conn)) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "raw.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			fn(c)
			c.Close()
		}
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return "unix:" + path
}

// rawDial connects to a Listener and returns the raw connection.
func rawDial(t *testing.T, ln *Listener) net.Conn {
	t.Helper()
	c, err := net.Dial("unix", ln.Addr().Unix.Path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestBadHello feeds the destination things that are not a hello.
func TestBadHello(t *testing.T) {
	qemu := append([]byte{0x51, 0x45, 0x56, 0x4D, 0, 0, 0, 3}, make([]byte, 56)...)
	for _, tc := range []struct {
		name    string
		send    []byte
		wantErr string
		timeout bool
	}{
		// Only the silent row has a short HelloTimeout: the others must
		// fail on their bytes, however long the machine takes to send them.
		{"garbage", []byte(strings.Repeat("GET / HTTP/1.1\r\nHost: x\r\n", 4)), "magic", false},
		{"QEMU stream", qemu, "use Raw", false},
		{"truncated", []byte("LMIG\x01"), "unexpected EOF", false},
		{"silent", nil, "hello timed out", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			cfg := &Config{HelloTimeout: time.Hour}
			if tc.timeout {
				cfg.HelloTimeout = 200 * time.Millisecond
			}
			ln, err := Listen(ctx, mustParse(t, "unix:"+filepath.Join(t.TempDir(), "d")), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			task := ln.AcceptTask(ctx)
			c := rawDial(t, ln)
			c.Write(tc.send)
			if tc.name == "truncated" {
				c.(*net.UnixConn).CloseWrite()
			}
			_, err = task.Wait(ctx)
			var pe *PhaseError
			if !errors.As(err, &pe) || pe.Phase != PhaseHello || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want a hello-phase error containing %q", err, tc.wantErr)
			}
			var ne net.Error
			if tc.timeout && (!errors.As(err, &ne) || !ne.Timeout()) {
				t.Fatalf("error %v is not a net.Error timeout", err)
			}
			// Nothing of ours, and none of the peer's bytes, came back; the
			// socket is closed.
			c.SetReadDeadline(testwait.Deadline(t))
			back, err := io.ReadAll(c)
			if len(back) != 0 || err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("peer got %q, %v back; want a closed socket and nothing", back, err)
			}
		})
	}
}

// TestHelloMismatches: a wrong session ID and a wrong direction fail both
// sides with errors naming both values; the peer learns only a code.
func TestHelloMismatches(t *testing.T) {
	ctx := testCtx(t)
	want := SessionID{0xaa}
	got := SessionID{0xbb}
	ln, err := Listen(ctx, mustParse(t, "unix:"+filepath.Join(t.TempDir(), "d")), &Config{SessionID: want})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	task := ln.AcceptTask(ctx)
	_, serr := Dial(ctx, ln.Addr(), &Config{SessionID: got})
	_, derr := task.Wait(ctx)
	var me *HelloMismatchError
	if !errors.As(derr, &me) || me.Field != "session" || me.Local != want.String() || me.Remote != got.String() {
		t.Fatalf("destination: %v", derr)
	}
	var re *RefusedError
	if !errors.As(serr, &re) || re.status != hello.StatusMismatch || re.Session != got || strings.Contains(serr.Error(), want.String()) {
		t.Fatalf("source: %v (must not learn the destination's session)", serr)
	}

	// Two sources: one listens (dial-back), the other dials it.
	addr := mustParse(t, "unix:"+filepath.Join(t.TempDir(), "s"))
	t1 := Connect(ctx, addr, &Config{DialBack: true})
	var err2 error
	for { // until t1 listens (or ctx, bounded by the test binary's -timeout, ends)
		var s *Stream
		if s, err2 = Dial(ctx, addr, nil); s != nil {
			s.Close()
		}
		if !errors.Is(err2, syscall.ENOENT) && !errors.Is(err2, syscall.ECONNREFUSED) || ctx.Err() != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, err1 := t1.Wait(ctx)
	if !errors.As(err1, &me) || me.Field != "direction" || !errors.As(err2, &re) {
		t.Fatalf("two sources: listening one %v; dialing one %v", err1, err2)
	}
}

// TestCancelEachPhase cancels tasks in every phase and checks the error
// names the phase, matches context.Canceled, and that the socket is
// closed.
func TestCancelEachPhase(t *testing.T) {
	srcCfg, _ := registries(t, "x509")
	cases := []struct {
		phase Phase
		cfg   *Config
		peer  func(c net.Conn, closed chan<- error)
	}{
		// connect: a dial-back source listens; nobody comes.
		{PhaseConnect, &Config{DialBack: true}, nil},
		// tls-handshake: the peer accepts and never answers.
		{PhaseTLSHandshake, srcCfg, func(c net.Conn, closed chan<- error) {
			_, err := io.Copy(io.Discard, c)
			closed <- err
		}},
		// hello: the peer reads the hello and never replies.
		{PhaseHello, &Config{}, func(c net.Conn, closed chan<- error) {
			_, err := io.Copy(io.Discard, c)
			closed <- err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.phase.String(), func(t *testing.T) {
			closed := make(chan error, 1)
			var addr string
			if tc.peer != nil {
				addr = rawPeer(t, func(c net.Conn) { tc.peer(c, closed) })
			} else {
				addr = "unix:" + filepath.Join(t.TempDir(), "x")
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var phases []Phase
			reached := make(chan struct{}, 8)
			cfg := tc.cfg.Clone()
			cfg.Progress = func(p Phase) {
				phases = append(phases, p)
				reached <- struct{}{}
			}
			task := Connect(ctx, mustParse(t, addr), cfg)
			for task.Phase() != tc.phase {
				testwait.Recv(t, fmt.Sprintf("the task reaching %s (it is in %s)", tc.phase, task.Phase()), reached)
			}
			time.Sleep(30 * time.Millisecond)
			if task.Phase() != tc.phase {
				t.Fatalf("task left %s on its own: %v", tc.phase, task.Err())
			}
			cancel()
			testwait.Recv(t, "the task ending after cancel", task.Done())
			err := task.Err()
			var pe *PhaseError
			if !errors.As(err, &pe) || pe.Phase != tc.phase || !errors.Is(err, context.Canceled) {
				t.Fatalf("error %v, want a %s-phase error matching context.Canceled", err, tc.phase)
			}
			if task.Phase() != PhaseFailed || phases[len(phases)-1] != PhaseFailed {
				t.Fatalf("final phase %s, progress %v", task.Phase(), phases)
			}
			if tc.peer != nil {
				testwait.Recv(t, "the peer's read ending (our socket closed after cancel)", closed)
			}
		})
	}
	t.Run("resolve", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := Dial(ctx, mustParse(t, "unix:/nonexistent"), nil)
		var pe *PhaseError
		if !errors.As(err, &pe) || pe.Phase != PhaseResolve || !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("destination hello", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ln, err := Listen(ctx, mustParse(t, "unix:"+filepath.Join(t.TempDir(), "d")), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		task := ln.AcceptTask(ctx)
		c := rawDial(t, ln)
		for task.Phase() != PhaseHello {
			time.Sleep(time.Millisecond)
		}
		cancel()
		_, err = task.Wait(testCtx(t))
		var pe *PhaseError
		if !errors.As(err, &pe) || pe.Phase != PhaseHello || !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v", err)
		}
		c.SetReadDeadline(testwait.Deadline(t))
		if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("socket after cancel: %d, %v; want it closed", n, err)
		}
	})
	t.Run("destination connect", func(t *testing.T) {
		ln, err := Listen(context.Background(), mustParse(t, "tcp:127.0.0.1:0"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err = ln.Accept(ctx)
		var pe *PhaseError
		if !errors.As(err, &pe) || pe.Phase != PhaseConnect || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("error %v", err)
		}
		// Close unblocks a waiting AcceptTask.
		task := ln.AcceptTask(context.Background())
		time.Sleep(10 * time.Millisecond)
		ln.Close()
		if _, err := task.Wait(testCtx(t)); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("AcceptTask after Close: %v", err)
		}
	})
}

var _ = bytes.Equal

// TestRefusalCarriesNoSession: a refused request learns a status code
// only; in particular not the session the destination expects, which the
// peer could otherwise simply announce on its next try.
func TestRefusalCarriesNoSession(t *testing.T) {
	ctx := testCtx(t)
	want := SessionID{0xaa, 0xaa}
	ln, err := Listen(ctx, mustParse(t, "unix:"+filepath.Join(t.TempDir(), "d")), &Config{SessionID: want})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	task := ln.AcceptTask(ctx)
	c := rawDial(t, ln)
	req, _ := (&hello.Hello{Version: hello.Version, Source: true, Session: SessionID{0xbb}, Channels: 1}).MarshalBinary()
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(testwait.Deadline(t))
	b := make([]byte, hello.Size)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatal(err)
	}
	var reply hello.Hello
	if err := reply.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if reply.Status != hello.StatusMismatch || !SessionID(reply.Session).IsZero() {
		t.Fatalf("refusal %+v; want status mismatch and no session", reply)
	}
	if bytes.Contains(b, want[:2]) {
		t.Fatalf("refusal carries the expected session: %x", b)
	}
	if _, err := task.Wait(ctx); err == nil {
		t.Fatal("destination accepted a channel of another session")
	}
}
