package channel_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/crypto/cryptotest"
	"github.com/livemig/livemig/internal/testwait"
)

// TLS 1.3 KeyUpdate while a livemig endpoint reads and writes one TLS
// channel at once, as a migration's return path does (one goroutine
// reading, another writing). QEMU issue 1937: GnuTLS re-keys AES-GCM
// after about 16M records, and two QEMU threads on one GnuTLS session
// crashed QEMU up to 10.0 (10.1 serializes them, CONCURRENT_IO). Here the
// GnuTLS peer asks for key updates mid-stream, on demand:
//
//   - gnutls-cli's inline command ^rekey^ (a line of its standard input,
//     --inline-commands) calls gnutls_session_key_update with
//     GNUTLS_KU_PEER: it sends a KeyUpdate with update_requested set.
//   - gnutls-serv --echo treats a received "**REHANDSHAKE**" line as a
//     command and calls gnutls_rehandshake, which under TLS 1.3 is a key
//     update with GNUTLS_KU_PEER too; it answers the line with
//     "Successfully executed command\n" instead of its echo.
//
// crypto/tls (Go 1.26) has no API to send a KeyUpdate and never starts one
// itself; it answers update_requested with a KeyUpdate of its own (from
// the reading goroutine, under the writer's lock) and moves its write keys
// on. So every request re-keys both directions: GnuTLS's sending keys and,
// through Go's answer, livemig's. GnuTLS's debug log (level 4) names each
// KeyUpdate it sends ("sending key update (1)") and receives ("received
// TLS 1.3 key update (0)"): the tests count both, and check every byte of
// both directions by their SHA-256.

// kuPriority makes GnuTLS speak TLS 1.3 only: KeyUpdate exists only there.
const kuPriority = "NORMAL:-VERS-ALL:+VERS-TLS1.3"

// kuRekeys is how many key updates each test asks for.
const kuRekeys = 8

// kuCount counts the lines of GnuTLS's debug log in file that contain
// what.
func kuCount(t testing.TB, file, what string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte(what))
}

// kuProgress is a byte count that one goroutine raises and another waits
// on, without sleeping.
type kuProgress struct {
	n    atomic.Int64
	more chan struct{} // a token after each add, dropped when one is pending
}

func newKUProgress() *kuProgress { return &kuProgress{more: make(chan struct{}, 1)} }

func (p *kuProgress) add(n int) {
	p.n.Add(int64(n))
	select {
	case p.more <- struct{}{}:
	default:
	}
}

// wait returns once the count reaches n, or ctx's error.
func (p *kuProgress) wait(ctx context.Context, n int64) error {
	for p.n.Load() < n {
		select {
		case <-p.more:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// kuHash reads exactly n bytes from r, counting them in p, and returns
// their SHA-256.
func kuHash(r io.Reader, n int, p *kuProgress) ([32]byte, error) {
	h := sha256.New()
	buf := make([]byte, 64<<10)
	for got := 0; got < n; {
		m, err := r.Read(buf[:min(len(buf), n-got)])
		h.Write(buf[:m])
		got += m
		p.add(m)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return [32]byte{}, fmt.Errorf("after %d of %d bytes: %w", got, n, err)
		}
	}
	return [32]byte(h.Sum(nil)), nil
}

type kuResult struct {
	sum [32]byte
	err error
}

// TestKeyUpdateGnuTLS: a GnuTLS peer asks for key updates while data
// flows both ways at once through one livemig TLS channel, read by one
// goroutine and written by another; livemig is the server (gnutls-cli
// client) and the client (gnutls-serv server).
func TestKeyUpdateGnuTLS(t *testing.T) {
	secNeedTools(t, "gnutls-cli", "gnutls-serv")
	pki := cryptotest.New(t, nil)
	t.Run("gnutls-cli to livemig server", func(t *testing.T) { kuServer(t, pki) })
	t.Run("livemig client to gnutls-serv", func(t *testing.T) { kuClient(t, pki) })
}

// kuServer: gnutls-cli sends 4 MiB of text lines cut into kuRekeys+1
// segments with a ^rekey^ line between two; each ^rekey^ waits until
// livemig's 4 MiB the other way is as far along (segment i+1 of
// kuRekeys+2), and livemig's last segment waits until all of gnutls-cli's
// data has arrived, so every key update falls while both directions are
// under way.
func kuServer(t *testing.T, pki *cryptotest.PKI) {
	const up, down = 4 << 20, 4 << 20
	sc := secMust(t, pki.ServerDir, crypto.Server, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	debug, logfile := filepath.Join(dir, "cli.debug"), filepath.Join(dir, "cli.log")
	cli := exec.Command("gnutls-cli", "--inline-commands", "--priority", kuPriority, "-d", "4",
		"--logfile="+logfile,
		"--x509cafile", filepath.Join(pki.ClientDir, "ca-cert.pem"),
		"--x509certfile", filepath.Join(pki.ClientDir, "client-cert.pem"),
		"--x509keyfile", filepath.Join(pki.ClientDir, "client-key.pem"),
		"-p", strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), "localhost")
	stdin, err := cli.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cli.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errFile, err := os.Create(debug)
	if err != nil {
		t.Fatal(err)
	}
	defer errFile.Close()
	cli.Stderr = errFile
	if err := cli.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cli.Wait() }()
	t.Cleanup(func() {
		cli.Process.Kill()
		<-exited
	})
	ctx := testwait.Context(t)
	defer context.AfterFunc(ctx, func() { cli.Process.Kill() })() // a hang fails the reads below
	tail := func() string { return kuTail(debug) }

	ln.(*net.TCPListener).SetDeadline(testwait.Deadline(t))
	nc, err := ln.Accept()
	if err != nil {
		t.Fatalf("accept: %v\n%s", err, tail())
	}
	sock, err := channel.NewSocket(nc)
	if err != nil {
		t.Fatal(err)
	}
	// Not Raw: gnutls-cli ends with close_notify when its input ends.
	s := channel.NewTLS(sock, sc, nil)
	defer s.Close()
	if err := s.Handshake(ctx); err != nil {
		t.Fatalf("handshake with gnutls-cli: %v\n%s", err, tail())
	}
	if v := s.ConnectionState().Version; v != tls.VersionTLS13 {
		t.Fatalf("negotiated %s, want TLS 1.3", tls.VersionName(v))
	}
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()

	downSeen := newKUProgress() // livemig -> gnutls-cli bytes out of its stdout
	upSeen := newKUProgress()   // gnutls-cli -> livemig bytes livemig has read
	upDone := make(chan struct{})

	// gnutls-cli's input: data, with ^rekey^ lines that gnutls-cli takes
	// as commands and does not send. Each waits until the other
	// direction has come as far.
	fed := make(chan kuResult, 1)
	go func() {
		payload, h := newSecStream(11, true), sha256.New()
		w := io.MultiWriter(h, stdin)
		var err error
		for i := 0; i <= kuRekeys && err == nil; i++ {
			from, to := kuSegment(i, up)
			if err = payload.write(w, from, to); err != nil || i == kuRekeys {
				break
			}
			if err = downSeen.wait(ctx, int64((i+1)*down/(kuRekeys+2))); err != nil {
				break
			}
			_, err = io.WriteString(stdin, "^rekey^\n")
		}
		fed <- kuResult{[32]byte(h.Sum(nil)), err}
	}()
	// livemig's writer: all but the last part at once (past every point
	// the feeder waits for), the rest once gnutls-cli's data has all
	// arrived.
	wrote := make(chan kuResult, 1)
	go func() {
		payload, h := newSecStream(12, false), sha256.New()
		w := io.MultiWriter(h, s)
		held := down - down/(kuRekeys+2)
		err := payload.write(w, 0, held)
		if err == nil {
			select {
			case <-upDone:
				err = payload.write(w, held, down)
			case <-ctx.Done():
				err = ctx.Err()
			}
		}
		wrote <- kuResult{[32]byte(h.Sum(nil)), err}
	}()
	// gnutls-cli's output: what livemig wrote.
	printed := make(chan kuResult, 1)
	go func() {
		sum, err := kuHash(stdout, down, downSeen)
		printed <- kuResult{sum, err}
	}()
	// livemig's reader.
	got, err := kuHash(s, up, upSeen)
	close(upDone)
	if err != nil {
		t.Fatalf("livemig reading from gnutls-cli: %v\n%s", err, tail())
	}
	in := testwait.Recv(t, "gnutls-cli's input written", fed)
	if in.err != nil || in.sum != got {
		t.Fatalf("gnutls-cli -> livemig: feeding error %v, hashes equal %v", in.err, in.sum == got)
	}
	out := testwait.Recv(t, "livemig's writer", wrote)
	if out.err != nil {
		t.Fatalf("livemig writing to gnutls-cli: %v\n%s", out.err, tail())
	}
	pr := testwait.Recv(t, "gnutls-cli's output read", printed)
	if pr.err != nil || pr.sum != out.sum {
		t.Fatalf("livemig -> gnutls-cli: reading error %v, hashes equal %v\n%s", pr.err, pr.sum == out.sum, tail())
	}
	// End: gnutls-cli sends close_notify when its input ends, which
	// livemig reads as io.EOF; livemig's Close sends its own, and
	// gnutls-cli exits.
	stdin.Close()
	if n, err := io.Copy(io.Discard, s); err != nil || n != 0 {
		t.Errorf("after gnutls-cli's end: %d more bytes, %v; want io.EOF (close_notify)", n, err)
	}
	s.Close()
	if err := testwait.Recv(t, "gnutls-cli exiting", exited); err != nil {
		t.Errorf("gnutls-cli: %v\n%s", err, tail())
	}
	exited <- nil // for the cleanup

	log, err := os.ReadFile(logfile)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(log, []byte("- Rekey was completed")); n != kuRekeys {
		t.Errorf("gnutls-cli completed %d rekeys, want %d", n, kuRekeys)
	}
	sent, answered := kuCount(t, debug, "sending key update (1)"), kuCount(t, debug, "received TLS 1.3 key update (0)")
	if sent != kuRekeys || answered != kuRekeys {
		t.Errorf("gnutls-cli sent %d KeyUpdates asking for one back and received %d from livemig; want %d and %d", sent, answered, kuRekeys, kuRekeys)
	}
	t.Logf("%d key updates each way while %d MiB went up and %d MiB down", answered, up>>20, down>>20)
}

// kuTail returns the end of a GnuTLS debug log, for failure messages.
func kuTail(file string) string {
	b, _ := os.ReadFile(file)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// kuEchoAnswer is what gnutls-serv --echo sends back for a command line
// instead of its echo.
const kuEchoAnswer = "Successfully executed command\n"

// kuClient: livemig sends 4 MiB of text lines to gnutls-serv --echo, with
// a "**REHANDSHAKE**" line (a record of its own, as gnutls-serv takes a
// command only at the start of what it receives) after each ninth, while
// another goroutine reads the echo. Each command waits until the echo has
// come as far, so every key update falls while both directions are under
// way. gnutls-serv drops a connection 30 s after accepting it (see
// secServLimit): a connection that ends after that long is tried again
// from the start, anything shorter fails the test.
func kuClient(t *testing.T, pki *cryptotest.PKI) {
	const size = 4 << 20
	cc := secMust(t, pki.ClientDir, crypto.Client, nil)
	port := secFreePort(t)
	debug := filepath.Join(t.TempDir(), "serv.debug")
	errFile, err := os.Create(debug)
	if err != nil {
		t.Fatal(err)
	}
	defer errFile.Close()
	serv := exec.Command("gnutls-serv", "--echo", "--crlf", "--priority", kuPriority, "-d", "4",
		"-p", strconv.Itoa(port),
		"--x509cafile", filepath.Join(pki.ServerDir, "ca-cert.pem"),
		"--x509certfile", filepath.Join(pki.ServerDir, "server-cert.pem"),
		"--x509keyfile", filepath.Join(pki.ServerDir, "server-key.pem"),
		"--require-client-cert", "--verify-client-cert")
	serv.Stdout, serv.Stderr = io.Discard, errFile
	if err := serv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- serv.Wait() }()
	t.Cleanup(func() {
		serv.Process.Kill()
		<-exited
	})
	ctx := testwait.Context(t)
	for attempt := 1; ; attempt++ {
		before := kuCount(t, debug, "sending key update (1)")
		beforeAnswers := kuCount(t, debug, "received TLS 1.3 key update (0)")
		start := time.Now()
		err := kuEcho(ctx, t, port, exited, cc, size, debug)
		if err != nil {
			if d := time.Since(start); d <= secServLimit || ctx.Err() != nil {
				t.Fatalf("attempt %d after %v: %v\n%s", attempt, d.Round(time.Millisecond), err, kuTail(debug))
			}
			t.Logf("attempt %d reached gnutls-serv's %v limit (%v); starting again", attempt, secServLimit, err)
			continue
		}
		sent := kuCount(t, debug, "sending key update (1)") - before
		answered := kuCount(t, debug, "received TLS 1.3 key update (0)") - beforeAnswers
		if sent != kuRekeys || answered != kuRekeys {
			t.Errorf("gnutls-serv sent %d KeyUpdates asking for one back and received %d from livemig; want %d and %d", sent, answered, kuRekeys, kuRekeys)
		}
		t.Logf("%d key updates each way while %d MiB went each way", answered, size>>20)
		return
	}
}

// kuEcho runs one connection of kuClient. It returns an error for a
// connection that ends early; bytes that differ fail the test.
func kuEcho(ctx context.Context, t *testing.T, port int, exited <-chan error, cc *crypto.Creds, size int, debug string) error {
	t.Helper()
	var sock *channel.Socket
	for {
		var err error
		sock, err = channel.Dial(ctx, "tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("gnutls-serv exited: %v\n%s", err, kuTail(debug))
		default:
		}
		if ctx.Err() != nil {
			t.Fatalf("gnutls-serv did not listen: %v\n%s", err, kuTail(debug))
		}
		time.Sleep(20 * time.Millisecond) // polls until gnutls-serv listens
	}
	c := channel.NewTLS(sock, cc, &channel.TLSOptions{TLSOptions: crypto.TLSOptions{Hostname: "localhost"}})
	defer c.Close()
	if err := c.Handshake(ctx); err != nil {
		return fmt.Errorf("handshake with gnutls-serv: %w", err)
	}
	if v := c.ConnectionState().Version; v != tls.VersionTLS13 {
		t.Fatalf("negotiated %s, want TLS 1.3", tls.VersionName(v))
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()

	// The echo expected: the data, with each command answered.
	payload := newSecStream(13, true)
	var want bytes.Buffer
	for i := 0; i <= kuRekeys; i++ {
		from, to := kuSegment(i, size)
		payload.write(&want, from, to)
		if i < kuRekeys {
			want.WriteString(kuEchoAnswer)
		}
	}
	echoed := newKUProgress()
	sent := make(chan error, 1)
	go func() {
		var err error
		for i := 0; i <= kuRekeys && err == nil; i++ {
			from, to := kuSegment(i, size)
			if err = payload.write(c, from, to); err != nil || i == kuRekeys {
				break
			}
			// Ask for the key update once half of this segment's echo
			// is back: the other half is still on its way.
			if err = echoed.wait(ctx, int64(from+i*len(kuEchoAnswer)+(to-from)/2)); err != nil {
				break
			}
			_, err = c.Write([]byte("**REHANDSHAKE**\n"))
		}
		sent <- err
	}()
	r := bufio.NewReaderSize(c, 1<<20)
	got := make([]byte, 1<<20)
	n := 0
	var err error
	for n < want.Len() && err == nil {
		var m int
		m, err = r.Read(got[:min(len(got), want.Len()-n)])
		if !bytes.Equal(got[:m], want.Bytes()[n:n+m]) {
			t.Fatalf("the echo of bytes %d..%d differs from what was sent", n, n+m)
		}
		n += m
		echoed.add(m)
	}
	if err != nil {
		c.Close() // unblocks the sender
		<-sent
		return fmt.Errorf("reading the echo after %d of %d bytes: %w", n, want.Len(), err)
	}
	// The whole echo came back, so everything was sent.
	if err := <-sent; err != nil {
		t.Fatalf("sending to gnutls-serv: %v", err)
	}
	return nil
}

// kuSegment returns the bounds of segment i of n bytes cut into
// kuRekeys+1 segments of whole 64-byte lines (the last takes the rest):
// a command line between two segments then starts a line, as
// gnutls-cli's inline commands must.
func kuSegment(i, n int) (from, to int) {
	step := n / (kuRekeys + 1)
	step -= step % 64
	from, to = i*step, (i+1)*step
	if i == kuRekeys {
		to = n
	}
	return from, to
}
