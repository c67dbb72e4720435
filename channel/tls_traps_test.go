package channel_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/testpki"
	"github.com/livemig/livemig/internal/testwait"
)

// secRawClient returns a plain crypto/tls client on the client end of a
// tcp pair and a livemig TLS server on the other.
func secRawClient(t *testing.T, sopts *channel.TLSOptions, edit func(*tls.Config), wrap func(net.Conn) net.Conn) (*tls.Conn, *channel.TLS) {
	t.Helper()
	p := testpki.New(t, nil)
	cc := secMust(t, p.ClientDir, crypto.Client, nil)
	sc := secMust(t, p.ServerDir, crypto.Server, nil)
	cfg, err := cc.TLSConfig(crypto.TLSOptions{Hostname: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(cfg)
	}
	ci, si := secSocketPair(t, "tcp")
	nc := ci.NetConn()
	if wrap != nil {
		nc = wrap(nc)
	}
	c := tls.Client(nc, cfg)
	s := channel.NewTLS(si, sc, sopts)
	t.Cleanup(func() { c.Close(); s.Close() })
	ctx := testwait.Context(t)
	errc := make(chan error, 1)
	go func() { errc <- s.Handshake(ctx) }()
	if err := c.HandshakeContext(ctx); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	return c, s
}

// TestTrapCertificateRequestWithoutCANames: trap 1. A GnuTLS client with
// an RSA key sends no certificate when the CertificateRequest lists CA
// names, so the server must list none and still verify the client.
func TestTrapCertificateRequestWithoutCANames(t *testing.T) {
	for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			var mu sync.Mutex
			asked, names := false, -1
			_, s := secRawClient(t, &channel.TLSOptions{TLSOptions: crypto.TLSOptions{MinVersion: tls.VersionTLS12}}, func(cfg *tls.Config) {
				cfg.MinVersion, cfg.MaxVersion = v, v
				get := cfg.GetClientCertificate
				cfg.GetClientCertificate = func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
					mu.Lock()
					asked, names = true, len(cri.AcceptableCAs)
					mu.Unlock()
					return get(cri)
				}
			}, nil)
			mu.Lock()
			defer mu.Unlock()
			if !asked {
				t.Fatal("server did not request a client certificate")
			}
			if names != 0 {
				t.Errorf("CertificateRequest lists %d CA names, want none", names)
			}
			if got := s.PeerIdentity(); got != "CN=client.example.com,O=Example,C=GB" {
				t.Errorf("server verified %q", got)
			}
		})
	}
}

// secTicketCache records every session a client is offered.
type secTicketCache struct {
	mu   sync.Mutex
	puts int
}

func (c *secTicketCache) Get(string) (*tls.ClientSessionState, bool) { return nil, false }
func (c *secTicketCache) Put(_ string, cs *tls.ClientSessionState) {
	if cs != nil {
		c.mu.Lock()
		c.puts++
		c.mu.Unlock()
	}
}

// TestTrapNoSessionTickets: trap 2. TLS 1.3 session tickets from a Go
// server broke a QEMU source mid-stream; a livemig server sends none.
func TestTrapNoSessionTickets(t *testing.T) {
	for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			cache := &secTicketCache{}
			c, s := secRawClient(t, &channel.TLSOptions{TLSOptions: crypto.TLSOptions{MinVersion: tls.VersionTLS12}}, func(cfg *tls.Config) {
				cfg.MinVersion, cfg.MaxVersion = v, v
				cfg.ClientSessionCache = cache
			}, nil)
			// Tickets travel after the handshake: make the client read
			// past them.
			go s.Write([]byte("x"))
			if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
				t.Fatal(err)
			}
			cache.mu.Lock()
			defer cache.mu.Unlock()
			if cache.puts != 0 {
				t.Errorf("client received %d session tickets, want none", cache.puts)
			}
		})
	}
}

// secCutConn passes writes through until armed; then it writes only the
// first half of the next write and shuts its write side, as a peer that
// dies inside a TLS record.
type secCutConn struct {
	net.Conn
	mu    sync.Mutex
	armed bool
}

func (c *secCutConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	armed := c.armed
	c.mu.Unlock()
	if !armed {
		return c.Conn.Write(p)
	}
	c.Conn.Write(p[:len(p)/2])
	c.Conn.(*net.TCPConn).CloseWrite()
	return len(p), nil
}

// TestTrapRawEOF: trap 3. QEMU sends no close_notify on its main channel
// (and before 10.0 on its multifd channels either): with Raw a clean EOF
// at a record boundary ends the stream; without Raw it is reported as a
// possible truncation; a cut inside a record is an error in both modes.
func TestTrapRawEOF(t *testing.T) {
	payload := bytes.Repeat([]byte("guest page "), 5000)
	for _, raw := range []bool{true, false} {
		name := "strict"
		if raw {
			name = "raw"
		}
		t.Run(name+"/eof at record boundary", func(t *testing.T) {
			c, s := secRawClient(t, &channel.TLSOptions{Raw: raw}, nil, nil)
			go func() {
				c.Write(payload)
				c.NetConn().(*net.TCPConn).CloseWrite() // no close_notify
			}()
			got, err := io.ReadAll(s)
			if !bytes.Equal(got, payload) {
				t.Fatalf("read %d bytes, want %d", len(got), len(payload))
			}
			if raw {
				if err != nil {
					t.Fatalf("raw: ReadAll error %v, want clean io.EOF", err)
				}
				return
			}
			if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "without TLS close_notify") {
				t.Fatalf("strict: error %v, want io.ErrUnexpectedEOF naming the missing close_notify", err)
			}
		})
		t.Run(name+"/cut inside a record", func(t *testing.T) {
			var cut *secCutConn
			c, s := secRawClient(t, &channel.TLSOptions{Raw: raw}, nil, func(nc net.Conn) net.Conn {
				cut = &secCutConn{Conn: nc}
				return cut
			})
			cut.mu.Lock()
			cut.armed = true
			cut.mu.Unlock()
			go c.Write([]byte("this record is cut in half"))
			got, err := io.ReadAll(s)
			if len(got) != 0 {
				t.Errorf("read %q from a cut record", got)
			}
			if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "cut inside a TLS record") {
				t.Fatalf("error %v, want io.ErrUnexpectedEOF naming the cut record", err)
			}
		})
	}
	t.Run("close_notify is a clean EOF in both modes", func(t *testing.T) {
		c, s := secRawClient(t, nil, nil, nil)
		go func() { c.Write(payload); c.CloseWrite() }()
		got, err := io.ReadAll(s)
		if err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("read %d bytes, %v", len(got), err)
		}
	})
}

// secCountingChannel counts the writes reaching the inner channel and the
// TLS records inside them (each write holds whole records).
type secCountingChannel struct {
	channel.Channel
	mu      sync.Mutex
	writes  []int
	records []int // record lengths including the 5-byte header
}

func (c *secCountingChannel) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes = append(c.writes, len(p))
	for q := p; len(q) >= 5; {
		n := 5 + (int(q[3])<<8 | int(q[4]))
		c.records = append(c.records, n)
		q = q[min(n, len(q)):]
	}
	c.mu.Unlock()
	return c.Channel.Write(p)
}

// TestTLSWriteBuffersFullRecords: many 4 KiB pages become full 16 KiB
// records (QEMU 7.2 sends two records per page), one inner write each.
func TestTLSWriteBuffersFullRecords(t *testing.T) {
	p := testpki.New(t, nil)
	cc := secMust(t, p.ClientDir, crypto.Client, nil)
	sc := secMust(t, p.ServerDir, crypto.Server, nil)
	ci, si := secSocketPair(t, "tcp")
	counting := &secCountingChannel{Channel: ci}
	c := channel.NewTLS(counting, cc, localhost)
	s := channel.NewTLS(si, sc, nil)
	t.Cleanup(func() { c.Close(); s.Close() })
	secHandshakeBoth(t, c, s)

	const pages, pageSize = 256, 4096
	var want []byte
	var bufs net.Buffers
	for i := range pages {
		pg := bytes.Repeat([]byte{byte(i)}, pageSize)
		bufs = append(bufs, pg[:100], pg[100:]) // uneven slices too
		want = append(want, pg...)
	}
	counting.mu.Lock()
	counting.writes, counting.records = nil, nil
	counting.mu.Unlock()
	done := make(chan error, 1)
	go func() {
		n, err := c.WriteBuffers(&bufs)
		if err == nil && n != int64(len(want)) {
			err = errors.New("short WriteBuffers")
		}
		if err == nil && len(bufs) != 0 {
			err = errors.New("bufs not consumed")
		}
		done <- err
	}()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(s, got); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("data mismatch")
	}
	counting.mu.Lock()
	defer counting.mu.Unlock()
	records := len(want) / 16384
	if len(counting.records) != records {
		t.Errorf("%d records for %d bytes, want %d full records", len(counting.records), len(want), records)
	}
	for i, n := range counting.records {
		if n != 5+16384+17 { // header + full plaintext + type byte + AEAD tag
			t.Errorf("record %d is %d bytes, want a full %d-byte record", i, n, 5+16384+17)
			break
		}
	}
	// Records are handed to the socket four at a time.
	if len(counting.writes) > records/4+1 {
		t.Errorf("%d inner writes for %d records, want at most %d", len(counting.writes), records, records/4+1)
	}
}
