package channel

import (
	"encoding/binary"
	"fmt"
)

// DTLS 1.2 record content types (RFC 6347 4.1, RFC 5246 6.2.1).
const (
	dtlsChangeCipherSpec = 20
	dtlsAlert            = 21
	dtlsHandshake        = 22
	dtlsApplicationData  = 23
)

// dtlsMaxSeq is the largest 48-bit record sequence number (RFC 6347 4.1).
const dtlsMaxSeq = 1<<48 - 1

// dtlsRecordID is what a record's header says about it: the sequence
// errors quote it.
type dtlsRecordID struct {
	typ    byte
	epoch  uint16
	seq    uint64
	length int
}

// parseDTLSRecordID reads the fields of a 13-byte record header.
func parseDTLSRecordID(h []byte) dtlsRecordID {
	var seq [8]byte
	copy(seq[2:], h[5:11])
	return dtlsRecordID{
		typ:    h[0],
		epoch:  binary.BigEndian.Uint16(h[3:5]),
		seq:    binary.BigEndian.Uint64(seq[:]),
		length: int(binary.BigEndian.Uint16(h[11:13])),
	}
}

// String renders "application_data epoch 1 seq 7 (8179 bytes)".
func (r dtlsRecordID) String() string {
	return fmt.Sprintf("%s epoch %d seq %d (%d bytes)", dtlsTypeName(r.typ), r.epoch, r.seq, r.length)
}

func dtlsTypeName(t byte) string {
	switch t {
	case dtlsChangeCipherSpec:
		return "change_cipher_spec"
	case dtlsAlert:
		return "alert"
	case dtlsHandshake:
		return "handshake"
	case dtlsApplicationData:
		return "application_data"
	}
	return fmt.Sprintf("content type %d", t)
}

// dtlsStreamError reports that the records arriving over a stream are not
// the ones the peer sent, in the order it sent them: one is missing,
// repeated, reordered, in the wrong epoch, of a type that cannot come
// there, or failed authentication. Nothing after it can be trusted, so it
// ends the channel's read side for good.
type dtlsStreamError struct {
	why  string       // what is wrong
	want string       // the record expected ("epoch 1 seq 5"), or ""
	got  dtlsRecordID // the record received
}

// Error renders "channel: dtls: record stream tampered with: WHY:
// expected epoch E seq S, received TYPE epoch E seq S (N bytes)".
func (e *dtlsStreamError) Error() string {
	if e.want == "" {
		return fmt.Sprintf("channel: dtls: record stream tampered with: %s: received %v", e.why, e.got)
	}
	return fmt.Sprintf("channel: dtls: record stream tampered with: %s: expected %s, received %v", e.why, e.want, e.got)
}

// dtlsSequence checks one direction of a DTLS 1.2 stream, record by
// record, against what a pion/dtls v2 sender writes when it does not
// retransmit (NewDTLS turns retransmission off over streams, where
// nothing is lost):
//
//   - Epoch 0 carries the handshake in the clear: handshake and alert
//     records, then one change_cipher_spec.
//   - The record after the change_cipher_spec opens epoch 1 at sequence
//     number 0, and it is the Finished handshake message.
//   - Epoch 1 then carries application data and alerts only: pion/dtls v2
//     never renegotiates, so a later handshake record or
//     change_cipher_spec would be a retransmitted flight or an injected one.
//   - Within an epoch every record's sequence number is the previous one
//     plus one (sequence numbers restart at 0 in each epoch).
//
// Any other record is a gap, a repeat, a reordering, an epoch change the
// handshake did not make, or an injection: check returns a
// *dtlsStreamError naming it. The zero value expects the first record of
// a connection. A dtlsSequence is used by one goroutine.
type dtlsSequence struct {
	epoch    uint16 // epoch of the record expected next
	next     uint64 // its sequence number
	afterCCS bool   // the last record was a change_cipher_spec
}

// check accepts the record whose 13-byte header is h if it is the next
// one, or returns why not.
func (s *dtlsSequence) check(h []byte) error {
	got := parseDTLSRecordID(h)
	wantEpoch, wantSeq := s.epoch, s.next
	if s.afterCCS {
		wantEpoch, wantSeq = s.epoch+1, 0
	}
	want := fmt.Sprintf("epoch %d seq %d", wantEpoch, wantSeq)
	fail := func(format string, args ...any) error {
		return &dtlsStreamError{why: fmt.Sprintf(format, args...), want: want, got: got}
	}
	switch {
	case wantSeq > dtlsMaxSeq:
		return fail("the sequence numbers of epoch %d are used up", wantEpoch)
	case got.epoch != wantEpoch && s.afterCCS:
		return fail("the change_cipher_spec was not followed by the first record of epoch %d", wantEpoch)
	case got.epoch != wantEpoch:
		return fail("epoch changed from %d to %d without a change_cipher_spec", wantEpoch, got.epoch)
	case got.seq > wantSeq:
		return fail("%d record(s) missing or reordered", got.seq-wantSeq)
	case got.seq < wantSeq:
		return fail("a repeated, replayed or reordered record")
	}
	switch got.typ {
	case dtlsApplicationData:
		if got.epoch == 0 {
			return fail("application data in epoch 0, before the handshake protects the stream")
		}
		if got.seq == 0 {
			return fail("application data opens epoch %d where the Finished handshake message belongs", got.epoch)
		}
	case dtlsAlert:
		if got.epoch > 0 && got.seq == 0 {
			return fail("an alert opens epoch %d where the Finished handshake message belongs", got.epoch)
		}
	case dtlsChangeCipherSpec:
		if got.epoch > 0 {
			return fail("a change_cipher_spec in epoch %d (renegotiation, which pion/dtls v2 never does)", got.epoch)
		}
	case dtlsHandshake:
		if got.epoch > 0 && got.seq > 0 {
			return fail("a handshake record after epoch %d's Finished (a retransmitted flight or renegotiation, which a stream never carries)", got.epoch)
		}
	default:
		return fail("not a DTLS record type")
	}
	s.epoch, s.next, s.afterCCS = got.epoch, got.seq+1, got.typ == dtlsChangeCipherSpec
	return nil
}
