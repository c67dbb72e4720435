package hello

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// FuzzHello: the decoder never panics, accepts only 64-byte inputs with the
// magic, leaves the Hello alone when it fails, and whatever it accepts
// re-encodes to the same bytes. testdata/fuzz/FuzzHello holds the two
// hellos of issue 11 (a request with a status and no channels; an index
// past the count).
func FuzzHello(f *testing.F) {
	for _, g := range goldenHellos {
		b, _ := g.h.MarshalBinary()
		f.Add(b) // every documented kind: request, reply, multifd, one-way, refusal
	}
	good, _ := goldenHellos[0].h.MarshalBinary()
	f.Add(good[:63])                                                   // one byte short
	f.Add(append(bytes.Clone(good), 0))                                // one byte long
	f.Add(append([]byte("QEVM\x00\x00\x00\x03"), make([]byte, 56)...)) // a QEMU stream
	f.Add(bytes.Repeat([]byte{0xff}, 64))                              // every bit set
	f.Fuzz(func(t *testing.T, b []byte) {
		var h Hello
		if err := h.UnmarshalBinary(b); err != nil {
			if h != (Hello{}) {
				t.Fatal("failed decode changed the Hello")
			}
			return
		}
		if len(b) != Size || binary.BigEndian.Uint32(b) != Magic {
			t.Fatalf("accepted %d bytes with magic %x", len(b), b[:4])
		}
		if !Answerable(b) && !h.Reply && !h.OneWay {
			t.Fatalf("a two-way request that decodes is not Answerable: %x", b)
		}
		enc, _ := h.MarshalBinary()
		var h2 Hello
		if err := h2.UnmarshalBinary(enc); err != nil || h2 != h {
			t.Fatalf("re-encoding: %v; %+v != %+v", err, h2, h)
		}
		// Every byte is a field at its documented offset or a reserved
		// zero, so what was accepted re-encodes to itself.
		if !bytes.Equal(enc, b) {
			t.Fatalf("re-encoding changed the bytes:\n%x\n%x", b, enc)
		}
	})
}
