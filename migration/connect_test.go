package migration

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/livemig/livemig/internal/hello"
	"github.com/livemig/livemig/uri"
)

// TestTCPOptions pins how the tcp: options map onto package channel.
func TestTCPOptions(t *testing.T) {
	for _, tc := range []struct {
		in, network string
		ka          *net.KeepAliveConfig
	}{
		// QEMU inet_parse: both families by default.
		{"tcp:h:1", "tcp", nil},
		{"tcp:h:1,ipv4=on", "tcp4", nil},
		{"tcp:h:1,ipv6=on", "tcp6", nil},
		{"tcp:h:1,ipv4=off", "tcp6", nil},
		{"tcp:h:1,ipv6=off", "tcp4", nil},
		{"tcp:h:1,ipv4=on,ipv6=on", "tcp", nil},
		// keep-alive (QEMU 10.1 adds count/idle/interval).
		{"tcp:h:1,keep-alive=on", "tcp", &net.KeepAliveConfig{Enable: true, Idle: -1, Interval: -1, Count: -1}},
		{"tcp:h:1,keep-alive=off", "tcp", &net.KeepAliveConfig{Enable: false, Idle: -1, Interval: -1, Count: -1}},
		{"tcp:h:1,keep-alive=on,keep-alive-count=3,keep-alive-idle=10,keep-alive-interval=2", "tcp",
			&net.KeepAliveConfig{Enable: true, Idle: 10 * time.Second, Interval: 2 * time.Second, Count: 3}},
	} {
		a, err := uri.Parse(tc.in)
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		network, err := tcpNetwork(&a.Inet)
		if network != tc.network || (err != nil) != (tc.network == "") {
			t.Errorf("%s: network %q, %v; want %q", tc.in, network, err, tc.network)
		}
		ka, ok := keepAlive(&a.Inet)
		if ok != (tc.ka != nil) || ok && ka != *tc.ka {
			t.Errorf("%s: keep-alive %+v, %v; want %+v", tc.in, ka, ok, tc.ka)
		}
	}
}

func TestTCPNoFamily(t *testing.T) {
	if _, err := tcpNetwork(&uri.Inet{IPv4: uri.Off, IPv6: uri.Off}); err == nil {
		t.Fatal("ipv4=off,ipv6=off accepted")
	}
}

// TestListenerAddr: the Listener reports the port it bound, honours a
// port range, and names localhost for an empty host.
func TestListenerAddr(t *testing.T) {
	ctx := testCtx(t)
	ln, err := Listen(ctx, mustParse(t, "tcp::0"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a := ln.Addr()
	if a.Inet.Host != "localhost" || a.Inet.Port == "0" {
		t.Fatalf("Addr = %s", a)
	}
	// Port range: the first port is taken, so to= moves up.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	p := busy.Addr().(*net.TCPAddr).Port
	if p > 65000 {
		t.Skip("port too high for a range")
	}
	ln2, err := Listen(ctx, mustParse(t, fmt.Sprintf("tcp:127.0.0.1:%d,to=%d", p, p+20)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln2.Close()
	got, _ := strconv.Atoi(ln2.Addr().Inet.Port)
	if got <= p || got > p+20 || ln2.Addr().Inet.To != 0 {
		t.Fatalf("range %d..%d bound %s", p, p+20, ln2.Addr())
	}
	// A source reaches it at that address.
	at := ln2.AcceptTask(ctx)
	src, err := Dial(ctx, ln2.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := at.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	transfer(t, src, dst, 1)
}

// TestTimeouts: each phase's timeout ends the task with a net.Error whose
// Timeout is true.
func TestTimeouts(t *testing.T) {
	var ne net.Error
	// connect: a dial-back source that nobody dials. The error names the
	// bound that passed: ConnectTimeout, not DefaultConnectTimeout (this
	// said "took more than 3 s" before, which a busy machine could take).
	_, err := Dial(testCtx(t), mustParse(t, "unix:"+filepath.Join(t.TempDir(), "s")),
		&Config{DialBack: true, ConnectTimeout: 100 * time.Millisecond})
	var pe *PhaseError
	if !errors.As(err, &pe) || pe.Phase != PhaseConnect || !errors.As(err, &ne) || !ne.Timeout() ||
		!strings.Contains(err.Error(), "connect timed out after 100ms") {
		t.Fatalf("connect timeout: %v, want one saying %q", err, "connect timed out after 100ms")
	}
	// tls-handshake: the peer never answers.
	srcCfg, _ := registries(t, "x509")
	srcCfg.HandshakeTimeout = 100 * time.Millisecond
	addr := rawPeer(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	_, err = Dial(testCtx(t), mustParse(t, addr), srcCfg)
	if !errors.As(err, &pe) || pe.Phase != PhaseTLSHandshake || !errors.As(err, &ne) || !ne.Timeout() ||
		!strings.Contains(err.Error(), "tls handshake timed out after 100ms") {
		t.Fatalf("handshake timeout: %v, want one saying %q", err, "tls handshake timed out after 100ms")
	}
}

// TestRelay: Relay's hello repeats what the incoming channel's peer
// announced, the session, the index, the channel count and the
// capability bits (none defined; they are carried through unchanged),
// whatever its own Config says; a Stream without a hello from its peer
// cannot be relayed.
func TestRelay(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	const caps = 1<<0 | 1<<2 | 1<<50
	srcCfg := &Config{Channels: 3, caps: caps}
	srcCfg.index = 2 // multifd channel 2, as DialSession would set it
	src, hop := connectPair(t, "unix:"+filepath.Join(dir, "hop"), srcCfg, nil)
	if hop.peer.Caps != caps || src.peer.Caps != 0 {
		t.Fatalf("hop saw caps %#x, source %#x; want %#x and 0", hop.peer.Caps, src.peer.Caps, uint64(caps))
	}
	far, err := Listen(ctx, mustParse(t, "unix:"+filepath.Join(dir, "far")), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer far.Close()
	at := far.AcceptTask(ctx)
	out, err := Relay(ctx, far.Addr(), &Config{SessionID: SessionID{9}, Channels: 1}, hop)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	in, err := at.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	want := hello.Hello{Version: hello.Version, Role: hello.RoleMultifd, Source: true, Session: src.SessionID(), Index: 2, Channels: 3, Caps: caps}
	if *in.peer != want || in.SessionID() != hop.SessionID() || out.SessionID() != hop.SessionID() {
		t.Fatalf("far side saw %+v, want %+v", *in.peer, want)
	}
	if _, err := Relay(ctx, far.Addr(), nil, NewStream(&bytesChannel{r: bytes.NewReader(nil)})); err == nil || !strings.Contains(err.Error(), "no hello") {
		t.Fatalf("Relay of a Stream without hello: %v", err)
	}
}

// TestAcceptOutwaitsConnectTimeout: a destination waiting for its source is
// not bounded by ConnectTimeout (QEMU's -incoming waits too), only by its
// context; the source that arrives later still migrates.
func TestAcceptOutwaitsConnectTimeout(t *testing.T) {
	ctx := testCtx(t)
	ln, err := Listen(ctx, mustParse(t, "unix:"+filepath.Join(t.TempDir(), "late")), &Config{ConnectTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	at := ln.AcceptTask(ctx)
	select {
	case <-at.Done():
		t.Fatalf("accept task ended before any source dialed: %v", at.Err())
	case <-time.After(500 * time.Millisecond): // ten ConnectTimeouts
	}
	src, err := Dial(ctx, ln.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := at.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	transfer(t, src, dst, 1)
}

// TestFileSourceTruncatesOpenFile: the file: source truncates the file it
// opened, at the offset, as QEMU's ftruncate does, not whatever the path
// names by then. The test renames the opened file away and puts another
// file at the path between the open and the truncation: the opened file
// must end where the stream ends, and the other file must be untouched
// (a truncation by path cut the other file and left the opened one with
// the old bytes after the stream).
func TestFileSourceTruncatesOpenFile(t *testing.T) {
	dir := t.TempDir()
	path, moved := filepath.Join(dir, "vm.state"), filepath.Join(dir, "opened.state")
	if err := os.WriteFile(path, bytes.Repeat([]byte{'x'}, 100000), 0o600); err != nil {
		t.Fatal(err)
	}
	const other = "another file at the path"
	testHookFileOpened = func(p string) {
		if err := os.Rename(p, moved); err != nil {
			t.Error(err)
		}
		if err := os.WriteFile(p, []byte(other), 0o600); err != nil {
			t.Error(err)
		}
	}
	defer func() { testHookFileOpened = nil }()
	s, err := Dial(testCtx(t), mustParse(t, "file:"+path+",offset=1000"), nil)
	if err != nil {
		t.Fatal(err)
	}
	s.PutBuffer(make([]byte, 5000))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	want := int64(1000 + hello.Size + 5000) // the offset, the one-way hello, the stream
	if fi, err := os.Stat(moved); err != nil {
		t.Error(err)
	} else if fi.Size() != want {
		t.Errorf("opened file: %d bytes, want %d", fi.Size(), want)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != other {
		t.Errorf("the file now at the path holds %d bytes (%v), want it untouched: %q", len(b), err, other)
	}
}
