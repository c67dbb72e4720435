package channel

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// secHdr is a 13-byte DTLS 1.2 record header with a zero length.
func secHdr(typ byte, epoch uint16, seq uint64) []byte {
	h := []byte{typ, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint16(h[3:5], epoch)
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], seq)
	copy(h[5:11], s[2:])
	return h
}

// secHonest is one direction of a DTLS 1.2 connection as pion/dtls v2
// writes it without retransmission: hs epoch-0 handshake records (a
// client's ClientHello, ClientHello with cookie and ClientKeyExchange; a
// server's HelloVerifyRequest, ServerHello, ServerKeyExchange,
// ServerHelloDone), change_cipher_spec, the Finished at epoch 1 seq 0,
// then app records of application data with an alert every seventh.
func secHonest(hs, app int) [][]byte {
	var recs [][]byte
	for i := range hs {
		recs = append(recs, secHdr(dtlsHandshake, 0, uint64(i)))
	}
	recs = append(recs, secHdr(dtlsChangeCipherSpec, 0, uint64(hs)), secHdr(dtlsHandshake, 1, 0))
	for i := range app {
		typ := byte(dtlsApplicationData)
		if i%7 == 6 {
			typ = dtlsAlert
		}
		recs = append(recs, secHdr(typ, 1, uint64(i+1)))
	}
	return recs
}

// TestDTLSSequence feeds dtlsSequence record streams: what pion/dtls v2
// sends is accepted, and each departure is refused with the reason and
// the records expected and received.
func TestDTLSSequence(t *testing.T) {
	honest := secHonest(3, 3)
	for _, tc := range []struct {
		name    string
		start   dtlsSequence // the state before recs
		recs    [][]byte
		wantErr string // for the last record; "" accepts all
	}{
		// pion flight 5 (client) and 6 (server): CCS in epoch 0, then the
		// Finished opens epoch 1 at seq 0 (RFC 6347 4.1: "the sequence
		// number ... is set to zero after each ChangeCipherSpec").
		{name: "honest", recs: honest},
		// A record first in epoch 0 but not at seq 0: the stream's start
		// was cut.
		{name: "first record not seq 0", recs: [][]byte{secHdr(dtlsHandshake, 0, 1)},
			wantErr: "1 record(s) missing or reordered: expected epoch 0 seq 0, received handshake epoch 0 seq 1 (0 bytes)"},
		{name: "gap", recs: append(honest[:6:6], secHdr(dtlsApplicationData, 1, 4)),
			wantErr: "2 record(s) missing or reordered: expected epoch 1 seq 2, received application_data epoch 1 seq 4"},
		{name: "repeat", recs: append(honest[:6:6], honest[5]),
			wantErr: "a repeated, replayed or reordered record: expected epoch 1 seq 2, received application_data epoch 1 seq 1"},
		// Epoch 1 before any change_cipher_spec: pion would queue it as
		// the next epoch's.
		{name: "epoch 1 without CCS", recs: [][]byte{secHdr(dtlsHandshake, 0, 0), secHdr(dtlsHandshake, 1, 0)},
			wantErr: "epoch changed from 0 to 1 without a change_cipher_spec: expected epoch 0 seq 1"},
		{name: "CCS not followed by epoch 1", recs: append(honest[:4:4], secHdr(dtlsHandshake, 0, 4)),
			wantErr: "the change_cipher_spec was not followed by the first record of epoch 1: expected epoch 1 seq 0, received handshake epoch 0 seq 4"},
		// Epoch 1 seq 0 after the CCS is the Finished; seq 1 is wrong.
		{name: "epoch 1 opens at seq 1", recs: append(honest[:4:4], secHdr(dtlsHandshake, 1, 1)),
			wantErr: "1 record(s) missing or reordered: expected epoch 1 seq 0, received handshake epoch 1 seq 1"},
		{name: "epoch 2", recs: append(honest[:6:6], secHdr(dtlsApplicationData, 2, 2)),
			wantErr: "epoch changed from 1 to 2 without a change_cipher_spec: expected epoch 1 seq 2, received application_data epoch 2 seq 2"},
		// A retransmitted flight 5: epoch 0 again after epoch 1, which
		// pion sends only when FlightInterval passes (off over streams).
		{name: "back to epoch 0", recs: append(honest[:5:5], secHdr(dtlsHandshake, 0, 4)),
			wantErr: "epoch changed from 1 to 0 without a change_cipher_spec: expected epoch 1 seq 1, received handshake epoch 0 seq 4"},
		// pion fails an epoch-0 application record itself
		// (errApplicationDataEpochZero); it never sends one.
		{name: "application data in epoch 0", recs: [][]byte{secHdr(dtlsApplicationData, 0, 0)},
			wantErr: "application data in epoch 0, before the handshake protects the stream"},
		{name: "application data instead of the Finished", recs: append(honest[:4:4], secHdr(dtlsApplicationData, 1, 0)),
			wantErr: "application data opens epoch 1 where the Finished handshake message belongs"},
		{name: "alert instead of the Finished", recs: append(honest[:4:4], secHdr(dtlsAlert, 1, 0)),
			wantErr: "an alert opens epoch 1 where the Finished handshake message belongs"},
		// pion v2 never renegotiates: a CCS in epoch 1 would move its
		// remote epoch to 2.
		{name: "CCS in epoch 1", recs: append(honest[:6:6], secHdr(dtlsChangeCipherSpec, 1, 2)),
			wantErr: "a change_cipher_spec in epoch 1 (renegotiation, which pion/dtls v2 never does)"},
		// A retransmitted Finished, or a forged handshake message for a
		// finished handshake (pion would answer it with its last flight).
		{name: "handshake after the Finished", recs: append(honest[:6:6], secHdr(dtlsHandshake, 1, 2)),
			wantErr: "a handshake record after epoch 1's Finished"},
		// Alerts in epoch 0: a handshake failure before the CCS.
		{name: "alert in epoch 0", recs: [][]byte{secHdr(dtlsHandshake, 0, 0), secHdr(dtlsAlert, 0, 1)}},
		{name: "unknown type", recs: [][]byte{secHdr(24, 0, 0)},
			wantErr: "not a DTLS record type: expected epoch 0 seq 0, received content type 24 epoch 0 seq 0"},
		// RFC 6347 4.1: a sender must not let the 48-bit sequence
		// number wrap; pion fails with errSequenceNumberOverflow first.
		{name: "last sequence number", start: dtlsSequence{epoch: 1, next: dtlsMaxSeq},
			recs: [][]byte{secHdr(dtlsApplicationData, 1, dtlsMaxSeq)}},
		{name: "sequence numbers used up", start: dtlsSequence{epoch: 1, next: dtlsMaxSeq},
			recs:    [][]byte{secHdr(dtlsApplicationData, 1, dtlsMaxSeq), secHdr(dtlsApplicationData, 1, 0)},
			wantErr: "the sequence numbers of epoch 1 are used up: expected epoch 1 seq 281474976710656"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.start
			for i, h := range tc.recs {
				err := s.check(h)
				last := i == len(tc.recs)-1
				switch {
				case err != nil && (!last || tc.wantErr == ""):
					t.Fatalf("record %d refused: %v", i, err)
				case last && tc.wantErr != "" && err == nil:
					t.Fatalf("record %d accepted, want %q", i, tc.wantErr)
				case last && tc.wantErr != "":
					var se *dtlsStreamError
					if !errors.As(err, &se) || !strings.Contains(err.Error(), tc.wantErr) {
						t.Fatalf("error %v\nwant %q", err, tc.wantErr)
					}
				}
			}
		})
	}
}
