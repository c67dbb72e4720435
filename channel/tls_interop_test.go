package channel_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/testwait"
)

// The interop tests run livemig's TLS channel against GnuTLS (gnutls-cli
// and gnutls-serv from Debian's gnutls-bin, the library QEMU links
// against), with QEMU-layout directories whose certificates were made by
// openssl and by certtool, with RSA and ECDSA keys.

// secInteropSize is the payload of the interop transfers for the two
// combinations QEMU users meet most (certtool with RSA, as in QEMU's and
// libvirt's documentation, and openssl with ECDSA); the other two move
// secInteropSmall, to keep the package's tests short under -race.
const (
	secInteropSize  = 64 << 20
	secInteropSmall = 4 << 20
)

// secNeedTools skips the test when a tool is missing, unless CI=true, where
// a missing tool is a failure.
func secNeedTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is required under CI=true (apt-get install gnutls-bin openssl): %v", tool, err)
			}
			fmt.Printf("SKIP %s: %s not installed (apt-get install gnutls-bin openssl)\n", t.Name(), tool)
			t.Skipf("%s not installed", tool)
		}
	}
}

func secRun(t testing.TB, dir, script string) {
	t.Helper()
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s\nscript:\n%s", err, out, script)
	}
}

// secLayout copies generated files into QEMU's server/ and client/ dirs.
func secLayout(t testing.TB, work string) (serverDir, clientDir string) {
	t.Helper()
	secRun(t, work, `
mkdir -p server client
cp ca-cert.pem server/ && cp server-cert.pem server-key.pem server/
cp ca-cert.pem client/ && cp client-cert.pem client-key.pem client/
chmod 600 server/server-key.pem client/client-key.pem`)
	return filepath.Join(work, "server"), filepath.Join(work, "client")
}

// secOpenSSLDirs makes a CA, server and client certificates with openssl
// (OpenSSL 3 writes PKCS#8 keys).
func secOpenSSLDirs(t testing.TB, keyType string) (string, string) {
	t.Helper()
	work := t.TempDir()
	newkey := "-newkey rsa:2048"
	if keyType == "ecdsa" {
		newkey = "-newkey ec -pkeyopt ec_paramgen_curve:P-256"
	}
	secRun(t, work, `
openssl req -x509 -new -nodes `+newkey+` -keyout ca-key.pem -out ca-cert.pem -days 2 -subj "/CN=openssl interop CA/O=livemig" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -new -nodes `+newkey+` -keyout server-key.pem -out server.csr -subj "/O=livemig/CN=localhost" 2>/dev/null
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n' > server.ext
openssl x509 -req -in server.csr -CA ca-cert.pem -CAkey ca-key.pem -CAcreateserial -out server-cert.pem -days 2 -extfile server.ext 2>/dev/null
openssl req -new -nodes `+newkey+` -keyout client-key.pem -out client.csr -subj "/C=GB/O=Example/CN=client.example.com" 2>/dev/null
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' > client.ext
openssl x509 -req -in client.csr -CA ca-cert.pem -CAkey ca-key.pem -CAcreateserial -out client-cert.pem -days 2 -extfile client.ext 2>/dev/null
`)
	return secLayout(t, work)
}

// secCerttoolDirs follows QEMU's and libvirt's documentation: certtool
// with template files (certtool writes PKCS#1 RSA and SEC 1 EC keys).
func secCerttoolDirs(t testing.TB, keyType string) (string, string) {
	t.Helper()
	work := t.TempDir()
	secRun(t, work, `
gen() { certtool --generate-privkey --key-type=`+keyType+` --outfile "$1" 2>/dev/null; }
gen ca-key.pem
printf 'cn = certtool interop CA\norganization = livemig\nca\ncert_signing_key\nexpiration_days = 2\n' > ca.info
certtool --generate-self-signed --load-privkey ca-key.pem --template ca.info --outfile ca-cert.pem 2>/dev/null
gen server-key.pem
printf 'organization = livemig\ncn = localhost\ndns_name = localhost\nip_address = 127.0.0.1\ntls_www_server\nencryption_key\nsigning_key\nexpiration_days = 2\n' > server.info
certtool --generate-certificate --load-ca-certificate ca-cert.pem --load-ca-privkey ca-key.pem --load-privkey server-key.pem --template server.info --outfile server-cert.pem 2>/dev/null
gen client-key.pem
printf 'country = GB\norganization = Example\ncn = client.example.com\ntls_www_client\nencryption_key\nsigning_key\nexpiration_days = 2\n' > client.info
certtool --generate-certificate --load-ca-certificate ca-cert.pem --load-ca-privkey ca-key.pem --load-privkey client-key.pem --template client.info --outfile client-cert.pem 2>/dev/null
`)
	return secLayout(t, work)
}

// secText makes payload bytes printable for gnutls-serv's echo mode, which
// treats what it receives as C strings and as "**COMMAND**" lines: letters
// and digits, a newline every 64 bytes, no NUL, '*' or CR.
const secText = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// secStream is the deterministic payload of the interop transfers,
// readable at any offset (so that a transfer cut short can go on where it
// stopped): one 1 MiB block of random bytes (printable if text), repeated,
// each 1 MiB chunk stamped with its number, so that a lost, repeated or
// reordered chunk changes the bytes (and so that generating 64 MiB stays
// cheap under the race detector).
type secStream struct{ block []byte }

func newSecStream(seed uint64, text bool) *secStream {
	r := rand.New(rand.NewChaCha8([32]byte{byte(seed)}))
	block := make([]byte, 1<<20)
	for i := 0; i < len(block); i += 8 {
		binary.LittleEndian.PutUint64(block[i:], r.Uint64())
	}
	if text {
		for i := range block {
			block[i] = secText[block[i]&63]
			if i%64 == 63 {
				block[i] = '\n'
			}
		}
	}
	return &secStream{block}
}

// at fills b with the payload's bytes from offset off.
func (s *secStream) at(b []byte, off int) {
	for len(b) > 0 {
		k, i := off/len(s.block), off%len(s.block)
		n := copy(b, s.block[i:])
		if i < 16 {
			copy(b[:n], fmt.Sprintf("%016d", k)[i:])
		}
		b, off = b[n:], off+n
	}
}

// write writes the payload's bytes from offset from to offset to.
func (s *secStream) write(w io.Writer, from, to int) error {
	buf := make([]byte, len(s.block))
	for from < to {
		chunk := buf[:min(to-from, len(buf)-from%len(buf))]
		s.at(chunk, from)
		if _, err := w.Write(chunk); err != nil {
			return err
		}
		from += len(chunk)
	}
	return nil
}

// secPayload streams n bytes of the payload (printable if text) and
// returns their SHA-256.
func secPayload(w io.Writer, n int, seed uint64, text ...bool) ([32]byte, error) {
	h := sha256.New()
	err := newSecStream(seed, len(text) > 0 && text[0]).write(io.MultiWriter(h, w), 0, n)
	return [32]byte(h.Sum(nil)), err
}

// secHashN reads exactly n bytes and returns their SHA-256.
func secHashN(r io.Reader, n int) ([32]byte, error) {
	h := sha256.New()
	_, err := io.CopyN(h, r, int64(n))
	return [32]byte(h.Sum(nil)), err
}

// secFreePort returns a tcp port that was free a moment ago.
func secFreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// secLockedBuffer collects a child's output for error messages.
type secLockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *secLockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *secLockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.b.String()
	if len(s) > 2000 {
		s = "..." + s[len(s)-2000:]
	}
	return s
}

// secStart starts a child and registers its kill and reaping.
func secStart(t testing.TB, name string, args ...string) (*exec.Cmd, *secLockedBuffer) {
	t.Helper()
	cmd := exec.Command(name, args...)
	out := &secLockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, out
}

// TestInteropGnuTLS: a handshake and a 64 MiB transfer with gnutls-serv
// (livemig client) and gnutls-cli (livemig server), for each certificate
// maker and key type, using the same QEMU-layout directories livemig reads.
func TestInteropGnuTLS(t *testing.T) {
	secNeedTools(t, "gnutls-cli", "gnutls-serv", "certtool", "openssl")
	for _, maker := range []string{"openssl", "certtool"} {
		for _, keyType := range []string{"rsa", "ecdsa"} {
			t.Run(maker+"/"+keyType, func(t *testing.T) {
				t.Parallel()
				var serverDir, clientDir string
				if maker == "openssl" {
					serverDir, clientDir = secOpenSSLDirs(t, keyType)
				} else {
					serverDir, clientDir = secCerttoolDirs(t, keyType)
				}
				// certtool leaves keyEncipherment out of an ECDSA leaf's
				// critical key usage (encryption_key is ignored), which
				// QEMU 10.0 refuses at load and so does livemig: check the
				// refusal, then test the handshake with sanity-check=off.
				var mod func(*crypto.X509Options)
				if maker+"/"+keyType == "certtool/ecdsa" {
					for _, d := range []struct {
						dir string
						ep  crypto.Endpoint
					}{{serverDir, crypto.Server}, {clientDir, crypto.Client}} {
						_, err := crypto.NewX509Creds(crypto.X509Options{ID: "t", Dir: d.dir, Endpoint: d.ep})
						if err == nil || !strings.Contains(err.Error(), "usage does not permit key encipherment") {
							t.Fatalf("certtool ECDSA %s directory: %v, want the key encipherment refusal", d.ep, err)
						}
					}
					mod = func(o *crypto.X509Options) { o.SkipSanityCheck = true }
				}
				size := secInteropSmall
				if maker+"/"+keyType == "certtool/rsa" || maker+"/"+keyType == "openssl/ecdsa" {
					size = secInteropSize
				}
				t.Run("livemig client to gnutls-serv", func(t *testing.T) {
					secInteropClient(t, serverDir, clientDir, size, mod)
				})
				t.Run("gnutls-cli to livemig server", func(t *testing.T) {
					// openssl rows end with gnutls-cli's close_notify,
					// certtool rows by killing it (no close_notify, as
					// QEMU's main channel, and QEMU before 10.0).
					secInteropServer(t, serverDir, clientDir, size, maker == "certtool", mod)
				})
			})
		}
	}
}

// secServLimit is how long gnutls-serv keeps a TCP connection, whatever
// it is doing: its tcp_server loop (serv.c) schedules a connection for
// close once `now - j->start > 30`, j->start being the time(0) of its
// accept. Under -race on a busy machine, 64 MiB of line-mode echo can
// take longer than that.
const secServLimit = 30 * time.Second

// secInteropClient: gnutls-serv --echo requires and verifies our client
// certificate; we send size bytes and read the echo, checking every byte.
// When gnutls-serv cuts a connection at its 30 s limit, the transfer goes
// on over a new connection from the last byte echoed, so a slow machine
// only takes more connections; a connection that ends before the limit
// fails the test.
func secInteropClient(t *testing.T, serverDir, clientDir string, size int, mod func(*crypto.X509Options)) {
	cc := secMust(t, clientDir, crypto.Client, mod)
	port := secFreePort(t)
	serv, out := secStart(t, "gnutls-serv", "--echo", "--crlf", "-p", strconv.Itoa(port),
		"--x509cafile", filepath.Join(serverDir, "ca-cert.pem"),
		"--x509certfile", filepath.Join(serverDir, "server-cert.pem"),
		"--x509keyfile", filepath.Join(serverDir, "server-key.pem"),
		"--require-client-cert", "--verify-client-cert")
	ctx := testwait.Context(t)
	payload := newSecStream(1, true)
	for conn, echoed := 1, 0; echoed < size; conn++ {
		start := time.Now()
		n, err := secEcho(ctx, t, serv, out, port, cc, payload, echoed, size)
		echoed += n
		if err == nil {
			continue
		}
		if d := time.Since(start); d <= secServLimit || ctx.Err() != nil {
			t.Fatalf("connection %d, after %d of %d bytes echoed in %v: %v\n%s", conn, echoed, size, d.Round(time.Millisecond), err, out)
		}
		t.Logf("connection %d reached gnutls-serv's %v limit after %d of %d bytes echoed (%v); going on over a new one",
			conn, secServLimit, echoed, size, err)
	}
}

// secEcho connects to gnutls-serv, checks the handshake, sends the
// payload's bytes from offset from to offset to and reads their echo. It
// returns how many bytes came back equal to what was sent, and the error
// that ended the connection early, if any. Bytes that differ fail the
// test.
func secEcho(ctx context.Context, t *testing.T, serv *exec.Cmd, out *secLockedBuffer, port int, cc *crypto.Creds, payload *secStream, from, to int) (int, error) {
	t.Helper()
	var sock *channel.Socket
	for {
		var err error
		sock, err = channel.Dial(ctx, "tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			break
		}
		if serv.ProcessState != nil || ctx.Err() != nil {
			t.Fatalf("gnutls-serv did not start: %v\n%s", err, out)
		}
		time.Sleep(20 * time.Millisecond) // polls until gnutls-serv listens
	}
	c := channel.NewTLS(sock, cc, &channel.TLSOptions{TLSOptions: crypto.TLSOptions{Hostname: "localhost"}})
	defer c.Close()
	if err := c.Handshake(ctx); err != nil {
		return 0, fmt.Errorf("handshake with gnutls-serv: %w", err)
	}
	if v := c.ConnectionState().Version; v != tls.VersionTLS13 {
		t.Errorf("negotiated %s, want TLS 1.3", tls.VersionName(v))
	}
	if got := c.PeerIdentity(); !strings.Contains(got, "CN=localhost") {
		t.Errorf("server identity %q", got)
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	sent := make(chan error, 1)
	go func() { sent <- payload.write(c, from, to) }()
	r := bufio.NewReaderSize(c, 1<<20)
	got, want := make([]byte, 1<<20), make([]byte, 1<<20)
	echoed := 0
	var err error
	for from+echoed < to && err == nil {
		var n int
		n, err = r.Read(got[:min(len(got), to-from-echoed)])
		payload.at(want[:n], from+echoed)
		if !bytes.Equal(got[:n], want[:n]) {
			t.Fatalf("the echo of bytes %d..%d differs from what was sent", from+echoed, from+echoed+n)
		}
		echoed += n
	}
	if err != nil {
		c.Close() // unblocks the sender
		<-sent
		return echoed, fmt.Errorf("reading the echo: %w", err)
	}
	if err := <-sent; err != nil {
		return echoed, fmt.Errorf("sending: %w", err)
	}
	return echoed, nil
}

// secInteropServer: gnutls-cli with its client certificate connects to a
// livemig server (verify-peer=on, Raw since a GnuTLS client may end
// without close_notify); size bytes go up, 1 MiB comes back.
func secInteropServer(t *testing.T, serverDir, clientDir string, size int, kill bool, mod func(*crypto.X509Options)) {
	sc := secMust(t, serverDir, crypto.Server, mod)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	cli := exec.Command("gnutls-cli", "--logfile="+filepath.Join(t.TempDir(), "cli.log"),
		"--x509cafile", filepath.Join(clientDir, "ca-cert.pem"),
		"--x509certfile", filepath.Join(clientDir, "client-cert.pem"),
		"--x509keyfile", filepath.Join(clientDir, "client-key.pem"),
		"-p", strconv.Itoa(port), "localhost")
	stdin, err := cli.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cli.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errOut := &secLockedBuffer{}
	cli.Stderr = errOut
	if err := cli.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Process.Kill(); cli.Wait() })

	ctx := testwait.Context(t)
	defer context.AfterFunc(ctx, func() { cli.Process.Kill() })() // a hang fails the reads below
	ln.(*net.TCPListener).SetDeadline(testwait.Deadline(t))
	nc, err := ln.Accept()
	if err != nil {
		t.Fatalf("accept: %v\n%s", err, errOut)
	}
	sock, err := channel.NewSocket(nc)
	if err != nil {
		t.Fatal(err)
	}
	s := channel.NewTLS(sock, sc, &channel.TLSOptions{Raw: true})
	defer s.Close()
	if err := s.Handshake(ctx); err != nil {
		t.Fatalf("handshake with gnutls-cli: %v\n%s", err, errOut)
	}
	// Trap 1: an RSA GnuTLS client sends its certificate only because the
	// request lists no CA names.
	if got := s.PeerIdentity(); got != "CN=client.example.com,O=Example,C=GB" {
		t.Errorf("verified client %q, want the certtool/openssl subject", got)
	}
	type res struct {
		sum [32]byte
		err error
	}
	sent := make(chan res, 1)
	go func() {
		sum, err := secPayload(stdin, size, 2)
		sent <- res{sum, err}
	}()
	got, err := secHashN(bufio.NewReaderSize(s, 1<<20), size)
	if err != nil {
		t.Fatalf("reading from gnutls-cli: %v\n%s", err, errOut)
	}
	if r := <-sent; r.err != nil || r.sum != got {
		t.Fatalf("%d bytes from gnutls-cli: send error %v, hashes equal %v", size, r.err, r.sum == got)
	}
	// The other direction.
	back := make(chan res, 1)
	go func() {
		sum, err := secPayload(s, 1<<20, 3)
		back <- res{sum, err}
	}()
	gotBack, err := secHashN(stdout, 1<<20)
	if err != nil {
		t.Fatalf("reading gnutls-cli's stdout: %v\n%s", err, errOut)
	}
	if r := <-back; r.err != nil || r.sum != gotBack {
		t.Fatalf("1 MiB to gnutls-cli: send error %v, hashes equal %v", r.err, r.sum == gotBack)
	}
	// End the session. gnutls-cli sends close_notify when its input ends;
	// killed, it ends as QEMU ends its main channel (and, before 10.0,
	// its multifd channels), with no close_notify at all. In Raw
	// mode both are a clean io.EOF at a record boundary.
	if kill {
		cli.Process.Kill()
	} else {
		stdin.Close()
	}
	if n, err := io.Copy(io.Discard, s); err != nil || n != 0 {
		t.Errorf("after gnutls-cli's end: %d more bytes, %v; want a clean EOF", n, err)
	}
}
