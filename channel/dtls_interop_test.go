package channel_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/pskkeys"
	"github.com/livemig/livemig/internal/testwait"
)

// secFreeUDPPort returns a udp port that was free a moment ago.
func secFreeUDPPort(t testing.TB) int {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// secPsktool writes dir/keys.psk with GnuTLS's psktool, as QEMU's
// documentation does, and returns the hex key of user.
func secPsktool(t testing.TB, dir, user string) string {
	t.Helper()
	out, err := exec.Command("psktool", "-u", user, "-p", filepath.Join(dir, "keys.psk")).CombinedOutput()
	if err != nil {
		t.Fatalf("psktool: %v\n%s", err, out)
	}
	c, err := crypto.NewPSKCreds(crypto.PSKOptions{ID: "k", Dir: dir, Endpoint: crypto.Client, Username: user})
	if err != nil {
		t.Fatalf("psktool's keys.psk does not load: %v", err)
	}
	k, _ := pskkeys.Key(c, user)
	return fmt.Sprintf("%x", k)
}

// TestInteropGnuTLSDTLSPSK: DTLS 1.2 with PSK over UDP between livemig and
// GnuTLS (gnutls-serv -u and gnutls-cli -u), both using a keys.psk made by
// psktool; and a wrong key fails.
func TestInteropGnuTLSDTLSPSK(t *testing.T) {
	secNeedTools(t, "gnutls-serv", "gnutls-cli", "psktool")
	const prio = "NORMAL:+PSK:+VERS-DTLS1.2"

	t.Run("livemig client to gnutls-serv", func(t *testing.T) {
		dir := t.TempDir()
		secPsktool(t, dir, "qemu")
		port := secFreeUDPPort(t)
		_, out := secStart(t, "gnutls-serv", "-u", "--echo", "--crlf", "-p", strconv.Itoa(port),
			"--pskpasswd", filepath.Join(dir, "keys.psk"), "--priority", prio)
		testwait.Until(t, "gnutls-serv listening", func() bool { return strings.Contains(out.String(), "listening on IPv4") })
		for _, tc := range []struct {
			name    string
			dir     string
			wantErr string
		}{
			{"right key", dir, ""},
			{"wrong key", t.TempDir(), "dtls handshake (client)"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if tc.dir != dir {
					secPsktool(t, tc.dir, "qemu") // a different random key
				}
				cc, err := crypto.NewPSKCreds(crypto.PSKOptions{ID: "c", Dir: tc.dir, Endpoint: crypto.Client})
				if err != nil {
					t.Fatal(err)
				}
				pc, err := net.ListenPacket("udp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				raddr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
				d := channel.NewDTLSPacket(pc, raddr, cc, nil)
				defer d.Close()
				ctx := testwait.Context(t)
				if tc.wantErr != "" {
					// A wrong key over UDP ends in silence: the handshake
					// fails when its context does.
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, time.Second)
					defer cancel()
				}
				err = d.Handshake(ctx)
				if tc.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
						t.Fatalf("handshake with a wrong key: %v", err)
					}
					return
				}
				if err != nil {
					t.Fatalf("handshake: %v\n%s", err, out)
				}
				// Ping-pong so that UDP never queues more than one message.
				for i := range 32 {
					msg := []byte(fmt.Sprintf("message %02d %s\n", i, strings.Repeat("x", 1000)))
					if _, err := d.Write(msg); err != nil {
						t.Fatal(err)
					}
					d.SetReadDeadline(testwait.Deadline(t))
					got := make([]byte, len(msg))
					if _, err := io.ReadFull(d, got); err != nil || !bytes.Equal(got, msg) {
						t.Fatalf("echo %d: %q, %v", i, got, err)
					}
				}
			})
		}
	})

	t.Run("gnutls-cli to livemig server", func(t *testing.T) {
		dir := t.TempDir()
		key := secPsktool(t, dir, "qemu")
		sc, err := crypto.NewPSKCreds(crypto.PSKOptions{ID: "s", Dir: dir, Endpoint: crypto.Server})
		if err != nil {
			t.Fatal(err)
		}
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s := channel.NewDTLSPacket(pc, nil, sc, nil)
		defer s.Close()
		cli := exec.Command("gnutls-cli", "-u", "--pskusername", "qemu", "--pskkey", key, "--priority", prio,
			"-p", strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port), "127.0.0.1")
		stdin, _ := cli.StdinPipe()
		stdout, _ := cli.StdoutPipe()
		errOut := &secLockedBuffer{}
		cli.Stderr = errOut
		if err := cli.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.Process.Kill(); cli.Wait() })
		ctx := testwait.Context(t)
		if err := s.Handshake(ctx); err != nil {
			t.Fatalf("handshake with gnutls-cli: %v\n%s", err, errOut)
		}
		if got := s.PeerIdentity(); got != "qemu" {
			t.Errorf("PSK identity %q", got)
		}
		io.WriteString(stdin, "hello from gnutls-cli\n")
		s.SetReadDeadline(testwait.Deadline(t))
		got := make([]byte, len("hello from gnutls-cli\n"))
		if _, err := io.ReadFull(s, got); err != nil || string(got) != "hello from gnutls-cli\n" {
			t.Fatalf("read %q, %v\n%s", got, err, errOut)
		}
		if _, err := s.Write([]byte("hello from livemig\n")); err != nil {
			t.Fatal(err)
		}
		line := make(chan string, 1)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if strings.Contains(sc.Text(), "hello from livemig") {
					line <- sc.Text()
					return
				}
			}
			line <- ""
		}()
		if l := testwait.Recv(t, "gnutls-cli printing the reply", line); l == "" {
			t.Fatalf("gnutls-cli ended without printing the reply\n%s", errOut)
		}
		stdin.Close()
	})
}
