package migration

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// fill makes at least need bytes (need <= BufferSize) available in rbuf,
// reading from the channel; it sets the sticky error and returns false when
// it cannot.
func (s *Stream) fill(need int) bool {
	if s.errSet.Load() {
		return false
	}
	if s.rend-s.rpos >= need {
		return true
	}
	if s.rbuf == nil {
		s.rbuf = make([]byte, BufferSize)
	}
	if s.rpos > 0 {
		s.rend = copy(s.rbuf, s.rbuf[s.rpos:s.rend])
		s.rpos = 0
	}
	for s.rend < need {
		n, err := s.ch.Read(s.rbuf[s.rend:])
		s.rend += n
		s.read.Add(int64(n))
		if err != nil {
			if s.rend >= need {
				break // report the error at the next read
			}
			switch {
			case errors.Is(err, io.EOF) && s.rend == s.rpos:
				s.SetErr(io.EOF)
			case errors.Is(err, io.EOF):
				s.SetErr(io.ErrUnexpectedEOF)
			default:
				s.SetErr(s.closedErr(fmt.Errorf("migration: %w", err)))
			}
			return false
		}
		if n == 0 {
			continue
		}
	}
	return true
}

// GetByte returns the next byte, or 0 after an error (see Err).
func (s *Stream) GetByte() byte {
	if s.rpos < s.rend && !s.errSet.Load() {
		b := s.rbuf[s.rpos]
		s.rpos++
		return b
	}
	if !s.fill(1) {
		return 0
	}
	b := s.rbuf[s.rpos]
	s.rpos++
	return b
}

// GetBE16 returns the next big-endian uint16, or 0 after an error.
func (s *Stream) GetBE16() uint16 {
	if !s.fill(2) {
		return 0
	}
	v := binary.BigEndian.Uint16(s.rbuf[s.rpos:])
	s.rpos += 2
	return v
}

// GetBE32 returns the next big-endian uint32, or 0 after an error.
func (s *Stream) GetBE32() uint32 {
	if !s.fill(4) {
		return 0
	}
	v := binary.BigEndian.Uint32(s.rbuf[s.rpos:])
	s.rpos += 4
	return v
}

// GetBE64 returns the next big-endian uint64, or 0 after an error.
func (s *Stream) GetBE64() uint64 {
	if !s.fill(8) {
		return 0
	}
	v := binary.BigEndian.Uint64(s.rbuf[s.rpos:])
	s.rpos += 8
	return v
}

// GetBuffer fills p from the stream, like io.ReadFull: it returns len(p)
// and nil, or fewer bytes and the sticky error (io.ErrUnexpectedEOF when
// the stream ended inside p, io.EOF when it ended before p).
func (s *Stream) GetBuffer(p []byte) (int, error) {
	if err := s.Err(); err != nil {
		return 0, err
	}
	n := 0
	for n < len(p) {
		if s.rpos == s.rend {
			// Large reads bypass the buffer.
			if len(p)-n >= BufferSize && s.Err() == nil {
				m, err := io.ReadFull(s.ch, p[n:])
				s.read.Add(int64(m))
				n += m
				if err != nil {
					if errors.Is(err, io.EOF) && n > 0 {
						err = io.ErrUnexpectedEOF
					}
					if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
						err = s.closedErr(fmt.Errorf("migration: %w", err))
					}
					s.SetErr(err)
					return n, s.Err()
				}
				return n, nil
			}
			if !s.fill(1) {
				err := s.Err()
				if n > 0 && errors.Is(err, io.EOF) {
					s.errMu.Lock()
					s.err = io.ErrUnexpectedEOF
					s.errMu.Unlock()
					err = io.ErrUnexpectedEOF
				}
				return n, err
			}
		}
		c := copy(p[n:], s.rbuf[s.rpos:s.rend])
		s.rpos += c
		n += c
	}
	return n, nil
}

// Read reads up to len(p) bytes, returning what is buffered before reading
// the channel again; it makes a Stream an io.Reader. At the end of the
// stream it returns io.EOF.
func (s *Stream) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if err := s.Err(); err != nil {
		return 0, err
	}
	if s.rpos == s.rend && !s.fill(1) {
		return 0, s.Err()
	}
	n := copy(p, s.rbuf[s.rpos:s.rend])
	s.rpos += n
	return n, nil
}

// ErrPeekTooLarge is returned by Peek for more than BufferSize bytes.
var ErrPeekTooLarge = errors.New("migration: peek larger than the read buffer")

// Peek returns the next n bytes without consuming them, reading as needed;
// n must be at most BufferSize. The slice is valid until the next read
// method. On error it returns fewer bytes and the error.
func (s *Stream) Peek(n int) ([]byte, error) {
	if n < 0 || n > BufferSize {
		return nil, ErrPeekTooLarge
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	if !s.fill(n) {
		return s.rbuf[s.rpos:s.rend:s.rend], s.Err()
	}
	return s.rbuf[s.rpos : s.rpos+n : s.rpos+n], nil
}

// Skip discards the next n bytes and returns the number discarded.
func (s *Stream) Skip(n int) (int, error) {
	if err := s.Err(); err != nil {
		return 0, err
	}
	done := 0
	for done < n {
		if s.rpos == s.rend && !s.fill(1) {
			return done, s.Err()
		}
		c := min(n-done, s.rend-s.rpos)
		s.rpos += c
		done += c
	}
	return done, nil
}

// GetCountedString reads a string preceded by its length as one byte, as
// QEMU's qemu_get_counted_string.
func (s *Stream) GetCountedString() (string, error) {
	n := int(s.GetByte())
	if err := s.Err(); err != nil {
		return "", err
	}
	b, err := s.Peek(n)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return "", err
	}
	str := string(b)
	s.rpos += n
	return str, nil
}

// PutCountedString writes str preceded by its length as one byte, as QEMU's
// qemu_put_counted_string; str must be shorter than 256 bytes.
func (s *Stream) PutCountedString(str string) {
	if len(str) > 255 {
		s.SetErr(fmt.Errorf("migration: counted string of %d bytes", len(str)))
		return
	}
	s.PutByte(byte(len(str)))
	s.PutBuffer([]byte(str))
}
