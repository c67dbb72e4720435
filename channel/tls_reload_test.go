package channel_test

import (
	"context"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/testpki"
	"github.com/livemig/livemig/internal/testwait"
)

// secServerDN handshakes a new client against sc and returns the DN of
// the server certificate it saw.
func secServerDN(t *testing.T, cc, sc *crypto.Creds) string {
	t.Helper()
	ci, si := secSocketPair(t, "tcp")
	c := channel.NewTLS(ci, cc, localhost)
	s := channel.NewTLS(si, sc, nil)
	defer c.Close()
	defer s.Close()
	secHandshakeBoth(t, c, s)
	return c.PeerIdentity()
}

// secPingPong checks an open pair still carries data both ways.
func secPingPong(t *testing.T, a, b channel.Channel, msg string) {
	t.Helper()
	for _, dir := range [][2]channel.Channel{{a, b}, {b, a}} {
		errc := make(chan error, 1)
		go func() { _, err := dir[0].Write([]byte(msg)); errc <- err }()
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(dir[1], got); err != nil || string(got) != msg {
			t.Fatalf("%s: read %q, %v", dir[1].Name(), got, err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}

// TestTLSHotReload rotates the server certificate under an open channel:
// the open channel keeps working on its session, the next handshake sees
// the new certificate, and a broken replacement is refused while the last
// good one stays in use. It runs with an explicit Reload and with Watch.
func TestTLSHotReload(t *testing.T) {
	for _, mode := range []string{"Reload", "Watch"} {
		t.Run(mode, func(t *testing.T) {
			p := testpki.New(t, nil)
			r := crypto.NewRegistry()
			var logMu sync.Mutex
			var logs []string
			r.Logf = func(f string, a ...any) {
				logMu.Lock()
				logs = append(logs, strings.TrimSpace(f))
				logMu.Unlock()
			}
			if err := r.AddObject("tls-creds-x509,id=srv,endpoint=server,dir=" + p.ServerDir); err != nil {
				t.Fatal(err)
			}
			if err := r.AddObject("tls-creds-x509,id=cli,endpoint=client,dir=" + p.ClientDir); err != nil {
				t.Fatal(err)
			}
			sc, _ := r.Creds("srv")
			cc, _ := r.Creds("cli")
			var wg sync.WaitGroup
			ctx, cancel := context.WithCancel(context.Background())
			defer func() { cancel(); wg.Wait() }()
			if mode == "Watch" {
				wg.Add(1)
				go func() { defer wg.Done(); r.Watch(ctx, 10*time.Millisecond) }()
			}
			// waitFor applies the change (Reload) or waits for Watch to.
			waitFor := func(want string, wantErr string) {
				t.Helper()
				if mode == "Reload" {
					err := r.Reload("srv")
					if wantErr == "" && err != nil {
						t.Fatalf("Reload: %v", err)
					}
					if wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)) {
						t.Fatalf("Reload error %v, want %q", err, wantErr)
					}
				} else if wantErr != "" {
					testwait.Until(t, "Watch reporting the failed reload", func() bool {
						logMu.Lock()
						defer logMu.Unlock()
						return len(logs) > 0 && strings.Contains(logs[len(logs)-1], "failed")
					})
				} else {
					testwait.Until(t, fmt.Sprintf("Watch loading %q", want), func() bool { return secServerDN(t, cc, sc) == want })
				}
				if got := secServerDN(t, cc, sc); got != want {
					t.Fatalf("new handshake sees %q, want %q", got, want)
				}
			}

			// An open channel on the first certificate.
			ci, si := secSocketPair(t, "tcp")
			oc := channel.NewTLS(ci, cc, localhost)
			osrv := channel.NewTLS(si, sc, nil)
			t.Cleanup(func() { oc.Close(); osrv.Close() })
			secHandshakeBoth(t, oc, osrv)
			first := oc.PeerIdentity()
			if first != "CN=localhost,O=livemig" {
				t.Fatalf("first certificate %q", first)
			}

			// Rotate.
			if _, err := p.RotateServer(testpki.LeafOptions{Subject: pkix.Name{CommonName: "localhost", Organization: []string{"rotated"}}}); err != nil {
				t.Fatal(err)
			}
			waitFor("CN=localhost,O=rotated", "")
			secPingPong(t, oc, osrv, "still here after rotation")
			if got := oc.PeerIdentity(); got != first {
				t.Errorf("open channel's peer changed to %q", got)
			}

			// A broken replacement is refused; the rotated certificate stays.
			if err := testpki.WriteFileMode(filepath.Join(p.ServerDir, "server-cert.pem"), []byte("-----BEGIN CERTIFICATE-----\nMIIB"), 0o644); err != nil {
				t.Fatal(err)
			}
			waitFor("CN=localhost,O=rotated", "server-cert.pem: parse")
			secPingPong(t, oc, osrv, "still here after a bad reload")

			// Repairing the file is picked up again.
			if _, err := p.RotateServer(testpki.LeafOptions{Subject: pkix.Name{CommonName: "localhost", Organization: []string{"repaired"}}}); err != nil {
				t.Fatal(err)
			}
			waitFor("CN=localhost,O=repaired", "")
		})
	}
}

var _ = os.Remove
