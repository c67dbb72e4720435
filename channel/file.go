package channel

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
)

var _ Channel = (*File)(nil)
var _ io.Seeker = (*File)(nil)

// File is a Channel over a regular file (or a block device) from an
// offset: QEMU's file: migration. Read and Write keep separate positions,
// both starting at the offset given to [OpenFile], and use pread and
// pwrite, so a reader and a writer may run at once. ReadAt and WriteAt
// (io.ReaderAt, io.WriterAt) do positional I/O without moving either
// position; Seek moves both.
//
// Shutdown(Write) syncs the file to stable storage (fsync) and makes later
// writes fail with EPIPE; Shutdown(Read) makes later reads return io.EOF.
// Close releases the file; it does not sync it.
//
// File follows the Channel concurrency rule; ReadAt and WriteAt may be
// called from any goroutine.
type File struct {
	f    *os.File
	name string

	roff, woff atomic.Int64
	rdShut     atomic.Bool
	wrShut     atomic.Bool
	closed     atomic.Bool
	closeOnce  sync.Once
	closeErr   error
}

// OpenFile opens name with flag and perm, as os.OpenFile does, and
// positions both the read and the write position at offset. It refuses a
// directory, a fifo, a socket or anything else that cannot seek (without
// opening it, so a fifo never blocks), and O_APPEND (use the offset).
func OpenFile(name string, flag int, perm os.FileMode, offset int64) (*File, error) {
	if offset < 0 {
		return nil, &OpError{Op: "open", Channel: "file " + name, Err: fmt.Errorf("negative offset %d", offset)}
	}
	if flag&os.O_APPEND != 0 {
		return nil, &OpError{Op: "open", Channel: "file " + name, Err: errors.New("O_APPEND is not supported: give the offset instead")}
	}
	if fi, err := os.Stat(name); err == nil {
		if err := checkSeekableMode(fi.Mode()); err != nil {
			return nil, &OpError{Op: "open", Channel: "file " + name, Err: err}
		}
	}
	f, err := os.OpenFile(name, flag|syscall.O_CLOEXEC, perm)
	if err != nil {
		return nil, opError("open", "file "+name, err)
	}
	ff, err := newFile(f, offset)
	if err != nil {
		f.Close()
		return nil, err
	}
	return ff, nil
}

func checkSeekableMode(m os.FileMode) error {
	switch {
	case m.IsDir():
		return errors.New("is a directory")
	case m&os.ModeNamedPipe != 0:
		return errors.New("is a fifo, which cannot seek (use FromFile or a command)")
	case m&os.ModeSocket != 0:
		return errors.New("is a socket, which cannot seek (use Dial)")
	}
	return nil
}

func newFile(f *os.File, offset int64) (*File, error) {
	name := "file " + f.Name()
	fi, err := f.Stat()
	if err != nil {
		return nil, opError("open", name, err)
	}
	if err := checkSeekableMode(fi.Mode()); err != nil {
		return nil, &OpError{Op: "open", Channel: name, Err: err}
	}
	if _, err := f.Seek(0, io.SeekCurrent); err != nil {
		return nil, &OpError{Op: "open", Channel: name, Err: fmt.Errorf("cannot seek: %w", cause(err))}
	}
	ff := &File{f: f, name: name}
	ff.roff.Store(offset)
	ff.woff.Store(offset)
	return ff, nil
}

// Name returns "file " and the path.
func (f *File) Name() string { return f.name }

// OSFile returns the *os.File underneath. Its own offset is not the
// File's.
func (f *File) OSFile() *os.File { return f.f }

// Read implements [Channel]: it reads from the read position with pread.
// At the end of the file it returns io.EOF.
func (f *File) Read(p []byte) (int, error) {
	if f.closed.Load() {
		return 0, errClosed("read", f.name)
	}
	if f.rdShut.Load() {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	off := f.roff.Load()
	n, err := f.f.ReadAt(p, off)
	f.roff.Add(int64(n))
	if err == io.EOF {
		if n > 0 {
			err = nil
		}
		return n, err
	}
	return n, opError("read", f.name, err)
}

// Write implements [Channel]: it writes at the write position with pwrite.
func (f *File) Write(p []byte) (int, error) {
	if err := f.writable("write"); err != nil {
		return 0, err
	}
	n, err := f.f.WriteAt(p, f.woff.Load())
	f.woff.Add(int64(n))
	return n, opError("write", f.name, err)
}

func (f *File) writable(op string) error {
	if f.closed.Load() {
		return errClosed(op, f.name)
	}
	if f.wrShut.Load() {
		return &OpError{Op: op, Channel: f.name, Err: syscall.EPIPE}
	}
	return nil
}

// WriteBuffers implements [Channel] with one pwrite per slice.
func (f *File) WriteBuffers(bufs *net.Buffers) (int64, error) {
	if err := f.writable("write"); err != nil {
		return 0, err
	}
	var total int64
	for len(*bufs) > 0 {
		b := (*bufs)[0]
		n, err := f.f.WriteAt(b, f.woff.Load())
		f.woff.Add(int64(n))
		total += int64(n)
		consume(bufs, int64(n))
		if err != nil {
			return total, opError("write", f.name, err)
		}
	}
	return total, nil
}

// ReadAt implements io.ReaderAt.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	if f.closed.Load() {
		return 0, errClosed("read", f.name)
	}
	n, err := f.f.ReadAt(p, off)
	return n, opError("read", f.name, err)
}

// WriteAt implements io.WriterAt.
func (f *File) WriteAt(p []byte, off int64) (int, error) {
	if err := f.writable("write"); err != nil {
		return 0, err
	}
	n, err := f.f.WriteAt(p, off)
	return n, opError("write", f.name, err)
}

// Seek implements io.Seeker: it sets both the read and the write position
// (io.SeekCurrent is relative to the read position) and returns the new
// position. Call it only while no Read or Write runs.
func (f *File) Seek(offset int64, whence int) (int64, error) {
	if f.closed.Load() {
		return 0, errClosed("seek", f.name)
	}
	var base int64
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		base = f.roff.Load()
	case io.SeekEnd:
		fi, err := f.f.Stat()
		if err != nil {
			return 0, opError("seek", f.name, err)
		}
		base = fi.Size()
	default:
		return 0, &OpError{Op: "seek", Channel: f.name, Err: fmt.Errorf("invalid whence %d", whence)}
	}
	pos := base + offset
	if pos < 0 {
		return 0, &OpError{Op: "seek", Channel: f.name, Err: errors.New("negative position")}
	}
	f.roff.Store(pos)
	f.woff.Store(pos)
	return pos, nil
}

// Shutdown implements [Channel]. Shutdown(Write) fsyncs and returns the
// sync's error.
func (f *File) Shutdown(how Direction) error {
	if !how.valid() {
		return &OpError{Op: "shutdown", Channel: f.name, Err: fmt.Errorf("invalid direction %d", int(how))}
	}
	if f.closed.Load() {
		return errClosed("shutdown", f.name)
	}
	if how&Read != 0 {
		f.rdShut.Store(true)
	}
	if how&Write != 0 && !f.wrShut.Swap(true) {
		return opError("shutdown", f.name, f.f.Sync())
	}
	return nil
}

// Close closes the file. Calls after the first return an error wrapping
// net.ErrClosed.
func (f *File) Close() error {
	first := false
	f.closeOnce.Do(func() {
		first = true
		f.closed.Store(true)
		f.closeErr = opError("close", f.name, f.f.Close())
	})
	if !first {
		return errClosed("close", f.name)
	}
	return f.closeErr
}

// FromFile turns an inherited descriptor (QEMU's fd: migration) into a
// Channel, by what it is:
//
//   - a tcp, unix or vsock stream socket: a *[Socket];
//   - a regular file or block device: a *[File] at f's current offset;
//   - anything else (a pipe, a fifo, a character device such as a tty): a
//     *[FilePair] that reads and writes f.
//
// FromFile takes ownership of f: the channel closes it, and FromFile closes
// it on failure. A directory is refused.
func FromFile(f *os.File) (Channel, error) {
	if f == nil {
		return nil, errors.New("channel: FromFile: nil file")
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, opError("open", "fd "+f.Name(), err)
	}
	m := fi.Mode()
	switch {
	case m&os.ModeSocket != 0:
		if c, ok, err := fromVsockFile(f); ok || err != nil {
			f.Close()
			if err != nil {
				return nil, opError("open", "fd "+f.Name(), err)
			}
			// Not "return NewSocket(c)": a failure would put a nil
			// *Socket in the Channel.
			s, err := NewSocket(c)
			if err != nil {
				c.Close()
				return nil, err
			}
			return s, nil
		}
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			return nil, opError("open", "fd "+f.Name(), err)
		}
		s, err := NewSocket(c)
		if err != nil {
			c.Close()
			return nil, err
		}
		return s, nil
	case m.IsDir():
		f.Close()
		return nil, &OpError{Op: "open", Channel: "fd " + f.Name(), Err: errors.New("is a directory")}
	case m.IsRegular() || m&os.ModeDevice != 0 && m&os.ModeCharDevice == 0:
		off, err := f.Seek(0, io.SeekCurrent)
		if err != nil {
			f.Close()
			return nil, opError("open", "fd "+f.Name(), err)
		}
		ff, err := newFile(f, off)
		if err != nil {
			f.Close()
			return nil, err
		}
		return ff, nil
	}
	return NewFilePair(f, f), nil
}
