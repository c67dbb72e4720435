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

// secPayload streams n deterministic bytes (printable if text) and returns
// their SHA-256. It fills one 1 MiB block and stamps each chunk with its
// number, so that a lost, repeated or reordered chunk changes the hash
// (and so that generating 64 MiB stays cheap under the race detector).
func secPayload(w io.Writer, n int, seed uint64, text ...bool) ([32]byte, error) {
	r := rand.New(rand.NewChaCha8([32]byte{byte(seed)}))
	block := make([]byte, 1<<20)
	for i := 0; i < len(block); i += 8 {
		binary.LittleEndian.PutUint64(block[i:], r.Uint64())
	}
	if len(text) > 0 && text[0] {
		for i := range block {
			block[i] = secText[block[i]&63]
			if i%64 == 63 {
				block[i] = '\n'
			}
		}
	}
	h := sha256.New()
	for k := 0; n > 0; k++ {
		chunk := block[:min(n, len(block))]
		copy(chunk, fmt.Sprintf("%016d", k))
		h.Write(chunk)
		if _, err := w.Write(chunk); err != nil {
			return [32]byte{}, err
		}
		n -= len(chunk)
	}
	return [32]byte(h.Sum(nil)), nil
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
				size := secInteropSmall
				if maker+"/"+keyType == "certtool/rsa" || maker+"/"+keyType == "openssl/ecdsa" {
					size = secInteropSize
				}
				t.Run("livemig client to gnutls-serv", func(t *testing.T) {
					secInteropClient(t, serverDir, clientDir, size)
				})
				t.Run("gnutls-cli to livemig server", func(t *testing.T) {
					// openssl rows end with gnutls-cli's close_notify,
					// certtool rows by killing it (no close_notify, as QEMU).
					secInteropServer(t, serverDir, clientDir, size, maker == "certtool")
				})
			})
		}
	}
}

// secInteropClient: gnutls-serv --echo requires and verifies our client
// certificate; we send size bytes and read the echo.
func secInteropClient(t *testing.T, serverDir, clientDir string, size int) {
	cc := secMust(t, clientDir, crypto.Client, nil)
	port := secFreePort(t)
	serv, out := secStart(t, "gnutls-serv", "--echo", "--crlf", "-p", strconv.Itoa(port),
		"--x509cafile", filepath.Join(serverDir, "ca-cert.pem"),
		"--x509certfile", filepath.Join(serverDir, "server-cert.pem"),
		"--x509keyfile", filepath.Join(serverDir, "server-key.pem"),
		"--require-client-cert", "--verify-client-cert")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
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
		time.Sleep(20 * time.Millisecond)
	}
	c := channel.NewTLS(sock, cc, crypto.Client, &channel.TLSOptions{Hostname: "localhost"})
	defer c.Close()
	if err := c.Handshake(ctx); err != nil {
		t.Fatalf("handshake with gnutls-serv: %v\n%s", err, out)
	}
	if v := c.ConnectionState().Version; v != tls.VersionTLS13 {
		t.Errorf("negotiated %s, want TLS 1.3", tls.VersionName(v))
	}
	if got := c.PeerIdentity(); !strings.Contains(got, "CN=localhost") {
		t.Errorf("server identity %q", got)
	}
	type res struct {
		sum [32]byte
		err error
	}
	sent := make(chan res, 1)
	go func() {
		sum, err := secPayload(c, size, 1, true)
		sent <- res{sum, err}
	}()
	got, err := secHashN(bufio.NewReaderSize(c, 1<<20), size)
	if err != nil {
		t.Fatalf("reading the echo: %v\n%s", err, out)
	}
	s := <-sent
	if s.err != nil {
		t.Fatalf("sending: %v", s.err)
	}
	if got != s.sum {
		t.Fatalf("echo of %d bytes differs", size)
	}
}

// secInteropServer: gnutls-cli with its client certificate connects to a
// livemig server (verify-peer=on, Raw since a GnuTLS client may end
// without close_notify); size bytes go up, 1 MiB comes back.
func secInteropServer(t *testing.T, serverDir, clientDir string, size int, kill bool) {
	sc := secMust(t, serverDir, crypto.Server, nil)
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

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(30 * time.Second))
	nc, err := ln.Accept()
	if err != nil {
		t.Fatalf("accept: %v\n%s", err, errOut)
	}
	sock, err := channel.NewSocket(nc)
	if err != nil {
		t.Fatal(err)
	}
	s := channel.NewTLS(sock, sc, crypto.Server, &channel.TLSOptions{Raw: true})
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
	// killed, it ends as QEMU does, with no close_notify at all. In Raw
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
