package channel_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/channel/channeltest"
	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/testpki"
	"github.com/livemig/livemig/internal/testwait"
)

// secPSKDirs writes a server keys.psk with users and a client keys.psk
// with the given client user and key.
func secPSKCreds(t testing.TB, user string, clientKey []byte, serverKeys map[string][]byte) (cc, sc *crypto.Creds) {
	t.Helper()
	sdir, cdir := t.TempDir(), t.TempDir()
	if err := testpki.WritePSK(sdir, serverKeys); err != nil {
		t.Fatal(err)
	}
	if err := testpki.WritePSK(cdir, map[string][]byte{user: clientKey}); err != nil {
		t.Fatal(err)
	}
	var err error
	cc, err = crypto.NewPSKCreds(crypto.PSKOptions{ID: "psk-c", Dir: cdir, Endpoint: crypto.Client, Username: user})
	if err != nil {
		t.Fatal(err)
	}
	sc, err = crypto.NewPSKCreds(crypto.PSKOptions{ID: "psk-s", Dir: sdir, Endpoint: crypto.Server})
	if err != nil {
		t.Fatal(err)
	}
	return cc, sc
}

func secDTLSPair(t testing.TB, network string, cc, sc *crypto.Creds, sopts *channel.DTLSOptions, ctx context.Context) (c, s *channel.DTLS, cerr, serr error) {
	t.Helper()
	ci, si := secSocketPair(t, network)
	c = channel.NewDTLS(ci, cc, nil)
	s = channel.NewDTLS(si, sc, sopts)
	t.Cleanup(func() { c.Close(); s.Close() })
	cerr, serr = secHandshakes(ctx, c, s)
	return
}

func TestDTLSSmoke(t *testing.T) {
	key := testpki.NewPSK()
	cc, sc := secPSKCreds(t, "qemu", key, map[string][]byte{"qemu": key, "other": testpki.NewPSK()})
	c, s, cerr, serr := secDTLSPair(t, "tcp", cc, sc, nil, context.Background())
	if cerr != nil || serr != nil {
		t.Fatalf("handshake: client %v, server %v", cerr, serr)
	}
	if got := s.PeerIdentity(); got != "qemu" {
		t.Errorf("identity %q", got)
	}
	msg := bytes.Repeat([]byte("0123456789abcdef"), 10000)
	go func() { c.Write(msg); c.Shutdown(channel.Write) }()
	got, err := io.ReadAll(s)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("got %d bytes, %v", len(got), err)
	}
}

// TestDTLSConformance runs the channel conformance suite over DTLS-PSK on
// tcp, unix and command channels.
func TestDTLSConformance(t *testing.T) {
	key := testpki.NewPSK()
	cc, sc := secPSKCreds(t, "qemu", key, map[string][]byte{"qemu": key})
	for _, in := range secInner {
		t.Run(in.name, func(t *testing.T) {
			channeltest.TestChannel(t, func(t testing.TB) (channel.Channel, channel.Channel) {
				ci, si := in.pair(t)
				c := channel.NewDTLS(ci, cc, nil)
				s := channel.NewDTLS(si, sc, nil)
				t.Cleanup(func() { c.Close(); s.Close() })
				secHandshakeBoth(t, c, s)
				return c, s
			})
		})
	}
}

// TestDTLSPacket runs DTLS-PSK over real UDP sockets: the server adopts
// the first sender; data of more than one record crosses both ways.
func TestDTLSPacket(t *testing.T) {
	key := testpki.NewPSK()
	cc, sc := secPSKCreds(t, "qemu", key, map[string][]byte{"qemu": key})
	spc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cpc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := channel.NewDTLSPacket(cpc, spc.LocalAddr(), cc, nil)
	s := channel.NewDTLSPacket(spc, nil, sc, nil)
	t.Cleanup(func() { c.Close(); s.Close() })
	secHandshakeBoth(t, c, s)
	if got := s.PeerIdentity(); got != "qemu" {
		t.Errorf("identity %q", got)
	}
	// Loopback UDP loses nothing at this size and pace.
	msg := bytes.Repeat([]byte("udp!"), 5000)
	for _, dir := range [][2]*channel.DTLS{{c, s}, {s, c}} {
		errc := make(chan error, 1)
		go func() { _, err := dir[0].Write(msg); errc <- err }()
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(dir[1], got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("read %d bytes, %v", len(got), err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Shutdown(channel.Write); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Shutdown on datagram DTLS = %v, want ErrUnsupported", err)
	}
}

// TestDTLSRecordFraming checks the stream framing: records are delimited
// by their own header, garbage and oversized lengths end the stream with
// an error, and a cut inside a record is io.ErrUnexpectedEOF.
func TestDTLSRecordFraming(t *testing.T) {
	key := testpki.NewPSK()
	cc, sc := secPSKCreds(t, "qemu", key, map[string][]byte{"qemu": key})
	for _, tc := range []struct {
		name    string
		bytes   []byte
		wantErr string
		wantIs  error
	}{
		{"not a record", []byte("GET / HTTP/1.1\r\n\r\n"), "not a DTLS record (content type 71)", nil},
		{"bad version", []byte{22, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0}, "not a DTLS record (version 0x0303)", nil},
		{"oversized", []byte{22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0x20, 0x00}, "record length 8192 exceeds the 8179-byte limit", nil},
		{"cut in header", []byte{22, 0xfe, 0xfd, 0}, "cut inside a record header", io.ErrUnexpectedEOF},
		{"cut in body", []byte{22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 100, 1, 2}, "cut inside a record (2 of 100 bytes)", io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ci, si := secSocketPair(t, "tcp")
			s := channel.NewDTLS(si, sc, nil)
			t.Cleanup(func() { s.Close() })
			go func() {
				ci.Write(tc.bytes)
				ci.Shutdown(channel.Write)
			}()
			ctx := testwait.Context(t)
			err := s.Handshake(ctx)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("handshake error %v, want %q", err, tc.wantErr)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error %v does not wrap %v", err, tc.wantIs)
			}
		})
	}
	_ = cc
}

// TestDTLSRoleFromCreds: NewDTLS takes its role from the credentials: the
// side that accepted the connection holds client credentials and is the
// DTLS client.
func TestDTLSRoleFromCreds(t *testing.T) {
	key := testpki.NewPSK()
	cc, sc := secPSKCreds(t, "qemu", key, map[string][]byte{"qemu": key})
	dialled, accepted := secSocketPair(t, "tcp")
	s := channel.NewDTLS(dialled, sc, nil)
	c := channel.NewDTLS(accepted, cc, nil)
	t.Cleanup(func() { c.Close(); s.Close() })
	secHandshakeBoth(t, c, s)
	if got := s.PeerIdentity(); got != "qemu" {
		t.Errorf("the server (dialling side) sees identity %q, want qemu", got)
	}
	if got := c.PeerIdentity(); got != "" {
		t.Errorf("the client sees identity %q, want none", got)
	}
}
