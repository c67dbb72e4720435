package migration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/hello"
	"github.com/livemig/livemig/internal/testpki"
	"github.com/livemig/livemig/internal/testwait"
	"github.com/livemig/livemig/uri"
)

func mustParse(t testing.TB, s string) uri.Address {
	t.Helper()
	a, err := uri.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// testCtx returns a context that ends with the test, or a tenth of the
// test binary's -timeout before it expires (it ended after 30 s, which a
// transfer under -race on a busy machine can take).
func testCtx(t testing.TB) context.Context {
	t.Helper()
	return testwait.Context(t)
}

// tlsKinds are the credential kinds a transport is tested with.
var tlsKinds = []string{"", "x509", "psk", "anon"}

// credSpecs returns -object specs of a client and a server credentials
// object "tls0" of kind ("x509", "psk" or "anon").
func credSpecs(t testing.TB, kind string) (client, server string) {
	t.Helper()
	switch kind {
	case "x509":
		pki := testpki.New(t, nil)
		return "tls-creds-x509,id=tls0,endpoint=client,dir=" + pki.ClientDir,
			"tls-creds-x509,id=tls0,endpoint=server,verify-peer=on,dir=" + pki.ServerDir
	case "psk":
		dir := t.TempDir()
		if err := testpki.WritePSK(dir, map[string][]byte{"qemu": testpki.NewPSK()}); err != nil {
			t.Fatal(err)
		}
		return "tls-creds-psk,id=tls0,endpoint=client,dir=" + dir, "tls-creds-psk,id=tls0,endpoint=server,dir=" + dir
	case "anon":
		return "tls-creds-anon,id=tls0,endpoint=client", "tls-creds-anon,id=tls0,endpoint=server"
	}
	t.Fatalf("unknown kind %q", kind)
	return "", ""
}

// registries returns a source (client) and a destination (server) Config
// each with a registry holding object "tls0" of kind; kind "" means no TLS.
func registries(t testing.TB, kind string) (src, dst *Config) {
	t.Helper()
	src, dst = &Config{}, &Config{}
	if kind == "" {
		return src, dst
	}
	cs, ds := credSpecs(t, kind)
	rs, rd := crypto.NewRegistry(), crypto.NewRegistry()
	if err := rs.AddObject(cs); err != nil {
		t.Fatal(err)
	}
	if err := rd.AddObject(ds); err != nil {
		t.Fatal(err)
	}
	if kind == "x509" {
		src.TLSHostname = "localhost"
	}
	src.Registry, src.TLSCreds = rs, "tls0"
	dst.Registry, dst.TLSCreds = rd, "tls0"
	return src, dst
}

// connectPair listens on dstAddr, connects the source to the Listener's
// address and returns both Streams, closed at cleanup.
func connectPair(t testing.TB, dstAddr string, srcCfg, dstCfg *Config) (src, dst *Stream) {
	t.Helper()
	ctx := testCtx(t)
	ln, err := Listen(ctx, mustParse(t, dstAddr), dstCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	at := ln.AcceptTask(ctx)
	ct := Connect(ctx, ln.Addr(), srcCfg)
	src, serr := ct.Wait(ctx)
	dst, derr := at.Wait(ctx)
	if src != nil {
		t.Cleanup(func() { src.Close() })
	}
	if dst != nil {
		t.Cleanup(func() { dst.Close() })
	}
	if serr != nil || derr != nil {
		t.Fatalf("source: %v; destination: %v", serr, derr)
	}
	return src, dst
}

// sendPages writes n pages (each filled with its index) and a trailer,
// then closes src.
func sendPages(src *Stream, n int) error {
	pages := make([][]byte, n)
	for i := range pages {
		pages[i] = bytes.Repeat([]byte{byte(i)}, 4096)
	}
	for i, p := range pages {
		src.PutBE64(uint64(i))
		src.PutBufferNoCopy(p)
	}
	src.PutBE32(0x00EEEE00)
	return src.Close()
}

// checkPages reads what sendPages wrote and then expects the clean end.
func checkPages(dst *Stream, n int) error {
	p := make([]byte, 4096)
	for i := range n {
		if v := dst.GetBE64(); v != uint64(i) {
			return fmt.Errorf("page %d: header %d (%v)", i, v, dst.Err())
		}
		if _, err := dst.GetBuffer(p); err != nil {
			return fmt.Errorf("page %d: %w", i, err)
		}
		if p[0] != byte(i) || p[4095] != byte(i) {
			return fmt.Errorf("page %d: wrong content %d", i, p[0])
		}
	}
	if v := dst.GetBE32(); v != 0x00EEEE00 {
		return fmt.Errorf("trailer %#x (%v)", v, dst.Err())
	}
	if dst.GetByte(); !errors.Is(dst.Err(), io.EOF) {
		return fmt.Errorf("after the trailer: %v, want io.EOF", dst.Err())
	}
	return nil
}

// transfer sends n pages from src to dst, checks them and closes both.
func transfer(t testing.TB, src, dst *Stream, n int) {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- sendPages(src, n) }()
	if err := checkPages(dst, n); err != nil {
		t.Error(err)
	}
	dst.Close() // a relaying exec: command exits when both ends are closed
	if err := <-errc; err != nil {
		t.Errorf("source: %v", err)
	}
}

// TestTransports runs a migration over every socket transport, with each
// kind of credentials, with and without the hello.
func TestTransports(t *testing.T) {
	for _, tr := range []string{"tcp", "tcp4", "tcp6", "unix"} {
		for _, kind := range tlsKinds {
			for _, raw := range []bool{false, true} {
				name := fmt.Sprintf("%s/tls=%s/raw=%v", tr, kind, raw)
				t.Run(name, func(t *testing.T) {
					var addr string
					switch tr {
					case "tcp":
						addr = "tcp:localhost:0"
					case "tcp4":
						addr = "tcp:127.0.0.1:0,ipv4=on"
					case "tcp6":
						addr = "tcp:[::1]:0,ipv6=on"
					case "unix":
						addr = "unix:" + filepath.Join(t.TempDir(), "mig.sock")
					}
					srcCfg, dstCfg := registries(t, kind)
					srcCfg.Raw, dstCfg.Raw = raw, raw
					if tr == "tcp6" && !haveIPv6() {
						t.Skip("no IPv6 loopback")
					}
					src, dst := connectPair(t, addr, srcCfg, dstCfg)
					if !raw {
						if p := dst.peer; p == nil || !p.Source || p.Role != hello.RoleMain {
							t.Fatalf("destination's peer hello: %+v", p)
						}
						if p := src.peer; p == nil || p.Source || !p.Reply || p.Session != dst.peer.Session {
							t.Fatalf("source's peer hello: %+v", p)
						}
					} else if src.peer != nil || dst.peer != nil {
						t.Fatal("raw streams carry a hello")
					}
					transfer(t, src, dst, 300)
				})
			}
		}
	}
}

func haveIPv6() bool {
	fd, err := syscall.Socket(syscall.AF_INET6, syscall.SOCK_STREAM, 0)
	if err != nil {
		return false
	}
	defer syscall.Close(fd)
	return syscall.Bind(fd, &syscall.SockaddrInet6{Addr: [16]byte{15: 1}}) == nil
}

// TestExecAndFile saves a migration through an exec: child that writes
// what it receives to a file, restores it through an exec: child that
// reads the file, and does the same with file: and an offset.
func TestExecAndFile(t *testing.T) {
	for _, raw := range []bool{false, true} {
		t.Run(fmt.Sprintf("raw=%v", raw), func(t *testing.T) { testExecAndFile(t, raw) })
	}
}

func testExecAndFile(t *testing.T, raw bool) {
	cfg := &Config{Raw: raw}
	helloLen := int64(hello.Size)
	if raw {
		helloLen = 0
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "saved stream")
	ctx := testCtx(t)

	src, err := Dial(ctx, mustParse(t, "exec:cat > '"+out+"'"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := sendPages(src, 100); err != nil { // Close waits for the child
		t.Fatal(err)
	}
	fi, err := os.Stat(out)
	if err != nil || fi.Size() != helloLen+100*(8+4096)+4 {
		t.Fatalf("saved file: %v, %v; want hello + pages", fi, err)
	}

	ln, err := Listen(ctx, mustParse(t, "exec:cat '"+out+"'"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := ln.Accept(ctx)
	ln.Close()
	if err != nil {
		t.Fatal(err)
	}
	if p := dst.peer; (p == nil || !p.Source || !p.OneWay) != raw {
		t.Fatalf("restored hello %+v", p)
	}
	if err := checkPages(dst, 100); err != nil {
		t.Fatal(err)
	}
	dst.Close()

	// file: at an offset, over a longer file: QEMU truncates at the offset.
	path := filepath.Join(dir, "vm.state")
	prefix := bytes.Repeat([]byte("P"), 1000)
	if err := os.WriteFile(path, append(prefix, bytes.Repeat([]byte("junk"), 100000)...), 0o600); err != nil {
		t.Fatal(err)
	}
	fsrc, err := Dial(ctx, mustParse(t, "file:"+path+",offset=1000"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := sendPages(fsrc, 50); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if int64(len(data)) != 1000+helloLen+50*(8+4096)+4 || !bytes.Equal(data[:1000], prefix) {
		t.Fatalf("file is %d bytes (prefix kept: %v)", len(data), bytes.Equal(data[:1000], prefix))
	}
	fln, err := Listen(ctx, mustParse(t, "file:"+path+",offset=1000"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer fln.Close()
	fdst, err := fln.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer fdst.Close()
	if err := checkPages(fdst, 50); err != nil {
		t.Fatal(err)
	}
	// A file carries one channel: a second Accept fails at once.
	if _, err := fln.Accept(ctx); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Accept on file: %v", err)
	}
}

// TestExecTLS runs TLS (and DTLS) over exec: channels in both directions:
// the source's command relays to a destination listening on a unix
// socket, and the destination's command relays from a source that dials.
func TestExecTLS(t *testing.T) {
	for _, kind := range []string{"", "x509", "psk"} {
		for _, raw := range []bool{false, true} {
			t.Run(fmt.Sprintf("tls=%s/raw=%v", kind, raw), func(t *testing.T) {
				ctx := testCtx(t)
				srcCfg, dstCfg := registries(t, kind)
				srcCfg.Raw, dstCfg.Raw = raw, raw
				dir := t.TempDir()

				// Outgoing exec.
				path := filepath.Join(dir, "dst.sock")
				ln, err := Listen(ctx, mustParse(t, "unix:"+path), dstCfg)
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				at := ln.AcceptTask(ctx)
				src, err := Dial(ctx, mustParse(t, relayCommand("relay-connect", path)), srcCfg)
				if err != nil {
					t.Fatal(err)
				}
				dst, err := at.Wait(ctx)
				if err != nil {
					src.Close()
					t.Fatal(err)
				}
				if !raw && (!dst.peer.OneWay || src.peer != nil) {
					t.Fatalf("exec source's hello: %+v, reply %+v; want one-way", dst.peer, src.peer)
				}
				transfer(t, src, dst, 100)
				dst.Close()

				// Incoming exec: the destination's command accepts the source.
				path2 := filepath.Join(dir, "src.sock")
				ln2, err := Listen(ctx, mustParse(t, relayCommand("relay-listen", path2)), dstCfg)
				if err != nil {
					t.Fatal(err)
				}
				defer ln2.Close()
				at2 := ln2.AcceptTask(ctx)
				var src2 *Stream
				for { // until ln2 listens (or ctx, bounded by the test binary's -timeout, ends)
					if src2, err = Dial(ctx, mustParse(t, "unix:"+path2), srcCfg); err == nil || ctx.Err() != nil {
						break
					}
					time.Sleep(10 * time.Millisecond)
				}
				if err != nil {
					at2.Cancel()
					at2.Wait(ctx)
					t.Fatal(err)
				}
				dst2, err := at2.Wait(ctx)
				if err != nil {
					src2.Close()
					t.Fatal(err)
				}
				defer dst2.Close()
				if !raw && (dst2.peer.OneWay || src2.peer == nil) {
					t.Fatal("socket source's hello went one way")
				}
				transfer(t, src2, dst2, 100)
			})
		}
	}
}

// TestFD migrates over a socketpair given as named descriptors (QEMU's
// getfd) and as an inherited number, with and without TLS.
func TestFD(t *testing.T) {
	for _, kind := range []string{"", "x509", "psk"} {
		for _, named := range []bool{true, false} {
			for _, raw := range []bool{false, true} {
				t.Run(fmt.Sprintf("tls=%s/named=%v/raw=%v", kind, named, raw), func(t *testing.T) {
					fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
					if err != nil {
						t.Fatal(err)
					}
					srcCfg, dstCfg := registries(t, kind)
					srcCfg.Raw, dstCfg.Raw = raw, raw
					srcAddr, dstAddr := "fd:"+fmt.Sprint(fds[0]), "fd:"+fmt.Sprint(fds[1])
					if named {
						srcCfg.FDs = map[string]*os.File{"migfd": os.NewFile(uintptr(fds[0]), "a")}
						dstCfg.FDs = map[string]*os.File{"incoming": os.NewFile(uintptr(fds[1]), "b")}
						srcAddr, dstAddr = "fd:migfd", "fd:incoming"
					}
					ctx := testCtx(t)
					ln, err := Listen(ctx, mustParse(t, dstAddr), dstCfg)
					if err != nil {
						t.Fatal(err)
					}
					defer ln.Close()
					at := ln.AcceptTask(ctx)
					src, err := Dial(ctx, mustParse(t, srcAddr), srcCfg)
					if err != nil {
						t.Fatal(err)
					}
					dst, err := at.Wait(ctx)
					if err != nil {
						src.Close()
						t.Fatal(err)
					}
					defer dst.Close()
					transfer(t, src, dst, 100)
				})
			}
		}
	}
}

// TestVsock runs over vsock loopback when the kernel offers it.
func TestVsock(t *testing.T) {
	ctx := testCtx(t)
	ln, err := Listen(ctx, mustParse(t, "vsock:1:47321"), nil)
	if err != nil {
		t.Skipf("no vsock here: %v", err)
	}
	defer ln.Close()
	at := ln.AcceptTask(ctx)
	src, err := Dial(ctx, mustParse(t, "vsock:1:47321"), nil)
	if err != nil {
		at.Cancel()
		at.Wait(ctx)
		t.Skipf("vsock loopback does not connect: %v", err)
	}
	dst, err := at.Wait(ctx)
	if err != nil {
		src.Close()
		t.Fatal(err)
	}
	defer dst.Close()
	transfer(t, src, dst, 50)
}

var _ = strings.Contains

// freePort returns a tcp port that was free a moment ago.
func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}
