package channel

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// FuzzDTLSRecord feeds arbitrary streams to the DTLS record reader: it
// never panics, every record it returns has a valid header and exactly the
// length the header says, and it stops at the first bad byte.
func FuzzDTLSRecord(f *testing.F) {
	rec := func(typ byte, ver [2]byte, n int) []byte {
		b := []byte{typ, ver[0], ver[1], 0, 1, 0, 0, 0, 0, 0, 7, 0, 0}
		binary.BigEndian.PutUint16(b[11:], uint16(n))
		return append(b, make([]byte, n)...)
	}
	f.Add([]byte{})                                                                     // clean EOF before any record
	f.Add(rec(22, [2]byte{0xfe, 0xfd}, 0))                                              // empty handshake record
	f.Add(rec(23, [2]byte{0xfe, 0xfd}, 8179))                                           // largest record pion can receive
	f.Add(append(rec(23, [2]byte{0xfe, 0xff}, 10), rec(21, [2]byte{0xfe, 0xfd}, 2)...)) // two records, DTLS 1.0 then 1.2
	f.Add(rec(23, [2]byte{0xfe, 0xfd}, 8180)[:13])                                      // one byte over the limit
	f.Add(rec(23, [2]byte{0xfe, 0xfd}, 100)[:50])                                       // cut inside the body
	f.Add([]byte{22, 0xfe})                                                             // cut inside the header
	f.Add([]byte("\x16\x03\x01\x00\x05hello"))                                          // a TLS (not DTLS) record
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		var got dtlsRecord
		consumed := 0
		for {
			err := readDTLSRecord(r, &got)
			if err != nil {
				if err == io.EOF && consumed != len(data) {
					t.Fatalf("io.EOF after %d of %d bytes", consumed, len(data))
				}
				if errors.Is(err, io.ErrUnexpectedEOF) && r.Len() != 0 {
					t.Fatalf("cut reported with %d bytes unread", r.Len())
				}
				return
			}
			if got.n < dtlsHeaderLen || got.n > dtlsMaxRecord {
				t.Fatalf("record of %d bytes", got.n)
			}
			if err := checkDTLSHeader(got.b[:dtlsHeaderLen]); err != nil {
				t.Fatalf("returned a record with a bad header: %v", err)
			}
			if l := int(binary.BigEndian.Uint16(got.b[11:13])); got.n != dtlsHeaderLen+l {
				t.Fatalf("record n %d, header length %d", got.n, l)
			}
			if !bytes.Equal(got.b[:got.n], data[consumed:consumed+got.n]) {
				t.Fatal("record bytes differ from the stream")
			}
			consumed += got.n
		}
	})
}
