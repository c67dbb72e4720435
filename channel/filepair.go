package channel

import (
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

var _ Channel = (*FilePair)(nil)
var _ Deadliner = (*FilePair)(nil)

// FilePair is a Channel over a pair of *os.File descriptors that are
// neither sockets nor seekable files: a pipe pair or fifo, or a character
// device such as a tty. It reads from one file and writes to the other,
// which may be the same (a tty, or a single pipe end used in one direction
// only). [FromFile] returns a FilePair for such a descriptor; [Command]
// uses one for the child's stdin and stdout. (The in-memory pair of
// package channeltest is channeltest.Pipe; this type was called Pipe
// before issue 12.)
//
// Shutdown(Write) closes the write file, so the reader at the other end
// sees end of file, unless it is also the read file and open for reading
// too: then only this side's writes stop. Shutdown(Read) likewise. Pipes
// created by os.Pipe are non-blocking, so deadlines work and Close unblocks
// pending calls; for descriptors in blocking mode (a tty inherited as
// such), a pending Read may not end before data arrives.
type FilePair struct {
	r, w   *os.File
	name   string
	rdShut atomic.Bool
	wrShut atomic.Bool
	closed atomic.Bool

	mu        sync.Mutex // guards closing files
	rClosed   bool
	wClosed   bool
	closeOnce sync.Once
	closeErr  error

	iov iovecs // writer only
}

// NewFilePair returns a FilePair reading r and writing w; either may be
// nil (that direction then fails) and they may be the same file. The
// FilePair owns them.
func NewFilePair(r, w *os.File) *FilePair {
	p := &FilePair{r: r, w: w}
	switch {
	case r != nil && r == w:
		p.name = "fd " + r.Name()
	case r != nil && w != nil:
		p.name = "pipe " + r.Name() + "," + w.Name()
	case r != nil:
		p.name = "pipe " + r.Name()
	case w != nil:
		p.name = "pipe " + w.Name()
	default:
		p.name = "pipe"
	}
	return p
}

func (p *FilePair) setName(name string) { p.name = name }

// Name returns "pipe" or "fd" and the file names.
func (p *FilePair) Name() string { return p.name }

// Read implements [Channel].
func (p *FilePair) Read(b []byte) (int, error) {
	if p.closed.Load() {
		return 0, errClosed("read", p.name)
	}
	if p.rdShut.Load() {
		return 0, io.EOF
	}
	if p.r == nil {
		return 0, &OpError{Op: "read", Channel: p.name, Err: fmt.Errorf("no read side: %w", errUnsupported)}
	}
	n, err := p.r.Read(b)
	if err != nil && err != io.EOF {
		if p.rdShut.Load() && !p.closed.Load() {
			return n, io.EOF
		}
		err = opError("read", p.name, err)
	}
	return n, err
}

// Write implements [Channel].
func (p *FilePair) Write(b []byte) (int, error) {
	if err := p.writable("write"); err != nil {
		return 0, err
	}
	n, err := p.w.Write(b)
	return n, p.writeErr("write", err)
}

func (p *FilePair) writeErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if p.wrShut.Load() && !p.closed.Load() {
		return &OpError{Op: op, Channel: p.name, Err: unix.EPIPE}
	}
	return opError(op, p.name, err)
}

func (p *FilePair) writable(op string) error {
	if p.closed.Load() {
		return errClosed(op, p.name)
	}
	if p.wrShut.Load() {
		return &OpError{Op: op, Channel: p.name, Err: unix.EPIPE}
	}
	if p.w == nil {
		return &OpError{Op: op, Channel: p.name, Err: fmt.Errorf("no write side: %w", errUnsupported)}
	}
	return nil
}

// WriteBuffers implements [Channel] with writev(2) where the file is
// pollable, else one write per slice.
func (p *FilePair) WriteBuffers(bufs *net.Buffers) (int64, error) {
	if err := p.writable("writev"); err != nil {
		return 0, err
	}
	rc, err := p.w.SyscallConn()
	if err != nil {
		return 0, p.writeErr("writev", err)
	}
	n, err := p.iov.writev(rc, bufs)
	return n, p.writeErr("writev", err)
}

// Shutdown implements [Channel].
func (p *FilePair) Shutdown(how Direction) error {
	if !how.valid() {
		return &OpError{Op: "shutdown", Channel: p.name, Err: fmt.Errorf("invalid direction %d", int(how))}
	}
	if p.closed.Load() {
		return errClosed("shutdown", p.name)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var err error
	if how&Write != 0 && !p.wrShut.Swap(true) && p.w != nil && !p.wClosed {
		if p.w != p.r || !canRead(p.w) || p.rdShut.Load() {
			err = p.w.Close()
			p.wClosed = true
			if p.w == p.r {
				p.rClosed = true
			}
		}
	}
	if how&Read != 0 && !p.rdShut.Swap(true) && p.r != nil && !p.rClosed {
		if p.r != p.w || !canWrite(p.r) || p.wrShut.Load() {
			if e := p.r.Close(); err == nil {
				err = e
			}
			p.rClosed = true
			if p.w == p.r {
				p.wClosed = true
			}
		}
	}
	return opError("shutdown", p.name, err)
}

func accessMode(f *os.File) int {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1
	}
	fl := -1
	rc.Control(func(fd uintptr) {
		v, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
		if err == nil {
			fl = v & unix.O_ACCMODE
		}
	})
	return fl
}

func canRead(f *os.File) bool {
	m := accessMode(f)
	return m == unix.O_RDONLY || m == unix.O_RDWR
}

func canWrite(f *os.File) bool {
	m := accessMode(f)
	return m == unix.O_WRONLY || m == unix.O_RDWR
}

// Close closes both files, unblocking pending calls. Calls after the first
// return an error wrapping net.ErrClosed.
func (p *FilePair) Close() error {
	first := false
	p.closeOnce.Do(func() {
		first = true
		p.closed.Store(true)
		p.closeErr = p.closeFiles()
	})
	if !first {
		return errClosed("close", p.name)
	}
	return p.closeErr
}

func (p *FilePair) closeFiles() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var err error
	if p.r != nil && !p.rClosed {
		err = p.r.Close()
		p.rClosed = true
		if p.w == p.r {
			p.wClosed = true
		}
	}
	if p.w != nil && !p.wClosed {
		if e := p.w.Close(); err == nil {
			err = e
		}
		p.wClosed = true
	}
	return opError("close", p.name, err)
}

// SetDeadline implements [Deadliner] for pollable descriptors.
func (p *FilePair) SetDeadline(t time.Time) error {
	if err := p.SetReadDeadline(t); err != nil {
		return err
	}
	return p.SetWriteDeadline(t)
}

// SetReadDeadline implements [Deadliner] for pollable descriptors.
func (p *FilePair) SetReadDeadline(t time.Time) error {
	if p.r == nil {
		return nil
	}
	return opError("set deadline", p.name, p.r.SetReadDeadline(t))
}

// SetWriteDeadline implements [Deadliner] for pollable descriptors.
func (p *FilePair) SetWriteDeadline(t time.Time) error {
	if p.w == nil {
		return nil
	}
	return opError("set deadline", p.name, p.w.SetWriteDeadline(t))
}
