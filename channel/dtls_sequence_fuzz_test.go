package channel

import (
	"errors"
	"testing"
)

// FuzzDTLSSequence checks dtlsSequence two ways.
//
// raw is read as consecutive 13-byte record headers, as a peer or an
// attacker may send them: check never panics, refuses with a
// *dtlsStreamError, and every record it accepts before its first refusal
// follows the stream's rules (checked here record by record against the
// previous accepted one, not through dtlsSequence's own state).
//
// hs, app, op and at build a transcript as an honest pion/dtls v2 sender
// writes it (secHonest) and change it once: every record of the honest
// transcript is accepted, and the changed one is refused exactly where
// the change shows (the swapped, dropped or re-epoched position, or the
// duplicate).
func FuzzDTLSSequence(f *testing.F) {
	hdr := func(hs ...[]byte) []byte {
		var b []byte
		for _, h := range hs {
			b = append(b, h...)
		}
		return b
	}
	honest := hdr(secHonest(2, 3)...)
	f.Add(honest, uint8(3), uint8(5), uint8(0), uint16(0))                                                                      // honest transcript; swap the first two handshake records
	f.Add([]byte{}, uint8(0), uint8(0), uint8(0), uint16(0))                                                                    // no record; a transcript of CCS and Finished only
	f.Add(hdr(secHdr(22, 0, 0), secHdr(20, 0, 1), secHdr(22, 1, 0), secHdr(23, 1, 1)), uint8(4), uint8(8), uint8(1), uint16(5)) // minimal handshake then data; drop an application record
	f.Add(hdr(secHdr(22, 0, 0), secHdr(22, 0, 0)), uint8(4), uint8(8), uint8(2), uint16(0))                                     // a repeated ClientHello; duplicate the first record
	f.Add(hdr(secHdr(22, 0, 0), secHdr(22, 1, 0)), uint8(4), uint8(8), uint8(3), uint16(7))                                     // epoch 1 without a CCS; move a record to another epoch
	f.Add(hdr(secHdr(20, 0, 0), secHdr(20, 1, 0)), uint8(1), uint8(0), uint8(0), uint16(1))                                     // CCS opening epoch 1; swap the CCS and the Finished
	f.Add(hdr(secHdr(20, 0, 0), secHdr(23, 1, 0)), uint8(1), uint8(2), uint8(1), uint16(1))                                     // application data in place of the Finished; drop the CCS
	f.Add(append(honest, secHdr(22, 1, 4)...), uint8(2), uint8(3), uint8(2), uint16(6))                                         // a handshake record after the Finished; duplicate the last record
	f.Add(hdr(secHdr(23, 0xffff, 0xffffffffffff)), uint8(0), uint8(1), uint8(3), uint16(3))                                     // the largest epoch and sequence number
	f.Add([]byte{22, 0xfe, 0xfd, 0, 0}, uint8(0), uint8(0), uint8(1), uint16(1))                                                // a cut header (ignored); drop the last record (not detectable, skipped)
	f.Fuzz(func(t *testing.T, raw []byte, hs, app, op uint8, at uint16) {
		// Arbitrary headers.
		var s dtlsSequence
		var prev *dtlsRecordID
		for len(raw) >= dtlsHeaderLen {
			h := raw[:dtlsHeaderLen]
			raw = raw[dtlsHeaderLen:]
			err := s.check(h)
			if err != nil {
				var se *dtlsStreamError
				if !errors.As(err, &se) {
					t.Fatalf("error %v is a %T", err, err)
				}
				break
			}
			r := parseDTLSRecordID(h)
			secFollows(t, prev, r)
			prev = &r
		}

		// An honest transcript, changed once.
		recs := secHonest(int(hs%8), int(app%64))
		var ok dtlsSequence
		for i, h := range recs {
			if err := ok.check(h); err != nil {
				t.Fatalf("honest record %d refused: %v", i, err)
			}
		}
		i := int(at) % len(recs)
		var bad [][]byte
		refuseAt := i
		switch op % 4 {
		case 0: // swap records i and i+1
			if i+1 == len(recs) {
				return
			}
			bad = append(bad, recs[:i]...)
			bad = append(bad, recs[i+1], recs[i])
			bad = append(bad, recs[i+2:]...)
		case 1: // drop record i; dropping the last is a cut, not seen here
			if i+1 == len(recs) {
				return
			}
			bad = append(bad, recs[:i]...)
			bad = append(bad, recs[i+1:]...)
		case 2: // duplicate record i
			bad = append(bad, recs[:i+1]...)
			bad = append(bad, recs[i:]...)
			refuseAt = i + 1
		case 3: // move record i to another epoch
			bad = append(bad, recs...)
			h := append([]byte(nil), recs[i]...)
			h[4] ^= byte(at>>8) | 1 // odd: the epoch always changes
			bad[i] = h
		}
		var s2 dtlsSequence
		for j, h := range bad {
			err := s2.check(h)
			switch {
			case j < refuseAt && err != nil:
				t.Fatalf("op %d at %d: record %d, before the change, refused: %v", op%4, i, j, err)
			case j == refuseAt && err == nil:
				t.Fatalf("op %d at %d: changed record %d accepted", op%4, i, j)
			case j == refuseAt:
				return
			}
		}
	})
}

// secFollows fails t unless r may follow prev (nil: r is the first
// record) in one direction of a DTLS stream.
func secFollows(t *testing.T, prev *dtlsRecordID, r dtlsRecordID) {
	t.Helper()
	switch {
	case prev == nil:
		if r.epoch != 0 || r.seq != 0 {
			t.Fatalf("first record accepted at epoch %d seq %d", r.epoch, r.seq)
		}
	case prev.typ == dtlsChangeCipherSpec:
		if r.epoch != prev.epoch+1 || r.seq != 0 || r.typ != dtlsHandshake {
			t.Fatalf("%v accepted after %v", r, *prev)
		}
	case r.epoch != prev.epoch || r.seq != prev.seq+1:
		t.Fatalf("%v accepted after %v", r, *prev)
	}
	switch {
	case r.typ == dtlsApplicationData && (r.epoch == 0 || r.seq == 0),
		r.typ == dtlsChangeCipherSpec && r.epoch != 0,
		r.typ == dtlsHandshake && r.epoch > 0 && r.seq > 0,
		r.typ == dtlsAlert && r.epoch > 0 && r.seq == 0,
		r.typ < dtlsChangeCipherSpec || r.typ > dtlsApplicationData:
		t.Fatalf("%v accepted where it cannot be", r)
	}
}
