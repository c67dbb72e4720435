package channel

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
)

var _ Channel = (*Buffer)(nil)
var _ io.Seeker = (*Buffer)(nil)

// Buffer is an in-memory, growable, seekable Channel (QEMU's
// QIOChannelBuffer): for tests, snapshots and the packaged postcopy stream.
// It has one position, as a file does: Write writes at the position
// (growing the buffer) and advances it, Read reads from it and returns
// io.EOF at the end of the data. So a Buffer is not a pipe: to read back
// what was written, Seek to the start first.
//
// Shutdown(Write) makes writes fail with EPIPE; Shutdown(Read) makes reads
// return io.EOF. Close drops the data; later calls fail with an error
// wrapping net.ErrClosed. Nothing ever blocks. All methods may be called
// from any goroutine; a lock serialises them.
type Buffer struct {
	mu     sync.Mutex
	data   []byte
	off    int64
	rdShut bool
	wrShut bool
	closed bool
}

// NewBuffer returns a Buffer holding b, positioned at its start. The Buffer
// takes ownership of b.
func NewBuffer(b []byte) *Buffer { return &Buffer{data: b} }

// Name returns "buffer".
func (b *Buffer) Name() string { return "buffer" }

// Read implements [Channel].
func (b *Buffer) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, errClosed("read", "buffer")
	}
	if b.rdShut || b.off >= int64(len(b.data)) {
		if len(p) == 0 && !b.rdShut {
			return 0, nil
		}
		return 0, io.EOF
	}
	n := copy(p, b.data[b.off:])
	b.off += int64(n)
	return n, nil
}

// Write implements [Channel].
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.writableLocked("write"); err != nil {
		return 0, err
	}
	if err := checkEnd("write", b.off, len(p)); err != nil {
		return 0, err
	}
	b.writeAtLocked(p, b.off)
	b.off += int64(len(p))
	return len(p), nil
}

func (b *Buffer) writableLocked(op string) error {
	if b.closed {
		return errClosed(op, "buffer")
	}
	if b.wrShut {
		return &OpError{Op: op, Channel: "buffer", Err: syscall.EPIPE}
	}
	return nil
}

func (b *Buffer) writeAtLocked(p []byte, off int64) {
	end := off + int64(len(p))
	if end > int64(len(b.data)) {
		old := len(b.data)
		if end > int64(cap(b.data)) {
			grown := make([]byte, end, max(end, 2*int64(cap(b.data))))
			copy(grown, b.data)
			b.data = grown
		} else {
			b.data = b.data[:end]
			clear(b.data[old:]) // stale bytes past the old end
		}
	}
	copy(b.data[off:], p)
}

// checkEnd refuses positions so large the buffer could not hold them.
func checkEnd(op string, off int64, n int) error {
	if off < 0 || off > maxBufferSize-int64(n) {
		return &OpError{Op: op, Channel: "buffer", Err: fmt.Errorf("position %d beyond the maximum size %d", off, int64(maxBufferSize))}
	}
	return nil
}

// maxBufferSize bounds a Buffer (256 GiB), so a wild Seek fails cleanly.
const maxBufferSize = 1 << 38

// WriteBuffers implements [Channel]; it copies each slice into the buffer.
func (b *Buffer) WriteBuffers(bufs *net.Buffers) (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.writableLocked("writev"); err != nil {
		return 0, err
	}
	var total int64
	for _, p := range *bufs {
		total += int64(len(p))
	}
	if err := checkEnd("writev", b.off, 0); err != nil || total > maxBufferSize-b.off {
		return 0, &OpError{Op: "writev", Channel: "buffer", Err: fmt.Errorf("%d bytes at position %d exceed the maximum size %d", total, b.off, int64(maxBufferSize))}
	}
	total = 0
	for _, p := range *bufs {
		b.writeAtLocked(p, b.off)
		b.off += int64(len(p))
		total += int64(len(p))
	}
	consume(bufs, total)
	return total, nil
}

// ReadAt implements io.ReaderAt.
func (b *Buffer) ReadAt(p []byte, off int64) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, errClosed("read", "buffer")
	}
	if off < 0 {
		return 0, &OpError{Op: "read", Channel: "buffer", Err: errors.New("negative offset")}
	}
	if off >= int64(len(b.data)) {
		return 0, io.EOF
	}
	n := copy(p, b.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// WriteAt implements io.WriterAt; it does not move the position. Writing
// past the end grows the buffer, filling any gap with zeros.
func (b *Buffer) WriteAt(p []byte, off int64) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.writableLocked("write"); err != nil {
		return 0, err
	}
	if err := checkEnd("write", off, len(p)); err != nil {
		return 0, err
	}
	b.writeAtLocked(p, off)
	return len(p), nil
}

// Seek implements io.Seeker. Seeking past the end is allowed; a later Write
// fills the gap with zeros.
func (b *Buffer) Seek(offset int64, whence int) (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, errClosed("seek", "buffer")
	}
	var base int64
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		base = b.off
	case io.SeekEnd:
		base = int64(len(b.data))
	default:
		return 0, &OpError{Op: "seek", Channel: "buffer", Err: fmt.Errorf("invalid whence %d", whence)}
	}
	if base+offset < 0 {
		return 0, &OpError{Op: "seek", Channel: "buffer", Err: errors.New("negative position")}
	}
	b.off = base + offset
	return b.off, nil
}

// Bytes returns the buffer's contents. The slice aliases the buffer until
// the next write.
func (b *Buffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.data
}

// Len returns the size of the contents.
func (b *Buffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.data)
}

// Shutdown implements [Channel].
func (b *Buffer) Shutdown(how Direction) error {
	if !how.valid() {
		return &OpError{Op: "shutdown", Channel: "buffer", Err: fmt.Errorf("invalid direction %d", int(how))}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errClosed("shutdown", "buffer")
	}
	if how&Read != 0 {
		b.rdShut = true
	}
	if how&Write != 0 {
		b.wrShut = true
	}
	return nil
}

// Close drops the contents. Calls after the first return an error wrapping
// net.ErrClosed.
func (b *Buffer) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errClosed("close", "buffer")
	}
	b.closed = true
	b.data = nil
	return nil
}
