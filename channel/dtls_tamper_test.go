package channel_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/testpki"
	"github.com/livemig/livemig/internal/testwait"
)

// secTamper sees each record the client sends, whole (13-byte header and
// body), and returns the records to forward in its place.
type secTamper func(rec []byte) [][]byte

// secRelayForward copies the DTLS records read from src to dst through
// tamper (nil forwards them unchanged). At src's clean end it ends dst's
// write side; on any failure (such as a reset from a peer that gave up)
// it closes both, so that the ends behind them see it.
func secRelayForward(src, dst channel.Channel, tamper secTamper) {
	fail := func() { src.Close(); dst.Close() }
	for {
		h := make([]byte, 13)
		if _, err := io.ReadFull(src, h); err != nil {
			if err == io.EOF {
				dst.Shutdown(channel.Write)
			} else {
				fail()
			}
			return
		}
		rec := make([]byte, 13+int(binary.BigEndian.Uint16(h[11:13])))
		copy(rec, h)
		if _, err := io.ReadFull(src, rec[13:]); err != nil {
			fail()
			return
		}
		out := [][]byte{rec}
		if tamper != nil {
			out = tamper(rec)
		}
		for _, r := range out {
			if _, err := dst.Write(r); err != nil {
				fail()
				return
			}
		}
	}
}

// secRelayPair connects a DTLS-PSK client and server through an on-path
// relay over two real TCP connections and returns the two ends, not yet
// handshaken. The relay passes the server's records through unchanged
// and the client's through tamper. noReject, when set, turns off the
// server's use of pion's decrypt-failure log line. Everything, the
// relay's goroutines included, is closed and waited for when the test
// ends.
func secRelayPair(t *testing.T, cc, sc *crypto.Creds, tamper secTamper, noReject bool) (c, s *channel.DTLS) {
	t.Helper()
	ci, rc := secSocketPair(t, "tcp")
	rs, si := secSocketPair(t, "tcp")
	c = channel.NewDTLS(ci, cc, nil)
	s = channel.NewDTLS(si, sc, nil)
	if noReject {
		channel.DTLSWithoutRejectForTest(s)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); secRelayForward(rc, rs, tamper) }()
	go func() { defer wg.Done(); secRelayForward(rs, rc, nil) }()
	t.Cleanup(func() {
		c.Close()
		s.Close()
		rc.Close()
		rs.Close()
		wg.Wait()
	})
	return c, s
}

// secRelayDTLS is secRelayPair with both handshakes done.
func secRelayDTLS(t *testing.T, cc, sc *crypto.Creds, tamper secTamper, noReject bool) (c, s *channel.DTLS) {
	t.Helper()
	c, s = secRelayPair(t, cc, sc, tamper, noReject)
	ctx := testwait.Context(t)
	if cerr, serr := secHandshakes(ctx, c, s); cerr != nil || serr != nil {
		t.Fatalf("handshake through the relay: client %v, server %v", cerr, serr)
	}
	return c, s
}

// secAppRecords numbers the application_data records that tamper
// sees (0 for the first) and hands them to f; other records pass.
func secAppRecords(f func(i int, rec []byte) [][]byte) secTamper {
	i := 0
	return func(rec []byte) [][]byte {
		if rec[0] != 23 {
			return [][]byte{rec}
		}
		i++
		return f(i-1, rec)
	}
}

// secRecordPayload is n full records' worth of application data (8155
// bytes each, see NewDTLS) in which every 4-byte word is its own offset,
// so that no part equals another.
func secRecordPayload(n int) []byte {
	p := make([]byte, n*8155)
	for i := 0; i+4 <= len(p); i += 4 {
		binary.BigEndian.PutUint32(p[i:], uint32(i))
	}
	return p
}

// secSendAndRead writes payload from c, ends c's write side, and reads s
// until an error; it returns what s read and the error. The writer's own
// result is not looked at: it may fail once s has given up.
func secSendAndRead(t *testing.T, c, s *channel.DTLS, payload []byte) ([]byte, error) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := c.Write(payload); err == nil {
			c.Shutdown(channel.Write)
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	var got []byte
	buf := make([]byte, 3000) // short reads: the rest of a record waits in DTLS's buffer
	for {
		n, err := s.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return got, err
		}
	}
}

// TestDTLSRecordTampering puts an on-path relay between a DTLS-PSK client
// and server over real TCP sockets and has it swap, drop, duplicate,
// replay from another connection, alter and re-epoch the client's
// application records after the handshake (issue 11, finding 2). Each
// must end the server's reading with an error that names the problem and
// the records expected and received, after exactly the bytes of the
// records before the bad one; the error sticks, and writing fails too. A
// clean relay passes everything, both ways.
func TestDTLSRecordTampering(t *testing.T) {
	key := testpki.NewPSK()
	cc, sc := secPSKCreds(t, "qemu", key, map[string][]byte{"qemu": key})
	const records = 12
	payload := secRecordPayload(records)

	t.Run("clean relay", func(t *testing.T) {
		c, s := secRelayDTLS(t, cc, sc, nil, false)
		got, err := secSendAndRead(t, c, s, payload)
		if err != io.EOF || !bytes.Equal(got, payload) {
			t.Fatalf("client to server: read %d of %d bytes, then %v; want all, then io.EOF", len(got), len(payload), err)
		}
		got, err = secSendAndRead(t, s, c, payload)
		if err != io.EOF || !bytes.Equal(got, payload) {
			t.Fatalf("server to client: read %d of %d bytes, then %v; want all, then io.EOF", len(got), len(payload), err)
		}
	})

	// Records of another connection with the same key, each at the same
	// epoch and sequence number as in every connection of this test: the
	// client's epoch 1 is its Finished at sequence number 0, then the
	// application records from 1 on.
	var otherMu sync.Mutex
	var other [][]byte
	t.Run("capture another connection", func(t *testing.T) {
		c, s := secRelayDTLS(t, cc, sc, secAppRecords(func(i int, rec []byte) [][]byte {
			otherMu.Lock()
			other = append(other, bytes.Clone(rec))
			otherMu.Unlock()
			return [][]byte{rec}
		}), false)
		if got, err := secSendAndRead(t, c, s, payload); err != io.EOF || !bytes.Equal(got, payload) {
			t.Fatalf("read %d of %d bytes, then %v", len(got), len(payload), err)
		}
	})
	otherRecord := func(i int) []byte {
		otherMu.Lock()
		defer otherMu.Unlock()
		if i >= len(other) {
			t.Fatalf("captured %d records of the other connection, need record %d", len(other), i)
		}
		return other[i]
	}

	// The tampering hits application record k (0-based), which is
	// sequence number k+1 of epoch 1.
	const k = 4
	for _, tc := range []struct {
		name     string
		tamper   func(i int, rec []byte) [][]byte
		noReject bool     // see secRelayDTLS
		good     int      // records read before the error
		want     []string // in the error
	}{
		{name: "swap two records",
			tamper: func() func(int, []byte) [][]byte {
				var held []byte
				return func(i int, rec []byte) [][]byte {
					switch i {
					case k:
						held = rec
						return nil
					case k + 1:
						return [][]byte{rec, held}
					}
					return [][]byte{rec}
				}
			}(),
			good: k,
			want: []string{"1 record(s) missing or reordered", "expected epoch 1 seq 5", "received application_data epoch 1 seq 6"}},
		{name: "drop a record",
			tamper: func(i int, rec []byte) [][]byte {
				if i == k {
					return nil
				}
				return [][]byte{rec}
			},
			good: k,
			want: []string{"1 record(s) missing or reordered", "expected epoch 1 seq 5", "received application_data epoch 1 seq 6"}},
		{name: "drop three records",
			tamper: func(i int, rec []byte) [][]byte {
				if i >= k && i < k+3 {
					return nil
				}
				return [][]byte{rec}
			},
			good: k,
			want: []string{"3 record(s) missing or reordered", "expected epoch 1 seq 5", "received application_data epoch 1 seq 8"}},
		{name: "duplicate a record",
			tamper: func(i int, rec []byte) [][]byte {
				if i == k {
					return [][]byte{rec, rec}
				}
				return [][]byte{rec}
			},
			good: k + 1,
			want: []string{"a repeated, replayed or reordered record", "expected epoch 1 seq 6", "received application_data epoch 1 seq 5"}},
		{name: "replay a record of another connection",
			tamper: func(i int, rec []byte) [][]byte {
				if i == k {
					return [][]byte{otherRecord(i)}
				}
				return [][]byte{rec}
			},
			good: k,
			want: []string{"a record failed authentication: altered, or taken from another connection", "received application_data epoch 1 seq 5"}},
		{name: "replay a record of another connection, seen by the probe",
			tamper: func(i int, rec []byte) [][]byte {
				if i == k {
					return [][]byte{otherRecord(i)}
				}
				return [][]byte{rec}
			},
			noReject: true,
			good:     k,
			want:     []string{"the record produced no data: pion discarded it", "received application_data epoch 1 seq 5"}},
		{name: "alter a byte",
			tamper: func(i int, rec []byte) [][]byte {
				if i == k {
					rec[100] ^= 1
				}
				return [][]byte{rec}
			},
			good: k,
			want: []string{"a record failed authentication", "received application_data epoch 1 seq 5"}},
		{name: "move a record to epoch 2",
			tamper: func(i int, rec []byte) [][]byte {
				if i == k {
					rec[4] = 2
				}
				return [][]byte{rec}
			},
			good: k,
			want: []string{"epoch changed from 1 to 2 without a change_cipher_spec", "expected epoch 1 seq 5", "received application_data epoch 2 seq 5"}},
		{name: "move a record back to epoch 0",
			tamper: func(i int, rec []byte) [][]byte {
				if i == k {
					rec[4] = 0
				}
				return [][]byte{rec}
			},
			good: k,
			want: []string{"epoch changed from 1 to 0 without a change_cipher_spec", "expected epoch 1 seq 5", "received application_data epoch 0 seq 5"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := secRelayDTLS(t, cc, sc, secAppRecords(tc.tamper), tc.noReject)
			got, err := secSendAndRead(t, c, s, payload)
			if err == nil || err == io.EOF {
				t.Fatalf("read %d bytes, then %v; want a tampering error", len(got), err)
			}
			t.Logf("read %d bytes, then: %v", len(got), err)
			var oe *channel.OpError
			if !errors.As(err, &oe) || oe.Op != "read" {
				t.Errorf("error %v (%T) is not a read *channel.OpError", err, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not say %q", err, w)
				}
			}
			if !bytes.HasPrefix(payload, got) {
				t.Errorf("the %d bytes read are not a prefix of what was written", len(got))
			}
			if want := tc.good * 8155; len(got) != want {
				t.Errorf("read %d bytes before the error, want the %d of the %d records before the bad one", len(got), want, tc.good)
			}
			if _, err2 := s.Read(make([]byte, 10)); err2 == nil || err2.Error() != err.Error() {
				t.Errorf("second Read: %v; want the same error again", err2)
			}
			if _, err2 := s.Write([]byte("x")); err2 == nil || !strings.Contains(err2.Error(), "record stream tampered with") {
				t.Errorf("Write after the error: %v; want the tampering error", err2)
			}
		})
	}
}

// TestDTLSTamperedHandshake: a handshake record the relay duplicates
// fails the server's handshake with an error that says so.
func TestDTLSTamperedHandshake(t *testing.T) {
	key := testpki.NewPSK()
	cc, sc := secPSKCreds(t, "qemu", key, map[string][]byte{"qemu": key})
	first := true
	c, s := secRelayPair(t, cc, sc, func(rec []byte) [][]byte {
		if first { // the ClientHello, epoch 0 seq 0
			first = false
			return [][]byte{rec, rec}
		}
		return [][]byte{rec}
	}, false)
	ctx := testwait.Context(t)
	_, serr := secHandshakes(ctx, c, s)
	if serr == nil || !strings.Contains(serr.Error(), "a repeated, replayed or reordered record: expected epoch 0 seq 1, received handshake epoch 0 seq 0") {
		t.Fatalf("server handshake: %v; want the repeated ClientHello named", serr)
	}
}
