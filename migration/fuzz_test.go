package migration

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/livemig/livemig/channel"
)

// bytesChannel is a read-only Channel over a byte slice, for the fuzz
// targets: it returns short reads to exercise the refill paths.
type bytesChannel struct {
	r     *bytes.Reader
	chunk int
}

var _ channel.Channel = (*bytesChannel)(nil)

func (c *bytesChannel) Read(p []byte) (int, error) {
	if c.chunk > 0 && len(p) > c.chunk {
		p = p[:c.chunk]
	}
	return c.r.Read(p)
}
func (c *bytesChannel) Write(p []byte) (int, error)              { return 0, errors.New("read-only") }
func (c *bytesChannel) WriteBuffers(*net.Buffers) (int64, error) { return 0, errors.New("read-only") }
func (c *bytesChannel) Close() error                             { return nil }
func (c *bytesChannel) Shutdown(channel.Direction) error         { return nil }
func (c *bytesChannel) Name() string                             { return "bytes" }

// FuzzStreamRead drives the Stream getters over arbitrary bytes: the first
// byte picks the channel's read size, then each step's opcode comes from
// the data itself. Nothing panics, every call is bounded, the counters
// never exceed the input, and after an error every getter returns zero.
func FuzzStreamRead(f *testing.F) {
	f.Add([]byte{0})                                               // empty stream after the chunk byte
	f.Add([]byte{1, 0, 1, 2, 3, 4, 5, 6, 7, 8})                    // one-byte reads
	f.Add(append([]byte{0, 4, 0xff}, make([]byte, 300)...))        // counted string of 255 past a short input
	f.Add(append([]byte{7, 6}, bytes.Repeat([]byte{9}, 40000)...)) // a peek and a large buffer across refills
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		ch := &bytesChannel{r: bytes.NewReader(data[1:]), chunk: int(data[0])}
		s := NewStream(ch)
		buf := make([]byte, 255*300)
		for steps := 0; steps < 1000 && s.Err() == nil; steps++ {
			op := s.GetByte()
			switch op % 9 {
			case 0:
				s.GetBE16()
			case 1:
				s.GetBE32()
			case 2:
				s.GetBE64()
			case 3:
				n := int(s.GetBE16())
				s.GetBuffer(buf[:n])
			case 4:
				s.GetCountedString()
			case 5:
				n := int(s.GetBE16())
				p, err := s.Peek(n)
				if err == nil && len(p) != n || len(p) > n {
					t.Fatalf("Peek(%d) returned %d bytes, %v", n, len(p), err)
				}
			case 6:
				s.GetBuffer(buf[:int(op)*300])
			case 7:
				s.Skip(int(s.GetByte()))
			case 8:
				s.Read(buf[:int(op)])
			}
		}
		if r := s.Stats().Read; r > int64(len(data)-1) {
			t.Fatalf("read %d bytes from %d", r, len(data)-1)
		}
		if s.Err() != nil && (s.GetBE64() != 0 || s.GetByte() != 0) {
			t.Fatal("getter returned data after an error")
		}
	})
}

// FuzzStripeFrame feeds arbitrary bytes to the destination's stripe-frame
// decoder, as one channel of a session. It never panics, never returns a
// payload larger than 256 KiB, and checks the sequence numbers.
func FuzzStripeFrame(f *testing.F) {
	frame := func(typ byte, n int, seq uint64) []byte {
		b := make([]byte, stripeHeaderSize+n)
		binary.BigEndian.PutUint16(b, stripeMagic)
		b[2] = typ
		binary.BigEndian.PutUint32(b[4:], uint32(n))
		binary.BigEndian.PutUint64(b[8:], seq)
		return b
	}
	f.Add(append(frame(frameData, 5, 0), frame(frameEnd, 0, 1)...)) // data then end
	f.Add(frame(frameEnd, 0, 0))                                    // empty session
	f.Add(frame(frameData, stripeSize+1, 0)[:stripeHeaderSize])     // oversize length
	f.Add(frame(frameData, 10, 7))                                  // wrong sequence
	f.Add(frame(frameData, 100, 0)[:50])                            // cut inside the payload
	f.Add(frame(frameData, 0, 0))                                   // empty data frame
	f.Add(append(frame(frameData, 3, 0), []byte("abcLS")...))       // cut inside the next header
	f.Fuzz(func(t *testing.T, data []byte) {
		s := NewStream(&bytesChannel{r: bytes.NewReader(data), chunk: 1000})
		buf := make([]byte, stripeSize)
		total := 0
		for seq := uint64(0); ; seq++ {
			n, end, err := readFrameHeader(s, seq)
			if err != nil {
				if !errors.Is(err, ErrFrame) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("error %v is neither ErrFrame nor io.ErrUnexpectedEOF", err)
				}
				return
			}
			if end {
				return
			}
			if n <= 0 || n > stripeSize {
				t.Fatalf("payload length %d", n)
			}
			if _, err := s.GetBuffer(buf[:n]); err != nil {
				return
			}
			total += stripeHeaderSize + n
			if total > len(data) {
				t.Fatalf("decoded %d bytes from %d", total, len(data))
			}
		}
	})
}
