package demovm

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The demo wire protocol, carried over a migration session (source to
// destination), big-endian:
//
//	header  be32 Magic "LMDM", be32 ProtoVersion, be32 PageSize, be64 RAM size
//	records u8 type, then:
//	  RecPage  be64 page index, PageSize bytes
//	  RecZero  be64 page index (the page is all zero)
//	  RecPass  be32 pass number, be64 pages the pass will send
//	  RecStop  nothing: the workload stopped, the final pass follows
//	  RecEnd   be32 passes, u8 converged (0 or 1): every page is sent; the
//	           destination may resume
//	  RecSum   32 bytes: SHA-256 of the source's RAM after the stop; last
//
// and back on the return path (destination to source):
//
//	be32 AckMagic "LMDA", u8 AckResumed             after RecEnd
//	be32 AckMagic "LMDA", u8 AckVerdict, u8 ok, 32 bytes of the destination's SHA-256
const (
	Magic        = 0x4C4D444D
	ProtoVersion = 1
	PageSize     = 4096
	// MaxRAMSize bounds the RAM size a destination accepts from a header.
	MaxRAMSize = 64 << 30

	RecPage = 1
	RecZero = 2
	RecPass = 3
	RecStop = 4
	RecEnd  = 5
	RecSum  = 6

	AckMagic   = 0x4C4D4441
	AckResumed = 1
	AckVerdict = 2
)

// ProtoError is a malformed demo stream: the offset of the first wrong
// byte and what was expected.
type ProtoError struct {
	Offset int64
	Reason string
	Err    error
}

// Error formats the offset and the reason.
func (e *ProtoError) Error() string {
	s := fmt.Sprintf("demo protocol: offset %d: %s", e.Offset, e.Reason)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying error, if any.
func (e *ProtoError) Unwrap() error { return e.Err }

// Record is one decoded record.
type Record struct {
	Type      byte
	Index     uint64   // RecPage, RecZero
	Pass      uint32   // RecPass, RecEnd (passes)
	Converged bool     // RecEnd
	Pages     uint64   // RecPass
	Sum       [32]byte // RecSum
}

// Decoder reads the demo stream from the network. Every read is bounded:
// the header's sizes are checked, page indexes must be inside the RAM.
type Decoder struct {
	r       *bufio.Reader
	off     int64
	ramSize int64
	sumSeen bool
	buf     [13]byte
}

// NewDecoder reads from r.
func NewDecoder(r io.Reader) *Decoder { return &Decoder{r: bufio.NewReaderSize(r, 64<<10)} }

// Offset returns the number of bytes consumed.
func (d *Decoder) Offset() int64 { return d.off }

func (d *Decoder) read(what string, p []byte) error {
	n, err := io.ReadFull(d.r, p)
	d.off += int64(n)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return &ProtoError{Offset: d.off, Reason: "stream ends inside " + what, Err: io.ErrUnexpectedEOF}
		}
		return &ProtoError{Offset: d.off, Reason: "reading " + what, Err: err}
	}
	return nil
}

// ReadHeader reads the header and returns the RAM size, which is a
// positive multiple of PageSize no larger than maxRAM (and MaxRAMSize).
func (d *Decoder) ReadHeader(maxRAM int64) (int64, error) {
	var h [20]byte
	if err := d.read("header", h[:]); err != nil {
		return 0, err
	}
	if m := binary.BigEndian.Uint32(h[0:]); m != Magic {
		return 0, &ProtoError{Offset: 0, Reason: fmt.Sprintf("magic 0x%08x, want 0x%08x (LMDM): the peer is not migrate-source", m, uint32(Magic))}
	}
	if v := binary.BigEndian.Uint32(h[4:]); v != ProtoVersion {
		return 0, &ProtoError{Offset: 4, Reason: fmt.Sprintf("version %d, want %d", v, ProtoVersion)}
	}
	if ps := binary.BigEndian.Uint32(h[8:]); ps != PageSize {
		return 0, &ProtoError{Offset: 8, Reason: fmt.Sprintf("page size %d, want %d", ps, PageSize)}
	}
	size := binary.BigEndian.Uint64(h[12:])
	if maxRAM <= 0 || maxRAM > MaxRAMSize {
		maxRAM = MaxRAMSize
	}
	if size == 0 || size%PageSize != 0 || size > uint64(maxRAM) {
		return 0, &ProtoError{Offset: 12, Reason: fmt.Sprintf("RAM size %d, want a multiple of %d in 1..%d", size, PageSize, maxRAM)}
	}
	d.ramSize = int64(size)
	return d.ramSize, nil
}

// Next reads one record. For RecPage it copies the page into ram (of the
// header's size) at its index; for RecZero it clears it. After RecSum
// the stream must end: Next returns io.EOF at a clean end, an error for
// anything else.
func (d *Decoder) Next(ram []byte) (Record, error) {
	var rec Record
	if int64(len(ram)) != d.ramSize {
		return rec, errors.New("demo protocol: Next before ReadHeader or with RAM of another size")
	}
	at := d.off
	t, err := d.r.ReadByte()
	if err != nil {
		if errors.Is(err, io.EOF) && d.sumSeen {
			return rec, io.EOF
		}
		if errors.Is(err, io.EOF) {
			return rec, &ProtoError{Offset: at, Reason: "stream ends before the checksum record", Err: io.ErrUnexpectedEOF}
		}
		return rec, &ProtoError{Offset: at, Reason: "reading record type", Err: err}
	}
	d.off++
	if d.sumSeen {
		return rec, &ProtoError{Offset: at, Reason: "data after the checksum record"}
	}
	rec.Type = t
	switch t {
	case RecPage, RecZero:
		if err := d.read("page index", d.buf[:8]); err != nil {
			return rec, err
		}
		rec.Index = binary.BigEndian.Uint64(d.buf[:8])
		if rec.Index >= uint64(d.ramSize/PageSize) {
			return rec, &ProtoError{Offset: at + 1, Reason: fmt.Sprintf("page index %d outside RAM of %d pages", rec.Index, d.ramSize/PageSize)}
		}
		page := ram[rec.Index*PageSize : (rec.Index+1)*PageSize]
		if t == RecZero {
			clear(page)
			return rec, nil
		}
		return rec, d.read("page", page)
	case RecPass:
		if err := d.read("pass record", d.buf[:12]); err != nil {
			return rec, err
		}
		rec.Pass = binary.BigEndian.Uint32(d.buf[:4])
		rec.Pages = binary.BigEndian.Uint64(d.buf[4:12])
		if rec.Pages > uint64(d.ramSize/PageSize) {
			return rec, &ProtoError{Offset: at + 5, Reason: fmt.Sprintf("pass of %d pages exceeds RAM of %d pages", rec.Pages, d.ramSize/PageSize)}
		}
	case RecStop:
	case RecEnd:
		if err := d.read("end record", d.buf[:5]); err != nil {
			return rec, err
		}
		rec.Pass = binary.BigEndian.Uint32(d.buf[:4])
		if d.buf[4] > 1 {
			return rec, &ProtoError{Offset: at + 5, Reason: fmt.Sprintf("converged flag %d, want 0 or 1", d.buf[4])}
		}
		rec.Converged = d.buf[4] == 1
	case RecSum:
		if err := d.read("checksum", rec.Sum[:]); err != nil {
			return rec, err
		}
		d.sumSeen = true
	default:
		return rec, &ProtoError{Offset: at, Reason: fmt.Sprintf("unknown record type 0x%02x", t)}
	}
	return rec, nil
}

// appendHeader appends the header for a RAM of size bytes.
func appendHeader(b []byte, size int64) []byte {
	b = binary.BigEndian.AppendUint32(b, Magic)
	b = binary.BigEndian.AppendUint32(b, ProtoVersion)
	b = binary.BigEndian.AppendUint32(b, PageSize)
	return binary.BigEndian.AppendUint64(b, uint64(size))
}

// readAck reads one return-path message of the given kind.
func readAck(r io.Reader, kind byte) (ok bool, sum [32]byte, err error) {
	var b [5]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return false, sum, fmt.Errorf("reading the destination's reply: %w", err)
	}
	if m := binary.BigEndian.Uint32(b[:]); m != AckMagic || b[4] != kind {
		return false, sum, fmt.Errorf("destination's reply is 0x%08x/%d, want 0x%08x/%d", m, b[4], uint32(AckMagic), kind)
	}
	if kind != AckVerdict {
		return true, sum, nil
	}
	var v [33]byte
	if _, err := io.ReadFull(r, v[:]); err != nil {
		return false, sum, fmt.Errorf("reading the destination's verdict: %w", err)
	}
	copy(sum[:], v[1:])
	return v[0] == 1, sum, nil
}
